"""`grapevine ctl status --watch` on a terminal (tmux; skipped without it):
the screen is redrawn in place (one table, sorted by name, human versions)
and a change made on another node shows as "routes/x from gw2: 3/3 nodes in
N ms" once every live member serves it."""

import re
import shutil
import subprocess
import uuid

import pytest

from gvtest import Node, binary, scaled, wait_until


def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30)


def test_watch_redraws_and_names_the_spreading_change():
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (scripts/setup.sh)")
    gw1 = Node("", name="gw1")
    gw2 = Node("", name="gw2", args=["--join", gw1.gossip])
    gw3 = Node("", name="gw3", args=["--join", gw1.gossip])

    def alive():
        return sorted(m["name"] for m in gw1.admin_get("/cluster/members").json()
                      if m["state"] == "alive")
    wait_until(lambda: alive() == ["gw1", "gw2", "gw3"], scaled(20), "3 alive members")
    session = "gvwatch-" + uuid.uuid4().hex[:8]
    cmd = (f"{binary()} ctl --admin 127.0.0.1:{gw1.admin_port} status --watch "
           f"--interval 100 --timeout {int(scaled(120))}")
    r = tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd)
    assert r.returncode == 0, r.stderr
    try:
        def screen():
            return tmux("capture-pane", "-p", "-t", session).stdout

        wait_until(lambda: "NAME" in screen() and "gw3" in screen(), scaled(15),
                   "the first table")
        body = {"name": "web", "targets": [{"address": "127.0.0.1:9"}]}
        assert gw2.admin_put("/config/services/web", json=body).status_code in (200, 201)
        pat = re.compile(r"services/web from gw2: 3/3 nodes in \d+ ms")
        wait_until(lambda: pat.search(screen()), scaled(20),
                   "the change line once all 3 nodes have it")
        text = screen()
        assert text.count("NAME") == 1, text  # redrawn, not appended
        rows = [ln.split()[0] for ln in text.splitlines() if re.match(r"^gw\d ", ln)]
        assert rows == ["gw1", "gw2", "gw3"], text  # sorted
        assert not re.search(r"\b\d{12,}\b", text), text  # no raw clock numbers
        assert "up " in text and not re.search(r"up \d+\.\d{3}s", text), text
    finally:
        tmux("kill-session", "-t", session)
