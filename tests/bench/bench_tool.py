#!/usr/bin/env python3
"""bench_tool.py - the parts of tests/bench/bench.sh that are easier in Python.

  bench_tool.py cputicks PID...          utime+stime of the processes, in ticks
  bench_tool.py idle --port P --pid PID... --conns N [--timeout S]
        opens N keep-alive connections to 127.0.0.1:P, sends one request on
        each and reads the answer, then holds them all idle and measures the
        memory of PIDs before and after; prints key=value pairs
  bench_tool.py report RESULTS.tsv PROXY...
        prints the side-by-side table (medians over rounds) and the ratios
        to HAProxy
"""

import argparse
import resource
import select
import socket
import statistics
import sys
import time


def proc_kb(pid, filename, field):
    with open(f"/proc/{pid}/{filename}") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/{filename}")


def mem(pids):
    """(VmRSS, Pss) summed over pids, in KiB."""
    return (sum(proc_kb(p, "status", "VmRSS") for p in pids),
            sum(proc_kb(p, "smaps_rollup", "Pss") for p in pids))


def cmd_cputicks(args):
    total = 0
    for pid in args.pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    print(total)


def read_response(sock, deadline):
    """Reads one HTTP/1.1 response; returns its status code."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += recv_some(sock, deadline)
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    chunked = False
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        k = k.strip().lower()
        if k == b"content-length":
            length = int(v.strip())
        elif k == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        while not body.endswith(b"0\r\n\r\n"):
            body += recv_some(sock, deadline)
    elif length is not None:
        while len(body) < length:
            body += recv_some(sock, deadline)
    return status


def recv_some(sock, deadline):
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("closed by the proxy")
    return data


def cmd_idle(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.conns + 100:
        raise SystemExit(f"RLIMIT_NOFILE {hard} is too low for {args.conns} connections")
    deadline = time.monotonic() + args.timeout
    request = b"GET /idle HTTP/1.1\r\nHost: bench\r\nUser-Agent: gv-bench-idle\r\n\r\n"

    base_rss, base_pss = mem(args.pid)
    socks = []
    bad = 0
    start = time.monotonic()
    # Batches: connect a few, send on all, read all; the accept queues of the
    # proxies never overflow and no SYN is retried.
    while len(socks) < args.conns:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after opening {len(socks)} connections")
        batch = []
        for _ in range(min(args.batch, args.conns - len(socks))):
            s = socket.create_connection(("127.0.0.1", args.port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            batch.append(s)
        for s in batch:
            s.sendall(request)
        for s in batch:
            if read_response(s, deadline) != 200:
                bad += 1
        socks += batch
    opened_s = time.monotonic() - start

    # Memory once the proxy has settled (measured twice, the larger counts).
    time.sleep(0.5)
    rss1, pss1 = mem(args.pid)
    time.sleep(0.5)
    rss2, pss2 = mem(args.pid)
    rss, pss = max(rss1, rss2), max(pss1, pss2)

    # Any socket that is readable now was closed (or got junk) while idle.
    closed = 0
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
    closed = len(poller.poll(0))
    for s in socks:
        s.close()
    n = args.conns
    print(f"conns={n} non200={bad} closed_while_idle={closed} open_seconds={opened_s:.2f} "
          f"base_rss_kb={base_rss} idle_rss_kb={rss} base_pss_kb={base_pss} idle_pss_kb={pss} "
          f"rss_per_conn_b={(rss - base_rss) * 1024 / n:.0f} "
          f"pss_per_conn_b={(pss - base_pss) * 1024 / n:.0f}")


# ---- report -----------------------------------------------------------------

ROWS = [
    # key, label, format, better ("hi"/"lo")
    ("rps64", "requests/s, 64 conns", "{:,.0f}", "hi"),
    ("p50_64_us", "p50 latency, 64 conns (ms)", "ms", "lo"),
    ("p99_64_us", "p99 latency, 64 conns (ms)", "ms", "lo"),
    ("p50_1_us", "p50 latency, 1 conn (ms)", "ms", "lo"),
    ("cpu64_pct", "proxy CPU, 64 conns (% of a core)", "{:.0f}", "lo"),
    ("req_per_cpu_s", "requests per proxy CPU-second", "{:,.0f}", "hi"),
    ("base_rss_kb", "RSS before idle conns (MiB)", "mib", "lo"),
    ("rss_per_conn_b", "RSS per idle conn (KiB)", "kib", "lo"),
    ("pss_per_conn_b", "PSS per idle conn (KiB)", "kib", "lo"),
    ("errors", "errors (all runs)", "{:.0f}", "lo"),
]


def fmt(kind, v):
    if v is None:
        return "-"
    if kind == "ms":
        return f"{v / 1000:.3f}"
    if kind == "mib":
        return f"{v / 1024:.1f}"
    if kind == "kib":
        return f"{v / 1024:.2f}"
    return kind.format(v)


def cmd_report(args):
    data = {}  # (proxy, key) -> [values]
    with open(args.results) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 4:
                continue
            proxy, _round, key, value = parts
            data.setdefault((proxy, key), []).append(float(value))
    # Derived: requests per proxy CPU-second, per round.
    for proxy in args.proxies:
        rps, cpu = data.get((proxy, "rps64"), []), data.get((proxy, "cpu64_pct"), [])
        if rps and cpu and len(rps) == len(cpu):
            data[(proxy, "req_per_cpu_s")] = [r / (c / 100) for r, c in zip(rps, cpu) if c > 0]

    def value(proxy, key):
        vals = data.get((proxy, key))
        if not vals:
            return None
        return sum(vals) if key == "errors" else statistics.median(vals)

    proxies = args.proxies
    ratio_to = "haproxy" if "haproxy" in proxies and "grapevine" in proxies else None
    headers = ["", *proxies] + (["grapevine/haproxy"] if ratio_to else [])
    table = []
    for key, label, kind, _better in ROWS:
        row = [label] + [fmt(kind, value(p, key)) for p in proxies]
        if ratio_to:
            g, h = value("grapevine", key), value("haproxy", key)
            row.append(f"{g / h:.2f}x" if g is not None and h else "-")
        table.append(row)
    widths = [max(len(r[i]) for r in [headers] + table) for i in range(len(headers))]
    print("  ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i])
                    for i, h in enumerate(headers)))
    for r in table:
        print("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                        for i, c in enumerate(r)))
    rounds = max((len(v) for (p, k), v in data.items() if k == "rps64"), default=0)
    print(f"(medians over {rounds} round(s); ratios > 1 mean grapevine is higher: better for "
          f"requests/s, worse for latency, CPU and memory)")


def cmd_ratio(args):
    """One line: OTHER / BASE requests/s (64 connections), medians over the
    rounds like the table above, with the means beside them."""
    vals = {}
    with open(args.results) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[2] == "rps64":
                vals.setdefault(parts[0], []).append(float(parts[3]))
    base, other = vals.get(args.base), vals.get(args.other)
    if not base or not other:
        print(f"{args.label}: no results")
        return 1
    mb, mo = statistics.median(base), statistics.median(other)
    ab, ao = statistics.mean(base), statistics.mean(other)
    print(f"{args.label} / plain proxy requests/s: {mo:,.0f} / {mb:,.0f} = {mo / mb:.3f} "
          f"(target >= {args.target}; means {ao:,.0f} / {ab:,.0f} = {ao / ab:.3f})")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("cputicks")
    p.add_argument("pids", nargs="+", type=int)
    p.set_defaults(fn=cmd_cputicks)
    p = sub.add_parser("idle")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, nargs="+", required=True)
    p.add_argument("--conns", type=int, required=True)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(fn=cmd_idle)
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("proxies", nargs="+")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("ratio")
    p.add_argument("results")
    p.add_argument("base")
    p.add_argument("other")
    p.add_argument("label")
    p.add_argument("target")
    p.set_defaults(fn=cmd_ratio)
    args = ap.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
