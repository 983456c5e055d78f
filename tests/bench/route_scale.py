#!/usr/bin/env python3
"""route_scale.py - what a request, a change and memory cost as the route
table grows (issue 17): one grapevine node (one worker, pinned to a core as
bench.sh does), wrk on the other core, `grapevine echo` upstreams.

For each table size N (10, 1,000, 10,000 routes: a third prefix, a third
exact, a third host routes, plus 100 regex routes), it measures:
  - requests/s for a request that hits a prefix route, an exact route, a
    host route and a regex route, each the last of its kind in the table,
    as ratios to the same request at N = 10 (target: >= 0.95 at 10,000);
  - RSS per route (RSS with N routes minus RSS with 10, over N - 10, each
    read once the node has given back what its last change freed);
  - the time to load the N routes with one PUT /config, and the latency of
    one route PUT with N routes present (median and max of 20; target
    < 50 ms at 10,000);
then requests/s through key_auth with 10,000 consumers against 1 (target
>= 0.95). Prints a table, and draws requests/s against routes as a PNG
(matplotlib) when --plot FILE is given. Memory per idle keep-alive
connection beside HAProxy and nginx is bench.sh's job (its idle test).

The rates are paired: each round starts a fresh node per size (all pinned
to the same core, only one under load at a time) and measures every size
one after the other (in turn forwards and backwards), so a ratio is taken
between runs seconds apart; the ratio printed is the median of the rounds'
ratios. A shared machine's speed drifts over minutes by more than the 5 %
the target allows, and one process can run 10-20 % faster or slower than
the next with the same table (seen with 1 and 10,000 consumers); runs far
apart in time, or one process per size, measure that, not the router.

Usage: tests/bench/route_scale.py [--bin PATH] [--sizes 10,1000,10000]
                                  [--duration S] [--rounds N] [--plot FILE]
                                  [--quick]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE = int(os.environ.get("BENCH_BASE_PORT", "19000"))
PROXY_CPU, LOAD_CPU = os.environ.get("PROXY_CPU", "0"), os.environ.get("LOAD_CPU", "1")
REGEX_ROUTES = 100
KINDS = ("prefix", "exact", "host", "regex")


def log(msg):
    print(f"route_scale: {msg}", file=sys.stderr, flush=True)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise SystemExit(f"route_scale: timed out waiting for {what}")


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def http(method, url, body=None, token=None, timeout=600):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


class Procs:
    def __init__(self):
        self.procs = []
        self.dir = Path(tempfile.mkdtemp(prefix="gv-route-scale."))

    def start(self, name, argv, cpu=None):
        if cpu is not None and shutil.which("taskset") and os.cpu_count() >= 2:
            argv = ["taskset", "-c", cpu] + argv
        out = open(self.dir / f"{name}.log", "w")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def close(self):
        for p in self.procs:
            self.stop(p)
        shutil.rmtree(self.dir, ignore_errors=True)


def routes(n):
    """n literal routes (a third each) and the regex routes; the last of
    each kind is what the requests hit."""
    out = []
    for i in range(n):
        k = i % 3
        m = ({"paths": [f"/p{i}/"]} if k == 0 else
             {"paths": [f"/e{i}"], "path_type": "exact"} if k == 1 else
             {"hosts": [f"h{i}.example.com"]})
        out.append({"name": f"r{i}", "match": m, "service": "s"})
    for i in range(REGEX_ROUTES):
        out.append({"name": f"x{i}", "service": "s",
                    "match": {"paths": [f"/re{i}/[a-z]+/[0-9]+"], "path_type": "regex"}})
    return out


def targets(n):
    """(path, host) of the request for each kind: the last route of it."""
    last = {k: max(i for i in range(n) if i % 3 == j) for j, k in enumerate(KINDS[:3])}
    return {
        "prefix": (f"/p{last['prefix']}/x", "bench"),
        "exact": (f"/e{last['exact']}", "bench"),
        "host": ("/anything", f"h{last['host']}.example.com"),
        "regex": (f"/re{REGEX_ROUTES - 1}/abc/123", "bench"),
    }


def node_config(work, listen, admin, gossip, echo_ports, extra=""):
    cfg = work / "node.yaml"
    cfg.write_text(f"""node:
  name: scale
  listen: 127.0.0.1:{listen}
  admin: 127.0.0.1:{admin}
  gossip: 127.0.0.1:{gossip}
  workers: 1
  access_log: false
  data_dir: {work / 'data'}
services:
  - name: s
    targets: [{', '.join(f'{{address: 127.0.0.1:{p}}}' for p in echo_ports)}]
{extra}""")
    return cfg


def wrk(port, path, host, duration, headers=()):
    hdrs = ["-H", f"Host: {host}"] + [a for h in headers for a in ("-H", h)]
    argv = ["wrk", "-t1", "-c64", f"-d{duration}s", *hdrs, f"http://127.0.0.1:{port}{path}"]
    if shutil.which("taskset") and os.cpu_count() >= 2:
        argv = ["taskset", "-c", LOAD_CPU] + argv
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60).stdout
    rps = 0.0
    non2xx = 0
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if "Non-2xx" in line:
            non2xx = int(line.split()[-1])
    if non2xx:
        raise SystemExit(f"route_scale: {non2xx} non-2xx answers for {host}{path}:\n{out}")
    return rps


class Node:
    def __init__(self, procs, binary, echo_ports, slot=0, extra=""):
        self.procs = procs
        self.work = Path(tempfile.mkdtemp(dir=procs.dir))
        base = BASE + 100 + 10 * slot
        self.port, self.admin, gossip = base, base + 1, base + 2
        cfg = node_config(self.work, self.port, self.admin, gossip, echo_ports, extra)
        self.p = procs.start(f"node{slot}", [binary, "run", "-c", str(cfg)], cpu=PROXY_CPU)
        wait_for(lambda: port_open(self.port) and port_open(self.admin), 30, "the node")

    def url(self, path):
        return f"http://127.0.0.1:{self.admin}{path}"

    def ready(self):
        try:
            return http("GET", self.url("/ready"))[0] == 200
        except OSError:
            return False

    def stop(self):
        self.procs.stop(self.p)
        shutil.rmtree(self.work, ignore_errors=True)


def trims(node):
    """How many times the node has given freed memory back (None: it does not say)."""
    st = json.loads(http("GET", node.url("/status"))[1])
    return st.get("config_state", {}).get("memory_trims")


def settle(node):
    """RSS is read once the node has given back what the last change freed
    (it does so within seconds of a publish: the next trim after the last
    PUT), as an idle node holding the routes would be."""
    seen = trims(node)
    if seen is None:
        return
    wait_for(lambda: trims(node) > seen, 30, "the node to give freed memory back")


def load_size(procs, binary, echo_ports, n, slot):
    """A node holding n routes (and the 20 PUT after them); its row without rates."""
    node = Node(procs, binary, echo_ports, slot)
    base_rss = rss_kb(node.p.pid)
    state = {"services": [{"name": "s", "targets": [{"address": f"127.0.0.1:{p}"}
                                                    for p in echo_ports]}],
             "routes": routes(n)}
    t0 = time.monotonic()
    http("PUT", node.url("/config"), state)
    load_s = time.monotonic() - t0
    wait_for(node.ready, 60, "the node to be ready")
    lat = []
    for j in range(20):
        t0 = time.monotonic()
        http("PUT", node.url(f"/config/routes/extra{j}"),
             {"match": {"paths": [f"/extra{j}"]}, "service": "s"})
        lat.append(time.monotonic() - t0)
    settle(node)
    row = {"n": n, "load_s": load_s, "put_ms": statistics.median(lat) * 1000,
           "put_max_ms": max(lat) * 1000, "rss_kb": rss_kb(node.p.pid), "base_rss_kb": base_rss}
    return node, row


def paired_rates(nodes, requests, rounds, duration, start=0):
    """Requests/s of each node (its request from requests[i]) over rounds,
    the nodes measured one after the other in each round (forwards, then
    backwards, from round number start), each run after a 1 s warm-up.
    [[rps per round] per node]."""
    rates = [[] for _ in nodes]
    for rnd in range(start, start + rounds):
        order = list(range(len(nodes)))
        if rnd % 2:
            order.reverse()
        for i in order:
            path, host, headers = requests[i]
            wrk(nodes[i].port, path, host, 1, headers)
            rates[i].append(wrk(nodes[i].port, path, host, duration, headers))
    return rates


def measure_sizes(procs, binary, echo_ports, sizes, rounds, duration):
    """Per round, fresh nodes for every size, each request kind measured on
    all of them in turn; rows with the medians over rounds."""
    runs = []  # per round: (rows, {kind: [rps per size]})
    for rnd in range(rounds):
        log(f"round {rnd + 1} of {rounds}: fresh nodes with {sizes} routes")
        loaded = [load_size(procs, binary, echo_ports, n, slot) for slot, n in enumerate(sizes)]
        nodes = [node for node, _ in loaded]
        rates = {}
        for kind in KINDS:
            reqs = [targets(n)[kind] + ((),) for n in sizes]
            got = paired_rates(nodes, reqs, 1, duration, start=rnd)
            rates[kind] = [statistics.median(r) for r in got]
        for node in nodes:
            node.stop()
        runs.append(([row for _, row in loaded], rates))
    rows = []
    for i, n in enumerate(sizes):
        row = dict(runs[0][0][i])
        for key in ("load_s", "put_ms", "put_max_ms", "rss_kb", "base_rss_kb"):
            row[key] = statistics.median(rr[i][key] for rr, _ in runs)
        row["rps"] = {k: statistics.median(r[k][i] for _, r in runs) for k in KINDS}
        row["ratios"] = {k: [r[k][i] / r[k][0] for _, r in runs] for k in KINDS}
        row["ratio"] = {k: statistics.median(row["ratios"][k]) for k in KINDS}
        rows.append(row)
    return rows


def consumers_node(procs, binary, echo_ports, count, slot):
    consumers = [{"name": f"c{i}", "key_auth": [f"key-{i:06d}"]} for i in range(count)]
    node = Node(procs, binary, echo_ports, slot)
    state = {"services": [{"name": "s", "targets": [{"address": f"127.0.0.1:{p}"}
                                                    for p in echo_ports]}],
             "routes": [{"name": "api", "match": {"paths": ["/"]}, "service": "s",
                         "plugins": [{"key_auth": {}}]}],
             "consumers": consumers}
    http("PUT", node.url("/config"), state)
    wait_for(node.ready, 60, "the node to be ready")
    return node


def measure_consumers(procs, binary, echo_ports, counts, rounds, duration):
    """[(count, median r/s, ratio to the first count)] through key_auth,
    each count's last consumer's key; fresh nodes each round, as for sizes."""
    reqs = [("/k", "bench", (f"X-Api-Key: key-{c - 1:06d}",)) for c in counts]
    per_round = []
    for rnd in range(rounds):
        log(f"key_auth round {rnd + 1} of {rounds}: fresh nodes with {counts} consumers")
        nodes = [consumers_node(procs, binary, echo_ports, c, slot)
                 for slot, c in enumerate(counts)]
        got = paired_rates(nodes, reqs, 1, duration, start=rnd)
        per_round.append([statistics.median(r) for r in got])
        for node in nodes:
            node.stop()
    return [(c, statistics.median(r[i] for r in per_round),
             statistics.median(r[i] / r[0] for r in per_round)) for i, c in enumerate(counts)]


def plot(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    ns = [r["n"] for r in rows]
    for kind in KINDS:
        ax.plot(ns, [r["rps"][kind] for r in rows], marker="o", label=f"{kind} route")
    ax.set_xscale("log")
    ax.set_xlabel("routes in the table (plus 100 regex routes)")
    ax.set_ylabel("requests/s (1 worker, 64 connections)")
    top = max(r["rps"][k] for r in rows for k in KINDS)
    ax.set_ylim(bottom=0, top=top * 1.15)  # the legend and the top points apart
    ax.set_title("grapevine: requests/s against route count")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
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
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--duration", type=int, default=5, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds, each with fresh nodes and every kind measured on each size")
    ap.add_argument("--consumers", type=int, default=10000)
    ap.add_argument("--plot")
    ap.add_argument("--quick", action="store_true", help="sizes 10,1000, 3 s, 1 round")
    a = ap.parse_args()
    if a.quick:
        a.sizes, a.duration, a.rounds, a.consumers = "10,1000", 2, 1, 1000
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            raise SystemExit(f"route_scale: {tool} not found: run scripts/setup.sh")
    binary = a.bin or build_release()
    sizes = [int(x) for x in a.sizes.split(",")]
    procs = Procs()
    try:
        echo_ports = [BASE + 1, BASE + 2]
        for i, port in enumerate(echo_ports):
            procs.start(f"echo{i}", [binary, "echo", "--listen", f"127.0.0.1:{port}"],
                        cpu=LOAD_CPU)
        wait_for(lambda: all(port_open(p) for p in echo_ports), 15, "the echo upstreams")
        rows = measure_sizes(procs, binary, echo_ports, sizes, a.rounds, a.duration)
        cons = measure_consumers(procs, binary, echo_ports, [1, a.consumers], a.rounds,
                                 a.duration)
        report(rows, cons)
        if a.plot:
            plot(rows, a.plot)
    finally:
        procs.close()


def report(rows, cons):
    base = rows[0]
    print(f"\n{'routes':>7} {'prefix r/s':>11} {'exact r/s':>10} {'host r/s':>9} "
          f"{'regex r/s':>10} {'ratios p/e/h/x to ' + str(base['n']):>24} {'RSS/route':>10} "
          f"{'PUT /config':>12} {'route PUT':>16}")
    for r in rows:
        ratios = "/".join(f"{r['ratio'][k]:.2f}" for k in KINDS)
        per_route = (f"{(r['rss_kb'] - base['rss_kb']) * 1024 / (r['n'] - base['n']):.0f} B"
                     if r["n"] > base["n"] else "-")
        print(f"{r['n']:>7} {r['rps']['prefix']:>11.0f} {r['rps']['exact']:>10.0f} "
              f"{r['rps']['host']:>9.0f} {r['rps']['regex']:>10.0f} {ratios:>24} "
              f"{per_route:>10} {r['load_s']:>10.2f} s "
              f"{r['put_ms']:>6.1f}/{r['put_max_ms']:.0f} ms")
    (c1, r1, _), (cn, rn, cratio) = cons
    print(f"\nkey_auth: {c1} consumer {r1:.0f} r/s, {cn} consumers {rn:.0f} r/s: "
          f"ratio {cratio:.2f} (target >= 0.95)")
    last = rows[-1]
    worst = min(last["ratio"][k] for k in KINDS)
    print(f"at {last['n']} routes: worst ratio {worst:.2f} (target >= 0.95); route PUT median "
          f"{last['put_ms']:.1f} ms (target < 50 ms)")
    spread = ", ".join(f"{k} {min(last['ratios'][k]):.2f}-{max(last['ratios'][k]):.2f}"
                       for k in KINDS)
    print(f"at {last['n']} routes, the rounds' ratios ranged: {spread}")
    print("route PUT: median/max of 20 PUTs, each answered once fsync'd and applied")


if __name__ == "__main__":
    main()
