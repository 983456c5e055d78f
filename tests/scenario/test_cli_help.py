"""The command line explains itself: --help on every command with its flags
and defaults, `validate` lists every error of a file, `ctl get -o yaml`
prints what `ctl apply -f` takes back, and a 401 says how to pass the
token."""

import yaml

from gvtest import Echo, Node, run_cli, wait_until


def test_help_lists_flags_and_defaults():
    r = run_cli("--help")
    assert r.returncode == 0 and "grapevine run" in r.stdout and "--help" in r.stdout
    r = run_cli("run", "--help")
    assert r.returncode == 0, r.stderr
    for flag, default in (("--listen", "0.0.0.0:8080"), ("--admin", "127.0.0.1:9901"),
                          ("--workers", "auto"), ("--log-level", "info")):
        block = r.stdout.split(flag, 1)[1].split("\n      --", 1)[0]
        assert f"(default {default})" in block, (flag, r.stdout)
    for flag in ("--config", "--join", "--gossip", "--data-dir", "--name"):
        assert flag in r.stdout
    r = run_cli("validate", "--help")
    assert r.returncode == 0 and "-c, --config FILE" in r.stdout
    r = run_cli("ctl", "status", "--help")
    assert r.returncode == 0 and "--interval MS" in r.stdout and "default 500" in r.stdout
    for cmd in ("get", "members", "backends", "apply", "delete", "keys"):
        r = run_cli("ctl", cmd, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"usage: grapevine ctl {cmd}"), cmd
    r = run_cli("run", "--bogus")
    assert r.returncode == 2 and "run --help" in r.stderr
    # unknown options and wrong arguments point at the right --help
    r = run_cli("ctl", "--bogus", "status")
    assert r.returncode == 2 and "grapevine ctl COMMAND --help" in r.stderr
    r = run_cli("ctl", "status", "--bogus")
    assert r.returncode == 2 and "grapevine ctl status --help" in r.stderr
    r = run_cli("ctl", "get", "a", "b", "c")
    assert r.returncode == 2 and "usage: grapevine ctl get" in r.stderr


def test_validate_lists_every_error(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("""node:
  listen: nope
bogus: 1
services:
  - name: web
    targets: [{address: "127.0.0.1:1"}]
  - name: bad
    targets: [{address: "x"}]
routes:
  - name: a
    match: {paths: [/a]}
    service: web
  - name: b
    match: {paths: [relative]}
    service: web
  - name: c
    match: {paths: [/c]}
    service: missing
""")
    r = run_cli("validate", "-c", str(f))
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith(str(f) + ":") and
              not ln.endswith(" errors")]
    wants = [(3, 'unknown key "bogus"'), (2, "node.listen"),
             (8, "services[1].targets[0].address"), (14, "routes[1].match.paths[0]"),
             (18, 'routes[2].service: no service named "missing"')]
    assert len(errors) == len(wants), r.stderr
    for (line, text), got in zip(wants, errors):
        assert got.startswith(f"{f}:{line}: ") and text in got, (line, text, got)
    assert r.stderr.rstrip().endswith(f"{f}: 5 errors")
    good = tmp_path / "good.yaml"
    good.write_text("services: []\n")
    r = run_cli("validate", "-c", str(good))
    assert r.returncode == 0 and "ok" in r.stdout


def test_get_yaml_round_trip_and_token_hint(tmp_path):
    token = tmp_path / "t"
    token.write_text("tok-1\n")
    echo = Echo("e1")
    node = Node(f"""
services:
  - name: "s"
    targets: [{{address: {echo.address}}}]
routes:
  - name: all
    match: {{paths: [/], headers: {{x-on: "yes"}}}}
    service: s
""", node_extra=f"admin_token_file: {token}", start=False)
    node.start(ready=False)
    admin = ["ctl", "--admin", f"127.0.0.1:{node.admin_port}"]
    wait_until(lambda: run_cli(*admin, "--token", "tok-1", "status").returncode == 0, 15,
               "the node to answer ctl")
    r = run_cli(*admin, "get")
    assert r.returncode == 1 and "answered 401" in r.stderr
    assert "--token TOKEN" in r.stderr and "GRAPEVINE_TOKEN" in r.stderr
    r = run_cli(*admin, "--token", "tok-1", "get", "-o", "yaml")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# digest: ")
    doc = yaml.safe_load(r.stdout)
    assert doc["routes"][0]["match"]["headers"] == {"x-on": "yes"}  # "yes" stays a string
    f = tmp_path / "state.yaml"
    f.write_text(r.stdout)
    r = run_cli(*admin, "--token", "tok-1", "apply", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert all(ln.endswith(" unchanged") for ln in r.stdout.splitlines()), r.stdout
    r = run_cli(*admin, "--token", "tok-1", "members", "-o", "yaml")
    assert r.returncode == 0 and yaml.safe_load(r.stdout)[0]["state"] == "alive"
    r = run_cli(*admin, "--token", "tok-1", "get", "-o", "xml")
    assert r.returncode == 2 and "json, yaml or table" in r.stderr


def test_diff_and_dry_run_change_nothing(tmp_path):
    echo = Echo("e1")
    node = Node(f"""
services:
  - name: web
    targets: [{{address: {echo.address}}}]
routes:
  - name: all
    match: {{paths: [/]}}
    service: web
""")
    admin = ["ctl", "--admin", f"127.0.0.1:{node.admin_port}"]
    f = tmp_path / "change.yaml"
    f.write_text(f"""
services:
  - name: web
    targets: [{{address: {echo.address}, weight: 3}}]
routes:
  - name: all
    match: {{paths: [/]}}
    service: web
  - name: new
    match: {{paths: [/new]}}
    service: web
""")
    before = node.admin_get("/config").json()
    r = run_cli(*admin, "diff", "-f", str(f))
    assert r.returncode == 1, r.stderr  # differences, as diff(1)
    lines = r.stdout.splitlines()
    assert "--- services/web (node)" in lines and "-    weight: 1" in lines
    assert "+    weight: 3" in lines
    assert "--- routes/new (node) absent" in lines and "+name: new" in lines
    assert not any(ln.startswith("--- routes/all") for ln in lines)  # unchanged: not shown
    r = run_cli(*admin, "apply", "--dry-run", "-f", str(f))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["services/web configured (dry run)",
                                     "routes/all unchanged (dry run)",
                                     "routes/new created (dry run)"]
    assert node.admin_get("/config").json() == before  # nothing changed
    r = run_cli(*admin, "apply", "-f", str(f))
    assert r.returncode == 0 and "routes/new created" in r.stdout, r.stderr
    r = run_cli(*admin, "diff", str(f))
    assert r.returncode == 0 and r.stdout == "", r.stdout
    # a refused object: exit 2, the file's line named, nothing applied
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes:\n  - name: x\n    match: {paths: [/x]}\n    service: nope\n")
    r = run_cli(*admin, "diff", str(bad))
    assert r.returncode == 2 and f"{bad}:4: " in r.stderr and "nope" in r.stderr, r.stderr
    r = run_cli(*admin, "apply", "--dry-run", str(bad))
    assert r.returncode == 1 and "nope" in r.stderr
    assert node.admin_get("/config/routes/x").status_code == 404
