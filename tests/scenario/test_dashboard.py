"""The admin dashboard (GET / of the admin address) and its event stream
(GET /events, server-sent events).

- without a browser: the page and its files are served from the binary
  without the token, everything else wants it; /events sends the current
  members, config, targets and stats at once, then a change made on another
  node; event clients are bounded; a node with open streams still stops;
- in headless Chromium (skipped when chromium, chromedriver or selenium are
  missing): against 3 nodes with an admin token, the page asks for the token,
  then lists 3 alive members with equal digests; a PUT on another node
  appears in the changes without a reload; a killed target turns unhealthy
  and a killed node dead; no console errors. A screenshot goes to
  tests/scenario/artifacts/dashboard.png.
"""

import json
import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from gvtest import Echo, Node, scaled, wait_until

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TOKEN = "dash-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config(echo):
    return f"""
services:
  - name: web
    targets: [{{address: {echo.address}}}]
    health_check: {{path: /healthz, interval: 500ms, timeout: 300ms, healthy: 2, unhealthy: 2}}
routes:
  - name: all
    match: {{paths: [/]}}
    service: web
    plugins:
      - rate_limit: {{limit: 100, window: 1s, key: ip, scope: cluster}}
"""


def route(name):
    return {"name": name, "match": {"paths": [f"/{name}"]}, "service": "web"}


def token_node(tmp_path, echo, name="gw1", join=None):
    token_file = tmp_path / f"{name}.token"
    token_file.write_text(TOKEN + "\n")
    args = ["--join", join] if join else []
    node = Node(config(echo), name=name, node_extra=f"admin_token_file: {token_file}",
                args=args, start=False)
    node.start(ready=False)
    wait_until(lambda: node.admin_get("/health", headers=AUTH).status_code == 200,
               scaled(15), f"{name} to answer /health")
    return node


class Events:
    """A raw /events client: reads events as they come."""

    def __init__(self, node, headers=None):
        self.sock = socket.create_connection(("127.0.0.1", node.admin_port), timeout=scaled(10))
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET /events HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode()

    def _until(self, sep):
        while sep not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("event stream closed")
            self.buf += data
        part, self.buf = self.buf.split(sep, 1)
        return part

    def next_event(self):
        """The next event as (name, data) from the chunked stream."""
        while True:
            text = self._dechunked()
            if "\n\n" in text:
                block, rest = text.split("\n\n", 1)
                self.pending = rest
                name, data = None, ""
                for line in block.split("\n"):
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data += line[6:]
                if name:
                    return name, json.loads(data)
            self._read_chunk()

    pending = ""

    def _dechunked(self):
        return self.pending

    def _read_chunk(self):
        size = int(self._until(b"\r\n"), 16)
        if size == 0:
            raise EOFError("event stream ended")
        while len(self.buf) < size + 2:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("event stream closed")
            self.buf += data
        self.pending += self.buf[:size].decode()
        self.buf = self.buf[size + 2:]

    def wait_for(self, pred, what):
        """Reads events until pred(name, data) holds (the socket's timeout
        bounds each read)."""
        for _ in range(10000):
            name, data = self.next_event()
            if pred(name, data):
                return data
        raise AssertionError(f"no event: {what}")

    def close(self):
        self.sock.close()


def test_files_events_and_limits(tmp_path):
    echo = Echo("e1")
    gw1 = token_node(tmp_path, echo)
    gw2 = token_node(tmp_path, echo, name="gw2", join=gw1.gossip)

    # the page and its files need no token; the API does, unknown paths too
    r = gw1.admin_get("/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert 'src="/dashboard.js"' in r.text
    for path, ctype in (("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")):
        r = gw1.admin_get(path)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(ctype), path
    assert gw1.admin_get("/events").status_code == 401
    assert gw1.admin_get("/nowhere").status_code == 401
    assert gw1.admin_get("/cluster/changes").status_code == 401

    ev = Events(gw1, AUTH)
    assert ev.status == 200 and "text/event-stream" in ev.head
    first = {}
    while len(first) < 4:
        name, data = ev.next_event()
        first.setdefault(name, data)
    assert set(first) == {"members", "config", "backends", "stats"}
    assert first["backends"][0]["service"] == "web"
    assert first["stats"]["node"] == "gw1"
    ev.wait_for(lambda n, d: n == "members" and
                sorted(m["name"] for m in d if m["state"] == "alive") == ["gw1", "gw2"],
                "both members alive")

    # a change made on gw2 reaches gw1's stream, with gw2 as its origin
    assert gw2.admin_put("/config/routes/new1", json=route("new1"),
                         headers=AUTH).status_code in (200, 201)
    change = ev.wait_for(lambda n, d: n == "config" and
                         any(c["name"] == "new1" for c in d["changes"]), "the change on gw1")
    c = next(c for c in change["changes"] if c["name"] == "new1")
    assert c["kind"] == "routes" and c["origin"] == "gw2" and not c["deleted"]
    assert change["changes"][0]["name"] == "new1"  # newest first
    # how late the peer's change was applied here: a gauge, and in /status
    st = gw1.admin_get("/status", headers=AUTH).json()["config_state"]
    assert st["last_apply_delay_ms"] >= 0
    m = re.search(r"^grapevine_config_apply_delay_seconds (\S+)$",
                  gw1.admin_get("/metrics", headers=AUTH).text, flags=re.M)
    assert m and float(m.group(1)) == pytest.approx(st["last_apply_delay_ms"] / 1000, abs=0.002)
    # peers' changes are applied in batches: at least one apply, never more
    # than the changes applied (counter and /status agree)
    assert 1 <= st["remote_applies"] <= st["applied_remote"]
    assert st["last_apply_ms"] >= 0
    m = re.search(r"^grapevine_config_remote_applies_total (\d+)$",
                  gw1.admin_get("/metrics", headers=AUTH).text, flags=re.M)
    assert m and int(m.group(1)) >= st["remote_applies"]
    changes = gw1.admin_get("/cluster/changes", headers=AUTH).json()
    assert changes[0]["name"] == "new1" and changes[0]["at"].endswith("Z")
    # the routes of the states built since: each version compiled once,
    # taken compiled after; and freed memory given back after a publish
    st = gw1.admin_get("/status", headers=AUTH).json()["config_state"]
    assert st["routes_compiled"] >= 1 and st["routes_reused"] >= 0
    trims = st["memory_trims"]
    assert gw1.admin_put("/config/routes/new2", json=route("new2"),
                         headers=AUTH).status_code in (200, 201)
    wait_until(lambda: gw1.admin_get("/status", headers=AUTH).json()["config_state"]
               ["memory_trims"] > trims, 30, "gw1 to give freed memory back after a change")

    # the cluster-scope rate limit's busiest keys, with this node's share
    for _ in range(5):
        assert gw1.get("/x").status_code == 200

    def keys():
        return gw1.admin_get("/cluster/ratelimit", headers=AUTH).json()
    wait_until(lambda: keys(), scaled(10), "the rate-limit key to show")
    k = keys()[0]
    assert len(k["key"]) == 16 and k["demand"] > 0 and 0 < k["share"] <= 1, k

    # at most 8 streams (half of admin_max_connections at most): the 9th is a 503
    more = [Events(gw1, AUTH) for _ in range(7)]
    assert all(e.status == 200 for e in more)
    extra = Events(gw1, AUTH)
    assert extra.status == 503
    extra.close()
    for e in more:
        e.close()
    # a closed client frees its place once the node notices (its next write)
    def room():
        e = Events(gw1, AUTH)
        e.close()
        return e.status == 200
    wait_until(room, scaled(15), "a stream place to free up after clients left")

    # open streams do not keep the node from stopping
    assert gw1.stop(timeout=scaled(20)) == 0
    with pytest.raises(EOFError):
        for _ in range(100):
            ev.next_event()
    ev.close()


# ------------------------------------------------------------- chromium ----


def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup.sh)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (scripts/setup.sh)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def rows(drv, table):
    return drv.execute_script(
        "return [...document.querySelectorAll('#' + arguments[0] + ' tbody tr')]"
        ".map(r => Object.assign({}, r.dataset, {cls: r.className, text: r.innerText}))", table)


def severe(drv):
    return [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def test_dashboard_in_chromium(tmp_path):
    drv = browser()
    try:
        run_dashboard(drv, tmp_path)
    finally:
        drv.quit()


def run_dashboard(drv, tmp_path):
    from selenium.webdriver.common.by import By

    echo = Echo("e1")
    gw1 = token_node(tmp_path, echo)
    gw2 = token_node(tmp_path, echo, name="gw2", join=gw1.gossip)
    gw3 = token_node(tmp_path, echo, name="gw3", join=gw1.gossip)
    timeout = scaled(30)

    drv.get(gw1.admin_url("/"))
    # no token yet: the page asks for one (its 401 is the expected console error)
    wait_until(lambda: drv.find_element(By.ID, "token-form").is_displayed(), timeout,
               "the page to ask for the admin token")
    severe(drv)  # drains the log: the expected 401s
    drv.find_element(By.ID, "token-input").send_keys(TOKEN)
    drv.find_element(By.CSS_SELECTOR, "#token-form button").click()
    assert drv.execute_script("return sessionStorage.getItem('gvToken')") == TOKEN

    def three_alive_same_digest():
        rs = rows(drv, "members")
        return (len(rs) == 3 and all(r["state"] == "alive" for r in rs)
                and not any("skew" in r["cls"] for r in rs))
    wait_until(three_alive_same_digest, timeout, "3 alive members with equal digests on the page")
    # the console may log the first 401 only after the form is up (after the
    # first drain): the only error allowed this far is that 401
    early = [e for e in severe(drv) if "status of 401" not in e["message"]]
    assert early == [], early
    wait_until(lambda: any(r.get("target") == echo.address and r["healthy"] == "true"
                           for r in rows(drv, "backends")), timeout, "the target, healthy")
    wait_until(lambda: any("100" in r["text"] for r in rows(drv, "limits")), timeout,
               "the route's rate limit")

    # a change on gw2 shows up live on gw1's page, no reload
    marker = drv.execute_script("window.__noReload = 1; return 1")
    assert gw2.admin_put("/config/routes/live1", json=route("live1"),
                         headers=AUTH).status_code in (200, 201)
    wait_until(lambda: any(r.get("object") == "routes/live1" and "gw2" in r["text"]
                           for r in rows(drv, "changes")), timeout,
               "the change made on gw2 in gw1's change list")
    assert drv.execute_script("return window.__noReload") == marker

    for _ in range(5):
        assert gw1.get("/x").status_code == 200
    wait_until(lambda: rows(drv, "rl-keys"), timeout, "the busiest rate-limit key on the page")
    ARTIFACTS.mkdir(exist_ok=True)
    drv.save_screenshot(str(ARTIFACTS / "dashboard.png"))

    echo.kill()
    wait_until(lambda: any(r.get("target") == echo.address and r["healthy"] == "false"
                           for r in rows(drv, "backends")), timeout,
               "the killed target to turn unhealthy on the page")
    gw3.kill()
    wait_until(lambda: any(r.get("name") == "gw3" and r["state"] == "dead"
                           for r in rows(drv, "members")), scaled(60),
               "the killed gw3 to turn dead on the page")
    drv.save_screenshot(str(ARTIFACTS / "dashboard-failures.png"))
    drv.set_window_size(390, 844)  # a phone
    drv.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))
    errors = severe(drv)
    assert errors == [], errors
    assert os.path.getsize(ARTIFACTS / "dashboard.png") > 0
