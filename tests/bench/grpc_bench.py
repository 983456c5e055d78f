#!/usr/bin/env python3
"""grpc_bench.py - gRPC unary calls through grapevine beside the same calls
made straight to the server: a grpcio server (a generic handler echoing the
request bytes, no generated code) and a grpcio client keeping C calls in
flight on one channel for S seconds. Prints calls/s, p50 and p99 for both
paths and their ratio. ghz is not packaged for Debian; this driver is
enough to show what the gateway costs per call, not the server's limits.

Not run in CI. Usage: tests/bench/grpc_bench.py [--duration S] [--concurrency C]
    [--bin PATH]   (default build-release/grapevine, else build/grapevine)
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

# grpcio's fork handlers must stay out of the node process started below.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import grpc  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline=20):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"grpc_bench: nothing listens on {port}")


def run(target, duration, concurrency):
    """(calls/s, p50 ms, p99 ms) of unary calls to target."""
    channel = grpc.insecure_channel(target)
    call = channel.unary_unary("/bench.Echo/Unary")
    call(b"warm-up", timeout=10)
    lat, lock, stop = [], threading.Lock(), time.monotonic() + duration

    def worker():
        mine = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            call(b"x" * 64, timeout=10)
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    channel.close()
    lat.sort()
    return len(lat) / duration, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--bin", default=None)
    a = ap.parse_args()
    if a.duration < 1 or a.concurrency < 1:
        sys.exit("grpc_bench: --duration and --concurrency must be at least 1")
    binary = a.bin or next((str(p) for p in (ROOT / "build-release/grapevine",
                                             ROOT / "build/grapevine") if p.exists()), None)
    if binary is None:
        sys.exit("grpc_bench: no grapevine binary (build it or pass --bin)")

    server = grpc.server(futures.ThreadPoolExecutor(a.concurrency))
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)})
    server.add_generic_rpc_handlers((handler,))
    sport = server.add_insecure_port("127.0.0.1:0")
    server.start()

    gport, aport, gossip = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "gv.yaml"
        cfg.write_text(f"""node:
  listen: 127.0.0.1:{gport}
  admin: 127.0.0.1:{aport}
  gossip: 127.0.0.1:{gossip}
  workers: 1
  access_log: false
  log_level: warn
  data_dir: {tmp}/data
services:
  - name: g
    protocol: grpc
    targets: [{{address: 127.0.0.1:{sport}}}]
routes:
  - name: all
    match: {{paths: ["/"], path_type: prefix}}
    service: g
""")
        node = subprocess.Popen([binary, "run", "-c", str(cfg)], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(tmp, "gv.log"), "w"))
        try:
            wait_port(gport)
            direct = run(f"127.0.0.1:{sport}", a.duration, a.concurrency)
            via = run(f"127.0.0.1:{gport}", a.duration, a.concurrency)
        finally:
            node.terminate()
            node.wait(timeout=30)
            server.stop(0)
    print(f"{'path':<10} {'calls/s':>10} {'p50 ms':>8} {'p99 ms':>8}   "
          f"({a.concurrency} in flight, {a.duration} s)")
    for name, (rps, p50, p99) in (("direct", direct), ("grapevine", via)):
        print(f"{name:<10} {rps:>10.0f} {p50:>8.2f} {p99:>8.2f}")
    print(f"grapevine/direct calls/s: {via[0] / direct[0]:.2f}")


if __name__ == "__main__":
    main()
