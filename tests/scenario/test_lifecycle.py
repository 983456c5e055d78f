"""Process life and upstream failures: SIGTERM drains in-flight requests and
exits 0; a refused upstream is 502, a slow one 504; the admin API and the
config commands answer per SPEC."""

import os
import resource
import signal
import socket
import threading
import time

import pytest
import requests

from gvtest import (Echo, HOST, Node, Proc, free_port, port_is_free, run_cli, sanitized,
                    scaled, wait_until)


def service_yaml(addresses, extra=""):
    targets = ", ".join(f"{{address: {a}}}" for a in addresses)
    return f"""
        services:
          - name: s
            targets: [{targets}]
            {extra}
        routes:
          - name: all
            match: {{paths: [/]}}
            service: s
        """


def test_sigterm_drains_in_flight_request():
    echo = Echo("e1")
    node = Node(service_yaml([echo.address]), node_extra="workers: 2")
    result = {}

    def slow_request():
        try:
            r = requests.get(node.url("/delay/1500"), timeout=10)
            result["status"] = r.status_code
            result["body"] = r.json()
            result["done_at"] = time.monotonic()
        except Exception as e:  # recorded and asserted below
            result["error"] = repr(e)

    t = threading.Thread(target=slow_request)
    t.start()
    # Wait until the request is in flight at the upstream side (the node's
    # backends show it), then ask the node to stop.
    def in_flight():
        b = node.admin_get("/backends").json()
        return b[0]["targets"][0]["inflight"] == 1
    wait_until(in_flight, 5, "the slow request to be in flight")
    refused = {}

    def probe_listener():
        # New connections are refused soon after SIGTERM ...
        try:
            wait_until(lambda: not _accepts(node.port), 5, "the listener to close")
            refused["ok"] = True
            refused["at"] = time.monotonic()
        except AssertionError as e:
            refused["error"] = str(e)

    prober = threading.Thread(target=probe_listener)
    prober.start()
    rc = node.stop(timeout=15)  # SIGTERM, then wait for the exit
    t.join(15)
    prober.join(10)
    # ... while the request in flight completes, and the exit is clean.
    assert result.get("status") == 200, result
    assert result["body"]["path"] == "/delay/1500"
    assert refused.get("ok"), refused
    assert refused["at"] < result["done_at"], "listener closed only after the request ended"
    assert rc == 0


def _accepts(port):
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _sigterm_at_first_accept(proc, port, rounds):
    """Starts proc rounds times and sends SIGTERM the moment port first
    accepts (what an orchestrator or a test may do): every time the process
    stops cleanly (exit 0), never by the signal's default action."""
    codes = []
    for _ in range(rounds):
        Proc.start(proc)  # not waiting for readiness: the point is the first instant
        wait_until(lambda: _accepts(port), 30, f"{proc.label} to accept on {port}",
                   interval=0.001, max_interval=0.001)
        proc.popen.send_signal(signal.SIGTERM)
        rc = proc.popen.wait(60)
        proc._record_exit(rc, by_us=True)
        codes.append(rc)
        wait_until(lambda: port_is_free(port), 10, f"port {port} to be free")
    assert codes == [0] * rounds, f"exit codes after an early SIGTERM: {codes}"


def test_sigterm_as_soon_as_the_ports_answer_is_a_clean_stop():
    echo = Echo("e-early", start=False)
    _sigterm_at_first_accept(echo, echo.port, 10)
    up = Echo("e-up")
    node = Node(service_yaml([up.address]), node_extra="workers: 2", start=False)
    _sigterm_at_first_accept(node, node.port, 10)
    assert "stopped" in node.logs()


def test_a_fatal_signal_prints_the_stack_first():
    """A crash leaves its stack in stderr (common/crash.h), then the process
    dies of the same signal as it would have (a core, where enabled)."""
    if sanitized():
        pytest.skip("AddressSanitizer prints its own report and is not replaced")
    echo = Echo("e1")
    node = Node(service_yaml([echo.address]))
    assert node.get("/").status_code == 200
    node.popen.send_signal(signal.SIGSEGV)  # to the main thread: Linux picks the leader first
    rc = node.popen.wait(scaled(10))
    node._record_exit(rc, by_us=True)
    assert rc == -signal.SIGSEGV, rc
    err = node.logs()
    assert f"grapevine: fatal SIGSEGV sent by pid {os.getpid()} in thread" in err, err[-2000:]
    # the main thread's frames, named: exported symbols and libuv's
    assert "(node_cli_main+0x" in err and "(uv_run+0x" in err, err[-2000:]


def _open_files_limits(pid):
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open files line in /proc/{pid}/limits")


def test_the_open_files_limit_is_raised_to_the_hard_limit():
    """A node started from a shell with the usual soft limit of 1,024 open
    files takes it up to the hard limit: every connection is a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(1024, hard)
    if low == hard:
        pytest.skip(f"the hard limit is {hard}: nothing to raise")
    echo = Echo("e1")
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))  # inherited by the node
    try:
        node = Node(service_yaml([echo.address]))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert node.get("/").status_code == 200
    assert _open_files_limits(node.popen.pid) == (hard, hard)


def test_refused_upstream_is_502_with_json_error():
    dead = f"{HOST}:{free_port()}"
    node = Node(service_yaml([dead], "retries: 1"))
    r = node.get("/x")
    assert r.status_code == 502
    body = r.json()
    assert "error" in body and body["request_id"]


def test_slow_upstream_is_504():
    echo = Echo("e1")
    node = Node(service_yaml([echo.address], "timeouts: {connect: 1s, read: 300ms}\n            retries: 0"))
    # the upstream would answer 200 after 20 s: a 504 is the read timeout
    r = node.get("/delay/20000", timeout=60)
    assert r.status_code == 504
    assert r.json()["error"]


def test_no_route_is_404_json():
    echo = Echo("e1")
    node = Node(f"""
        services:
          - name: s
            targets: [{{address: {echo.address}}}]
        routes:
          - name: api
            match: {{paths: [/api]}}
            service: s
        """)
    r = node.get("/other")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == "no route matched"
    assert node.get("/api/x").status_code == 200


def test_strip_prefix_and_host_routing():
    a, b = Echo("a"), Echo("b")
    node = Node(f"""
        services:
          - name: sa
            targets: [{{address: {a.address}}}]
          - name: sb
            targets: [{{address: {b.address}}}]
        routes:
          - name: host-b
            match: {{hosts: [b.example.com], paths: [/]}}
            service: sb
          - name: users
            match: {{paths: [/users], path_type: prefix}}
            service: sa
            strip_prefix: true
        """)
    r = node.get("/users/42?q=1")
    assert r.json()["name"] == "a" and r.json()["path"] == "/42" and r.json()["query"] == "q=1"
    r = node.get("/users/42", headers={"Host": "b.example.com"})
    assert r.json()["name"] == "b" and r.json()["path"] == "/users/42"


def test_metrics_and_backends():
    echo = Echo("e1")
    node = Node(service_yaml([echo.address]))
    for _ in range(5):
        assert node.get("/m").status_code == 200
    assert node.get("/m", headers={"Host": "x"}).status_code == 200
    text = node.admin_get("/metrics").text
    line = [l for l in text.splitlines()
            if l.startswith('grapevine_http_requests_total{route="all",service="s",code="200"}')]
    assert line and int(line[0].split()[-1]) == 6, text
    assert ('grapevine_http_request_duration_seconds_count'
            '{route="all",service="s",code_class="2xx"} 6') in text, text
    assert f'grapevine_upstream_healthy{{service="s",target="{echo.address}"}} 1' in text
    b = node.admin_get("/backends").json()
    assert b[0]["service"] == "s" and b[0]["targets"][0]["healthy"] is True
    st = node.admin_get("/status").json()
    assert st["node"] == node.name and len(st["config_digest"]) == 64
    assert node.admin_get("/nope").status_code == 404


def test_validate_reports_file_line(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(service_yaml(["127.0.0.1:9"]).replace("\n        ", "\n"))
    r = run_cli("validate", "-c", str(good))
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  - name: s\n    targets: [{address: 127.0.0.1:9}]\n    retires: 2\n")
    r = run_cli("validate", "-c", str(bad))
    assert r.returncode == 2
    assert r.stderr.startswith(f"{bad}:4: "), r.stderr
    assert "retires" in r.stderr


def test_bad_config_refuses_to_start(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes:\n  - name: r\n    service: missing\n")
    r = run_cli("run", "-c", str(bad), timeout=10)
    assert r.returncode == 2
    assert f"{bad}:" in r.stderr and "missing" in r.stderr
