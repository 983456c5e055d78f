"""Targets named by host name follow the name (issue 15): a name is looked up
again every resolve_every and soon after a connect to it fails, every address
it has is a target, and a name that does not resolve yet starts serving once
it does, all without a config change.

- a name that moves from A to B under steady GETs: traffic follows, no request
  fails, the pooled connections to A are closed, then A can go;
- a name that resolves only after start: 503 and "unresolved" in /backends
  first, then 200;
- a name with three addresses: three health-checked targets, all get traffic;
- a name that moves while resolve_every is an hour: the failed connects to
  the old address get it looked up again.

The nodes run in a private mount namespace (unshare --mount) where /etc/hosts
is a file this test rewrites; glibc reads /etc/hosts on every lookup, and the
machine's own /etc/hosts is never touched. Needs root and unshare(1): skipped
otherwise. Run with -s to see the numbers."""

import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from gvtest import Node, Proc, binary, free_port, port_is_free, wait_port, wait_until

A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"


class Hosts:
    """The /etc/hosts that nodes started with `bin` see."""

    def __init__(self, path: Path, bin_path: Path):
        self.path = path
        self.bin = str(bin_path)
        self.base = Path("/etc/hosts").read_text()

    def set(self, names: dict) -> None:
        """Rewrites the file in place (the bind mount holds its inode)."""
        lines = [f"{ip} {name}" for name, ips in names.items() for ip in ips]
        with open(self.path, "w") as f:
            f.write(self.base.rstrip("\n") + "\n" + "\n".join(lines) + "\n")


def _namespace_works(hosts_file: Path) -> str:
    """"" when a private mount namespace with our hosts file resolves, else why not."""
    if os.geteuid() != 0:
        return "needs root (unshare --mount and mount --bind)"
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    try:
        r = subprocess.run(
            ["unshare", "--mount", "--", "sh", "-c",
             'mount --bind "$1" /etc/hosts && getent hosts probe.gv-test', "sh", str(hosts_file)],
            capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare --mount failed: {e}"
    if r.returncode != 0 or "127.0.0.9" not in r.stdout:
        return f"a private /etc/hosts does not work here: {r.stderr.strip() or r.stdout.strip()}"
    return ""


@pytest.fixture
def hosts(tmp_path):
    h = Hosts(tmp_path / "hosts", tmp_path / "grapevine-ns")
    h.set({"probe.gv-test": ["127.0.0.9"]})
    why = _namespace_works(h.path)
    if why:
        pytest.skip(why)
    # grapevine, run in its own mount namespace over our hosts file.
    Path(h.bin).write_text(
        "#!/bin/sh\n"
        f"exec unshare --mount -- sh -c 'mount --bind \"$1\" /etc/hosts && shift && "
        f"exec \"$@\"' sh '{h.path}' '{binary()}' \"$@\"\n")
    os.chmod(h.bin, stat.S_IRWXU)
    h.set({})
    return h


def shared_port(*ips: str) -> int:
    """A port free on every one of ips."""
    for _ in range(200):
        port = free_port()
        if all(port_is_free(port, ip) for ip in ips):
            return port
    raise AssertionError(f"no port free on all of {ips}")


def echo_at(ip: str, port: int, name: str) -> Proc:
    p = Proc(f"echo {name}", [binary(), "echo", "--listen", f"{ip}:{port}", "--name", name])
    p.start()
    wait_port(port, ip, proc=p)
    return p


def dns_node(hosts: Hosts, target: str, every: str, extra: str = "") -> Node:
    return Node(bin=hosts.bin, config=f"""
        services:
          - name: named
            targets: [{{address: "{target}"}}]
            resolve_every: {every}
            {extra}
        routes:
          - name: all
            match: {{paths: [/]}}
            service: named
        """)


def answer(node: Node):
    """(status, echo name or error text) of one GET /."""
    r = node.get("/", timeout=5)
    return r.status_code, (r.json().get("name") if r.status_code == 200 else r.text)


def targets(node: Node) -> list:
    return [b for b in node.backends() if b["service"] == "named"]


def established(ip: str, port: int) -> int:
    """TCP connections in ESTABLISHED state whose local end is ip:port (an
    echo's side of the gateway's pooled connections)."""
    want = "%s:%04X" % ("".join(f"{int(o):02X}" for o in reversed(ip.split("."))), port)
    n = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        n += fields[1] == want and fields[3] == "01"
    return n


class Load(threading.Thread):
    """GET / in a loop on one keep-alive session until stopped; keeps
    (time, status, echo name or error) of every request."""

    def __init__(self, node: Node):
        super().__init__(daemon=True)
        self.url = node.url("/")
        self.results: list = []
        self.stopping = threading.Event()

    def run(self) -> None:
        s = requests.Session()
        while not self.stopping.is_set():
            try:
                r = s.get(self.url, timeout=5)
                name = r.json().get("name") if r.status_code == 200 else r.text
                self.results.append((time.monotonic(), r.status_code, name))
            except (requests.RequestException, ValueError) as e:
                self.results.append((time.monotonic(), None, repr(e)))

    def names_since(self, n: int) -> set:
        return {name for _, _, name in self.results[n:]}

    def finish(self) -> None:
        self.stopping.set()
        self.join(15)
        assert not self.is_alive(), "the load thread did not stop"


def test_traffic_follows_a_name_that_moves(hosts):
    port = shared_port(A, B)
    a, b = echo_at(A, port, "a"), echo_at(B, port, "b")
    hosts.set({"moving.gv-test": [A]})
    node = dns_node(hosts, f"moving.gv-test:{port}", "1s",
                    "health_check: {path: /healthz, interval: 500ms, timeout: 400ms}")
    wait_until(lambda: answer(node) == (200, "a"), 20, "the name to serve from a")
    loads = [Load(node), Load(node)]
    for load in loads:
        load.start()
    wait_until(lambda: all(len(x.results) > 20 for x in loads), 20, "steady load")
    assert established(A, port) > 0  # pooled connections to a

    moved_at = time.monotonic()
    hosts.set({"moving.gv-test": [B]})
    marks = [len(x.results) for x in loads]
    wait_until(lambda: all(x.names_since(len(x.results) - 20) == {"b"} and len(x.results) > m + 20
                           for x, m in zip(loads, marks)),
               30, "every client's traffic to follow the name to b")
    followed = min(t for x in loads for t, _, name in x.results if name == "b" and t > moved_at)
    wait_until(lambda: established(A, port) == 0, 15, "pooled connections to a to be closed")
    a.stop()
    marks = [len(x.results) for x in loads]
    wait_until(lambda: all(len(x.results) > m + 50 for x, m in zip(loads, marks)), 20,
               "more requests after a is gone")
    for load in loads:
        load.finish()

    results = [r for x in loads for r in x.results]
    failed = [r for r in results if r[1] != 200]
    assert not failed, f"{len(failed)} of {len(results)} requests failed: {failed[:5]}"
    shown = targets(node)
    assert [(t["address"], t["target"]) for t in shown] == \
        [(f"{B}:{port}", f"moving.gv-test:{port}")], shown
    print(f"\nmoved name: traffic followed {followed - moved_at:.2f}s after /etc/hosts changed "
          f"(resolve_every 1s); {len(results)} GETs, {len(failed)} failed")
    b.stop()


def test_a_name_that_resolves_later_starts_serving(hosts):
    port = shared_port(A)
    echo_at(A, port, "late")
    node = dns_node(hosts, f"late.gv-test:{port}", "1s")
    wait_until(lambda: answer(node)[0] == 503, 20, "503 while the name does not resolve")
    shown = targets(node)
    assert len(shown) == 1 and shown[0]["reason"] == "unresolved", shown
    assert shown[0]["target"] == f"late.gv-test:{port}" and not shown[0]["healthy"], shown
    assert "no healthy target" in answer(node)[1]

    resolved_at = time.monotonic()
    hosts.set({"late.gv-test": [A]})
    wait_until(lambda: answer(node) == (200, "late"), 30, "200 once the name resolves")
    print(f"\nlate name: serving {time.monotonic() - resolved_at:.2f}s after it resolved "
          f"(resolve_every 1s)")
    assert [t["address"] for t in targets(node)] == [f"{A}:{port}"]


def test_every_address_of_a_name_is_a_target(hosts):
    port = shared_port(A, B, C)
    for ip, name in ((A, "e1"), (B, "e2"), (C, "e3")):
        echo_at(ip, port, name)
    hosts.set({"three.gv-test": [A, B, C]})
    node = dns_node(hosts, f"three.gv-test:{port}", "1s",
                    "health_check: {path: /healthz, interval: 500ms, timeout: 400ms}")
    wait_until(lambda: len(targets(node)) == 3 and
               all(t["healthy"] and t["reason"] == "" for t in targets(node)),
               20, "three checked, healthy targets")
    assert sorted(t["address"] for t in targets(node)) == [f"{ip}:{port}" for ip in (A, B, C)]
    assert {t["target"] for t in targets(node)} == {f"three.gv-test:{port}"}
    seen = set()
    wait_until(lambda: seen.add(answer(node)[1]) or seen >= {"e1", "e2", "e3"}, 20,
               "every address to get requests")
    assert seen == {"e1", "e2", "e3"}, seen


def test_a_failed_connect_looks_the_name_up_again(hosts):
    port = shared_port(A, B)
    a, _ = echo_at(A, port, "a"), echo_at(B, port, "b")
    hosts.set({"restarted.gv-test": [A]})
    node = dns_node(hosts, f"restarted.gv-test:{port}", "1h")
    wait_until(lambda: answer(node) == (200, "a"), 20, "the name to serve from a")
    hosts.set({"restarted.gv-test": [B]})
    a.stop()  # the container restarted with a new address
    stopped_at = time.monotonic()
    wait_until(lambda: answer(node) == (200, "b"), 20,
               "the failed connects to a to get the name looked up again")
    print(f"\nrestarted upstream: serving from its new address {time.monotonic() - stopped_at:.2f}s "
          f"after the old one went (resolve_every 1h)")
