"""TLS termination: certificates chosen by SNI, X-Forwarded-Proto https,
bad handshakes that disturb no other connection, and certificate reload on
SIGHUP. One node with node.tls in front of a `grapevine echo`."""

import json
import os
import signal
import socket
import ssl
import subprocess

import pytest

from gvtest import Echo, Node, free_port, wait_port, wait_until


def make_cert(d, name, cn=None):
    cn = cn or name
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.pem")],
        check=True, capture_output=True)
    return d / f"{name}.pem"


def config(target):
    return f"""services:
  - name: echo
    targets: [{{address: {target}}}]
routes:
  - name: main
    match: {{paths: ["/"], path_type: prefix}}
    service: echo
"""


@pytest.fixture
def tls_node(tmp_path):
    echo = Echo()
    make_cert(tmp_path, "a.test")
    make_cert(tmp_path, "b.test")
    port = free_port()
    extra = (f"tls: {{listen: 127.0.0.1:{port}, certificates: ["
             f"{{cert: {tmp_path}/a.test.pem, key: {tmp_path}/a.test.key}}, "
             f"{{cert: {tmp_path}/b.test.pem, key: {tmp_path}/b.test.key}}]}}")
    node = Node(config(echo.address), node_extra=extra, workers=2)
    wait_port(port)
    return node, port, tmp_path


def peer_cn(port, name, cafile=None):
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            cert = s.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(cert)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, text=True,
                         capture_output=True, check=True).stdout
    return out.strip()


def tls_connect(port, name, cafile, alpn=("http/1.1",)):
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=name)


def get(s, path, host="a.test"):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, v = line.split(b":", 1)
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return int(head.split(b" ")[1]), body


def test_curl_sni_and_forwarded_proto(tls_node):
    node, port, d = tls_node
    for name in ("a.test", "b.test"):
        out = subprocess.run(
            ["curl", "-sS", "--http1.1", "--resolve", f"{name}:{port}:127.0.0.1", "--cacert",
             str(d / f"{name}.pem"), f"https://{name}:{port}/headers"],
            capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        h = {k.lower(): v for k, v in json.loads(out.stdout)["headers"].items()}
        assert h["x-forwarded-proto"] == "https", h
    # Plain HTTP on the plain port still says http.
    h = {k.lower(): v for k, v in node.get("/headers").json()["headers"].items()}
    assert h["x-forwarded-proto"] == "http"


def test_s_client_gets_certificate_by_sni(tls_node):
    node, port, d = tls_node
    for name in ("a.test", "b.test"):
        out = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name,
             "-alpn", "http/1.1"],
            input="", capture_output=True, text=True, timeout=20)
        assert f"CN = {name}" in out.stdout or f"CN={name}" in out.stdout, out.stdout
        assert "ALPN protocol: http/1.1" in out.stdout, out.stdout
    assert "a.test" in peer_cn(port, "unknown.test")  # default: the first certificate


def test_old_protocols_refused(tls_node):
    node, port, d = tls_node
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "a.test",
         "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
        input="", capture_output=True, text=True, timeout=20)
    assert "BEGIN CERTIFICATE" not in out.stdout


def test_bad_handshakes_do_not_disturb_others(tls_node):
    node, port, d = tls_node
    s = tls_connect(port, "a.test", d / "a.test.pem")
    assert s.selected_alpn_protocol() == "http/1.1"
    assert get(s, "/one")[0] == 200
    # Garbage, a plaintext request, and a handshake cut short.
    for payload in (os.urandom(300), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as bad:
            bad.sendall(payload)
            if payload.startswith(b"\x16"):
                continue  # abort mid-handshake
            bad.settimeout(5)
            try:
                while bad.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
    assert get(s, "/two")[0] == 200
    s.close()
    assert node.alive()


def test_certificate_reload(tls_node):
    node, port, d = tls_node
    old = tls_connect(port, "a.test", d / "a.test.pem")
    assert get(old, "/before")[0] == 200
    old_ca = (d / "a.test.pem").read_bytes()
    (d / "old-a.pem").write_bytes(old_ca)
    make_cert(d, "a.test", cn="a.test renewed")
    os.kill(node.pid, signal.SIGHUP)
    wait_until(lambda: "renewed" in peer_cn(port, "a.test"), timeout=10)
    # The new certificate verifies against the new file, the old connection lives on.
    s = tls_connect(port, "a.test", d / "a.test.pem")
    assert get(s, "/new")[0] == 200
    s.close()
    assert get(old, "/after")[0] == 200
    old.close()
    # A broken file keeps the current certificates.
    (d / "b.test.pem").write_text("not a certificate\n")
    os.kill(node.pid, signal.SIGHUP)
    wait_until(lambda: "certificates unchanged" in node.stderr_path.read_text(), timeout=10,
               what="the reload of a broken file to be refused")
    assert "b.test" in peer_cn(port, "b.test")
