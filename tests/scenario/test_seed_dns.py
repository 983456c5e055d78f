"""Seeds from DNS (issue 18): a `join` name that resolves to many addresses (a
Kubernetes headless service, a swarm tasks.NAME, a compose service scaled to
N) is looked up again until joined and every `join_every` after, each address
is contacted, this node's own is skipped, and the cluster follows the name's
list as it changes:

- the name lists a and b: they form a cluster;
- the name lists only c: c and d form a cluster of their own (split on
  purpose: nothing tells either group about the other);
- the name lists all four: the groups merge, with no restart and no config
  change, through the lookups every join_every;
- a and b leave and the name lists c and d alone: a new node e joins through
  it, and a, restarted, rejoins through it too.

And the advertised address defaults to $POD_IP (with the gossip port) when
gossip listens on all addresses; a POD_IP that is not an IP is warned about.

The nodes listen on 127.0.0.2-6 with one gossip port, and run in a private
mount namespace where /etc/hosts is a file this test rewrites (the way
test_dns.py controls resolution). Needs root and unshare(1): skipped
otherwise."""

import os
import socket
import stat
from pathlib import Path

import pytest

from gvtest import Node, binary, free_port, run_cli, scaled, wait_until
from test_dns import Hosts, _namespace_works, shared_port

IPS = {"a": "127.0.0.2", "b": "127.0.0.3", "c": "127.0.0.4", "d": "127.0.0.5",
       "e": "127.0.0.6"}
SEEDS = "seeds.gv-test"


@pytest.fixture
def hosts(tmp_path):
    h = Hosts(tmp_path / "hosts", tmp_path / "grapevine-ns")
    h.set({"probe.gv-test": ["127.0.0.9"]})
    why = _namespace_works(h.path)
    if why:
        pytest.skip(why)
    Path(h.bin).write_text(
        "#!/bin/sh\n"
        f"exec unshare --mount -- sh -c 'mount --bind \"$1\" /etc/hosts && shift && "
        f"exec \"$@\"' sh '{h.path}' '{binary()}' \"$@\"\n")
    os.chmod(h.bin, stat.S_IRWXU)
    return h


class Cluster:
    def __init__(self, hosts: Hosts, tmp_path):
        self.hosts = hosts
        self.tmp = tmp_path
        ips = list(IPS.values())
        self.gossip, self.proxy, self.admin = (shared_port(*ips) for _ in range(3))
        self.nodes: dict[str, Node] = {}

    def seeds(self, *names: str) -> None:
        self.hosts.set({SEEDS: [IPS[n] for n in names]})

    def start(self, name: str) -> Node:
        ip = IPS[name]
        data = self.tmp / f"{name}.data"
        data.mkdir(exist_ok=True)
        n = Node(bin=self.hosts.bin, name=name, config=f"""
            node:
              name: {name}
              listen: {ip}:{self.proxy}
              admin: {ip}:{self.admin}
              gossip: {ip}:{self.gossip}
              join: {SEEDS}:{self.gossip}
              join_every: 1s
              gossip_profile: local
              data_dir: {data}
              access_log: false
            """)
        self.nodes[name] = n
        return n


def alive(node: Node) -> set:
    r = node.admin_get("/cluster/members", timeout=5)
    assert r.status_code == 200, r.text
    return {m["name"] for m in r.json() if m["state"] == "alive"}


def all_see(nodes, expected: set) -> bool:
    return all(alive(n) == expected for n in nodes)


def test_cluster_follows_seed_name(hosts, tmp_path):
    c = Cluster(hosts, tmp_path)
    wait = scaled(30)

    c.seeds("a")
    a, b = c.start("a"), c.start("b")
    wait_until(lambda: all_see([a, b], {"a", "b"}), wait, "a and b to see each other")

    c.seeds("c")
    cc, d = c.start("c"), c.start("d")
    wait_until(lambda: all_see([cc, d], {"c", "d"}), wait, "c and d to see each other")
    # Two groups: nothing has told either about the other.
    assert alive(a) == {"a", "b"} and alive(cc) == {"c", "d"}

    c.seeds("a", "b", "c", "d")
    wait_until(lambda: all_see([a, b, cc, d], {"a", "b", "c", "d"}), wait,
               "the groups to merge once the name lists all four")

    c.seeds("c", "d")
    a.stop()
    b.stop()
    wait_until(lambda: all_see([cc, d], {"c", "d"}), wait, "c and d to see a and b gone")
    e = c.start("e")
    wait_until(lambda: all_see([cc, d, e], {"c", "d", "e"}), wait,
               "e to join through the name that lists c and d")
    a2 = c.start("a")
    wait_until(lambda: all_see([cc, d, e, a2], {"a", "c", "d", "e"}), wait,
               "a, restarted, to rejoin through the name")


def test_join_every_rejects_bad_values(tmp_path):
    for bad, why in (("10ms", "at least"), ("2h", "at most"), ("soon", "bad duration")):
        cfg = tmp_path / "bad.yaml"
        cfg.write_text(f"node:\n  join: [seeds.gv-test:7946]\n  join_every: {bad}\n")
        r = run_cli("validate", "-c", str(cfg))
        assert r.returncode != 0, f"join_every: {bad} was accepted"
        assert "join_every" in r.stderr + r.stdout and why in r.stderr + r.stdout, r.stderr
    cfg.write_text("node:\n  join: [seeds.gv-test:7946]\n  join_every: 5s\n")
    r = run_cli("validate", "-c", str(cfg))
    assert r.returncode == 0, r.stderr


def advertised(pod_ip: str | None, tmp_path) -> tuple:
    """The address a node with gossip on all addresses advertises, given POD_IP."""
    env = dict(os.environ)
    env.pop("POD_IP", None)
    if pod_ip is not None:
        env["POD_IP"] = pod_ip
    gossip, proxy, admin = free_port(), free_port(), free_port()
    n = Node(name="pod", env=env, config=f"""
        node:
          name: pod
          listen: 127.0.0.1:{proxy}
          admin: 127.0.0.1:{admin}
          gossip: 0.0.0.0:{gossip}
          insecure_gossip: true
          access_log: false
        """)
    try:
        me = [m for m in n.admin_get("/cluster/members").json() if m["name"] == "pod"]
        assert len(me) == 1, me
        return me[0]["address"], gossip, n.logs()
    finally:
        n.stop()


def test_advertise_defaults_to_pod_ip(tmp_path):
    addr, port, _ = advertised("127.0.0.1", tmp_path)
    assert addr == f"127.0.0.1:{port}"
    addr, port, _ = advertised("::1", tmp_path)
    assert addr == f"[::1]:{port}"
    # Not an IP: warned about, and the host name is advertised as before.
    addr, port, logs = advertised("pod-7.example", tmp_path)
    assert addr == f"{socket.gethostname()}:{port}"
    assert "POD_IP" in logs and "not an IP address" in logs
