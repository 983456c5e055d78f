"""The shared health plane with real processes (docs/health-plane.md): three
nodes, three echo upstreams, load sent through every node.

- each target is probed by at most 2 nodes (probes counted on the echos), and
  /backends shows the same healthy/reason/checked_by on every node;
- an upstream killed: no GET fails (retries), every node stops routing to it
  within interval x unhealthy + 1 s, and it returns everywhere within
  interval x healthy + 1 s of coming back;
- an upstream whose /healthz fails while it still serves (no passive
  ejection can help): the nodes that do not probe it stop sending it traffic
  from the shared verdict alone, within the same bound;
- a gateway node killed: the survivors keep serving without a failed GET,
  take over its probes, and agree on /backends.
Run with -s to see the numbers."""

import threading
import time

import requests

from gvtest import Echo, Node, wait_until

INTERVAL = 0.5  # health_check.interval
HEALTHY = 2
UNHEALTHY = 2
DOWN_BOUND = INTERVAL * UNHEALTHY + 1.0
UP_BOUND = INTERVAL * HEALTHY + 1.0

CONFIG = """
services:
  - name: s
    targets: [TARGETS]
    health_check: {path: /healthz, interval: 500ms, timeout: 300ms, healthy: 2, unhealthy: 2}
    passive: {failures: 3, eject_for: 1s}
    retries: 2
routes:
  - name: all
    match: {paths: [/]}
    service: s
"""


class Load:
    """One client thread per node sending GETs; records every answer."""

    def __init__(self, nodes):
        self.nodes = list(nodes)
        self.active = {n.name for n in nodes}
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.log = []  # (node, start, echo name or None, status or error)
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                        for n in self.nodes]

    def _run(self, node):
        s = requests.Session()
        i = 0
        while not self.stop_flag.is_set():
            if node.name not in self.active:
                return
            i += 1
            t0 = time.monotonic()
            try:
                r = s.get(node.url(f"/load/{i}"), timeout=5)
                name = r.json().get("name") if r.status_code == 200 else None
                entry = (node.name, t0, name, r.status_code)
            except (requests.RequestException, ValueError) as e:
                entry = (node.name, t0, None, f"{type(e).__name__}: {e}")
            with self.lock:
                self.log.append(entry)
            self.stop_flag.wait(0.02)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def drop(self, node):
        """Stops sending through node (before it is killed) and waits for
        its thread, so no request is in flight to it."""
        self.active.discard(node.name)
        for t, n in zip(self.threads, self.nodes):
            if n is node:
                t.join(10)

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(10)

    def failures(self):
        with self.lock:
            return [e for e in self.log if e[3] != 200]

    def count(self):
        with self.lock:
            return len(self.log)

    def last_sent_to(self, echo_name, node_name):
        """Start time of the last request through node_name that echo_name
        answered (None if none)."""
        with self.lock:
            ts = [e[1] for e in self.log if e[0] == node_name and e[2] == echo_name]
        return max(ts) if ts else None


def view(node):
    """{address: (healthy, reason, checked_by)} from node's /backends."""
    return {b["address"]: (b["healthy"], b["reason"], tuple(b["checked_by"]))
            for b in node.backends()}


def all_agree(nodes, pred=lambda v: True):
    views = [view(n) for n in nodes]
    return all(v == views[0] for v in views) and pred(views[0])


def stats(echo):
    return requests.get(echo.url("/stats"), timeout=5).json()["healthz"]


def probe_rates(echos, intervals=8):
    """Health probes each echo gets per interval, over a window of
    `intervals` intervals (a measuring window, not a wait for a condition)."""
    before = {e.name: stats(e) for e in echos}
    t0 = time.monotonic()
    time.sleep(intervals * INTERVAL)
    k = (time.monotonic() - t0) / INTERVAL
    after = {e.name: stats(e) for e in echos}
    return {name: (after[name] - before[name], k) for name in before}


def check_probe_rates(rates, when):
    for name, (count, k) in sorted(rates.items()):
        print(f"  {when}: {name}: {count} probes in {k:.1f} intervals = "
              f"{count / k:.2f} per interval")
        # at most 2 probers, each once per interval (+1 each for the edges)
        assert count <= 2 * k + 2, (name, count, k)
        assert count >= 1, (name, count, k)  # someone does probe it


def wait_timed(pred, timeout, what):
    t0 = time.monotonic()
    wait_until(pred, timeout, what, interval=0.01, max_interval=0.02)
    return time.monotonic() - t0


def test_health_plane():
    echos = [Echo(f"e{i}") for i in (1, 2, 3)]
    e2, e3 = echos[1], echos[2]
    cfg = CONFIG.replace("TARGETS", ", ".join(f"{{address: {e.address}}}" for e in echos))
    gw1 = Node(cfg, name="gw1", workers=1)
    nodes = [gw1] + [Node(cfg, name=f"gw{i}", workers=1, args=["--join", gw1.gossip])
                     for i in (2, 3)]
    names = {n.name for n in nodes}

    def members_alive(ns, want):
        return all({m["name"] for m in n.admin_get("/cluster/members").json()
                    if m["state"] == "alive"} == want for n in ns)

    wait_until(lambda: members_alive(nodes, names), 10, "every node to see every other alive")

    # Every target: a verdict, two checkers, the same view on every node.
    def settled(v):
        return all(h and r == "" and len(by) == 2 and set(by) <= names
                   for h, r, by in v.values())

    wait_until(lambda: all_agree(nodes, settled), 10, "/backends to agree on every node")
    by_addr = {e.address: e.name for e in echos}
    checkers = {by_addr[a]: v[2] for a, v in view(gw1).items()}
    print("\nchecked_by: " + ", ".join(f"{k} {'+'.join(v)}" for k, v in sorted(checkers.items())))

    print("probe counts per target (3 nodes):")
    check_probe_rates(probe_rates(echos), "3 nodes")

    load = Load(nodes).start()
    wait_until(lambda: load.count() > 30, 10, "load to flow")

    # -- an upstream killed ------------------------------------------------
    e2.kill()
    out = wait_timed(lambda: all(not view(n)[e2.address][0] for n in nodes), 30,
                     "every node to stop routing to the killed e2")
    # Generous: a verdict broadcast lost on a loaded machine is repaired by
    # the next push-pull (every 30 s at 3 nodes); the time is printed below.
    verdict = wait_timed(lambda: all(view(n)[e2.address][1] == "health_check" for n in nodes),
                         45, "the active verdict on e2 to reach every node")
    verdict += out
    print(f"e2 killed: every node stopped routing to it after {out * 1000:.0f} ms, "
          f"active verdict everywhere after {verdict * 1000:.0f} ms "
          f"(target {DOWN_BOUND * 1000:.0f} ms)")
    e2.start()
    back = wait_timed(lambda: all(view(n)[e2.address][0] for n in nodes), 30,
                      "e2 to return on every node")
    print(f"e2 back: routed by every node again after {back * 1000:.0f} ms "
          f"(target {UP_BOUND * 1000:.0f} ms)")
    assert not load.failures(), load.failures()[:5]

    # -- /healthz fails while e3 still serves: only the shared verdict helps --
    t_fail = time.monotonic()
    e3.fail()
    out = wait_timed(lambda: all(not view(n)[e3.address][0] for n in nodes), 30,
                     "every node to stop routing to e3")
    # traffic: when each node last sent a request that e3 answered
    lasts = {n.name: max(0.0, (load.last_sent_to("e3", n.name) or t_fail) - t_fail)
             for n in nodes}
    stopped = max(lasts.values())
    print(f"e3 /healthz failing (checked by {'+'.join(checkers['e3'])}): unhealthy on every "
          f"node after {out * 1000:.0f} ms; last request sent to it: " +
          ", ".join(f"{k}{'' if k in checkers['e3'] else ' (not a checker)'} {v * 1000:.0f} ms"
                    for k, v in sorted(lasts.items())) + f" (target {DOWN_BOUND * 1000:.0f} ms)")
    # and none after, on any node, while it stays down
    n_before = load.count()
    wait_until(lambda: load.count() > n_before + 30, 10, "more load")
    assert all((load.last_sent_to("e3", n.name) or 0) - t_fail <= stopped + 0.001
               for n in nodes)
    e3.recover()
    back = wait_timed(lambda: all(view(n)[e3.address][0] for n in nodes), 30,
                      "e3 to return on every node")
    print(f"e3 recovered: routed by every node again after {back * 1000:.0f} ms "
          f"(target {UP_BOUND * 1000:.0f} ms)")

    # -- a gateway node killed ---------------------------------------------
    # the node that probes the most targets, so there is something to take over
    victim = max(nodes, key=lambda n: sum(n.name in by for by in checkers.values()))
    survivors = [n for n in nodes if n is not victim]
    load.drop(victim)
    victim.kill()
    want = {n.name for n in survivors}

    def taken_over(v):
        return all(set(by) == want and h for h, r, by in v.values())

    def declared_dead():
        return all(m["state"] in ("dead", "left")
                   for n in survivors for m in n.admin_get("/cluster/members").json()
                   if m["name"] == victim.name)

    dead = wait_timed(declared_dead, 30, f"the survivors to declare {victim.name} dead")
    took = dead + wait_timed(lambda: all_agree(survivors, taken_over), 30,
                             f"the survivors to take over {victim.name}'s probes")
    print(f"{victim.name} (checked {sum(victim.name in by for by in checkers.values())} "
          f"targets) killed: declared dead by both survivors after {dead * 1000:.0f} ms (SWIM "
          f"suspicion), its probes taken over and /backends equal after {took * 1000:.0f} ms")
    print("probe counts per target (2 survivors):")
    check_probe_rates(probe_rates(echos), "2 nodes")
    assert all_agree(survivors)
    load.finish()
    fails = load.failures()
    print(f"{len(load.log)} GETs through the nodes, {len(fails)} failed")
    assert not fails, fails[:5]
    texts = [n.metrics() for n in survivors]
    assert all('grapevine_health_reports_total{result="malformed"} 0' in t for t in texts)
    # a surviving checker of e2 reported its verdicts
    assert any('grapevine_health_reports_total{result="sent"} 0' not in t for t in texts)
