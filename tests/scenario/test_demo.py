"""scripts/demo.sh does what it claims: the README lists exactly what the demo
prints, and every printed command, run as a user would (bash, from the repo
root) against a running demo, shows what its comment says."""

import json
import os
import re
import signal
import subprocess

import pytest

from gvtest import REPO, binary, port_is_free, wait_until

DEMO = REPO / "scripts" / "demo.sh"


def banner(env=None):
    return subprocess.run([str(DEMO), "--banner"], check=True, capture_output=True, text=True,
                          env=env, timeout=30).stdout


def test_readme_lists_what_the_demo_prints():
    readme = (REPO / "README.md").read_text()
    m = re.search(r"<!-- demo-banner[^>]*-->\n```sh\n(.*?)```", readme, re.S)
    assert m, "README.md has no demo-banner block"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DEMO_") and k != "GRAPEVINE_BIN"}
    assert m.group(1) == banner(env)


def consecutive_free_ports(n, lo=20000, hi=30000):
    """A base port with n free ports above it, chosen at random so parallel
    runs do not collide."""
    import random
    for _ in range(200):
        base = random.randrange(lo, hi - n)
        if all(port_is_free(base + i) for i in range(n)):
            return base
    raise AssertionError("no run of free ports")


@pytest.fixture
def demo(tmp_path):
    ports = {
        "DEMO_PROXY_PORT": consecutive_free_ports(3),
        "DEMO_ADMIN_PORT": consecutive_free_ports(3),
        "DEMO_GOSSIP_PORT": consecutive_free_ports(3),
        "DEMO_ECHO1_PORT": consecutive_free_ports(1),
        "DEMO_ECHO2_PORT": consecutive_free_ports(1),
        "DEMO_ECHO3_PORT": consecutive_free_ports(1),
    }
    env = dict(os.environ, GRAPEVINE_BIN=binary(), GV_SKIP_SETUP="1",
               DEMO_DIR=str(tmp_path / "demo"), TMPDIR=str(tmp_path),
               **{k: str(v) for k, v in ports.items()})
    out = open(tmp_path / "demo.out", "w+")
    p = subprocess.Popen([str(DEMO)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        wait_until(lambda: "Ctrl-C stops everything" in (tmp_path / "demo.out").read_text()
                   or p.poll() is not None, 60, "the demo to be up")
        assert p.poll() is None, (tmp_path / "demo.out").read_text()
        yield p, env, tmp_path / "demo.out", ports
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        out.close()


def sh(cmd, env):
    return subprocess.run(["bash", "-c", cmd], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=30)


def test_every_command_the_demo_prints(demo):
    p, env, outfile, ports = demo
    printed = outfile.read_text()
    lines = banner(env).splitlines()
    for ln in lines:
        assert ln in printed, f"the running demo did not print: {ln}"
    cmds = [ln.split("  #")[0].rstrip() for ln in lines]
    assert len(cmds) == 17, "the banner changed: update the checks below"
    run = lambda i: sh(cmds[i], env)  # noqa: E731

    names = {json.loads(run(i).stdout)["name"] for i in (0, 0, 0, 1)}
    assert names <= {"echo-1", "echo-2", "echo-3"} and len(names) >= 2, names

    wait_until(lambda: run(2).stdout.count("alive") == 3, 20, "3 alive members on gw3")
    backends = json.loads(run(3).stdout)
    assert "127.0.0.1:%d" % ports["DEMO_ECHO1_PORT"] in json.dumps(backends)
    assert "grapevine_http_requests_total" in run(4).stdout
    assert run(5).stdout.startswith("HTTP/1.1 401")
    assert json.loads(run(6).stdout)["headers"]["x-consumer"] == "alice"

    assert run(7).stdout.strip() == "404"
    assert run(8).returncode == 0 and run(9).returncode == 0
    wait_until(lambda: '"name":"echo-3"' in run(10).stdout.replace(" ", ""), 10,
               "gw3 to serve the route made on gw1")
    def one_digest():
        rows = [ln.split() for ln in run(11).stdout.splitlines()]
        alive = [r for r in rows if len(r) == 4 and r[1] == "alive"]
        return len(alive) == 3 and len({r[3] for r in alive}) == 1
    wait_until(one_digest, 10, "one config digest on every node")

    assert run(12).returncode == 0
    echo1 = "127.0.0.1:%d" % ports["DEMO_ECHO1_PORT"]

    def echo1_healthy(admin_port):
        r = sh(f"curl -s localhost:{admin_port}/backends", env).stdout
        return [b["healthy"] for b in flatten(json.loads(r)) if b["address"] == echo1][0]
    for a in range(3):
        wait_until(lambda: not echo1_healthy(ports["DEMO_ADMIN_PORT"] + a), 20,
                   "echo-1 unhealthy on every node")
    assert run(13).returncode == 0
    for a in range(3):
        wait_until(lambda: echo1_healthy(ports["DEMO_ADMIN_PORT"] + a), 20,
                   "echo-1 healthy again on every node")

    r = run(14)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: "gw3 is down" in outfile.read_text(), 10, "the demo to report gw3 down")
    assert p.poll() is None, "the demo stopped when gw3 was killed"
    wait_until(lambda: re.search(r"gw3\s.*dead", run(15).stdout), 30, "gw1 to see gw3 dead")
    r = run(16)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: run(2).stdout.count("alive") == 3, 30, "gw3 back and alive")
    wait_until(lambda: '"name":"echo-3"' in run(10).stdout.replace(" ", ""), 10,
               "gw3 to serve /three again after its restart")
    wait_until(lambda: "gw3 is up again" in outfile.read_text(), 10, "the demo to report gw3 up")


def flatten(doc):
    from gvtest import flatten_backends
    return flatten_backends(doc)
