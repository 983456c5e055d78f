"""The health plane when a target's checker dies after the target did: the
node that takes over its probes must keep the dead target out. It used to
route it as healthy (reason "") for as long as it stayed dead: its own
verdict from start-up (when every node probes alone) counted as a current
checker's, and its probes, having taken the checkers' "down" as its own
while it did not probe, never reported the target down again."""

import json
import time

from gvtest import Echo, Node, scaled, wait_until

CONFIG = """
services:
  - name: web
    targets: [{address: ADDR}]
    health_check: {path: /healthz, interval: 500ms, timeout: 300ms, healthy: 2, unhealthy: 2}
routes:
  - name: all
    match: {paths: [/]}
    service: web
"""


def target(node):
    return node.admin_get("/backends").json()[0]["targets"][0]


def test_new_checker_keeps_a_dead_target_out():
    echo = Echo("e1")
    cfg = CONFIG.replace("ADDR", echo.address)
    gw1 = Node(cfg, name="gw1")
    nodes = {"gw1": gw1,
             "gw2": Node(cfg, name="gw2", args=["--join", gw1.gossip]),
             "gw3": Node(cfg, name="gw3", args=["--join", gw1.gossip])}
    wait_until(lambda: all(len(target(n)["checked_by"]) == 2 and target(n)["healthy"]
                           for n in nodes.values()), scaled(20),
               "every node to see the target healthy, checked by 2 of 3")
    echo.kill()
    wait_until(lambda: all(not target(n)["healthy"] for n in nodes.values()), scaled(15),
               "every node to take the dead target out")
    checkers = target(gw1)["checked_by"]
    observer = next(name for name in nodes if name not in checkers)
    nodes[checkers[0]].kill()
    obs = nodes[observer]
    wait_until(lambda: observer in target(obs)["checked_by"], scaled(30),
               f"{observer} to take over the dead checker's probes")
    # from the takeover on, the target stays out (no flip to healthy)
    end = time.monotonic() + scaled(3)
    while time.monotonic() < end:
        t = target(obs)
        assert t["healthy"] is False and t["reason"] == "health_check", json.dumps(t)
        time.sleep(0.1)
