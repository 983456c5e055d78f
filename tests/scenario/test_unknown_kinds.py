"""Objects of a kind this version does not know (what a newer node writes
during a rolling upgrade) reach a node through its saved state: the node keeps
them, saves them, passes them to a peer that joins, counts them, and leaves
them out of what it serves, while it goes on serving and taking changes."""

import hashlib
import struct
import time

import requests

from gvtest import Echo, Node, wait_until

CONFIG = """
services:
  - name: echo
    targets: [{address: ECHO}]
routes:
  - name: base
    match: {paths: [/base]}
    service: echo
"""

HLC_EPOCH_MS = 1735689600000  # cluster/hlc.h
HLC_LOGICAL_BITS = 12


def _str(s: str) -> bytes:
    b = s.encode()
    assert len(b) < 32
    return bytes([0xA0 | len(b)]) + b


def _entry(kind: int, name: str, stamp: int, origin: str, value: bytes | None) -> bytes:
    """One store entry as cluster/store.c encodes it (msgpack):
    [kind, name, stamp, origin, rank, deleted, value(bin)]."""
    value = value or b""
    return (b"\x97" + b"\xcc" + bytes([kind]) + _str(name) + b"\xcf" + struct.pack(">Q", stamp)
            + _str(origin) + b"\xce" + struct.pack(">I", 0xFFFFFFFF)
            + (b"\xc3" if not value else b"\xc2") + b"\xc4" + bytes([len(value)]) + value)


def state_file(entries: list[bytes], clock: int) -> bytes:
    """A data_dir image: "GVST", version 1, [clock, [entries]], SHA-256."""
    assert len(entries) < 16
    body = b"GVST\x01" + b"\x92\xcf" + struct.pack(">Q", clock) + bytes([0x90 | len(entries)])
    body += b"".join(entries)
    return body + hashlib.sha256(body).digest()


def unknown(node) -> int:
    return node.admin_get("/status").json()["config_state"]["unknown_kind_entries"]


def serves(node, path) -> bool:
    try:
        return node.get(path, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_unknown_kind_is_kept_and_passed_on_not_applied():
    echo = Echo()
    cfg = CONFIG.replace("ECHO", echo.address)
    gw1 = Node(cfg, name="gw1", start=False)
    stamp = ((int(time.time() * 1000) - HLC_EPOCH_MS) << HLC_LOGICAL_BITS) | 1
    (gw1.data_dir / "cluster-state.gvst").write_bytes(state_file([
        _entry(200, "from-the-future", stamp, "gw9", b'{"anything":["new"]}'),
        _entry(201, "deleted-there", stamp + 1, "gw9", None),
    ], stamp + 1))
    gw1.start()

    # Kept and counted, said once per kind, not part of the served state.
    assert unknown(gw1) == 2
    assert "grapevine_config_unknown_kind_entries 2" in gw1.metrics()
    logs = gw1.logs()
    assert logs.count("kind 200, which this version does not know") == 1, logs
    assert logs.count("kind 201, which this version does not know") == 1, logs
    assert set(gw1.admin_get("/config").json()) == {
        "services", "routes", "consumers", "plugins", "digest", "version"}
    assert serves(gw1, "/base")

    # Changes are taken as usual; replacing the whole state leaves them alone.
    r = gw1.admin_put("/config/routes/more", json={"match": {"paths": ["/more"]},
                                                  "service": "echo"})
    assert r.status_code == 200, r.text
    wait_until(lambda: serves(gw1, "/more"), 5, "/more to route")
    whole = gw1.admin_get("/config").json()
    del whole["digest"], whole["version"]
    whole["routes"] = [rt for rt in whole["routes"] if rt["name"] != "more"]
    r = gw1.admin_put("/config", json=whole)
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] == ["routes/more"], r.json()
    assert unknown(gw1) == 2

    # A node that joins gets them by anti-entropy, and serves all the same.
    gw2 = Node(cfg, name="gw2", args=["--join", gw1.gossip])
    wait_until(lambda: unknown(gw2) == 2, 10, "gw2 to hold the unknown kinds")
    wait_until(lambda: gw2.admin_get("/status").json()["config_digest"]
               == gw1.admin_get("/status").json()["config_digest"], 10, "equal digests")
    assert serves(gw2, "/base") and not serves(gw2, "/more")

    # They were saved with the later changes: a restart still has them.
    assert gw1.stop() == 0
    gw1.start()
    assert unknown(gw1) == 2
    assert serves(gw1, "/base")
