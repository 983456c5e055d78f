"""`grapevine ctl` against a running node: tables and JSON from the admin API,
a clear error and exit 1 when the node answers an error or is unreachable."""

import json

from gvtest import Echo, Node, free_port, run_cli


def test_ctl_status_backends_and_get():
    echo = Echo("e1")
    node = Node(f"""
        services:
          - name: s
            targets: [{{address: {echo.address}}}]
        routes:
          - name: all
            match: {{paths: [/]}}
            service: s
        """)
    admin = f"127.0.0.1:{node.admin_port}"
    r = run_cli("ctl", "--admin", admin, "status", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["node"] == node.name and len(st["config_digest"]) == 64

    r = run_cli("ctl", "--admin", admin, "backends")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["SERVICE", "TARGET", "HEALTHY"]
    assert lines[1].split()[:3] == ["s", echo.address, "yes"]

    r = run_cli("ctl", "--admin", admin, "get")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["services"][0]["name"] == "s" and cfg["digest"] == st["config_digest"]


def test_ctl_errors():
    r = run_cli("ctl", "--admin", f"127.0.0.1:{free_port()}", "status")
    assert r.returncode == 1 and "cannot reach the admin API" in r.stderr
    r = run_cli("ctl", "frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr
    node = Node("")
    r = run_cli("ctl", "--admin", f"127.0.0.1:{node.admin_port}", "get", "nosuchkind")
    assert r.returncode == 1 and "answered 404" in r.stderr
