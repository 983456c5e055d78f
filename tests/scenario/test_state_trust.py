"""State you can trust on the bad days (issue 15): a node restarted alone
serves everything it served before, whatever node's file or API call it came
from; an entry that does not validate (a buggy peer, a damaged file) is
quarantined on every node and never blocks other changes; a change that
cannot be written to data_dir is refused and kept nowhere; an acknowledged
change survives SIGKILL."""

import hashlib
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest
import requests

from gvtest import Echo, Node, wait_until

SEED = """
services:
  - name: echo
    targets: [{address: ECHO}]
routes:
  - name: base
    match: {paths: [/base]}
    service: echo
"""

KIND_ROUTES = 1
HLC_EPOCH_MS = 1735689600000
HLC_LOGICAL_BITS = 12


def route(path, service="echo"):
    return {"match": {"paths": [path]}, "service": service}


def serves(node, path, status=200):
    try:
        return node.get(path, timeout=2).status_code == status
    except requests.RequestException:
        return False


def members_alive(nodes):
    want = {n.name for n in nodes}

    def check():
        for n in nodes:
            ms = n.admin_get("/cluster/members").json()
            if {m["name"] for m in ms if m["state"] == "alive"} != want:
                return False
        return True
    wait_until(check, 10, "every node to see every other alive")


def stats(node):
    return node.admin_get("/status").json()["config_state"]


# ---- writing a state-log record by hand, as a damaged file or a buggy peer would ----

def _mp_str(s: bytes, bin_: bool = False) -> bytes:
    n = len(s)
    if bin_:
        return (b"\xc4" + bytes([n]) if n < 256 else b"\xc5" + struct.pack(">H", n)) + s
    return (bytes([0xa0 | n]) if n < 32 else b"\xd9" + bytes([n])) + s


def entry_record(kind: int, name: str, origin: str, value: bytes) -> bytes:
    """One state-log record: "GVLR", length, the msgpack entry
    [kind, name, stamp, origin, rank, deleted, value] and its SHA-256 (the
    sum of a node without a cluster key)."""
    stamp = (int(time.time() * 1000) - HLC_EPOCH_MS) << HLC_LOGICAL_BITS
    body = (b"\x97" + bytes([kind]) + _mp_str(name.encode()) + b"\xcf" + struct.pack(">Q", stamp)
            + _mp_str(origin.encode()) + b"\xce" + struct.pack(">I", 0xFFFFFFFF) + b"\xc2"
            + _mp_str(value, bin_=True))
    head = b"GVLR" + struct.pack(">I", len(body))
    return head + body + hashlib.sha256(head + body).digest()


# ---- tests ------------------------------------------------------------------------------

def test_node_restarted_alone_serves_what_peers_gave_it():
    echo = Echo("e1")
    gw1 = Node(SEED.replace("ECHO", echo.address), name="gw1")
    gw2 = Node("", name="gw2", args=["--join", gw1.gossip])  # its file: only node:
    members_alive([gw1, gw2])
    assert gw1.admin_put("/config/routes/api", json=route("/api")).status_code == 200
    for path in ("/base", "/api"):
        wait_until(lambda: serves(gw2, path), 10, f"gw2 to serve {path} learned from gw1")
    gw2.stop()
    gw1.stop()
    gw2.start()  # alone: its seed (gw1) is down
    for path in ("/base", "/api"):
        assert serves(gw2, path), f"gw2 restarted alone does not serve {path}\n{gw2.logs()}"
    assert not stats(gw2)["invalid"]
    assert "does not validate" not in gw2.logs()


def test_acknowledged_changes_survive_sigkill():
    echo = Echo("e1")
    node = Node(SEED.replace("ECHO", echo.address))
    for i in range(20):
        r = node.admin_put(f"/config/routes/r{i}", json=route(f"/r{i}"))
        assert r.status_code == 200, r.text
    assert node.admin_delete("/config/routes/base").status_code == 204
    node.kill()
    node.start()
    for i in range(20):
        assert node.admin_get(f"/config/routes/r{i}").status_code == 200, f"r{i} lost"
    assert node.admin_get("/config/routes/base").status_code == 404
    assert serves(node, "/r19")


def test_poisoned_entries_are_quarantined_everywhere_and_a_put_fixes_them():
    echo = Echo("e1")
    cfg = SEED.replace("ECHO", echo.address)
    gw1 = Node(cfg, name="gw1")
    gw2 = Node(cfg, name="gw2", args=["--join", gw1.gossip])
    gw3 = Node(cfg, name="gw3", args=["--join", gw1.gossip])
    nodes = [gw1, gw2, gw3]
    members_alive(nodes)
    # gw3's file is damaged while it is down: a value that is not an object,
    # and a route naming a service that does not exist
    gw3.stop()
    with open(gw3.data_dir / "cluster-state.log", "ab") as f:
        f.write(entry_record(KIND_ROUTES, "bad", "gw9", b'"oops"'))
        f.write(entry_record(KIND_ROUTES, "orphan", "gw9",
                             b'{"match":{"paths":["/orphan"]},"name":"orphan","service":"nope"}'))
    gw3.start()

    def quarantined_everywhere():
        for n in nodes:
            for name in ("bad", "orphan"):
                r = n.admin_get(f"/config/routes/{name}")
                if r.status_code != 200 or r.json().get("invalid") is not True:
                    return False
        return True
    wait_until(quarantined_everywhere, 20, "both entries to be quarantined on every node")
    for n in nodes:
        assert serves(n, "/base")
        assert "grapevine_config_quarantined 2" in n.metrics()
    orphan = gw1.admin_get("/config/routes/orphan").json()
    assert "nope" in orphan["reason"] and orphan["stored"]["service"] == "nope"
    assert gw1.admin_get("/config/routes/bad").json()["stored"] == "oops"
    # other changes are not blocked, on any node
    for i, n in enumerate(nodes):
        r = n.admin_put(f"/config/routes/more{i}", json=route(f"/more{i}"))
        assert r.status_code == 200, r.text
    # a PUT of the same name replaces it; a DELETE removes it
    assert gw2.admin_put("/config/routes/bad", json=route("/bad")).status_code == 200
    assert gw1.admin_delete("/config/routes/orphan").status_code == 204

    def fixed_everywhere():
        for n in nodes:
            if not serves(n, "/bad") or not serves(n, "/more2"):
                return False
            if n.admin_get("/config/routes/orphan").status_code != 404:
                return False
            if "grapevine_config_quarantined 0" not in n.metrics():
                return False
        return True
    wait_until(fixed_everywhere, 20, "the fix to reach every node")


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, mounted at a directory: a data_dir that can fill up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            pass
    return filler


def test_a_change_that_cannot_be_saved_is_refused_and_kept_nowhere(small_disk):
    echo = Echo("e1")
    cfg = SEED.replace("ECHO", echo.address)
    data = small_disk / "gw1.data"
    gw1 = Node(cfg, name="gw1", node_extra=f"data_dir: {data}", start=False)
    gw1.config_path.write_text(gw1.config_text.replace(f"  data_dir: {gw1.data_dir}\n", ""))
    gw1.start()
    gw2 = Node(cfg, name="gw2", args=["--join", gw1.gossip])
    members_alive([gw1, gw2])
    filler = fill(small_disk)
    r = gw1.admin_put("/config/routes/lost", json=route("/lost"))
    assert r.status_code == 507, r.text
    assert "cannot be saved" in r.json()["error"]
    assert gw1.admin_get("/config/routes/lost").status_code == 404
    assert not serves(gw1, "/lost")
    assert "grapevine_config_changes_refused_unsaved_total 1" in gw1.metrics()
    # room again: the next change goes through, and reaches gw2; the refused
    # one, had it spread, would have reached gw2 before it
    filler.unlink()
    assert gw1.admin_put("/config/routes/kept", json=route("/kept")).status_code == 200
    wait_until(lambda: serves(gw2, "/kept"), 10, "gw2 to get the change made after the refusal")
    assert gw2.admin_get("/config/routes/lost").status_code == 404
    gw1.stop()
    gw1.start()
    assert gw1.admin_get("/config/routes/lost").status_code == 404
    assert gw1.admin_get("/config/routes/kept").status_code == 200
    gw1.stop()
    gw2.stop()


def test_the_state_log_is_compacted_and_reloads():
    echo = Echo("e1")
    node = Node(SEED.replace("ECHO", echo.address))
    # ~40 KB per version of one consumer: the log outgrows 1 MiB and the
    # image, and is folded into a new image
    for version in range(30):
        keys = [f"key-{version:02d}-{i:04d}-" + "k" * 24 for i in range(1000)]
        r = node.admin_put("/config/consumers/big", json={"key_auth": keys})
        assert r.status_code == 200, r.text
    wait_until(lambda: stats(node)["compactions"] >= 1, 10, "a compaction")
    st = stats(node)
    assert st["log_bytes"] < 1024 * 1024 and st["image_bytes"] > 0, st
    node.kill()
    node.start()
    got = node.admin_get("/config/consumers/big").json()
    assert got["key_auth"][0].startswith("key-29-0000-"), got["key_auth"][0]
    assert serves(node, "/base")
