#!/usr/bin/env python3
"""mesh_scale.py - what the gossip mesh costs and how fast it moves as it
grows (issue 17): N real `grapevine run` nodes on loopback, one process each,
all joining through the first.

For each N (default 10, 50, 100; --quick: 10 only) it prints:
  - time to all-alive: from the first spawn until every node counts N alive
    (and, in brackets, until every process answered its admin API: on one
    busy machine starting N processes is most of it);
  - config spread: C service PUTs made on random nodes, and for each node
    that applied one, the delay its own log line reports ("config: applied
    services/X from nY, D ms after it was made"): p50/p99/max over every
    (node, change), and the p50/max of the time the last node took;
  - CPU (% of one core) and RSS per idle node, gossip messages and payload
    bytes sent per node per second (from /metrics), over an idle window that
    starts --settle seconds (35) after all-alive, once the early push-pulls
    of a start are over;
  - detection: a SIGKILLed node is seen dead by every survivor after T
    (from the survivors' own "X alive -> dead" log lines): median and max;
    and false deaths: any other node declared dead during the run, counted
    by the phase it fell in (start, idle, changes, objects: the load of
    --objects on every node and the join; detection);
and, once (on the smallest N; --objects 0 skips it), the join time of a new node into the cluster
holding --objects objects (default 10,000): from its spawn until it serves
the cluster's config digest.

Draws spread time against N as a PNG (--plot FILE, default
docs/img/mesh-spread.png; --no-plot). Bounded: every wait has a deadline,
the whole run stops after --max-minutes, and every process it started is
stopped (SIGTERM, then SIGKILL) on the way out.

Usage: tests/bench/mesh_scale.py [--bin PATH] [--sizes 10,50,100] [--quick]
                                 [--changes 20] [--objects 10000] [--idle 10]
                                 [--settle 35]
                                 [--plot FILE | --no-plot] [--max-minutes 20]
                                 [--keep]
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = int(os.environ.get("MESH_BASE_PORT", "23000"))
APPLIED = re.compile(r"config: applied services/(spread-\d+) from \S+, (\d+) ms after it was made")
DEAD = re.compile(r"^(\S+) \w+\s+cluster: (\S+) \(\S+\) \w+ -> dead")
DEADLINE = [0.0]


def log(msg):
    print(f"mesh_scale: {msg}", file=sys.stderr, flush=True)


def check_deadline():
    if time.monotonic() > DEADLINE[0]:
        raise SystemExit("mesh_scale: out of time (--max-minutes)")


def wait_for(pred, timeout, what, every=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        check_deadline()
        if pred():
            return True
        time.sleep(every)
    raise SystemExit(f"mesh_scale: timed out after {timeout:.0f} s waiting for {what}")


def http(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def get_json(url):
    try:
        return json.loads(http("GET", url, timeout=5)[1])
    except (OSError, ValueError):
        return None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


class Node:
    def __init__(self, mesh, i, name):
        self.name = name
        port = BASE + 3 * i
        self.listen, self.admin, self.gossip = port, port + 1, port + 2
        self.dir = mesh.dir / name
        self.dir.mkdir()
        self.logfile = self.dir / "node.log"
        seed = f"\n  join: [127.0.0.1:{BASE + 2}]" if i else ""
        cfg = self.dir / "node.yaml"
        cfg.write_text(f"""node:
  name: {name}
  listen: 127.0.0.1:{self.listen}
  admin: 127.0.0.1:{self.admin}
  gossip: 127.0.0.1:{self.gossip}{seed}
  workers: 1
  access_log: false
  data_dir: {self.dir / 'data'}
""")
        self.argv = [mesh.binary, "run", "-c", str(cfg)]
        self.p = None

    def start(self):
        out = open(self.logfile, "w")
        self.p = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        out.close()

    def url(self, path):
        return f"http://127.0.0.1:{self.admin}{path}"

    def status(self):
        return get_json(self.url("/status"))

    def stop(self, sig=signal.SIGTERM):
        if self.p is not None and self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
                self.p.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def cpu_ticks(self):
        try:
            f = open(f"/proc/{self.p.pid}/stat").read().rsplit(")", 1)[1].split()
            return int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            return 0

    def rss_kb(self):
        try:
            for line in open(f"/proc/{self.p.pid}/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def gossip_out(self):
        """(messages, bytes) sent so far, from /metrics."""
        try:
            text = http("GET", self.url("/metrics"), timeout=5)[1].decode()
        except OSError:
            return 0, 0
        msgs = sum(int(float(ln.rsplit(" ", 1)[1])) for ln in text.splitlines()
                   if ln.startswith("grapevine_gossip_messages_total") and
                   'direction="out"' in ln)
        byts = sum(int(float(ln.rsplit(" ", 1)[1])) for ln in text.splitlines()
                   if ln.startswith('grapevine_gossip_bytes_total{direction="out"}'))
        return msgs, byts


class Mesh:
    def __init__(self, binary, n):
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix=f"gv-mesh-{n}."))
        self.nodes = [Node(self, i, f"n{i}") for i in range(n)]
        self.extra = []

    def pool(self, fn, nodes):
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            return list(ex.map(fn, nodes))

    def close(self, keep=False):
        for node in self.nodes + self.extra:
            node.stop()
        if keep:
            log(f"logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def port_busy(port):
    with socket.socket() as sk:
        sk.settimeout(0.2)
        return sk.connect_ex(("127.0.0.1", port)) == 0


def check_exited(nodes):
    for nd in nodes:
        if nd.p is not None and nd.p.poll() is not None:
            tail = "\n".join(nd.log_text().splitlines()[-15:])
            raise SystemExit(f"mesh_scale: {nd.name} exited ({nd.p.returncode}):\n{tail}")


def start_all(mesh):
    """Seconds from the first spawn until every node counts them all alive."""
    n = len(mesh.nodes)
    busy = [p for nd in mesh.nodes for p in (nd.listen, nd.admin, nd.gossip) if port_busy(p)]
    if busy:
        raise SystemExit(f"mesh_scale: ports {busy[:5]} are taken: set MESH_BASE_PORT")
    t0 = time.monotonic()
    mesh.nodes[0].start()
    wait_for(lambda: mesh.nodes[0].status() is not None, 30, "n0's admin API")
    for node in mesh.nodes[1:]:
        node.start()
    pending = set(range(n))

    def ready():
        check_exited(mesh.nodes)
        oks = mesh.pool(lambda i: mesh.nodes[i].status() is not None, sorted(pending))
        for i, ok in zip(sorted(pending), oks):
            if ok:
                pending.discard(i)
        return not pending
    wait_for(ready, 60 + n, f"all {n} nodes' admin APIs", every=0.1)
    mesh.ready_s = time.monotonic() - t0
    pending = set(range(n))

    def done():
        check_exited(mesh.nodes)
        oks = mesh.pool(lambda i: (mesh.nodes[i].status() or {}).get("members", {})
                        .get("alive") == n, sorted(pending))
        for i, ok in zip(sorted(pending), oks):
            if ok:
                pending.discard(i)
        return not pending
    last_log = [time.monotonic()]

    def done_logged():
        ok = done()
        if not ok and time.monotonic() - last_log[0] > 5:
            last_log[0] = time.monotonic()
            counts = mesh.pool(lambda i: (mesh.nodes[i].status() or {}).get("members"),
                               sorted(pending)[:5])
            log(f"{len(pending)} nodes do not count {n} alive yet, e.g. "
                f"{[(mesh.nodes[i].name, c) for i, c in zip(sorted(pending)[:5], counts)]}")
        return ok
    wait_for(done_logged, 60 + n, f"all {n} nodes to count {n} alive", every=0.1)
    return time.monotonic() - t0


def idle_costs(mesh, seconds):
    hz = os.sysconf("SC_CLK_TCK")
    nodes = mesh.nodes
    g0 = mesh.pool(Node.gossip_out, nodes)
    c0 = [nd.cpu_ticks() for nd in nodes]
    t0 = time.monotonic()
    time.sleep(seconds)
    c1 = [nd.cpu_ticks() for nd in nodes]
    dt = time.monotonic() - t0
    g1 = mesh.pool(Node.gossip_out, nodes)
    n = len(nodes)
    return {
        "cpu_pct": 100 * sum(b - a for a, b in zip(c0, c1)) / hz / dt / n,
        "rss_mb": statistics.mean(nd.rss_kb() for nd in nodes) / 1024,
        "msgs_s": sum(b[0] - a[0] for a, b in zip(g0, g1)) / dt / n,
        "bytes_s": sum(b[1] - a[1] for a, b in zip(g0, g1)) / dt / n,
    }


def spread(mesh, changes):
    """Per-node delays of C changes, from the nodes' own log lines."""
    n = len(mesh.nodes)
    names = [f"spread-{k}" for k in range(changes)]
    for name in names:
        origin = random.choice(mesh.nodes)
        http("PUT", origin.url(f"/config/services/{name}"),
             {"targets": [{"address": "127.0.0.1:9"}]})
        time.sleep(0.3)
    seen = {}

    def complete():
        seen.clear()
        for node in mesh.nodes:
            for m in APPLIED.finditer(node.log_text()):
                seen.setdefault(m.group(1), {})[node.name] = int(m.group(2))
        return all(len(seen.get(nm, {})) >= n - 1 for nm in names)
    wait_for(complete, 60, f"{changes} changes to be applied on all {n} nodes", every=0.5)
    delays = [d for nm in names for d in seen[nm].values()]
    last = [max(seen[nm].values()) for nm in names]
    return {"p50": pct(delays, 50), "p99": pct(delays, 99), "max": max(delays),
            "last_p50": pct(last, 50), "last_max": max(last)}


def objects_state(count):
    routes = [{"name": f"r{i}", "match": {"paths": [f"/r{i}"], "path_type": "exact"},
               "service": "bulk"} for i in range(count - 1)]
    return {"services": [{"name": "bulk", "targets": [{"address": "127.0.0.1:9"}]}],
            "routes": routes}


def join_time(mesh, count):
    """Seconds from a new node's spawn until it serves the cluster's digest,
    the cluster holding count objects."""
    seed = mesh.nodes[0]
    body = objects_state(count)
    current = json.loads(http("GET", seed.url("/config"), timeout=60)[1])
    for kind in ("services", "routes", "consumers", "plugins"):
        body.setdefault(kind, [])
    body["services"] += [s for s in current.get("services", [])
                         if s.get("name", "").startswith("spread-")]
    def applies():
        return [((st or {}).get("config_state") or {}).get("remote_applies", 0)
                for st in mesh.pool(Node.status, mesh.nodes[1:])]
    before = applies()
    t_put = time.monotonic()
    http("PUT", seed.url("/config"), body, timeout=300)
    digest = seed.status()["config_digest"]

    def converged():
        sts = mesh.pool(Node.status, mesh.nodes)
        return all(st and st.get("config_digest") == digest for st in sts)
    wait_for(converged, 300, f"{count} objects on all {len(mesh.nodes)} nodes", every=0.5)
    spent = [b - a for a, b in zip(before, applies())]
    cfg = [(st or {}).get("config_state") or {} for st in mesh.pool(Node.status, mesh.nodes[1:])]
    held = [c.get("apply_loop_max_ms", 0) for c in cfg]
    off = sum(c.get("applies_off_loop", 0) for c in cfg)
    log(f"objects: {count} on all {len(mesh.nodes)} nodes {time.monotonic() - t_put:.1f} s after "
        f"the PUT; applies per node: median {statistics.median(spent):.0f}, max {max(spent)} "
        f"({off} of all built off the loop); the longest any apply held a node's loop: "
        f"median {statistics.median(held):.0f} ms, max {max(held)} ms")
    joiner = Node(mesh, len(mesh.nodes) + 1, "joiner")
    mesh.extra.append(joiner)
    t0 = time.monotonic()
    joiner.start()
    wait_for(lambda: (joiner.status() or {}).get("config_digest") == digest, 120,
             "the joiner to serve the cluster's digest", every=0.02)
    took = time.monotonic() - t0
    push = (seed.status().get("config_state") or {}).get("push", {})
    log(f"join: {took:.2f} s; seed's streams: {push}")
    return took


def log_time(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def deaths(node):
    """(member, unix time) of every "-> dead" line in node's log."""
    return [(m.group(2), log_time(m.group(1)))
            for m in map(DEAD.match, node.log_text().splitlines()) if m]


def detection(mesh):
    victim = mesh.nodes[-1]
    survivors = [nd for nd in mesh.nodes[:-1]] + mesh.extra
    t_kill = time.time()
    victim.stop(signal.SIGKILL)
    seen = {}

    def all_seen():
        for nd in survivors:
            if nd.name not in seen:
                hits = [t for who, t in deaths(nd) if who == victim.name and t >= t_kill - 1]
                if hits:
                    seen[nd.name] = min(hits) - t_kill
        return len(seen) == len(survivors)
    wait_for(all_seen, 180, f"{len(survivors)} survivors to see {victim.name} dead", every=0.5)
    return {"median": statistics.median(seen.values()), "max": max(seen.values())}


def false_deaths(mesh, victim, marks):
    """Deaths of any node but victim, by the phase of the run they fell in
    (marks: (phase, unix time) in order): {phase: count}."""
    by = {}
    for nd in mesh.nodes + mesh.extra:
        for who, t in deaths(nd):
            if who == victim:
                continue
            phase = marks[0][0]
            for name, since in marks:
                if t >= since:
                    phase = name
            by[phase] = by.get(phase, 0) + 1
    return by


def run_size(binary, n, a, with_join):
    mesh = Mesh(binary, n)
    row = {"n": n}
    marks = [("start", time.time())]
    try:
        log(f"N={n}: starting")
        row["alive_s"] = start_all(mesh)
        marks.append(("idle", time.time()))
        row["ready_s"] = mesh.ready_s
        log(f"N={n}: all alive after {row['alive_s']:.2f} s (all {n} processes answering after "
            f"{row['ready_s']:.2f} s); settling {a.settle} s, then idle for {a.idle} s")
        time.sleep(a.settle)
        row.update(idle_costs(mesh, a.idle))
        log(f"N={n}: {a.changes} changes")
        marks.append(("changes", time.time()))
        row["spread"] = spread(mesh, a.changes)
        marks.append(("objects", time.time()))
        row["join_s"] = join_time(mesh, a.objects) if with_join and a.objects else None
        log(f"N={n}: SIGKILL {mesh.nodes[-1].name}")
        marks.append(("detection", time.time()))
        row["detect"] = detection(mesh)
        by = false_deaths(mesh, mesh.nodes[-1].name, marks)
        row["false_deaths"] = sum(by.values())
        if by:
            log(f"N={n}: false deaths by phase: "
                + ", ".join(f"{k} {v}" for k, v in by.items()))
        row["load"] = os.getloadavg()[0]
    finally:
        mesh.close(a.keep)
    return row


def report(rows):
    print(f"\n{'N':>4} {'alive (ready)':>13} {'spread p50/p99/max':>20} {'last node p50/max':>18} "
          f"{'detect med/max':>15} {'false':>5} {'CPU/node':>9} {'RSS/node':>9} "
          f"{'msgs/s':>7} {'bytes/s':>8} {'load':>5}")
    for r in rows:
        s, d = r["spread"], r["detect"]
        print(f"{r['n']:>4} {r['alive_s']:>5.1f} ({r['ready_s']:.1f}) s {s['p50']:>6}/{s['p99']}/{s['max']} ms"
              f"{'':>3} {s['last_p50']:>8}/{s['last_max']} ms {d['median']:>6.1f}/{d['max']:.1f} s"
              f" {r['false_deaths']:>5} {r['cpu_pct']:>7.2f} % {r['rss_mb']:>6.1f} MB"
              f" {r['msgs_s']:>7.1f} {r['bytes_s']:>8.0f} {r['load']:>5.2f}")
    for r in rows:
        if r["join_s"] is not None:
            print(f"\njoin into a cluster of {r['n']} nodes holding the objects: "
                  f"{r['join_s']:.2f} s (target < 2 s)")


def plot(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot (scripts/setup.sh installs it)")
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    ns = [r["n"] for r in rows]
    for key, label in (("p50", "p50"), ("p99", "p99"), ("max", "max")):
        ax.plot(ns, [r["spread"][key] for r in rows], marker="o", label=f"spread {label}")
    ax.set_xlabel("nodes (one process each, one machine)")
    ax.set_ylabel("ms from the write to a node applying it")
    ax.set_ylim(bottom=0)
    ax.set_title("grapevine: config spread against cluster size")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    log(f"plot written to {path}")


def build_release():
    build = ROOT / "build-release"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "-j", "2", "--target", "grapevine"],
                   check=True, stdout=subprocess.DEVNULL)
    return str(build / "grapevine")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("GRAPEVINE_BIN"))
    ap.add_argument("--sizes", default="10,50,100")
    ap.add_argument("--quick", action="store_true", help="N = 10 only")
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--objects", type=int, default=10000)
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--settle", type=float, default=35,
                    help="seconds between all-alive and the idle window (the push-pulls a "
                         "start makes early are over after about 32 s)")
    ap.add_argument("--plot", default=str(ROOT / "docs" / "img" / "mesh-spread.png"))
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--max-minutes", type=float, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the nodes' logs and data")
    a = ap.parse_args()
    if a.quick:
        a.sizes = "10"
    DEADLINE[0] = time.monotonic() + a.max_minutes * 60
    binary = a.bin or build_release()
    sizes = [int(x) for x in a.sizes.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    rows = [run_size(binary, n, a, with_join=(n == min(sizes))) for n in sizes]
    report(rows)
    if not a.no_plot and len(rows) > 1:
        plot(rows, a.plot)


if __name__ == "__main__":
    main()
