#!/usr/bin/env python3
"""ratelimit_accuracy.py - how close a cluster-scope rate limit across three
real nodes stays to the single-node GCRA answer, over the issue-15 grid
(design and bound in docs/rate-limiting.md; the same grid in simulation:
tests/unit/gateway/ratelimit/rl_cluster_test.c).

Grid: limits 1, 5, 100, 10000 per window of 1 s, 10 s, 60 s; splits one
(all on node 1), rotating (round robin), 60-30-10, shifting (60-30-10 ->
10-30-60 -> even) and killed (60-30-10, node 3 killed 1.5 windows in, its
traffic then 65-35). Each cell offers a burst of `limit` requests, then
m x the limit (m = 3, less where that would pass --max-rate per cell) for 3
windows, an idle gap of 1.5 windows (longer than the window), the same again.

Every cell has its own bucket (its own X-Cell header value on a route keyed
by it) and its own client thread; all cells of a cluster run at once. The
client sends each 10 ms slot's requests for a node as one pipelined batch
and feeds the same requests, at their send time, to a single GCRA bucket in
the client: the answer. A cell passes when the cluster admitted within
+/-10 % or +/-1 request (whichever is larger) of it. The non-killed cells
share one 3-node cluster; the killed cells of each window get their own.

--quick: windows 1 s and 10 s only (the 10 s cells last 75 s; about 3 minutes
with start-up on a loaded 2-core VM). The full grid adds the 60 s windows,
whose cells last 7.5 minutes.

Usage: GRAPEVINE_BIN=build/grapevine tests/bench/ratelimit_accuracy.py
           [--quick] [--max-rate N]
"""

import argparse
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenario"))
import gvtest  # noqa: E402
from gvtest import Echo, Node, wait_until  # noqa: E402

LIMITS = (1, 5, 100, 10000)
SPLITS = ("one", "rotating", "60-30-10", "shifting", "killed")
SLOT = 0.010
BATCH_MAX = 400  # pipelined at once: ~1000 deep, a connection stopped answering (at 978)


def conf(echo, windows):
    routes = "".join(f"""
  - name: w{w}l{lim}
    match: {{paths: ["/status/204"], headers: {{X-Route: w{w}l{lim}}}}}
    service: s
    plugins:
      - rate_limit: {{limit: {lim}, window: {w}s, key: "header:X-Cell", scope: cluster}}
""" for w in windows for lim in LIMITS)
    return f"""
services:
  - name: s
    targets: [{{address: {echo.address}}}]
routes:{routes}"""


class Gcra:
    """The single-node answer: rl_table.c's GCRA in floats, n requests at a
    time (all sent at one instant)."""

    def __init__(self, limit, window):
        self.interval = window / limit
        self.tau = self.interval * limit
        self.tat = 0.0

    def take(self, now, n):
        base = max(self.tat, now)
        room = int((self.tau - (base - now)) / self.interval + 1e-9)
        got = max(0, min(n, room))
        self.tat = base + got * self.interval if got else self.tat
        return got


def weights(split, t, total, kill_at):
    if split == "one":
        return (1.0, 0.0, 0.0)
    if split == "60-30-10":
        return (0.6, 0.3, 0.1)
    if split == "shifting":
        return [(0.6, 0.3, 0.1), (0.1, 0.3, 0.6), (0.34, 0.33, 0.33)][min(2, int(3 * t / total))]
    return (0.6, 0.3, 0.1) if t < kill_at else (0.65, 0.35, 0.0)


def schedule(limit, window, max_rate):
    """Arrival times (s from the cell's start)."""
    m = min(3.0, max_rate * window / limit)
    phase, gap = 3 * window, 1.5 * window
    steady = int(m * limit * 3)
    spacing = min(0.001, window / (10 * limit))
    out = []
    for p in range(2):
        start = p * (phase + gap)
        out += [start + i * spacing for i in range(limit)]
        out += [start + (i + 0.5) * phase / steady for i in range(steady)]
    return sorted(out)


def complete(buf, n):
    """buf holds n whole responses (the bodies, JSON, hold no status line)."""
    if buf.count(b"HTTP/1.1 ") < n:
        return False
    last = buf.rfind(b"HTTP/1.1 ")
    end = buf.find(b"\r\n\r\n", last)
    if end < 0:
        return False
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", buf[last:end])
    return len(buf) >= end + 4 + (int(m.group(1)) if m else 0)


def read_statuses(sock, n):
    """Reads n responses; returns (204s, 429s)."""
    buf = b""
    while not complete(buf, n):
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf.count(b"HTTP/1.1 204 "), buf.count(b"HTTP/1.1 429 ")


class Cell:
    def __init__(self, limit, window, split, max_rate):
        self.limit, self.window, self.split = limit, window, split
        self.answer = self.admitted = self.offered = self.errors = 0
        self.name = f"{split}-{limit}-{window}"
        self.kill_at = 1.5 * window if split == "killed" else None
        self.slots = self.plan(schedule(limit, window, max_rate))

    def plan(self, times):
        """[(slot start, [requests to node 1, 2, 3])], computed before the run."""
        total = times[-1] + 1e-9
        rng, slots = (sum(map(ord, self.name)) * 2654435761) & 0x7fffffff or 1, {}
        for i, t in enumerate(times):
            rng = (rng * 1103515245 + 12345) & 0x7fffffff
            w = weights(self.split, t, total, self.kill_at or 1e18)
            if self.split == "rotating":
                k = i % 3
            else:
                x, k = (rng % 1000000) / 1e6, 0
                while k < 2 and x >= w[k]:
                    x -= w[k]
                    k += 1
            slots.setdefault(int(t / SLOT), [0, 0, 0])[k] += 1
        return sorted((s * SLOT, b) for s, b in slots.items())

    def run(self, nodes, t0):
        socks = [None, None, None]
        ref = Gcra(self.limit, self.window)
        req = (f"GET /status/204 HTTP/1.1\r\nHost: x\r\nX-Route: w{self.window}l{self.limit}"
               f"\r\nX-Cell: {self.name}\r\n\r\n").encode()
        for start, batch in self.slots:
            delay = t0 + start - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the offered load
            for k in range(3):
                for off in range(0, batch[k], BATCH_MAX):
                    self.send(nodes, socks, k, req, min(BATCH_MAX, batch[k] - off), ref, t0)
        for s in socks:
            if s is not None:
                s.close()

    def send(self, nodes, socks, k, req, n, ref, t0):
        now = time.monotonic() - t0
        try:
            if socks[k] is None:
                host, port = nodes[k].url("/").split("/")[2].split(":")
                socks[k] = socket.create_connection((host, int(port)), timeout=10)
            socks[k].sendall(req * n)
            ok, refused = read_statuses(socks[k], n)
        except OSError:  # the killed node: these never reached the cluster
            self.errors += n
            if socks[k] is not None:
                socks[k].close()
                socks[k] = None
            return
        self.offered += n
        self.answer += ref.take(now, n)
        self.admitted += ok
        self.errors += n - ok - refused

    def ok(self):
        return abs(self.admitted - self.answer) <= max(1, self.answer * 0.10)


def cluster(echo, windows, tag):
    cfg = conf(echo, windows)
    first = Node(name=f"{tag}1", workers=2, config=cfg)
    nodes = [first] + [Node(name=f"{tag}{i}", workers=2, config=cfg, args=["--join", first.gossip])
                       for i in (2, 3)]

    def ready():
        return all(sum(m["state"] == "alive" for m in n.admin_get("/cluster/members").json()) == 3
                   and "grapevine_ratelimit_cluster_peers 2" in n.metrics() for n in nodes)
    wait_until(ready, 20, "three alive members that hear each other's rate-limit counts")
    return nodes


def run_group(nodes, cells, kill_at=None):
    t0 = time.monotonic() + 0.5
    ths = [threading.Thread(target=c.run, args=(nodes, t0)) for c in cells]
    for th in ths:
        th.start()
    if kill_at is not None:
        time.sleep(max(0.0, t0 + kill_at - time.monotonic()))  # the kill is part of the case
        nodes[2].kill()
    for th in ths:
        th.join()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="windows 1 s and 10 s only")
    ap.add_argument("--max-rate", type=float, default=1000.0,
                    help="steady requests/s offered per cell at most (default 1000)")
    a = ap.parse_args()
    windows = (1, 10) if a.quick else (1, 10, 60)
    cells = {(lim, w, sp): Cell(lim, w, sp, a.max_rate)
             for lim in LIMITS for w in windows for sp in SPLITS}
    scope = gvtest.push_scope("ratelimit_accuracy", Path(tempfile.mkdtemp(prefix="gv-rl-")))
    try:
        echo = Echo()
        groups = [("a", [c for k, c in cells.items() if k[2] != "killed"], None)]
        groups += [(f"k{w}x", [c for k, c in cells.items() if k[2] == "killed" and k[1] == w],
                    1.5 * w) for w in windows]
        started = [(cluster(echo, windows, tag), cs, kill) for tag, cs, kill in groups]
        ths = [threading.Thread(target=run_group, args=g) for g in started]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        for nodes, _, _ in started:
            for n in nodes:
                if n.alive():
                    n.stop()
        echo.stop()
    finally:
        problems = gvtest.pop_scope(scope)
        if problems:
            print("process problems:", *problems, sep="\n  ")
    print("admitted/answer per cell (the answer: one GCRA bucket fed the same requests); "
          "* = outside +/-10 % or +/-1")
    print(f"{'limit/window':13s}" + "".join(f" {s:>15s}" for s in SPLITS))
    bad = 0
    for lim in LIMITS:
        for w in windows:
            row = f"{f'{lim}/{w}s':13s}"
            for sp in SPLITS:
                c = cells[(lim, w, sp)]
                bad += not c.ok()
                row += f" {f'{c.admitted}/{c.answer}' + ('' if c.ok() else '*'):>15s}"
            print(row)
    for c in cells.values():
        if c.errors:
            print(f"{c.name}: {c.errors} requests not answered 204 or 429")
    errors = sum(c.errors for c in cells.values())
    offered = sum(c.offered for c in cells.values())
    print(f"{len(cells) - bad}/{len(cells)} cells within the bound; {offered} requests, "
          f"{errors} not answered 204 or 429")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
