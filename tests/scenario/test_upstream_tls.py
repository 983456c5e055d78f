"""Upstream TLS per service: a node proxies to `grapevine echo --tls-cert`
with verification on by default (a private CA given as ca_file), refuses an
upstream it cannot verify or whose name does not match (502), connects
unverified only when told to, keeps TLS connections alive across requests,
and rejects a ca_file it cannot read (400 with the field's path)."""

import base64
import os
import socket
import subprocess

import pytest
import requests

from gvtest import HTTP_TIMEOUT, Echo, Node, Proc, binary, free_port, wait_port, wait_until
from test_streaming import read_frame, ws_frame


def run(*argv):
    subprocess.run([str(a) for a in argv], check=True, capture_output=True)


def make_pki(d):
    """A CA and a server certificate for echo.test and 127.0.0.1 signed by it."""
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-days", "2", "-subj", "/CN=grapevine test CA", "-keyout", d / "ca.key",
        "-out", d / "ca.pem")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=echo.test", "-keyout", d / "echo.key", "-out", d / "echo.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:echo.test,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", d / "echo.csr", "-CA", d / "ca.pem", "-CAkey",
        d / "ca.key", "-CAcreateserial", "-days", "2", "-extfile", d / "ext.cnf", "-out",
        d / "echo.pem")


class TlsEcho(Proc):
    def __init__(self, d, name="tls-echo"):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        super().__init__(f"echo {name}", [binary(), "echo", "--listen", self.address, "--name",
                                          name, "--tls-cert", d / "echo.pem", "--tls-key",
                                          d / "echo.key"])
        self.ca = d / "ca.pem"
        self.start()
        wait_port(self.port, proc=self)

    def stats(self):
        # By IP: the certificate names IP:127.0.0.1 as well as echo.test.
        r = requests.get(f"https://127.0.0.1:{self.port}/stats", timeout=HTTP_TIMEOUT,
                         verify=str(self.ca))
        assert r.status_code == 200, r.text
        return r.json()


def service(name, target, tls, retries=2):
    return (f"  - name: {name}\n    targets: [{{address: {target}}}]\n"
            f"    retries: {retries}\n    tls: {tls}\n")


def route(name):
    # upgrades: foo lets test_new_connection_resumes_the_session tunnel an
    # upgrade the echo refuses, which closes the upstream connection
    return (f"  - name: {name}\n    match: {{paths: [/{name}], path_type: prefix}}\n"
            f"    service: {name}\n    upgrades: [websocket, foo]\n")


@pytest.fixture
def setup(tmp_path):
    make_pki(tmp_path)
    echo = TlsEcho(tmp_path)
    ca = tmp_path / "ca.pem"
    t = echo.address
    svcs = {
        "good": f"{{ca_file: {ca}, server_name: echo.test}}",
        "byip": f"{{ca_file: {ca}}}",
        "noca": "true",
        "wrongname": f"{{ca_file: {ca}, server_name: other.test}}",
        "noverify": "{verify: false}",
    }
    cfg = "services:\n" + "".join(service(n, t, v, retries=0) for n, v in svcs.items())
    # TLS towards a plain HTTP upstream, and plain HTTP to the same address.
    plain = Echo("plain")
    cfg += service("plainup", plain.address, "{verify: false}", retries=0)
    cfg += "  - name: plain\n    targets: [{address: %s}]\n" % plain.address
    cfg += "routes:\n" + "".join(route(n) for n in [*svcs, "plainup", "plain"])
    cfg += "  - name: ws\n    match: {paths: [/ws], path_type: exact}\n    service: good\n"
    node = Node(cfg, workers=1)
    return node, echo, tmp_path


def test_verified_upstream_works(setup):
    node, echo, _ = setup
    r = node.get("/good/hello?x=1", headers={"X-Test": "yes"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "tls-echo"
    assert body["path"] == "/good/hello"
    assert body["headers"].get("x-test", body["headers"].get("X-Test")) == "yes"
    # The host check also takes the target's IP address when no server_name is set.
    r = node.get("/byip")
    assert r.status_code == 200, r.text
    # POST with a body goes through the same encrypted connection.
    r = requests.post(node.url("/good/post"), data=b"x" * 100000, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.json()["body_bytes"] == 100000


def test_websocket_through_upstream_tls(setup):
    node, _, _ = setup
    s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    for payload in [b"hello", os.urandom(70000)]:
        s.sendall(ws_frame(payload, 2))
        op, got, buf = read_frame(s, buf)
        assert got == payload
    s.close()


def test_unverifiable_upstream_is_502(setup):
    node, _, _ = setup
    r = node.get("/noca")
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert "TLS" in err and "certificate" in err, err
    r = node.get("/wrongname")
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert "TLS" in err and "hostname mismatch" in err, err
    # A plain HTTP upstream answers the ClientHello with an HTTP 400 (and the
    # plain connection pooled just before, to the same address, is not taken).
    assert node.get("/plain/first").status_code == 200
    r = node.get("/plainup")
    assert r.status_code == 502, r.text
    assert "TLS" in r.json()["error"]
    # ... and still serves plain requests from the same node, on the same address.
    r = node.get("/plain/x")
    assert r.status_code == 200 and r.json()["name"] == "plain", r.text
    assert node.alive()


def test_verify_false_connects(setup):
    node, _, _ = setup
    r = node.get("/noverify")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/noverify"


def test_keep_alive_reuses_the_tls_connection(setup):
    node, echo, _ = setup
    before = echo.stats()["tls_handshakes"]  # counts this /stats connection too
    with requests.Session() as s:
        for i in range(20):
            r = s.get(node.url(f"/good/{i}"), timeout=HTTP_TIMEOUT)
            assert r.status_code == 200, r.text
    after = echo.stats()
    # One handshake from the node (one worker, one pooled connection), plus
    # the second /stats connection.
    assert after["tls_handshakes"] - before == 2, after
    assert after["requests"] >= 20


def test_bad_tls_config_is_400(setup):
    node, _, d = setup
    base = {"name": "x", "targets": [{"address": "127.0.0.1:1"}]}
    cases = [
        ({"tls": {"ca_file": str(d / "missing.pem")}}, "tls.ca_file"),
        ({"tls": "yes"}, "tls"),
        ({"tls": {"verify": "no"}}, "tls.verify"),
        ({"tls": {"server_name": "bad name"}}, "tls.server_name"),
        ({"tls": {"sni": "a"}}, "tls"),
    ]
    for extra, path in cases:
        r = node.admin_put("/config/services/x", json={**base, **extra})
        assert r.status_code == 400, (extra, r.text)
        body = r.json()
        assert path in body["path"], (extra, body)
    # Shorthand and defaults show in the stored object.
    r = node.admin_put("/config/services/x", json={**base, "tls": True})
    assert r.status_code == 200, r.text
    assert r.json()["tls"] == {"verify": True}


def test_new_connection_resumes_the_session(setup):
    node, echo, _ = setup
    assert node.get("/good/first").status_code == 200
    # An upgrade the echo does not take is answered, then its connection is
    # closed: the next request needs a new upstream connection.
    r = node.get("/good/upgrade", headers={"Connection": "Upgrade", "Upgrade": "foo"})
    assert r.status_code < 500, r.text
    wait_until(lambda: node.get("/good/again").status_code == 200, 5, "a request to pass")
    stats = echo.stats()
    assert stats["tls_handshakes"] >= 3, stats
    assert stats["tls_resumed"] >= 1, stats


def test_active_health_checks_speak_tls(tmp_path):
    """A service with tls is probed over TLS, verified like proxied
    connections: the probes reach a TLS echo and keep it healthy; a service
    whose certificate name does not match is marked unhealthy by its probes
    (and answers 503, not 502 per request); a killed echo goes unhealthy and
    returns when it is back."""
    make_pki(tmp_path)
    echo = TlsEcho(tmp_path)
    ca = tmp_path / "ca.pem"
    hc = "    health_check: {path: /healthz, interval: 300ms, timeout: 300ms, healthy: 1, unhealthy: 2}\n"
    cfg = ("services:\n"
           + service("good", echo.address, f"{{ca_file: {ca}, server_name: echo.test}}") + hc
           + service("wrongname", echo.address, f"{{ca_file: {ca}, server_name: other.test}}") + hc
           + "routes:\n" + route("good") + route("wrongname"))
    node = Node(cfg)
    first = echo.stats()["healthz"]
    wait_until(lambda: echo.stats()["healthz"] >= first + 3, 10, "TLS probes to reach the echo")
    wait_until(lambda: node.backend_healthy("good", echo.address) is True and
               node.backend_healthy("wrongname", echo.address) is False, 10,
               "good healthy and wrongname unhealthy by their probes")
    assert node.get("/good").status_code == 200
    r = node.get("/wrongname")
    assert r.status_code == 503, r.text
    wait_until(lambda: "tls:" in node.logs(), 5, "the probe's TLS failure in the log")
    echo.kill()
    wait_until(lambda: node.backend_healthy("good", echo.address) is False, 5,
               "the killed TLS echo to go unhealthy")
    echo.start()
    wait_until(lambda: node.backend_healthy("good", echo.address) is True, 10,
               "the TLS echo to be healthy again")
    assert node.get("/good").status_code == 200


def test_many_large_bodies_through_upstream_tls(setup):
    """100 KB bodies, each on a new client connection, through the pooled
    TLS connection: the echo once left the records that did not fit its read
    buffer inside the TLS engine and stalled the 10th-20th request."""
    node, _, _ = setup
    for i in range(60):
        r = requests.post(node.url("/good/post"), data=b"x" * 100000, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200 and r.json()["body_bytes"] == 100000, i
