"""Single-node data plane: balancing, error answers, retries and health
recovery, forwarding headers, keep-alive, pipelining, HTTP/1.0 and
Expect: 100-continue. One node in front of `grapevine echo` upstreams."""

import json
import textwrap
from collections import Counter

import pytest
import requests

from gvtest import Echo, Node, free_port, lower_headers, request_bytes, wait_until

# Fast active checks so that down/up transitions show within a second.
HEALTH = """
health_check:
  path: /healthz
  interval: 200ms
  timeout: 200ms
  healthy: 1
  unhealthy: 1
"""


def config(targets, *, extra="", paths=("/",)):
    """Cluster config: service "echo" over targets, one prefix route to it."""
    svc = ["  - name: echo", "    balancer: round_robin", "    targets:"]
    svc += [f"      - address: {t}" for t in targets]
    svc += ["    " + ln for ln in textwrap.dedent(extra).strip("\n").splitlines()]
    route_paths = ", ".join(json.dumps(p) for p in paths)
    return "services:\n" + "\n".join(svc) + textwrap.dedent(f"""
        routes:
          - name: main
            match:
              paths: [{route_paths}]
              path_type: prefix
            service: echo
        """)


def error_json(r):
    """Asserts r is a JSON error answer per SPEC and returns its body."""
    assert "application/json" in r.headers.get("Content-Type", ""), r.headers
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    return body


@pytest.fixture
def echos():
    return Echo("echo-1"), Echo("echo-2")


def test_round_robin_spreads_evenly(echos):
    node = Node(config([e.address for e in echos]))
    names = Counter()
    with requests.Session() as s:
        for i in range(100):
            r = s.get(node.url(f"/rr/{i}?n={i}"), timeout=10)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["path"] == f"/rr/{i}" and body["method"] == "GET"
            names[body["name"]] += 1
    assert set(names) == {"echo-1", "echo-2"}, names
    assert abs(names["echo-1"] - 50) <= 2 and abs(names["echo-2"] - 50) <= 2, names


def test_no_route_is_a_json_404(echos):
    node = Node(config([echos[0].address], paths=("/api",)))
    assert node.get("/api/users").status_code == 200
    r = node.get("/elsewhere")
    assert r.status_code == 404, r.text
    error_json(r)


def test_refused_upstreams_are_a_json_502():
    nobody = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    node = Node(config(nobody))
    r = node.get("/")
    assert r.status_code == 502, r.text
    error_json(r)


def test_all_targets_down_is_a_json_503(echos):
    node = Node(config([e.address for e in echos], extra=HEALTH))
    wait_until(lambda: node.get("/").status_code == 200, 10, "a 200 through the node")
    for e in echos:
        e.kill()
    for e in echos:
        node.wait_backend("echo", e.address, healthy=False)
    wait_until(lambda: node.get("/").status_code == 503, 10, "503 with every target down")
    for i in range(5):
        r = node.get(f"/down/{i}")
        assert r.status_code == 503, r.text
        error_json(r)


def test_retries_hide_a_killed_upstream_and_it_recovers(echos):
    e1, e2 = echos
    extra = HEALTH + "retries: 2\npassive:\n  failures: 3\n  eject_for: 1s\n"
    node = Node(config([e1.address, e2.address], extra=extra))
    for e in echos:
        node.wait_backend("echo", e.address, healthy=True)

    outcomes = Counter()
    names = Counter()
    with requests.Session() as s:
        for i in range(200):
            if i == 50:
                e2.kill()
            try:
                r = s.get(node.url(f"/retry/{i}"), timeout=10)
            except requests.RequestException as exc:
                outcomes[f"{type(exc).__name__} at request {i}"] += 1
                continue
            outcomes[r.status_code] += 1
            if r.status_code == 200:
                names[r.json()["name"]] += 1
    assert outcomes == {200: 200}, outcomes
    assert names["echo-1"] >= 150 - 2, names  # everything after the kill

    e2.restart()
    node.wait_backend("echo", e2.address, healthy=True)
    with requests.Session() as s:
        wait_until(lambda: s.get(node.url("/back"), timeout=10).json()["name"] == "echo-2", 10,
                   "echo-2 to take traffic again")
        names = Counter(s.get(node.url(f"/after/{i}"), timeout=10).json()["name"]
                        for i in range(100))
    assert names["echo-1"] >= 40 and names["echo-2"] >= 40, names


def test_forwarding_headers_added_and_hop_by_hop_removed(echos):
    node = Node(config([echos[0].address]))
    r = node.get("/headers", headers={
        "Host": "gv.test",
        "X-Forwarded-For": "203.0.113.7",
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "named in Connection",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "X-Custom": "kept",
    })
    assert r.status_code == 200, r.text
    h = lower_headers(r.json()["headers"])
    assert h.get("x-custom") == "kept", h
    for gone in ("x-hop", "keep-alive", "te", "proxy-authorization"):
        assert gone not in h, (gone, h)
    assert "x-hop" not in h.get("connection", "").lower(), h
    assert [p.strip() for p in h["x-forwarded-for"].split(",")] == ["203.0.113.7", "127.0.0.1"], h
    assert h.get("x-forwarded-proto") == "http", h
    assert h.get("x-forwarded-host") == "gv.test", h
    assert "1.1" in h.get("via", ""), h

    h = lower_headers(node.get("/plain").json()["headers"])
    assert h["x-forwarded-for"] == "127.0.0.1", h


def test_client_keepalive_reuses_one_connection(echos):
    node = Node(config([e.address for e in echos]))
    local_ports = set()
    with requests.Session() as s:
        for i in range(20):
            with s.get(node.url(f"/ka/{i}"), timeout=10, stream=True) as r:
                conn = getattr(r.raw, "connection", None) or r.raw._connection
                local_ports.add(conn.sock.getsockname()[1])
                assert r.status_code == 200 and r.json()["path"] == f"/ka/{i}"
                assert "close" not in r.headers.get("Connection", "").lower(), r.headers
    assert len(local_ports) == 1, f"20 requests used {len(local_ports)} client connections"
    with node.raw() as c:
        for i in range(5):
            c.send(request_bytes("GET", f"/raw/{i}"))
            r = c.read_response()
            assert r.status == 200 and r.json()["path"] == f"/raw/{i}"


def test_pipelined_requests_answered_in_order(echos):
    node = Node(config([e.address for e in echos]))
    with node.raw() as c:
        c.send(request_bytes("GET", "/pipe/0")
               + request_bytes("POST", "/pipe/1", body=b"hello")
               + request_bytes("GET", "/pipe/2"))
        for i, method, size in ((0, "GET", 0), (1, "POST", 5), (2, "GET", 0)):
            r = c.read_response()
            assert r.status == 200, r
            body = r.json()
            assert (body["path"], body["method"], body["body_bytes"]) == (f"/pipe/{i}", method, size)


def test_a_pipelined_request_cut_after_the_ones_before_it_is_read_on(echos):
    """Requests that arrive while one is answered are kept and the socket is
    not read meanwhile; when what was kept ends inside a request, the rest
    of it must be read once the kept ones are answered (it used to stall
    there: 1,169 of 2,000 pipelined GETs answered, then nothing)."""
    node = Node(config([e.address for e in echos]))
    last = request_bytes("GET", "/pipe/cut")
    with node.raw() as c:
        c.send(b"".join(request_bytes("GET", f"/pipe/{i}") for i in range(3)) + last[:10])
        for i in range(3):
            r = c.read_response()
            assert r.status == 200 and r.json()["path"] == f"/pipe/{i}", r
        c.send(last[10:])  # only now: the node has answered the three
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/pipe/cut", r


def test_http10_request_gets_an_answer_and_close(echos):
    node = Node(config([echos[0].address]))
    with node.raw() as c:
        c.send(request_bytes("GET", "/old", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200, r
        assert r.header("Transfer-Encoding") is None  # no chunked to an HTTP/1.0 client
        assert r.json()["path"] == "/old"
        assert c.closed_by_peer(5), "connection still open after an HTTP/1.0 answer"


def test_expect_100_continue(echos):
    node = Node(config([echos[0].address]))
    body = b"x" * 1000
    with node.raw() as c:
        c.send(request_bytes("POST", "/upload", headers={
            "Content-Length": str(len(body)), "Expect": "100-continue"}))
        interim = c.read_response()  # before any body byte is sent
        assert (interim.version, interim.status, interim.reason) == ("HTTP/1.1", 100, "Continue")
        c.send(body)
        final = c.read_response()
        assert final.status == 200, final
        assert final.json()["body_bytes"] == len(body)
