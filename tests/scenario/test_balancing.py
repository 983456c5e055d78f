"""Balancing behaviour seen from outside: sticky sessions, consistent hashing,
weights, active health checks and passive ejection."""

import collections
import re

import requests

from gvtest import Echo, HOST, Node, free_port, wait_until


def node_for(echos, extra="", targets=None):
    """One worker: balancer state is per worker (as in nginx), so exact
    counts are only defined for a single worker."""
    targets = targets or ", ".join(f"{{address: {e.address}}}" for e in echos)
    return Node(workers=1, config=f"""
        services:
          - name: s
            targets: [{targets}]
            {extra}
        routes:
          - name: all
            match: {{paths: [/]}}
            service: s
        """)


def names(node, n, **kw):
    return collections.Counter(node.get("/", **kw).json()["name"] for _ in range(n))


def test_weighted_round_robin_follows_weights():
    a, b = Echo("a"), Echo("b")
    node = node_for([a, b], targets=f"{{address: {a.address}, weight: 1}}, "
                                    f"{{address: {b.address}, weight: 3}}")
    c = names(node, 100)
    assert c == {"a": 25, "b": 75}, c


def test_sticky_cookie_pins_a_client_to_one_target():
    echos = [Echo(f"e{i}") for i in range(3)]
    node = node_for(echos, "sticky: {cookie: GV_STICKY, ttl: 1h}")
    s = requests.Session()
    first = s.get(node.url("/"), timeout=5)
    cookie = first.cookies.get("GV_STICKY")
    assert cookie, first.headers
    assert echos[0].address not in cookie  # the cookie never shows addresses
    pinned = first.json()["name"]
    for _ in range(20):
        assert s.get(node.url("/"), timeout=5).json()["name"] == pinned
    # A forged cookie is ignored: the client gets a fresh, valid one.
    forged = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    r = requests.get(node.url("/"), cookies={"GV_STICKY": forged}, timeout=5)
    assert r.status_code == 200 and r.cookies.get("GV_STICKY") not in (None, forged)


def test_sticky_target_down_moves_the_client():
    a, b = Echo("a"), Echo("b")
    node = node_for([a, b], "sticky: {cookie: GV_STICKY, ttl: 1h}\n"
                            "            health_check: {path: /healthz, interval: 200ms, "
                            "timeout: 150ms, healthy: 1, unhealthy: 1}")
    s = requests.Session()
    pinned = s.get(node.url("/"), timeout=5).json()["name"]
    (a if pinned == "a" else b).fail()
    other = "b" if pinned == "a" else "a"
    wait_until(lambda: s.get(node.url("/"), timeout=5).json()["name"] == other, 5,
               "the sticky client to move off the failed target")


def test_consistent_hash_on_header_is_stable():
    echos = [Echo(f"e{i}") for i in range(4)]
    node = node_for(echos, "balancer: consistent_hash\n            hash_on: header:X-User")
    seen = {}
    for user in range(40):
        got = {node.get("/", headers={"X-User": f"u{user}"}).json()["name"] for _ in range(3)}
        assert len(got) == 1, (user, got)
        seen[user] = got.pop()
    assert len(set(seen.values())) >= 3, seen  # keys spread over the targets


def test_least_connections_prefers_the_idle_target():
    a, b = Echo("a"), Echo("b")
    node = node_for([a, b], "balancer: least_connections")
    # Ten parallel slow requests spread 5/5, never 10/0.
    import concurrent.futures as cf
    with cf.ThreadPoolExecutor(10) as ex:
        got = list(ex.map(lambda _: node.get("/delay/300").json()["name"], range(10)))
    c = collections.Counter(got)
    assert c["a"] == 5 and c["b"] == 5, c


def test_active_health_check_ejects_and_restores():
    a, b = Echo("a"), Echo("b")
    node = node_for([a, b], "health_check: {path: /healthz, interval: 200ms, timeout: 150ms, "
                            "healthy: 2, unhealthy: 2}")

    def target(addr):
        for t in node.admin_get("/backends").json()[0]["targets"]:
            if t["address"] == addr:
                return t

    wait_until(lambda: target(a.address)["reason"] == "", 5, "first health verdict")
    a.fail()
    wait_until(lambda: not target(a.address)["healthy"], 5, "a to be marked unhealthy")
    assert target(a.address)["reason"] == "health_check"
    assert names(node, 20) == {"b": 20}
    a.recover()
    wait_until(lambda: target(a.address)["healthy"], 5, "a to be healthy again")
    assert names(node, 20) == {"a": 10, "b": 10}
    text = node.admin_get("/metrics").text
    assert f'grapevine_upstream_healthy{{service="s",target="{a.address}"}} 1' in text


def test_passive_ejection_after_consecutive_failures():
    a = Echo("a")
    dead = f"{HOST}:{free_port()}"
    node = node_for([a], "passive: {failures: 2, eject_for: 30s}\n            retries: 1",
                    targets=f"{{address: {a.address}}}, {{address: {dead}}}")
    # Every request succeeds (a retry covers the dead target) ...
    for _ in range(6):
        assert node.get("/").status_code == 200
    # ... and after two failures the dead target is ejected.
    t = [t for t in node.admin_get("/backends").json()[0]["targets"] if t["address"] == dead][0]
    assert t["healthy"] is False and t["reason"] == "passive", t
    # the ejection is logged once (not per failed request), and the retries counted
    log = node.stderr_path.read_text()
    assert log.count(f"target {dead} ejected for 30000 ms after 2 failed requests") == 1, log
    m = re.search(r"^grapevine_upstream_retries_total (\d+)$", node.admin_get("/metrics").text,
                  flags=re.M)
    assert m and int(m.group(1)) >= 2, m


def test_sticky_cookie_holds_across_nodes_sharing_the_cluster_key(tmp_path):
    import base64
    import os

    echos = [Echo(f"e{i}") for i in range(3)]
    key = tmp_path / "cluster.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    targets = ", ".join(f"{{address: {e.address}}}" for e in echos)
    cfg = f"""
        services:
          - name: s
            targets: [{targets}]
            sticky: {{cookie: GV_STICKY, ttl: 1h}}
        routes:
          - name: all
            match: {{paths: [/]}}
            service: s
        """
    a = Node(name="gw1", config=cfg, node_extra=f"cluster_key_file: {key}")
    b = Node(name="gw2", config=cfg, node_extra=f"cluster_key_file: {key}")
    other = Node(name="gw3", config=cfg)  # no cluster key: its own signing key
    first = requests.get(a.url("/"), timeout=5)
    cookie = first.cookies.get("GV_STICKY")
    pinned = first.json()["name"]
    for _ in range(10):
        r = requests.get(b.url("/"), cookies={"GV_STICKY": cookie}, timeout=5)
        assert r.json()["name"] == pinned
        assert "GV_STICKY" not in r.cookies  # accepted, not re-issued
    r = requests.get(other.url("/"), cookies={"GV_STICKY": cookie}, timeout=5)
    assert r.cookies.get("GV_STICKY") not in (None, cookie)  # foreign signature: re-issued
