"""The cluster state through one node's admin API and `grapevine ctl`: objects
created, read, replaced and deleted take effect in the proxy; every invalid
change is refused with a 400 naming the field and changes nothing; answers
come only once a change is saved, in order on a pipelined connection; the
admin token guards the writes; ctl apply/delete/status print what happened."""

import json
import re
import signal
import subprocess
import textwrap
import time

import requests

from gvtest import Echo, Node, binary, run_cli, wait_until

def service(echo, **extra):
    return {"targets": [{"address": echo.address}], **extra}


def route(path, svc="s", **extra):
    return {"match": {"paths": [path]}, "service": svc, **extra}


def proxied_by(node, path, echo_name):
    """True once node's proxy sends path to the echo called echo_name."""
    r = node.get(path, timeout=2)
    return r.status_code == 200 and r.json().get("name") == echo_name


def digest(node):
    return node.admin_get("/config").json()["digest"]


def ctl(node, *args, token=None, input=None):
    """`grapevine ctl` against node; input (text) goes to its stdin."""
    argv = ["ctl", "--admin", f"127.0.0.1:{node.admin_port}"]
    argv += ["--token", token] if token else []
    if input is None:
        return run_cli(*argv, *args)
    return subprocess.run([binary(), *argv, *args], input=input, capture_output=True, text=True,
                          timeout=30)


# ------------------------------------------------------------ admin API ----


def test_objects_through_the_admin_api_drive_the_proxy():
    echo = Echo("e1")
    node = Node("")
    assert node.get("/users").status_code == 404

    r = node.admin_put("/config/services/s", json=service(echo, retries=1))
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["name"] == "s" and stored["retries"] == 1
    assert stored["balancer"] == "round_robin"  # defaults filled in
    r = node.admin_put("/config/routes/users", json=route("/users"))
    assert r.status_code == 200, r.text
    assert r.json()["match"]["paths"] == ["/users"] and r.json()["service"] == "s"
    wait_until(lambda: proxied_by(node, "/users/7", "e1"), 5, "the proxy to route /users")

    # Reading back: one object, one kind, the whole state.
    assert node.admin_get("/config/services/s").json() == stored
    assert [o["name"] for o in node.admin_get("/config/routes").json()] == ["users"]
    assert node.admin_get("/config/consumers").json() == []
    whole = node.admin_get("/config").json()
    st = node.admin_get("/status").json()
    assert whole["digest"] == st["config_digest"] and whole["version"] == st["config_version"]
    assert whole["version"] > 0 and [s["name"] for s in whole["services"]] == ["s"]
    assert f"grapevine_config_version {st['config_version']}" in node.metrics()

    # Absent objects and unknown kinds.
    r = node.admin_get("/config/routes/nope")
    assert r.status_code == 404 and "nope" in r.json()["error"]
    assert node.admin_get("/config/widgets").status_code == 404
    assert node.admin_put("/config/widgets/x", json={}).status_code == 404

    # Putting the same object again changes nothing.
    before = digest(node)
    assert node.admin_put("/config/routes/users", json=route("/users")).status_code == 200
    assert digest(node) == before

    # Plugins: the body is the plugin's config, the name its name.
    r = node.admin_put("/config/plugins/request_id", json={"header": "X-Req"})
    stored = {"header": "X-Req", "pass_through": True, "echo": True}  # defaults spelled out
    assert r.status_code == 200 and r.json() == stored
    assert node.admin_get("/config").json()["plugins"] == [{"request_id": stored}]

    # Delete: 204 without a body, the proxy stops routing, a second delete 404s.
    r = node.admin_delete("/config/routes/users")
    assert r.status_code == 204 and r.content == b""
    wait_until(lambda: node.get("/users").status_code == 404, 5, "/users to stop routing")
    assert node.admin_get("/config/routes/users").status_code == 404
    r = node.admin_delete("/config/routes/users")
    assert r.status_code == 404 and "error" in r.json()


def test_put_config_replaces_the_whole_state():
    echo = Echo("e1")
    node = Node(f"""
        services:
          - name: s
            targets: [{{address: {echo.address}}}]
        routes:
          - name: old
            match: {{paths: [/old]}}
            service: s
        """)
    state = {
        "services": [{"name": "s", **service(echo)}],
        "routes": [{"name": "new", **route("/new")}],
    }
    r = node.admin_put("/config", json=state)
    assert r.status_code == 200, r.text
    changes = r.json()
    assert changes["created"] == ["routes/new"] and changes["deleted"] == ["routes/old"]
    assert changes["digest"] == digest(node)
    wait_until(lambda: proxied_by(node, "/new", "e1"), 5, "/new to route")
    assert node.get("/old").status_code == 404
    # Again: nothing to do.
    r = node.admin_put("/config", json=state)
    assert r.status_code == 200
    assert r.json()["created"] == r.json()["updated"] == r.json()["deleted"] == []


def invalid_changes(echo):
    """(method, path, body, the path the 400 must name). A body that is
    bytes is sent as is."""
    big = {"targets": [{"address": f"127.0.0.1:{p}"} for p in range(10000, 12500)]}
    assert len(json.dumps(big)) > 56 * 1024
    return [
        ("PUT", "/config/services/t", b'{"targets": [', ""),
        ("PUT", "/config/services/t", b'["not", "an", "object"]', ""),
        ("PUT", "/config/services/t", b"", ""),
        ("PUT", "/config/services/t", service(echo, retries="x"), "retries"),
        ("PUT", "/config/services/t", service(echo, retires=2), "retires"),
        ("PUT", "/config/routes/r2", route("/r2", svc="nope"), "service"),
        ("PUT", "/config/routes/r2",
         {"match": {"paths": ["/a(["], "path_type": "regex"}, "service": "s"}, "match.paths[0]"),
        ("PUT", "/config/routes/r2",
         route("/r2", plugins=[{"ip_restriction": {"allow": ["10.0.0.0/99"]}}]),
         "plugins[0].ip_restriction.allow[0]"),
        ("PUT", "/config/services/t", big, ""),
        ("PUT", "/config/services/t", {"name": "u", **service(echo)}, "name"),
        ("PUT", "/config/plugins/no_such_plugin", {}, "no_such_plugin"),
        ("DELETE", "/config/services/s", None, "routes[r].service"),
        ("PUT", "/config", {"routes": [{"name": "x", **route("/x", svc="nope")}]},
         "routes[0].service"),
        ("PUT", "/config", {"services": [], "bogus": []}, "bogus"),
    ]


def test_invalid_changes_get_400_with_a_path_and_change_nothing():
    echo = Echo("e1")
    node = Node(f"""
        services:
          - name: s
            targets: [{{address: {echo.address}}}]
        routes:
          - name: r
            match: {{paths: [/]}}
            service: s
        """)
    before = node.admin_get("/config").json()
    for method, path, body, where in invalid_changes(echo):
        kw = {"data": body} if isinstance(body, bytes) else {"json": body}
        r = requests.request(method, node.admin_url(path), timeout=10,
                             **(kw if body is not None else {}))
        what = f"{method} {path} {str(body)[:80]}"
        assert r.status_code == 400, (what, r.status_code, r.text)
        err = r.json()
        assert err["error"], what
        if where:
            assert where in err["path"], (what, err)
        else:
            assert err["path"] == "", (what, err)
        assert node.admin_get("/config").json() == before, what
    r = node.admin_put("/config/services/t", data=b'{"targets": [')
    assert "line 1" in r.json()["error"]  # the parse error says where
    assert proxied_by(node, "/", "e1")


def test_answers_come_in_order_on_a_pipelined_connection():
    echo = Echo("e1")
    node = Node("")

    def req(method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: admin\r\n"
        if body is not None:
            head += f"Content-Length: {len(data)}\r\n"
        return head.encode() + b"\r\n" + data

    batch = (req("PUT", "/config/services/s", service(echo))
             + req("PUT", "/config/routes/p", route("/p"))
             + req("GET", "/config/routes/p")
             + req("DELETE", "/config/routes/p")
             + req("GET", "/config/routes/p")
             + req("PUT", "/config/routes/p", route("/p", svc="nope")))
    for chunk in (len(batch), 7):  # all at once, then a few bytes at a time
        with node.admin_raw() as conn:
            for i in range(0, len(batch), chunk):
                conn.send(batch[i:i + chunk])
            got = [conn.read_response() for _ in range(6)]
        assert [r.status for r in got] == [200, 200, 200, 204, 404, 400]
        assert got[2].json()["name"] == "p"
    # Clients that hang up before their answer: the node carries on (and its
    # clean exit at teardown is checked).
    for i in range(30):
        with node.admin_raw() as conn:
            conn.send(req("PUT", f"/config/routes/gone{i}", route(f"/gone{i}"))
                      + req("GET", "/health"))
    wait_until(lambda: len(node.admin_get("/config/routes").json()) == 30, 5,
               "every change of the clients that hung up")


def test_idle_admin_connection_does_not_hold_up_sigterm():
    node = Node("", node_extra="idle_timeout: 1h")
    with node.admin_raw() as conn:
        conn.send(b"GET /health HTTP/1.1\r\nHost: admin\r\n\r\n")
        assert conn.read_response().status == 200
        # keep-alive connection still open: the stop must not wait for it
        # (it would, until idle_timeout: 1 h here, or the 30 s drain cap)
        assert node.stop(timeout=20) == 0
        assert not node.problems, node.problems
        assert conn.closed_by_peer(5)


def test_admin_token_guards_the_config_api(tmp_path):
    token_file = tmp_path / "admin.token"
    token_file.write_text("s3cret\n")
    echo = Echo("e1")
    node = Node("", node_extra=f"admin_token_file: {token_file}", start=False)
    node.start(ready=False)

    def health_ok():
        return node.admin_get("/health", headers=auth).status_code == 200

    auth = {"Authorization": "Bearer s3cret"}
    wait_until(health_ok, 15, "the node with a token to answer /health")
    assert node.admin_get("/config").status_code == 401
    assert node.admin_get("/config", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = node.admin_put("/config/services/s", json=service(echo))
    assert r.status_code == 401
    assert node.admin_get("/config/services/s", headers=auth).status_code == 404
    assert node.admin_put("/config/services/s", json=service(echo), headers=auth).status_code == 200
    assert node.admin_delete("/config/services/s").status_code == 401
    assert node.admin_get("/config/services/s", headers=auth).status_code == 200

    r = ctl(node, "get", "services")
    assert r.returncode == 1 and "answered 401" in r.stderr
    r = ctl(node, "get", "services", token="s3cret")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["name"] == "s"
    r = ctl(node, "delete", "service", "s", token="s3cret")
    assert r.returncode == 0 and r.stdout == "services/s deleted\n"


# ------------------------------------------------------------------ ctl ----


def test_ctl_apply_delete_and_status(tmp_path):
    echo = Echo("e1")
    node = Node("")
    state = tmp_path / "state.yaml"
    state.write_text(textwrap.dedent(f"""\
        node:
          name: not-applied
        services:
          - name: users
            targets: [{{address: {echo.address}}}]
            health_check: {{path: /healthz, interval: 2s, timeout: 1s}}
        consumers:
          - name: alice
            key_auth: [key-abc]
        plugins:
          - request_id: {{header: X-Request-Id}}
        routes:
          - name: users-api
            match: {{paths: [/users]}}
            service: users
        """))
    r = ctl(node, "apply", str(state))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["services/users created", "consumers/alice created",
                                     "plugins/request_id created", "routes/users-api created"]
    assert "node:" in r.stderr  # said that it is ignored
    wait_until(lambda: proxied_by(node, "/users", "e1"), 5, "/users to route")

    r = ctl(node, "apply", "-f", str(state))
    assert r.returncode == 0, r.stderr
    assert all(ln.endswith(" unchanged") for ln in r.stdout.splitlines()), r.stdout
    assert len(r.stdout.splitlines()) == 4

    state.write_text(state.read_text().replace("interval: 2s", "interval: 3s"))
    r = ctl(node, "apply", str(state))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "services/users configured"
    assert r.stdout.splitlines()[1:] == ["consumers/alice unchanged",
                                         "plugins/request_id unchanged",
                                         "routes/users-api unchanged"]
    assert node.admin_get("/config/services/users").json()["health_check"]["interval"] == "3s"

    # One object with a kind (singular accepted), from stdin as JSON too.
    one = tmp_path / "one.yaml"
    one.write_text("kind: route\nname: orders\nmatch: {paths: [/orders]}\nservice: users\n")
    r = ctl(node, "apply", str(one))
    assert (r.returncode, r.stdout) == (0, "routes/orders created\n"), r.stderr
    r = ctl(node, "apply", "-", input=json.dumps(
        {"kind": "consumers", "name": "bob", "key_auth": ["key-b"]}))
    assert (r.returncode, r.stdout) == (0, "consumers/bob created\n"), r.stderr
    assert node.admin_get("/config/routes/orders").json()["service"] == "users"

    # A refused object stops the run; the ones before it stay applied.
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes:\n"
                   "  - {name: first, match: {paths: [/first]}, service: users}\n"
                   "  - {name: broken, match: {paths: [/broken]}, service: nope}\n"
                   "  - {name: never, match: {paths: [/never]}, service: users}\n")
    r = ctl(node, "apply", str(bad))
    assert r.returncode == 1
    assert r.stdout == "routes/first created\n"
    assert 'error: routes[broken].service: no service named "nope"' in r.stderr
    assert node.admin_get("/config/routes/first").status_code == 200
    assert node.admin_get("/config/routes/never").status_code == 404
    r = ctl(node, "apply", "-", input="routes: [\n")
    assert r.returncode == 1 and "<stdin>:" in r.stderr

    # delete
    r = ctl(node, "delete", "routes", "orders")
    assert (r.returncode, r.stdout) == (0, "routes/orders deleted\n")
    r = ctl(node, "delete", "routes", "orders")
    assert r.returncode == 1 and "404" in r.stderr
    r = ctl(node, "delete", "service", "users")  # users-api and first use it
    assert r.returncode == 1 and r.stderr.startswith("error: routes[")
    r = ctl(node, "get", "route", "users-api")
    assert r.returncode == 0 and json.loads(r.stdout)["service"] == "users"

    # status: this node, then the members table with config version and digest
    st = node.admin_get("/status").json()
    r = ctl(node, "status")
    assert r.returncode == 0, r.stderr
    assert st["config_digest"][:12] in r.stdout.split("\n\n")[0]
    table = r.stdout.split("\n\n")[1].splitlines()
    assert table[0].split() == ["NAME", "STATE", "CONFIG_VERSION", "CONFIG_DIGEST"]
    # the version as the UTC time of the write it stands for (a hybrid logical clock)
    v = st["config_version"]
    when = time.strftime("%m-%dT%H:%M:%S", time.gmtime(((v >> 12) + 1735689600000) // 1000))
    row = table[1].split()
    assert row[:2] == [node.name, "alive"] and row[3] == st["config_digest"][:12], table
    assert row[2] == "file" if v == 0 else row[2].startswith(when), (row, when)
    r = ctl(node, "status", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["config_digest"] == st["config_digest"]
    # --watch with nothing changing: one table, then exit 0 at --timeout
    r = ctl(node, "status", "--watch", "--interval", "20", "--timeout", "0.3")
    assert r.returncode == 0, r.stderr
    # one stamp line (the time since start, +0.000s or a ms more under ASan)
    stamps = re.findall(r"^\+(\d+\.\d{3})s$", r.stdout, flags=re.M)
    assert len(stamps) == 1 and float(stamps[0]) < 0.3, r.stdout
    assert r.stdout.count("s\nNAME") == 1, r.stdout


def test_ctl_status_watch_marks_members_that_differ(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPEVINE_TEST_FAULTS", "1")
    echo = Echo("e1")
    a = Node("", name="gw1")
    b = Node("", name="gw2", args=["--join", a.gossip])

    def alive():
        return sorted(m["name"] for m in a.admin_get("/cluster/members").json()
                      if m["state"] == "alive")
    wait_until(lambda: alive() == ["gw1", "gw2"], 10, "gw1 to see gw2 alive")
    # A change on gw1 that gw2 cannot get: gw2's digest, as gw1 knows it,
    # is not gw1's any more.
    assert a.admin_post("/debug/block", json={"peers": [b.gossip]}).status_code == 200
    assert b.admin_post("/debug/block", json={"peers": [a.gossip]}).status_code == 200
    assert a.admin_put("/config/services/only-a", json=service(echo)).status_code == 200

    def rows(table):
        return {ln.split()[0]: ln for ln in table.splitlines()
                if ln.split() and ln.split()[0] in ("gw1", "gw2")}

    r = ctl(a, "status")
    assert r.returncode == 0, r.stderr
    got = rows(r.stdout.split("\n\n")[1])
    assert got["gw2"].endswith(" *") and not got["gw1"].endswith("*"), r.stdout
    assert "1 of 2 members" in r.stdout

    out = tmp_path / "watch.out"
    with open(out, "w") as f:
        watch = subprocess.Popen([binary(), "ctl", "--admin", f"127.0.0.1:{a.admin_port}",
                                  "status", "--watch", "--interval", "50", "--timeout", "60"],
                                 stdout=f, stderr=subprocess.STDOUT, text=True)
    try:
        def tables():  # [(timestamp line, table text)] printed so far
            parts = re.split(r"^(\+\d+\.\d{3}s)$", out.read_text(), flags=re.M)
            return list(zip(parts[1::2], parts[2::2]))

        wait_until(lambda: tables(), 10, "the first table")
        # The first table comes at once (its stamp is the time since start).
        assert float(tables()[0][0][1:-1]) < 1.0 and rows(tables()[0][1])["gw2"].endswith(" *")
        for n in (a, b):
            assert n.admin_post("/debug/block", json={"peers": []}).status_code == 200
        wait_until(lambda: "*" not in tables()[-1][1] and "gw2" in rows(tables()[-1][1]), 15,
                   "a table where gw2 has gw1's digest")
        watch.send_signal(signal.SIGINT)
        assert watch.wait(10) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
