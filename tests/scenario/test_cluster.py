"""The gossip mesh with real processes on loopback: joining, failure
detection, restart, graceful leave, late seeds, and a healing partition.
Default (memberlist LAN) timings throughout."""

import time


from gvtest import Node, wait_until


def members(node):
    return {m["name"]: m for m in node.admin_get("/cluster/members").json()}


def states(node):
    return {name: m["state"] for name, m in members(node).items()}


def all_see(nodes, expected, timeout, what):
    def check():
        return all(states(n) == expected for n in nodes)
    wait_until(check, timeout, what)


def cluster(n=3, **kw):
    first = Node(name="gw1", **kw)
    nodes = [first]
    for i in range(2, n + 1):
        nodes.append(Node(name=f"gw{i}", args=["--join", first.gossip], **kw))
    return nodes


def test_three_nodes_join():
    t0 = time.monotonic()
    nodes = cluster()
    all_see(nodes, {"gw1": "alive", "gw2": "alive", "gw3": "alive"}, 30,
            "all three nodes to see three alive members")
    print(f"three alive everywhere {time.monotonic() - t0:.1f}s after starting gw1")
    st = nodes[0].admin_get("/status").json()
    assert st["members"]["alive"] == 3
    m = members(nodes[1])["gw3"]
    assert m["address"] == nodes[2].gossip and m["incarnation"] > 0
    assert m["config_digest"] == st["config_digest"]
    text = nodes[0].admin_get("/metrics").text
    assert 'grapevine_cluster_members{state="alive"} 3' in text
    assert 'grapevine_gossip_messages_total{type="ping",direction="out"}' in text


def test_killed_node_is_dead_then_alive_after_restart():
    nodes = cluster()
    all_see(nodes, {"gw1": "alive", "gw2": "alive", "gw3": "alive"}, 3, "join")
    # memberlist's suspicion timeout for N=3: 4 * max(1, log10(3)) * 1 s = 4 s,
    # after at most two probe rounds to notice (probe 1 s + timeout 500 ms).
    expected = 4.0 + 2 * 1.5
    nodes[2].kill()
    t0 = time.monotonic()
    wait_until(lambda: states(nodes[0]).get("gw3") == "dead" and
               states(nodes[1]).get("gw3") == "dead", 60,
               "gw1 and gw2 to declare the killed gw3 dead")
    took = time.monotonic() - t0
    print(f"killed gw3 dead everywhere after {took:.1f}s (expected about {expected:.0f}s)")
    nodes[2].start()
    t0 = time.monotonic()
    all_see(nodes, {"gw1": "alive", "gw2": "alive", "gw3": "alive"}, 2.0 + 1.0,
            "the restarted gw3 to be alive everywhere")
    print(f"restarted gw3 alive everywhere after {time.monotonic() - t0:.1f}s")


def test_sigterm_gives_left_not_dead():
    nodes = cluster()
    all_see(nodes, {"gw1": "alive", "gw2": "alive", "gw3": "alive"}, 3, "join")
    assert nodes[2].stop() == 0
    wait_until(lambda: states(nodes[0]).get("gw3") == "left" and
               states(nodes[1]).get("gw3") == "left", 5, "gw3 to be 'left' on both others")
    # ... and it stays left, never dead.
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:
        assert states(nodes[0]).get("gw3") in ("left", None)
        time.sleep(0.1)


def test_node_started_before_its_seeds_joins_later():
    seed = Node(name="gw1", start=False)
    late = Node(name="gw2", args=["--join", seed.gossip])
    assert states(late) == {"gw2": "alive"}  # serves alone meanwhile
    assert late.admin_get("/health").status_code == 200
    seed.start()
    all_see([seed, late], {"gw1": "alive", "gw2": "alive"}, 5, "the late seed to be joined")


def test_partition_heals(monkeypatch):
    monkeypatch.setenv("GRAPEVINE_TEST_FAULTS", "1")
    nodes = cluster()
    full = {"gw1": "alive", "gw2": "alive", "gw3": "alive"}
    all_see(nodes, full, 3, "join")
    a, b, c = nodes
    # 2|1: gw1 and gw2 drop everything from and to gw3, and gw3 the same.
    for n in (a, b):
        r = n.admin_post("/debug/block", json={"peers": [c.gossip]})
        assert r.status_code == 200, r.text
    r = c.admin_post("/debug/block", json={"peers": [a.gossip, b.gossip]})
    assert r.status_code == 200, r.text
    wait_until(lambda: states(a).get("gw3") == "dead" and states(c).get("gw1") == "dead", 15,
               "both sides of the partition to see the other as dead")
    for n in nodes:
        assert n.admin_post("/debug/block", json={"peers": []}).status_code == 200
    t0 = time.monotonic()
    all_see(nodes, full, 35, "the partition to heal to full membership")
    print(f"partition healed in {time.monotonic() - t0:.1f}s")


def test_fault_switch_is_off_by_default():
    n = Node(name="gw1")
    r = n.admin_post("/debug/block", json={"peers": ["127.0.0.1:1"]})
    assert r.status_code == 403
