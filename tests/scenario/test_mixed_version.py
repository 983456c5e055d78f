"""Rolling upgrades: a node built from the last release tag and a node built
from HEAD run in one cluster, converge on one config digest and serve every
change made on either. The old binary is built once from `git archive TAG`
into build-release-TAG/ beside the repository (a minute, then cached).

Which tag: the newest v* tag on HEAD's history whose commit is not HEAD's
(else the newest one, when HEAD is itself the release); with no tag at all
the test is skipped and says so. GV_MIXED_OLD_BIN=PATH runs it against that
binary instead (any older build, e.g. main's before a change)."""

import os
import subprocess
from pathlib import Path

import pytest
import requests

from gvtest import REPO, Echo, Node, binary, wait_until


def git(*args):
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              timeout=60)
    except FileNotFoundError:  # no git (setup.sh installs it): as if there were no history
        return subprocess.CompletedProcess(args, 127, "", "git is not installed")


def last_tag():
    tags = git("tag", "--merged", "HEAD", "--list", "v*", "--sort=-v:refname")
    if tags.returncode != 0:
        return None
    names = tags.stdout.split()
    head = git("rev-parse", "HEAD").stdout.strip()
    for t in names:
        if git("rev-list", "-n1", t).stdout.strip() != head:
            return t
    return names[0] if names else None


def old_binary(tag):
    """The grapevine of tag, built once into REPO/build-release-TAG."""
    out = Path(os.environ.get("GV_MIXED_CACHE", REPO)) / f"build-release-{tag}"
    exe = out / "build" / "grapevine"
    if exe.exists():
        return str(exe)
    src = out / "src"
    src.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", str(REPO), "archive", tag], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(src)], stdin=archive.stdout, check=True, timeout=120)
    assert archive.wait(timeout=60) == 0, f"git archive {tag} failed"
    build = out / "build"
    subprocess.run(["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    "-DGV_SANITIZE=OFF"], check=True, capture_output=True, timeout=300)
    subprocess.run(["cmake", "--build", str(build), "--target", "grapevine", "-j",
                    os.environ.get("JOBS", "2")], check=True, capture_output=True, timeout=900)
    assert exe.exists()
    return str(exe)


SEED = """
services:
  - name: echo
    targets: [{{address: {echo}}}]
routes:
  - name: base
    match: {{paths: [/base]}}
    service: echo
"""


def digest(node):
    return node.admin_get("/status").json()["config_digest"]


def alive(node):
    return sum(m["state"] == "alive" for m in node.admin_get("/cluster/members").json())


def serves(node, path, want=200):
    try:
        return requests.get(node.url(path), timeout=2).status_code == want
    except requests.RequestException:
        return False


def test_last_release_and_head_in_one_cluster():
    tag, old_bin = "GV_MIXED_OLD_BIN", os.environ.get("GV_MIXED_OLD_BIN")
    if not old_bin:
        tag = last_tag()
        if tag is None:
            pytest.skip("no release tag (v*) on HEAD's history yet (or no git history at all: "
                        "a source tarball, or git not installed)")
        old_bin = old_binary(tag)
    echo = Echo()
    cfg = SEED.format(echo=echo.address)
    old = Node(cfg, name="old", bin=old_bin)
    new = Node(cfg, name="new", args=["--join", old.gossip])
    wait_until(lambda: alive(old) == 2 and alive(new) == 2, 20, "both versions to see 2 alive")
    assert digest(old) == digest(new)
    print(f"\nmixed cluster: {tag} ({old_bin}) and HEAD ({binary()})")

    # a change on the old node, served by the new one, and the other way round
    r = old.admin_put("/config/routes/from-old",
                      json={"match": {"paths": ["/from-old"]}, "service": "echo"})
    assert r.status_code == 200, r.text
    wait_until(lambda: serves(new, "/from-old"), 10, "HEAD to serve a route made on the old node")
    r = new.admin_put("/config/consumers/alice", json={"name": "alice", "key_auth": ["k-1"]})
    assert r.status_code == 200, r.text
    r = new.admin_put("/config/routes/from-new",
                      json={"match": {"paths": ["/from-new"]}, "service": "echo",
                            "plugins": [{"key_auth": {}},
                                        {"rate_limit": {"limit": 1000, "window": "1s"}}]})
    assert r.status_code == 200, r.text
    wait_until(lambda: serves(old, "/from-new", 401), 10,
               "the old node to enforce a plugin configured on HEAD")
    got = requests.get(old.url("/from-new"), headers={"X-Api-Key": "k-1"}, timeout=5)
    assert got.status_code == 200 and got.json()["headers"]["x-consumer"] == "alice"
    wait_until(lambda: digest(old) == digest(new), 10, "one config digest on both versions")

    # a delete spreads too
    assert old.admin_delete("/config/routes/from-old").status_code == 204
    wait_until(lambda: serves(new, "/from-old", 404), 10, "HEAD to drop the deleted route")
    wait_until(lambda: digest(old) == digest(new), 10, "one digest after the delete")

    # an old node joins while HEAD holds more objects than one message: HEAD
    # streams them (the old node takes the entries as it always did and
    # drops the window marks it does not know; anti-entropy brings the rest)
    got = new.admin_get("/config").json()
    state = {k: got[k] for k in ("services", "routes", "consumers", "plugins") if k in got}
    state["routes"] = state.get("routes", []) + [
        {"name": f"bulk-{i}", "match": {"paths": [f"/bulk-{i}"]}, "service": "echo"}
        for i in range(1500)]
    r = new.admin_put("/config", json=state)
    assert r.status_code == 200, r.text
    wait_until(lambda: digest(old) == digest(new), 60, "the old node to take 1,500 routes")
    late = Node(cfg, name="late", bin=old_bin, args=["--join", new.gossip])
    wait_until(lambda: digest(late) == digest(new), 60, "an old node joining HEAD to catch up")
    assert serves(late, "/bulk-1499")
