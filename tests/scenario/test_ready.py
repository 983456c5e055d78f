"""/health is liveness (200 while the process answers), /ready is readiness
(200 once routes are applied and the listeners are up; 503 with no config and
while draining): what a load balancer or a Kubernetes readiness probe uses."""

import signal
import threading

import requests

from gvtest import Echo, Node, wait_until

SEED = """
services:
  - name: echo
    targets: [{address: ECHO}]
routes:
  - name: base
    match: {paths: [/]}
    service: echo
"""


def ready(node):
    r = node.admin_get("/ready")
    return r.status_code, r.json()


def test_no_config_is_not_ready_until_a_route_is_applied():
    echo = Echo("e1")
    node = Node("")
    code, body = ready(node)
    assert code == 503 and body["status"] == "no config", body
    assert node.admin_get("/health").json() == {"status": "ok"}
    r = node.admin_put("/config/services/echo", json={"targets": [{"address": echo.address}]})
    assert r.status_code == 200
    assert ready(node)[0] == 503  # a service alone serves nothing
    r = node.admin_put("/config/routes/base",
                       json={"match": {"paths": ["/"]}, "service": "echo"})
    assert r.status_code == 200
    assert ready(node) == (200, {"status": "ready"})


def test_a_joining_node_is_ready_once_it_has_the_config_from_peers():
    echo = Echo("e1")
    gw1 = Node(SEED.replace("ECHO", echo.address), name="gw1")
    assert ready(gw1)[0] == 200
    gw2 = Node("", name="gw2", args=["--join", gw1.gossip])
    wait_until(lambda: ready(gw2)[0] == 200, 15, "gw2 to be ready with gw1's config")
    assert gw2.get("/x").status_code == 200


def test_draining_node_is_not_ready_while_requests_finish():
    echo = Echo("e1")
    node = Node(SEED.replace("ECHO", echo.address))
    result = {}

    def slow_request():
        try:
            result["status"] = node.get("/delay/4000", timeout=30).status_code
        except requests.RequestException as e:
            result["error"] = repr(e)

    t = threading.Thread(target=slow_request)
    t.start()
    wait_until(lambda: _inflight(node) >= 1, 10, "the slow request to be in flight")
    stopped = {}
    stopper = threading.Thread(target=lambda: stopped.update(rc=node.stop(timeout=30)))
    stopper.start()  # SIGTERM, then waits for the exit
    wait_until(lambda: ready(node) == (503, {"status": "draining",
                                             "reason": "stopping: in-flight requests are "
                                                       "finishing"}),
               10, "/ready to say draining")
    assert node.admin_get("/health").json() == {"status": "draining"}
    t.join(30)
    assert result == {"status": 200}, result
    stopper.join(60)
    assert stopped == {"rc": 0}


def _inflight(node) -> int:
    for b in node.backends():
        if b.get("inflight"):
            return int(b["inflight"])
    return 0


def test_shutdown_delay_keeps_serving_while_not_ready():
    """node.shutdown_delay (for load balancers that take a while to notice
    /ready, like Swarm's routing mesh): after SIGTERM /ready says 503 at once,
    but new connections are still taken and served until the delay ends;
    a second SIGTERM drains at once."""
    echo = Echo("e1")
    node = Node(SEED.replace("ECHO", echo.address), node_extra="shutdown_delay: 60s")
    node.popen.send_signal(signal.SIGTERM)
    wait_until(lambda: ready(node)[0] == 503, 10, "/ready to say 503 after SIGTERM")
    code, body = ready(node)
    assert body == {"status": "draining",
                    "reason": "stopping: still serving until node.shutdown_delay ends, then "
                              "draining"}, body
    assert node.admin_get("/health").json() == {"status": "draining"}
    for _ in range(5):  # new connections, each served
        with requests.Session() as s:
            assert s.get(node.url("/x"), timeout=10).status_code == 200
    assert node.alive()
    # the second signal: drain now, not after 60 s
    assert node.stop(timeout=30) == 0
    assert "a second signal drains at once" in node.stderr_path.read_text()
