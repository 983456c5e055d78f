"""rate_limit plugin: scope node (exact-ish), the 429 answer (JSON body,
Retry-After, RateLimit-*), scope cluster across three nodes (each enforces
its share of the cluster limit), and bounded memory under many distinct
keys. Design: docs/rate-limiting.md."""

import re
import socket
import threading
import time

import pytest
import requests

from gvtest import Echo, Node, sanitized, wait_until


def config(echo, plugin):
    return f"""
services:
  - name: s
    targets: [{{address: {echo.address}}}]
routes:
  - name: r
    match: {{paths: ["/"]}}
    service: s
    plugins:
      - rate_limit: {plugin}
"""


def decisions(node, result):
    m = re.search(r'grapevine_ratelimit_decisions_total\{route="r",result="%s"\} (\d+)' % result,
                  node.metrics())
    return int(m.group(1)) if m else 0


def rl_peers(node):
    m = re.search(r"^grapevine_ratelimit_cluster_peers (\d+)$", node.metrics(), re.M)
    return int(m.group(1)) if m else -1


def test_node_scope_429_headers_and_body():
    echo = Echo()
    node = Node(workers=2, config=config(echo, "{limit: 5, window: 10s, key: route, scope: node}"))
    s = requests.Session()
    codes = [s.get(node.url("/x"), timeout=5).status_code for _ in range(8)]
    assert codes == [200] * 5 + [429] * 3
    ok = s.get(node.url("/x"), timeout=5)
    assert ok.status_code == 429
    assert int(ok.headers["Retry-After"]) >= 1
    assert ok.headers["RateLimit-Limit"] == "5"
    assert ok.headers["RateLimit-Remaining"] == "0"
    assert int(ok.headers["RateLimit-Reset"]) >= 1
    body = ok.json()
    assert body["error"] == "rate limit exceeded" and len(body["request_id"]) > 0
    assert decisions(node, "allowed") == 5 and decisions(node, "limited") == 4


def test_node_scope_headers_on_success_and_global_override():
    echo = Echo()
    node = Node(workers=1, config=config(echo, "{limit: 3, window: 10s, key: 'header:X-Key', scope: node}")
                + "plugins:\n  - rate_limit: {limit: 1, window: 10s, key: route, scope: node}\n")
    r = requests.get(node.url("/"), headers={"X-Key": "a"}, timeout=5)
    assert r.status_code == 200
    assert r.headers["RateLimit-Limit"] == "3" and r.headers["RateLimit-Remaining"] == "2"
    # The route's rate_limit replaced the global one (limit 1 would deny now).
    assert requests.get(node.url("/"), headers={"X-Key": "a"}, timeout=5).status_code == 200
    assert requests.get(node.url("/"), headers={"X-Key": "b"}, timeout=5).status_code == 200


def test_cluster_scope_three_nodes_share_the_limit():
    """Steady load, uneven split: 3 nodes offered 60 req/s in all (30/20/10)
    against one cluster limit of 20/s. After the first two seconds (fresh
    buckets, first demand exchange) the cluster admits about 20 per second;
    scope node would admit 20 + 20 + 10 = 50."""
    echo = Echo()
    conf = config(echo, "{limit: 20, window: 1s, key: route, scope: cluster}")
    first = Node(name="gw1", workers=1, config=conf)
    nodes = [first] + [Node(name=f"gw{i}", workers=1, config=conf, args=["--join", first.gossip])
                       for i in (2, 3)]

    def three_alive():
        return all(sum(m["state"] == "alive" for m in n.admin_get("/cluster/members").json()) == 3
                   for n in nodes)
    wait_until(three_alive, 10, "three alive members everywhere")
    seconds = 6
    rates = (30, 20, 10)
    admitted = []  # times of admitted responses, relative to t0
    answers = []   # (node, second, status) of every response: said on a failure
    lock = threading.Lock()
    t0 = time.monotonic() + 0.2

    def load(i):
        s = requests.Session()
        for k in range(rates[i] * seconds):
            due = t0 + k / rates[i]
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the offered load, not awaiting a condition
            code = s.get(nodes[i].url("/"), timeout=5).status_code
            at = time.monotonic() - t0
            with lock:
                answers.append((i, int(at), code))
                if code == 200:
                    admitted.append(at)
    threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    per_second = [sum(1 for a in admitted if s <= a < s + 1) for s in range(seconds)]
    judged = sum(per_second[2:])
    print(f"cluster scope, limit 20/s, 60/s offered 30/20/10 over 3 nodes: admitted per second "
          f"{per_second}; seconds 2-{seconds - 1}: {judged} (target {20 * (seconds - 2)})")
    if not 0.8 * 20 * (seconds - 2) <= judged <= 1.25 * 20 * (seconds - 2):
        by = {}
        for i, sec, code in answers:
            by.setdefault((f"gw{i + 1}", sec), {}).setdefault(code, 0)
            by[(f"gw{i + 1}", sec)][code] += 1
        views = {n.name: (decisions(n, "allowed"), decisions(n, "limited"), rl_peers(n),
                          n.admin_get("/cluster/ratelimit").json()) for n in nodes}
        pytest.fail(f"admitted {judged} in seconds 2-{seconds - 1}, target "
                    f"{20 * (seconds - 2)} +-20 %; status codes by (node, second): {by}; "
                    f"per node (allowed, limited, rate-limit peers, /cluster/ratelimit): {views}")


def test_many_distinct_keys_memory_bounded():
    echo = Echo()
    node = Node(workers=1, config=config(echo, "{limit: 1, window: 60s, key: 'header:X-Key', scope: node}"))
    host, port = node.url("/").split("/")[2].split(":")

    def flood(start, count, batch=500):
        with socket.create_connection((host, int(port)), timeout=10) as c:
            for b in range(start, start + count, batch):
                reqs = b"".join(b"GET / HTTP/1.1\r\nHost: x\r\nX-Key: k%d\r\n\r\n" % i
                                for i in range(b, b + batch))
                c.sendall(reqs)
                got = b""
                while got.count(b"HTTP/1.1 ") < batch:
                    chunk = c.recv(1 << 20)
                    assert chunk, "connection closed"
                    got += chunk

    flood(0, 20000)
    rss_warm = node.rss_kb()
    flood(20000, 180000)
    rss_end = node.rss_kb()
    print(f"RSS after 20k keys {rss_warm} KiB, after 200k keys {rss_end} KiB")
    assert decisions(node, "allowed") == 200000
    if not sanitized():  # ASan's quarantine keeps freed memory: RSS says nothing there
        assert rss_end - rss_warm < 8 * 1024


def test_cluster_scope_sparse_rotating_idle_gap():
    """The issue-15 report: 5 per 10 s (a login or SMS limit), requests
    rotating over 3 nodes as fast as one client sends them, 8 at a time,
    then idle for longer than the window, then again. Each round admits 5
    (at most one more, within the documented bound), and a refusal never
    asks to wait longer than the window: no lock-out. A round that admitted
    one more leaves that token as debt (docs/rate-limiting.md: the long-run
    rate is exact), so the next round may admit 4. Whether all of the first
    5 pass depends on where the 100 ms ticks fall between the requests (a
    slow machine spreads them over several): a token held back on one node's
    allowance goes to a later request, and such a refusal, before 5 were
    admitted, says Retry-After: 1 (delayed, not lost)."""
    echo = Echo()
    conf = config(echo, "{limit: 5, window: 10s, key: route, scope: cluster}")
    first = Node(name="gw1", workers=2, config=conf)
    nodes = [first] + [Node(name=f"gw{i}", workers=2, config=conf, args=["--join", first.gossip])
                       for i in (2, 3)]
    wait_until(lambda: all(sum(m["state"] == "alive" for m in n.admin_get("/cluster/members").json())
                           == 3 for n in nodes), 10, "three alive members everywhere")
    wait_until(lambda: all(rl_peers(n) == 2 for n in nodes), 10,
               "every node to hear the other two's rate-limit counts")
    sessions = [requests.Session() for _ in nodes]
    before = 5
    for rnd in range(3):
        codes, retry = [], []
        for j in range(8):
            r = sessions[j % 3].get(nodes[j % 3].url("/"), timeout=5)
            codes.append(r.status_code)
            if r.status_code == 429:
                retry.append(int(r.headers["Retry-After"]))
        print(f"round {rnd}: {codes} Retry-After {retry}")
        admitted = codes.count(200)
        owed = max(0, before - 5)  # what the round before admitted beyond the limit
        assert set(codes) <= {200, 429} and 5 - owed <= admitted <= 6, (codes, before)
        assert all(1 <= s <= 10 for s in retry), retry
        early = [s for j, s in zip([j for j, c in enumerate(codes) if c == 429], retry)
                 if codes[:j].count(200) < 5 - owed]
        assert all(s == 1 for s in early), (codes, retry)
        before = admitted
        if rnd < 2:
            time.sleep(11)  # the idle gap longer than the window is the input here
