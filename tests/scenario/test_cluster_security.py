"""Gossip encryption: nodes with the cluster key form a cluster, a node with
another key is kept out (its messages dropped and counted), and the key is
rotated with `grapevine ctl keys` while membership stays up."""

import base64
import hashlib
import os

from gvtest import Node, run_cli, wait_until


def keyfile(tmp_path, name):
    key = os.urandom(32)
    path = tmp_path / name
    path.write_text(base64.b64encode(key).decode() + "\n")
    return path, base64.b64encode(key).decode(), hashlib.sha256(key).hexdigest()[:8]


def states(node):
    return {m["name"]: m["state"] for m in node.admin_get("/cluster/members").json()}


def ctl(node, *args):
    r = run_cli("ctl", "--admin", f"127.0.0.1:{node.admin_port}", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def dropped(node, reason):
    for line in node.admin_get("/metrics").text.splitlines():
        if line.startswith(f'grapevine_gossip_dropped_total{{reason="{reason}"}}'):
            return int(line.split()[-1])
    raise AssertionError(f"no dropped counter for {reason}")


def test_wrong_key_is_kept_out_and_rotation_keeps_the_cluster_up(tmp_path):
    a_path, _, a_id = keyfile(tmp_path, "a.key")
    b_path, b_text, b_id = keyfile(tmp_path, "b.key")
    extra_a = f"cluster_key_file: {a_path}"
    gw1 = Node(name="gw1", node_extra=extra_a)
    gw2 = Node(name="gw2", node_extra=extra_a, args=["--join", gw1.gossip])
    gw3 = Node(name="gw3", node_extra=extra_a, args=["--join", gw1.gossip])
    nodes = [gw1, gw2, gw3]
    full = {"gw1": "alive", "gw2": "alive", "gw3": "alive"}
    wait_until(lambda: all(states(n) == full for n in nodes), 3, "the keyed cluster to form")
    assert f"{a_id}   yes" in ctl(gw1, "keys")

    # A node with another key is never let in; gw1 counts its messages.
    intruder = Node(name="gw4", node_extra=f"cluster_key_file: {b_path}",
                    args=["--join", gw1.gossip])
    wait_until(lambda: dropped(gw1, "auth_failed") > 0, 5, "gw1 to drop the intruder's messages")
    assert "gw4" not in states(gw1)
    assert states(intruder) == {"gw4": "alive"}
    intruder.stop()

    # Rotation: install B everywhere, make it primary everywhere, remove A.
    for n in nodes:
        ctl(n, "keys", "install", b_text)
    for n in nodes:
        ctl(n, "keys", "use", b_id)
        assert states(n) == full
    for n in nodes:
        out = ctl(n, "keys", "remove", a_id)
        assert a_id not in out and f"{b_id}   yes" in out
    wait_until(lambda: all(states(n) == full for n in nodes), 3, "membership after rotation")
    # A node that only knows B can now join.
    gw4 = Node(name="gw4b", node_extra=f"cluster_key_file: {b_path}", args=["--join", gw1.gossip])
    wait_until(lambda: states(gw1).get("gw4b") == "alive" and states(gw4).get("gw1") == "alive",
               5, "a node with the new key to join")


def test_key_api_errors(tmp_path):
    a_path, _, a_id = keyfile(tmp_path, "a.key")
    n = Node(name="gw1", node_extra=f"cluster_key_file: {a_path}")
    r = n.admin_post("/cluster/keys", data="not json")
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = n.admin_post("/cluster/keys", json={"key": "dG9vIHNob3J0"})
    assert r.status_code == 400
    r = n.admin_delete(f"/cluster/keys/{a_id}")
    assert r.status_code == 400 and "primary" in r.json()["error"]
    r = n.admin_post("/cluster/keys/deadbeef/use")
    assert r.status_code == 404
    plain = Node(name="gw2")
    r = plain.admin_post("/cluster/keys", json={"key": base64.b64encode(os.urandom(32)).decode()})
    assert r.status_code == 400 and "cluster_key_file" in r.json()["error"]
