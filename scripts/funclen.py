#!/usr/bin/env python3
"""funclen.py - function lengths in grapevine's C (outside tests/), the
numbers issue 13 holds the tree to: median <= 12 lines, p90 <= 35, none over 80.

A function is a definition whose body opens with "{" at column 0 (the
.clang-format style puts it there) and closes with "}" at column 0; its
length is its lines from the first line of its signature to the closing
brace, both included. Prints the median,
p90, max and every function over the limit; exits 1 when a bar is missed.

Usage: scripts/funclen.py [--top N] [--limit 80] [DIR...]   (default: the tree)
"""
import argparse
import pathlib
import re
import statistics
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DIRS = ["common", "cluster", "balancer", "gateway", "node"]
NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def functions(path):
    """(name, first line, length) for each function definition in path."""
    lines = path.read_text().splitlines()
    out = []
    i = 0
    while i < len(lines):
        if lines[i] == "{" and i > 0:
            # the signature: back to the first line that starts at column 0
            j = i - 1
            while j > 0 and (lines[j].startswith((" ", "\t")) or lines[j] == ""):
                j -= 1
            sig = " ".join(lines[j:i])
            m = NAME.search(sig)
            k = i + 1
            while k < len(lines) and lines[k] != "}":
                k += 1
            if m and "=" not in sig.split("(")[0]:
                out.append((m.group(1), j + 1, k - j + 1))
            i = k
        i += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", default=DEFAULT_DIRS)
    ap.add_argument("--top", type=int, default=10, help="longest functions to list")
    ap.add_argument("--limit", type=int, default=80)
    a = ap.parse_args()
    rows = []
    for d in a.dirs:
        for p in sorted((ROOT / d).rglob("*.c")):
            if "tests" in p.relative_to(ROOT).parts:
                continue
            rows += [(n, p.relative_to(ROOT), line, length) for n, line, length in functions(p)]
    lens = sorted(r[3] for r in rows)
    median = statistics.median(lens)
    p90 = lens[int(0.9 * (len(lens) - 1))]
    over = [r for r in rows if r[3] > a.limit]
    print(f"{len(rows)} functions: median {median:g} lines, p90 {p90}, max {lens[-1]}, "
          f"{len(over)} over {a.limit}")
    for n, p, line, length in sorted(rows, key=lambda r: -r[3])[: a.top]:
        print(f"  {length:4d}  {p}:{line}  {n}")
    ok = median <= 12 and p90 <= 35 and not over
    print("bars (median <= 12, p90 <= 35, none over %d): %s" % (a.limit, "met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
