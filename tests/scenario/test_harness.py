"""Self-test of the scenario harness (gvtest.py, conftest.py), run against
`grapevine echo`: if these fail, no other scenario result can be trusted."""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

import gvtest
from gvtest import (Echo, Proc, RawConn, WaitTimeout, can_connect, free_port, lower_headers,
                    pid_alive, port_is_free, request_bytes, wait_until)

SCENARIO_DIR = Path(__file__).resolve().parent
# A process that exits 3 on SIGTERM, and says "ready" once it will.
TRAP_EXIT_3 = "trap 'exit 3' TERM; echo ready; while :; do sleep 0.05; done"


# ---- helpers that need no process ----------------------------------------

def test_free_ports_are_distinct_and_bindable():
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(port_is_free(p) for p in ports)
    assert all(p < 32768 or p >= gvtest._ephemeral_range()[1] for p in ports)


def test_wait_until_returns_the_value():
    calls = []

    def third_time():
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert wait_until(third_time, 5, "three calls") == 3


def test_wait_until_times_out_with_a_clear_message():
    start = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"timed out after .* waiting for the impossible"):
        wait_until(lambda: False, 0.3, "the impossible")
    assert time.monotonic() - start >= 0.3  # it waited its whole deadline first


def test_wait_until_reports_the_last_error():
    def refused():
        raise ConnectionRefusedError("nope")

    with pytest.raises(WaitTimeout, match="ConnectionRefusedError: nope"):
        wait_until(refused, 0.2, "a refusal to stop")


def test_flatten_backends_shapes():
    t1 = {"address": "127.0.0.1:1", "healthy": True}
    t2 = {"address": "127.0.0.1:2", "healthy": False}
    shapes = [
        {"services": [{"name": "s", "targets": [t1, t2]}]},
        [{"service": "s", "targets": [t1, t2]}],
        {"s": [t1, t2]},
        {"s": {"targets": [t1, t2]}},
        [dict(t1, service="s"), dict(t2, service="s")],
    ]
    for doc in shapes:
        got = {(b["service"], b["address"], b["healthy"]) for b in gvtest.flatten_backends(doc)}
        assert got == {("s", "127.0.0.1:1", True), ("s", "127.0.0.1:2", False)}, doc


def test_stop_expects_exit_zero_after_sigterm(gv_scope):
    p = Proc("term-3", ["sh", "-c", TRAP_EXIT_3]).start()
    wait_until(lambda: "ready" in p.stdout_path.read_text(), 5, "sh to set its trap")
    assert p.stop() == 3
    assert any("exit status 3 after SIGTERM" in pr for pr in p.problems)
    p.problems.clear()  # seen; do not fail this test at teardown


def test_unexpected_death_is_a_problem(gv_scope):
    p = Proc("dies", ["sh", "-c", "exit 7"]).start()
    wait_until(lambda: not p.alive(), 5, "sh to exit")
    assert p.problems and "exited on its own with exit status 7" in p.problems[0]
    p.problems.clear()


def test_rss_of_a_process(gv_scope):
    p = Proc("sleeper", ["sleep", "30"]).start()
    wait_until(lambda: gvtest.rss_kb(p.pid) > 0, 5, "sleep to have an RSS")
    assert p.pss_kb() > 0
    p.kill()
    assert not p.alive()


# ---- against grapevine echo ------------------------------------------------

def test_echo_reflects_the_request():
    e = Echo("echo-a")
    r = requests.post(e.url("/some/path?x=1&y=2"), data=b"hello", headers={"X-Test": "yes"},
                      timeout=10)
    assert r.status_code == 200
    j = r.json()
    assert j["name"] == "echo-a"
    assert j["method"] == "POST"
    assert j["path"] == "/some/path"
    q = j["query"]
    assert (q.get("x") == "1") if isinstance(q, dict) else ("x=1&y=2" in q)
    assert lower_headers(j["headers"])["x-test"] == "yes"
    assert j["body_bytes"] == 5


def test_echo_health_toggles():
    e = Echo("echo-h")
    assert requests.get(e.url("/healthz"), timeout=10).status_code == 200
    e.fail()
    assert requests.get(e.url("/healthz"), timeout=10).status_code == 503
    assert requests.get(e.url("/other"), timeout=10).status_code == 200
    e.recover()
    assert requests.get(e.url("/healthz"), timeout=10).status_code == 200


def test_echo_stop_kill_and_restart_on_the_same_port():
    e = Echo("echo-r")
    assert e.rss_kb() > 0
    assert e.stop() == 0
    assert not can_connect(e.port)
    e.restart()
    assert requests.get(e.url("/"), timeout=10).json()["name"] == "echo-r"
    e.kill()
    assert not e.alive()
    e.restart()
    assert requests.get(e.url("/"), timeout=10).status_code == 200


def test_raw_conn_keepalive_and_http10():
    e = Echo("echo-raw")
    with RawConn("127.0.0.1", e.port) as c:
        for path in ("/one", "/two"):
            c.send(request_bytes("GET", path))
            r = c.read_response()
            assert r.status == 200 and r.json()["path"] == path
    with RawConn("127.0.0.1", e.port) as c:
        c.send(request_bytes("GET", "/old", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/old"
        assert c.closed_by_peer(5)


# ---- teardown behaviour, seen from a child pytest run ---------------------

CHILD_CONFTEST = f"""
import sys
sys.path.insert(0, {str(SCENARIO_DIR)!r})
_path = {str(SCENARIO_DIR / "conftest.py")!r}
exec(compile(open(_path).read(), _path, "exec"))
"""


def run_child_pytest(tmp_path, test_source):
    (tmp_path / "conftest.py").write_text(CHILD_CONFTEST)
    (tmp_path / "test_child.py").write_text(textwrap.dedent(test_source))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
         f"--basetemp={tmp_path / 'basetemp'}", str(tmp_path / "test_child.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_failing_test_gets_logs_and_its_processes_killed(tmp_path):
    pidfile = tmp_path / "pid"
    res = run_child_pytest(tmp_path, f"""
        from pathlib import Path
        from gvtest import Echo, pid_alive

        def test_a_fails():
            e = Echo("e-child")
            Path({str(pidfile)!r}).write_text(str(e.pid))
            assert False, "deliberate failure"

        def test_b_sees_it_dead():
            assert not pid_alive(int(Path({str(pidfile)!r}).read_text()))
    """)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "1 failed, 1 passed" in out, out
    assert "deliberate failure" in out, out
    assert "---- echo e-child:" in out, out  # the process logs are in the report
    assert not pid_alive(int(pidfile.read_text()))


def test_bad_exit_fails_the_test_at_teardown(tmp_path):
    res = run_child_pytest(tmp_path, f"""
        from gvtest import Proc, wait_until

        def test_leaves_a_bad_process():
            p = Proc("bad-exit", ["sh", "-c", {TRAP_EXIT_3!r}])
            p.start()
            wait_until(lambda: "ready" in p.stdout_path.read_text(), 5, "sh to set its trap")
    """)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "1 passed, 1 error" in out, out
    assert "exit status 3 after SIGTERM" in out, out
