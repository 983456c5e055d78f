#!/usr/bin/env python3
"""netns_loss.py - a grapevine cluster on a lossy network, then a partition (issue 15).

Five nodes, each in a network namespace of its own with a `grapevine echo`
beside it, joined by veth pairs to a bridge that lives in a namespace of its
own; the driver (this script, re-executed) lives in one more namespace on the
same bridge. Nothing touches the root namespace's network and no packet leaves
the namespaces made here. iptables in every node namespace drops 5 % of the
packets at random in each direction of its link (no netem on this kernel):
node to node a packet crosses two links (loss 1 - 0.95^2 = 9.75 % each way),
driver to node one (5 % each way). Loopback inside a namespace is lossless.

Phases, every wait a condition with a generous deadline:
  settle     the cluster forms (5 alive everywhere, one digest, targets healthy)
  loss       --seconds: a route PUT on a random node every ~2 s, GETs round-robin
             over the nodes, and for 30 s a cluster-scope rate limit (50/s)
             offered ~150 req/s; then (loss still on) every node must hold
             every route with equal digests
  partition  --partition-seconds: {gw1,gw2} cut from {gw3,gw4,gw5} (loss still
             on), changes on both sides; each side converges and sees the
             other dead
  heal       the cut is lifted: all 5 alive everywhere, one digest, every change
             of both sides on every node

Asserted: no member declared dead during the loss phase (refuted suspicions
are counted, not failed), every change on every node, traffic failures <= 0.5 %
in the loss phase, the rate limit's mean admitted/s within RL_TOLERANCE of 50,
the partition seen and healed, and every process exiting cleanly. A table is
printed at the end; the exit status is non-zero with the reasons on failure.

Usage (root): GRAPEVINE_BIN=build/grapevine tests/fault/netns_loss.py
        [--seconds 300] [--partition-seconds 30] [--nodes 5] [--keep]
Prints a SKIP line and exits 0 when not root or without `ip netns`/iptables.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import http.client
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
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Namespaces are named PREFIX-br (the bridge), PREFIX-ctl (the driver) and
# PREFIX-n1.. (nodes). Anything named so at start is a crashed run's leftover
# (the lock below keeps two runs apart) and is removed.
PREFIX = "gvf"
LOCK_FILE = "/run/grapevine-netns-fault.lock"
# The namespaces' own subnet: no interface in the root namespace is on it and
# the bridge is connected to nothing else, so this traffic cannot leave.
SUBNET = "10.231.0"
CTL_IP = f"{SUBNET}.2"
PROXY_PORT, ADMIN_PORT, GOSSIP_PORT, ECHO_PORT = 8080, 9901, 7946, 9000

LOSS = 0.05                 # per link, per direction
TRAFFIC_RATE = 100          # GET/s offered in all, round-robin over the nodes,
TRAFFIC_THREADS = 10        # by this many senders (one stalled request stalls one)
TRAFFIC_MAX_FAILURES = 0.005
CHANGE_EVERY = 2.0          # seconds between route PUTs (jittered +-25 %)
RL_LIMIT, RL_RATE, RL_SECONDS = 50, 150, 30
RL_TOLERANCE = 0.15         # mean admitted/s within 50 +- 15 % (the redesign may tighten it)
HEAL_WATCH = 20.0           # traffic and /backends watched at least this long after the heal
HTTP_TIMEOUT = 40.0         # above a service's read timeout (30 s): we see its 504, not ours
ADMIN_TIMEOUT = 20.0
CONVERGE_DEADLINE = 180.0   # for every "all nodes agree" wait
SETTLE_DEADLINE = 120.0


# ============================================================ outer process ==
# Runs in the root namespace: checks, builds the network, runs the driver in
# PREFIX-ctl, and tears everything down whatever happens.


def sh(*argv: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    if not quiet and r.returncode != 0:
        print(f"  ({' '.join(argv)}: {r.stderr.strip()})", file=sys.stderr)
    return r


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "not root (network namespaces and iptables need root)"
    if shutil.which("ip") is None or sh("ip", "netns", "list", check=False).returncode != 0:
        return "`ip netns` is not available (apt-get install iproute2)"
    if shutil.which("iptables") is None:
        return "iptables is not installed (apt-get install iptables)"
    probe = f"{PREFIX}-probe"
    sh("ip", "netns", "del", probe, check=False, quiet=True)
    try:
        if sh("ip", "netns", "add", probe, check=False).returncode != 0:
            return "cannot create a network namespace here"
        r = sh("ip", "netns", "exec", probe, "iptables", "-A", "INPUT", "-m", "statistic",
               "--mode", "random", "--probability", "0.5", "-j", "DROP", check=False, quiet=True)
        if r.returncode != 0:
            return f"iptables' statistic match does not work in a namespace: {r.stderr.strip()}"
    finally:
        sh("ip", "netns", "del", probe, check=False, quiet=True)
    return None


def our_namespaces() -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    names = [ln.split()[0] for ln in out.splitlines() if ln.strip()]
    return [n for n in names if n.startswith(PREFIX + "-")]


def teardown_network() -> None:
    """Kills every process in our namespaces (we started them all), then
    deletes the namespaces; the veths and the bridge go with them."""
    for ns in our_namespaces():
        pids = sh("ip", "netns", "pids", ns, check=False, quiet=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    deadline = time.monotonic() + 10
    for ns in our_namespaces():
        while sh("ip", "netns", "pids", ns, check=False, quiet=True).stdout.split() and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        sh("ip", "netns", "del", ns, check=False)


def node_ip(i: int) -> str:
    return f"{SUBNET}.{10 + i}"


def setup_network(n: int) -> None:
    br = f"{PREFIX}-br"
    sh("ip", "netns", "add", br)
    sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", br, "link", "set", "br0", "up")
    sh("ip", "-n", br, "link", "set", "lo", "up")
    hosts = [("ctl", CTL_IP)] + [(f"n{i}", node_ip(i)) for i in range(1, n + 1)]
    for short, ip in hosts:
        ns = f"{PREFIX}-{short}"
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", br, "link", "add", f"v-{short}", "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", br, "link", "set", f"v-{short}", "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")


def outer(args: argparse.Namespace) -> int:
    reason = skip_reason()
    if reason:
        print(f"SKIP: netns_loss: {reason}")
        return 0
    binary = os.environ.get("GRAPEVINE_BIN") or str(REPO / "build" / "grapevine")
    if not os.access(binary, os.X_OK):
        print(f"netns_loss: FAIL: grapevine binary not found at {binary} (set GRAPEVINE_BIN)")
        return 2
    lock = open(LOCK_FILE, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"netns_loss: FAIL: another run holds {LOCK_FILE}")
        return 2

    interrupted: list[int] = []

    def on_signal(signum, _frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    # SIGINT too: a shell that starts us in the background ignores it, and a
    # Ctrl-C or `kill -INT` must still clean up
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gv-netns-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rc = 1
    inner: subprocess.Popen | None = None
    try:
        if our_namespaces():
            print(f"netns_loss: removing leftovers of an earlier run: {' '.join(our_namespaces())}")
            teardown_network()
        setup_network(args.nodes)
        # The whole run is bounded: the driver's own phases have deadlines,
        # and this one catches anything that still hangs.
        budget = args.seconds + args.partition_seconds + 4 * CONVERGE_DEADLINE + SETTLE_DEADLINE + 120
        argv = ["ip", "netns", "exec", f"{PREFIX}-ctl", sys.executable, str(Path(__file__).resolve()),
                "--inner", "--workdir", str(workdir), "--seconds", str(args.seconds),
                "--partition-seconds", str(args.partition_seconds), "--nodes", str(args.nodes),
                "--seed", str(args.seed)]
        env = dict(os.environ, GRAPEVINE_BIN=os.path.abspath(binary), PYTHONUNBUFFERED="1")
        inner = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            rc = inner.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            print(f"netns_loss: FAIL: the run did not end within {budget:.0f} s; stopped")
            rc = 1
    except KeyboardInterrupt:
        print("netns_loss: interrupted; cleaning up")
        rc = 130
    finally:
        if inner is not None and inner.poll() is None:
            try:
                os.killpg(inner.pid, signal.SIGTERM)
                inner.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired, KeyboardInterrupt):
                try:
                    os.killpg(inner.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                inner.wait()
        teardown_network()
        left = our_namespaces()
        if left:
            print(f"netns_loss: FAIL: namespaces left behind: {' '.join(left)}")
            rc = rc or 1
        if args.keep or rc != 0:
            print(f"netns_loss: logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        lock.close()
    return rc


# ============================================================ inner process ==
# Runs inside PREFIX-ctl: starts the processes (each through `ip netns exec`
# into its node's namespace), drives the phases and prints the table.

sys.path.insert(0, str(REPO / "tests" / "scenario"))


class Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def error_kind(e: BaseException) -> str:
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "client timeout"
    if isinstance(e, http.client.RemoteDisconnected):
        return "closed before an answer"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, BrokenPipeError):
        return "broken pipe"
    return type(e).__name__


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        import gvtest

        self.gvtest = gvtest
        self.args = args
        self.n = args.nodes
        self.names = [f"gw{i}" for i in range(1, self.n + 1)]
        self.ip = {f"gw{i}": node_ip(i) for i in range(1, self.n + 1)}
        self.ns = {f"gw{i}": f"{PREFIX}-n{i}" for i in range(1, self.n + 1)}
        self.work = Path(args.workdir)
        self.logs = self.work / "logs"
        self.logs.mkdir(exist_ok=True)
        self.scope = gvtest.push_scope("netns_loss", self.logs)
        self.token = base64.b64encode(os.urandom(24)).decode().strip("=").replace("/", "_")
        (self.work / "admin.token").write_text(self.token + "\n")
        (self.work / "cluster.key").write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
        os.chmod(self.work / "admin.token", 0o600)
        os.chmod(self.work / "cluster.key", 0o600)
        self.nodes: dict[str, object] = {}
        self.echoes: dict[str, object] = {}
        self.local = threading.local()

    # -- processes --
    def config(self, name: str, first: str) -> str:
        i = self.names.index(name) + 1
        targets = ", ".join(f"{{address: '{node_ip(k)}:{ECHO_PORT}'}}" for k in range(1, self.n + 1))
        join = "" if name == first else f"  join: ['{self.ip[first]}:{GOSSIP_PORT}']\n"
        data = self.work / f"{name}.data"
        data.mkdir(exist_ok=True)
        return (
            "node:\n"
            f"  name: {name}\n"
            f"  listen: {self.ip[name]}:{PROXY_PORT}\n"
            f"  admin: {self.ip[name]}:{ADMIN_PORT}\n"
            f"  admin_token_file: {self.work / 'admin.token'}\n"
            f"  gossip: {self.ip[name]}:{GOSSIP_PORT}\n"
            f"  cluster_key_file: {self.work / 'cluster.key'}\n"
            f"  data_dir: {data}\n"
            "  workers: 1\n"
            "  access_log: false\n"
            f"{join}"
            "services:\n"
            "  - name: s\n"
            f"    targets: [{targets}]\n"
            "    health_check: {path: /healthz, interval: 2s, timeout: 1s}\n"
            "routes:\n"
            "  - name: root\n"
            "    match: {paths: ['/']}\n"
            "    service: s\n"
            "  - name: rl\n"
            "    match: {paths: ['/rl']}\n"
            "    service: s\n"
            "    plugins:\n"
            f"      - rate_limit: {{limit: {RL_LIMIT}, window: 1s, key: route, scope: cluster}}\n"
            f"# node {i} of {self.n}\n"
        )

    def start(self) -> None:
        Proc = self.gvtest.Proc
        binary = self.gvtest.binary()
        for k, name in enumerate(self.names, 1):
            e = Proc(f"echo-{k}", ["ip", "netns", "exec", self.ns[name], binary, "echo", "--listen",
                                   f"{self.ip[name]}:{ECHO_PORT}", "--name", f"echo-{k}"])
            e.start()
            self.echoes[name] = e
        first = self.names[0]
        for name in self.names:
            path = self.work / f"{name}.yaml"
            path.write_text(self.config(name, first))
            p = Proc(f"node-{name}", ["ip", "netns", "exec", self.ns[name], binary, "run", "-c",
                                      str(path)])
            p.start()
            self.nodes[name] = p
            self.gvtest.wait_until(lambda n=name: self.admin_json(n, "/health", timeout=2),
                                   30, f"{name}'s admin API to answer")

    def dead_processes(self) -> list[str]:
        return [p.label for p in list(self.nodes.values()) + list(self.echoes.values())
                if not p.alive()]

    # -- admin API --
    def session(self):
        import requests

        s = getattr(self.local, "s", None)
        if s is None:
            s = self.local.s = requests.Session()
            s.headers["Authorization"] = f"Bearer {self.token}"
        return s

    def admin_url(self, name: str, path: str) -> str:
        return f"http://{self.ip[name]}:{ADMIN_PORT}{path}"

    def admin_json(self, name: str, path: str, timeout: float = ADMIN_TIMEOUT):
        r = self.session().get(self.admin_url(name, path), timeout=timeout)
        r.raise_for_status()
        return r.json()

    def put_route(self, on: str, route: str, path: str):
        body = {"match": {"paths": [path]}, "service": "s"}
        return self.session().put(self.admin_url(on, f"/config/routes/{route}"), json=body,
                                  timeout=ADMIN_TIMEOUT)

    def members(self, name: str) -> dict[str, str]:
        return {m["name"]: m["state"] for m in self.admin_json(name, "/cluster/members", 10)}

    def digest(self, name: str) -> str:
        return self.admin_json(name, "/status", 10)["config_digest"]

    def routes(self, name: str) -> set[str]:
        return {r["name"] for r in self.admin_json(name, "/config/routes", 10)}

    def agree(self, names: list[str], want: set[str]) -> bool:
        """True when every node of names holds every route of want and all
        their digests are equal."""
        digests = set()
        for n in names:
            if not want <= self.routes(n):
                return False
            digests.add(self.digest(n))
        return len(digests) == 1

    def healthy_targets(self, name: str) -> int:
        b = self.gvtest.flatten_backends(self.admin_json(name, "/backends", 10))
        return len([x for x in b if x.get("healthy")])

    def sees(self, observer: str, who: list[str], state: str) -> bool:
        m = self.members(observer)
        return all(m.get(w) == state for w in who)

    # -- iptables in the node namespaces --
    def ipt(self, name: str, *rule: str) -> None:
        sh("ip", "netns", "exec", self.ns[name], "iptables", "-w", *rule)

    def loss_on(self) -> None:
        p = f"{LOSS:.4f}"
        for n in self.names:
            self.ipt(n, "-N", "GVLOSS")
            self.ipt(n, "-A", "GVLOSS", "-m", "statistic", "--mode", "random", "--probability", p,
                     "-j", "DROP")
            self.ipt(n, "-A", "INPUT", "!", "-i", "lo", "-j", "GVLOSS")
            self.ipt(n, "-A", "OUTPUT", "!", "-o", "lo", "-j", "GVLOSS")

    def loss_counts(self) -> tuple[int, int]:
        """Packets the loss rules saw and dropped, over every node: the
        effective loss, measured."""
        seen = dropped = 0
        for n in self.names:
            out = sh("ip", "netns", "exec", self.ns[n], "iptables", "-w", "-L", "-v", "-x", "-n")
            chain = None
            for line in out.stdout.splitlines():
                f = line.split()
                if line.startswith("Chain "):
                    chain = f[1]
                elif len(f) > 2 and f[0].isdigit():
                    if chain in ("INPUT", "OUTPUT") and f[2] == "GVLOSS":
                        seen += int(f[0])
                    elif chain == "GVLOSS" and f[2] == "DROP":
                        dropped += int(f[0])
        return seen, dropped

    def loss_off(self) -> None:
        for n in self.names:
            self.ipt(n, "-F", "GVLOSS")

    def cut(self, side_a: list[str], side_b: list[str]) -> None:
        for mine, other in ((side_a, side_b), (side_b, side_a)):
            for n in mine:
                self.ipt(n, "-N", "GVPART")
                self.ipt(n, "-I", "INPUT", "-j", "GVPART")
                self.ipt(n, "-I", "OUTPUT", "-j", "GVPART")
                for o in other:
                    self.ipt(n, "-A", "GVPART", "-s", self.ip[o], "-j", "DROP")
                    self.ipt(n, "-A", "GVPART", "-d", self.ip[o], "-j", "DROP")

    def heal(self) -> None:
        for n in self.names:
            self.ipt(n, "-F", "GVPART")

    def stop(self) -> list[str]:
        return self.gvtest.pop_scope(self.scope)


class Monitor:
    """Polls every node's GET /cluster/members about once a second and keeps
    every view that is not "all alive", labelled with the phase."""

    def __init__(self, c: Cluster, clock: Clock) -> None:
        self.c, self.clock = c, clock
        self.phase = "settle"
        self.events: list[tuple[float, str, str, str, str]] = []  # t, phase, observer, member, state
        self.polls = 0
        self.poll_errors: dict[str, int] = {}
        self.healthy: list[tuple[float, str, str, int]] = []  # t, phase, observer, healthy targets
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in c.names]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def run(self, observer: str) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            phase = self.phase
            try:
                view = self.c.members(observer)
                with self.lock:
                    self.polls += 1
                    for member, state in view.items():
                        if state != "alive":
                            self.events.append((self.clock.now(), phase, observer, member, state))
                up = self.c.healthy_targets(observer)
                with self.lock:
                    self.healthy.append((self.clock.now(), phase, observer, up))
            except Exception as e:  # noqa: BLE001 - counted
                with self.lock:
                    k = f"{phase}: {error_kind(e)}"
                    self.poll_errors[k] = self.poll_errors.get(k, 0) + 1
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def seen(self, phase: str, state: str) -> list[tuple]:
        with self.lock:
            return [e for e in self.events if e[1] == phase and e[4] == state]

    def fewest_healthy(self, phase: str) -> tuple[int, float]:
        """The fewest healthy targets any node showed in phase, and for how
        many seconds (summed over nodes, at 1 s per poll) one showed none."""
        with self.lock:
            counts = [h[3] for h in self.healthy if h[1] == phase]
        return (min(counts) if counts else -1), float(counts.count(0))

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(ADMIN_TIMEOUT + 5)


class Traffic:
    """GETs through the proxies: `threads` senders, each paced at rate/threads
    per second on its own keep-alive connections, visiting the nodes in turn
    (or one fixed node). Results are counted per phase (a callable)."""

    NAME = re.compile(rb'"name":\s*"([^"]+)"')

    def __init__(self, c: Cluster, clock: Clock, path: str, rate: float, threads: int,
                 phase, fixed: bool = False) -> None:
        self.c, self.clock, self.path, self.phase = c, clock, path, phase
        self.per_thread = rate / threads
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok: dict[str, int] = {}
        self.fail: dict[str, dict[str, int]] = {}
        self.by_status: dict[str, dict[int, int]] = {}
        self.by_echo: dict[str, int] = {}
        self.latency: dict[str, list[float]] = {}
        self.admitted_by_sec: dict[int, int] = {}
        self.failure_times: list[tuple[float, str, str]] = []  # t, phase, kind
        self.sent_by_sec: dict[int, int] = {}
        self.t0 = 0.0
        names = c.names
        self.threads = []
        for k in range(threads):
            order = [names[k % len(names)]] if fixed else names[k % len(names):] + names[:k % len(names)]
            self.threads.append(threading.Thread(target=self.run, args=(order,), daemon=True))

    def start(self) -> None:
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(HTTP_TIMEOUT + 5)

    def count(self, phase: str, sec: int, status: int | None, kind: str | None, dt: float,
              echo: str | None) -> None:
        with self.lock:
            self.sent_by_sec[sec] = self.sent_by_sec.get(sec, 0) + 1
            if status is not None:
                self.by_status.setdefault(phase, {})
                self.by_status[phase][status] = self.by_status[phase].get(status, 0) + 1
            if kind is None:
                self.ok[phase] = self.ok.get(phase, 0) + 1
                self.latency.setdefault(phase, []).append(dt)
                self.admitted_by_sec[sec] = self.admitted_by_sec.get(sec, 0) + 1
                if echo:
                    self.by_echo[echo] = self.by_echo.get(echo, 0) + 1
            else:
                f = self.fail.setdefault(phase, {})
                f[kind] = f.get(kind, 0) + 1
                if kind != "limited" and len(self.failure_times) < 100000:
                    self.failure_times.append((self.clock.now(), phase, kind))

    def run(self, order: list[str]) -> None:
        conns: dict[str, http.client.HTTPConnection] = {}
        i = 0
        nxt = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if now < nxt:
                if self.stop.wait(nxt - now):
                    break
            nxt += 1.0 / self.per_thread
            if nxt < time.monotonic() - 1.0:  # a long stall: do not burst to catch up
                nxt = time.monotonic()
            node = order[i % len(order)]
            i += 1
            phase = self.phase()
            start = time.monotonic()
            sec = int(start - self.t0)
            c = conns.get(node)
            if c is None:
                c = conns[node] = http.client.HTTPConnection(self.c.ip[node], PROXY_PORT,
                                                             timeout=HTTP_TIMEOUT)
            status, kind, echo = None, None, None
            try:
                c.request("GET", self.path)
                r = c.getresponse()
                body = r.read()
                status = r.status
                if status == 200:
                    m = self.NAME.search(body[:200])
                    echo = m.group(1).decode() if m else None
                elif not (status == 429 and self.path == "/rl"):
                    kind = f"status {status}"
                else:
                    kind = "limited"
                if r.will_close:
                    c.close()
                    conns.pop(node, None)
            except Exception as e:  # noqa: BLE001 - every failure is counted by kind
                kind = error_kind(e)
                c.close()
                conns.pop(node, None)
            # a request that spans a phase change counts in neither, but in
            # "A->B" (one sent just before a cut may wait out a read timeout)
            end_phase = self.phase()
            if end_phase != phase:
                phase = f"{phase}->{end_phase}"
            self.count(phase, sec, status, kind, time.monotonic() - start, echo)
        for c in conns.values():
            c.close()


class Changes:
    """A route PUT every ~CHANGE_EVERY seconds on a random node of `on`."""

    def __init__(self, c: Cluster, clock: Clock, prefix: str, rng: random.Random) -> None:
        self.c, self.clock, self.prefix, self.rng = c, clock, prefix, rng
        self.made: list[tuple[str, str, float]] = []  # route, node, t
        self.failed: list[str] = []
        self.on = list(c.names)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.lock = threading.Lock()

    def run(self) -> None:
        k = 0
        while not self.stop.wait(CHANGE_EVERY * self.rng.uniform(0.75, 1.25)):
            with self.lock:
                node = self.rng.choice(self.on)
            k += 1
            route = f"{self.prefix}{k}"
            try:
                r = self.c.put_route(node, route, f"/{self.prefix}/{k}")
                if r.status_code == 200:
                    self.made.append((route, node, self.clock.now()))
                else:
                    self.failed.append(f"{route} on {node}: {r.status_code} {r.text[:100]}")
            except Exception as e:  # noqa: BLE001 - reported
                self.failed.append(f"{route} on {node}: {error_kind(e)}")

    def routes(self) -> set[str]:
        return {m[0] for m in self.made}


APPLIED = re.compile(r"config: applied routes/(\S+) from (\S+), (\d+) ms after it was made")
MEMBER = re.compile(r"cluster: (\S+) \((\S+)\) (\w+) -> (\w+)")


def log_text(p, start: int = 0, end: int | None = None) -> str:
    with open(p.stderr_path, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(max(0, end - start))
    return data.decode("utf-8", "replace")


def log_size(p) -> int:
    try:
        return os.path.getsize(p.stderr_path)
    except OSError:
        return 0


def wait_timed(gvtest, pred, deadline: float, what: str) -> float:
    """Waits for pred; returns the seconds it took (raises on the deadline)."""
    t = time.monotonic()
    gvtest.wait_until(pred, deadline, what, interval=0.2, max_interval=1.0)
    return time.monotonic() - t


def fmt_ms(v: float) -> str:
    return "-" if v != v else f"{v:.0f} ms"


def inner(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    failures: list[str] = []
    rows: list[tuple[str, str]] = []
    c = Cluster(args)
    gvtest = c.gvtest
    clock = Clock()
    phase = ["settle"]
    stopping = threading.Event()

    def on_term(_s, _f):
        stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    monitor = traffic = rl = None
    changes = None
    try:
        print(f"netns_loss: {args.nodes} nodes, loss {LOSS:.0%} per link and direction for "
              f"{args.seconds} s, partition {args.partition_seconds} s, seed {args.seed}")
        c.start()
        everyone = c.names
        seeds = {"root", "rl"}
        t = wait_timed(gvtest, lambda: all(c.sees(n, everyone, "alive") for n in everyone),
                       SETTLE_DEADLINE, "5 alive members on every node")
        wait_timed(gvtest, lambda: c.agree(everyone, seeds), SETTLE_DEADLINE, "one digest")

        def all_healthy() -> bool:
            return all(c.healthy_targets(n) == c.n for n in everyone)

        wait_timed(gvtest, all_healthy, SETTLE_DEADLINE, "every target healthy on every node")
        print(f"netns_loss: cluster formed ({clock.now():.1f} s)")

        # ---- loss -----------------------------------------------------------
        c.loss_on()
        phase[0] = "loss"
        loss_start_offsets = {n: log_size(p) for n, p in c.nodes.items()}
        monitor = Monitor(c, clock)
        monitor.phase = "loss"
        monitor.start()
        traffic = Traffic(c, clock, "/", TRAFFIC_RATE, TRAFFIC_THREADS, lambda: phase[0])
        traffic.start()
        changes = Changes(c, clock, "c", rng)
        changes.thread.start()
        loss_t0 = clock.now()
        rl_at = min(10.0, max(0.0, args.seconds - RL_SECONDS))
        time.sleep(rl_at)
        print(f"netns_loss: rate limit phase ({RL_SECONDS} s, {RL_RATE} req/s offered)")
        rl = Traffic(c, clock, "/rl", RL_RATE, 2 * c.n, lambda: phase[0], fixed=True)
        rl.start()
        time.sleep(RL_SECONDS)
        rl.finish()
        time.sleep(max(0.0, loss_t0 + args.seconds - clock.now()))
        changes.stop.set()
        changes.thread.join(ADMIN_TIMEOUT + 5)
        loss_routes = changes.routes() | seeds
        print(f"netns_loss: loss period over ({len(changes.made)} changes); waiting for agreement")
        try:
            t_conv = wait_timed(gvtest, lambda: c.agree(everyone, loss_routes), CONVERGE_DEADLINE,
                                "every route on every node, equal digests (loss on)")
            rows.append(("loss: all nodes agree after the last change", f"{t_conv:.1f} s"))
        except gvtest.WaitTimeout as e:
            failures.append(f"loss: no agreement: {e}")
        if changes.failed:
            failures.append(f"loss: {len(changes.failed)} route PUTs failed: {changes.failed[:5]}")
        loss_end_offsets = {n: log_size(p) for n, p in c.nodes.items()}
        seen, dropped = c.loss_counts()
        rows.append(("loss: packets through the loss rules / dropped",
                     f"{seen} / {dropped} ({100 * dropped / max(seen, 1):.2f} %)"))
        phase[0] = "partition"
        monitor.phase = "partition"
        loss_secs = clock.now() - loss_t0

        # ---- partition --------------------------------------------------------
        side_a, side_b = everyone[:2], everyone[2:]
        c.cut(side_a, side_b)
        part_t0 = time.monotonic()
        print(f"netns_loss: partition {side_a} | {side_b}")
        pa = Changes(c, clock, "pa", rng)
        pa.on = side_a
        pb = Changes(c, clock, "pb", rng)
        pb.on = side_b
        pa.thread.start()
        pb.thread.start()
        seen_dead: dict[str, float] = {}

        def other_side_dead() -> bool:
            for side, other in ((side_a, side_b), (side_b, side_a)):
                key = "+".join(side)
                if key not in seen_dead and all(c.sees(n, other, "dead") for n in side):
                    seen_dead[key] = time.monotonic() - part_t0
            return len(seen_dead) == 2

        try:
            wait_timed(gvtest, other_side_dead, max(args.partition_seconds, 60) + 60,
                       "each side to see the other dead")
        except gvtest.WaitTimeout as e:
            failures.append(f"partition: {e}")
        for side in (side_a, side_b):
            key = "+".join(side)
            rows.append((f"partition: {','.join(side)} see the other side dead after",
                         f"{seen_dead[key]:.1f} s" if key in seen_dead else "never"))
        time.sleep(max(0.0, part_t0 + args.partition_seconds - time.monotonic()))
        for ch in (pa, pb):
            ch.stop.set()
            ch.thread.join(ADMIN_TIMEOUT + 5)
            if ch.failed:
                failures.append(f"partition: {len(ch.failed)} route PUTs failed: {ch.failed[:5]}")
        for side, ch in ((side_a, pa), (side_b, pb)):
            try:
                t_side = wait_timed(gvtest, lambda s=side, w=ch.routes() | loss_routes: c.agree(s, w),
                                    CONVERGE_DEADLINE, f"{side} to agree internally")
                rows.append((f"partition: {','.join(side)} agree ({len(ch.made)} changes) after",
                             f"{t_side:.1f} s after the last"))
            except gvtest.WaitTimeout as e:
                failures.append(f"partition: {e}")
        part_secs = time.monotonic() - part_t0

        # ---- heal -------------------------------------------------------------
        c.heal()
        phase[0] = "heal"
        monitor.phase = "heal"
        heal_t0 = time.monotonic()
        print("netns_loss: healed; waiting for 5 alive and one digest everywhere")
        all_routes = loss_routes | pa.routes() | pb.routes()
        try:
            t_alive = wait_timed(gvtest, lambda: all(c.sees(n, everyone, "alive") for n in everyone),
                                 CONVERGE_DEADLINE, "every node to see all alive after the heal")
            rows.append(("heal: all alive on every node after", f"{t_alive:.1f} s"))
            wait_timed(gvtest, lambda: c.agree(everyone, all_routes), CONVERGE_DEADLINE,
                       "every change of both sides on every node, equal digests")
            rows.append(("heal: every change everywhere, one digest after",
                         f"{time.monotonic() - heal_t0:.1f} s"))
        except gvtest.WaitTimeout as e:
            failures.append(f"heal: {e}")
        time.sleep(max(0.0, heal_t0 + HEAL_WATCH - time.monotonic()))
        heal_secs = time.monotonic() - heal_t0
        heal_at = clock.now() - heal_secs

        # ---- verdicts -----------------------------------------------------------
        traffic.finish()
        monitor.finish()
        dead = c.dead_processes()
        if dead:
            failures.append(f"processes died during the run: {dead}")
        report(c, rows, failures, monitor, traffic, rl, changes, pa, pb,
               loss_start_offsets, loss_end_offsets,
               loss_secs, part_secs, heal_secs, heal_at)
    except KeyboardInterrupt:
        failures.append("interrupted")
    except Exception as e:  # noqa: BLE001 - any harness error fails the run with its reason
        import traceback

        traceback.print_exc()
        failures.append(f"harness error: {type(e).__name__}: {e}")
    finally:
        for x in (traffic, rl, monitor):
            if x is not None:
                x.stop.set()
        if changes is not None:
            changes.stop.set()
        try:
            c.loss_off()  # a clean leave, quickly
        except Exception:  # noqa: BLE001 - the namespaces may be gone
            pass
        problems = c.stop()
        if problems and not stopping.is_set():
            failures += [f"process: {p}" for p in problems]

    if failures:
        print("\nnetns_loss: FAILED")
        for f in failures:
            print(f"  - {f}")
        return 1
    print("\nnetns_loss: PASSED")
    return 0


def report(c, rows, failures, monitor, traffic, rl, changes, pa, pb, loss_start, loss_end,
           loss_secs, part_secs, heal_secs, heal_at) -> None:
    # membership during the loss phase: polls and the nodes' own log lines
    dead_polls = monitor.seen("loss", "dead") + monitor.seen("loss", "left")
    suspect_polls = monitor.seen("loss", "suspect")
    transitions: dict[str, int] = {}
    suspected: dict[str, int] = {}
    dead_logs = []
    spreads: dict[str, list[int]] = {}
    for name, p in c.nodes.items():
        text = log_text(p, loss_start[name], loss_end[name])
        for m in MEMBER.finditer(text):
            who, old, new = m.group(1), m.group(3), m.group(4)
            key = f"{old} -> {new}"
            transitions[key] = transitions.get(key, 0) + 1
            if new == "suspect":
                suspected[who] = suspected.get(who, 0) + 1
            if new in ("dead", "left"):
                dead_logs.append(f"{name}: {m.group(0)}")
        for m in APPLIED.finditer(log_text(p)):
            spreads.setdefault(m.group(1), []).append(int(m.group(3)))
    # a suspicion is refuted when its member turns alive again before any death
    suspicions = transitions.get("alive -> suspect", 0)
    refuted = transitions.get("suspect -> alive", 0)
    if dead_polls or dead_logs:
        failures.append(f"loss: false deaths: {len(dead_logs)} log lines {dead_logs[:5]}, "
                        f"{len(dead_polls)} polls {dead_polls[:5]}")

    def spread_rows(label, made):
        per_change, per_copy, missing = [], [], []
        for route, _origin, _t in made:
            d = spreads.get(route, [])
            per_copy += d
            if len(d) >= c.n - 1:
                per_change.append(max(d))
            else:
                missing.append(f"{route} ({len(d)} of {c.n - 1} logged)")
        rows.append((f"{label}: changes acknowledged", str(len(made))))
        rows.append((f"{label}: spread (last node) p50/p99/max",
                     f"{fmt_ms(pct(per_change, 50))} / {fmt_ms(pct(per_change, 99))} / "
                     f"{fmt_ms(max(per_change) if per_change else float('nan'))}"))
        rows.append((f"{label}: each copy p50/p99/max",
                     f"{fmt_ms(pct(per_copy, 50))} / {fmt_ms(pct(per_copy, 99))} / "
                     f"{fmt_ms(max(per_copy) if per_copy else float('nan'))}"))
        if missing:
            rows.append((f"{label}: changes with copies not in the logs",
                         f"{len(missing)}: {', '.join(missing[:4])}"))

    spread_rows("loss", changes.made)

    rows.append(("loss: membership polls (all nodes)", str(monitor.polls)))
    rows.append(("loss: false deaths (polls / log lines)", f"{len(dead_polls)} / {len(dead_logs)}"))
    rows.append(("loss: suspicions logged (observer x member)",
                 f"{suspicions} (refuted {refuted}); by member: "
                 + (", ".join(f"{k} {v}" for k, v in sorted(suspected.items())) or "none")))
    rows.append(("loss: polls that showed a suspect", str(len(suspect_polls))))
    if monitor.poll_errors:
        rows.append(("admin polls that failed", ", ".join(f"{k} {v}" for k, v in
                                                           sorted(monitor.poll_errors.items()))))

    phases = ["loss", "loss->partition", "partition", "partition->heal", "heal"]
    phases += sorted((set(traffic.ok) | set(traffic.fail)) - set(phases))
    for ph in phases:
        ok = traffic.ok.get(ph, 0)
        fails = traffic.fail.get(ph, {})
        total = ok + sum(fails.values())
        lat = traffic.latency.get(ph, [])
        if total == 0 and ph != "loss":
            continue
        rows.append((f"traffic {ph}: requests / failed",
                     f"{total} / {sum(fails.values())}"
                     + (f" ({100 * sum(fails.values()) / total:.3f} %)" if total else "")
                     + (": " + ", ".join(f"{k} {v}" for k, v in sorted(fails.items())) if fails else "")))
        if lat:
            rows.append((f"traffic {ph}: latency p50/p99/max",
                         f"{1000 * pct(lat, 50):.1f} / {1000 * pct(lat, 99):.0f} / "
                         f"{1000 * max(lat):.0f} ms"))
        # the loss period, and the heal (where stale verdicts from the far
        # side once took every target out: docs/fault-testing.md)
        if ph in ("loss", "heal") and total:
            frac = sum(fails.values()) / total
            if frac > TRAFFIC_MAX_FAILURES:
                failures.append(f"traffic: {frac:.3%} of {ph}-phase requests failed "
                                f"(limit {TRAFFIC_MAX_FAILURES:.1%}): {fails}")
        if ph in ("loss", "partition", "heal"):
            fewest, none_s = monitor.fewest_healthy(ph)
            rows.append((f"{ph}: fewest healthy targets on a node / node-seconds with none",
                         f"{fewest} of {c.n} / {none_s:.0f}"))
        if ph == "heal" and fails:
            times = [t - heal_at for t, p, _ in traffic.failure_times if p == ph]
            rows.append(("heal: failed requests from / to (after the heal)",
                         f"{min(times):.1f} s / {max(times):.1f} s"))
        if ph == "loss" and total == 0:
            failures.append("traffic: no requests were sent in the loss phase")
    rows.append(("traffic: 200s by upstream", ", ".join(f"{k} {v}" for k, v in
                                                        sorted(traffic.by_echo.items()))))

    secs = [rl.admitted_by_sec.get(s, 0) for s in range(RL_SECONDS)]
    sent = [rl.sent_by_sec.get(s, 0) for s in range(RL_SECONDS)]
    mean = statistics.mean(secs)
    rl_fails = {k: v for k, v in rl.fail.get("loss", {}).items() if k != "limited"}
    rows.append((f"rate limit: offered / admitted per s (limit {RL_LIMIT})",
                 f"{statistics.mean(sent):.0f} / mean {mean:.1f}, min {min(secs)}, max {max(secs)}"))
    rows.append(("rate limit: admitted each second", " ".join(str(x) for x in secs)))
    if rl_fails:
        rows.append(("rate limit: failures other than 429", str(rl_fails)))
    if abs(mean - RL_LIMIT) > RL_TOLERANCE * RL_LIMIT:
        failures.append(f"rate limit: mean {mean:.1f} admitted/s is not within "
                        f"{RL_TOLERANCE:.0%} of {RL_LIMIT}")
    spread_rows("partition (to the other side: after the heal)", pa.made + pb.made)
    rows.insert(0, ("phases: loss / partition / heal", f"{loss_secs:.0f} s / {part_secs:.0f} s / "
                                                       f"{heal_secs:.0f} s"))
    rows.insert(1, ("loss per link and direction (node-node path)",
                    f"{LOSS:.0%} ({1 - (1 - LOSS) ** 2:.2%})"))

    width = max(len(k) for k, _ in rows)
    print("\n" + "-" * (width + 40))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("-" * (width + 40))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=300, help="loss period (default 300)")
    ap.add_argument("--partition-seconds", type=int, default=30, help="partition (default 30)")
    ap.add_argument("--nodes", type=int, default=5, help="nodes (default 5; at least 3)")
    ap.add_argument("--keep", action="store_true", help="keep the logs directory")
    ap.add_argument("--seed", type=int, default=None, help="random seed of the change schedule")
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.seconds < RL_SECONDS:
        ap.error(f"--seconds must be at least {RL_SECONDS} (the rate-limit phase)")
    if not 3 <= args.nodes <= 50:
        ap.error("--nodes must be 3..50")
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
