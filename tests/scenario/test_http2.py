"""HTTP/2 from clients: h2c with prior knowledge and h2 over TLS (ALPN) in
front of HTTP/1.1 `grapevine echo` upstreams, with real clients (curl, httpx,
the h2 library). Each stream runs the same routing and plugins as HTTP/1.1;
the abuse cases (rapid reset, CONTINUATION flood, HPACK bomb) end only the
misbehaving connection."""

import asyncio
import json
import socket
import threading
import ssl
import subprocess

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import httpx
import pytest
import requests

from gvtest import Echo, Node, free_port, scaled, wait_port, wait_until

from test_tls import make_cert


def config(target):
    return f"""services:
  - name: echo
    targets: [{{address: {target}}}]
routes:
  - name: main
    match: {{paths: ["/"], path_type: prefix}}
    service: echo
    plugins:
      - request_headers: {{set: {{X-Env: prod}}}}
      - response_headers: {{set: {{X-Frame-Options: DENY}}, remove: [X-Echo-Name]}}
  - name: key
    match: {{paths: [/key], path_type: prefix}}
    service: echo
    plugins:
      - key_auth: {{header: X-Api-Key}}
  - name: limited
    match: {{paths: [/limited], path_type: prefix}}
    service: echo
    plugins:
      - rate_limit: {{limit: 2, window: 1m, key: route, scope: node}}
consumers:
  - name: alice
    key_auth: [key-abc]
"""


@pytest.fixture
def node():
    echo = Echo()
    return Node(config(echo.address), workers=1)


def curl(*args, timeout=30):
    out = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_curl_prior_knowledge_routes_through_plugins(node):
    out = curl("--http2-prior-knowledge", "-D", "-", node.url("/hello?x=1")).decode()
    head, body = out.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/2 200"), head
    assert "x-frame-options: DENY" in head and "x-echo-name" not in head.lower(), head
    doc = json.loads(body)
    assert doc["path"] == "/hello" and doc["query"] == "x=1", doc
    h = {k.lower(): v for k, v in doc["headers"].items()}
    assert h["x-env"] == "prod" and h["x-forwarded-proto"] == "http", h
    # HTTP/1.1 on the same listener is untouched.
    assert node.get("/hello").status_code == 200


def test_plugin_answers_over_h2(node):
    with httpx.Client(http1=False, http2=True, base_url=node.url("")) as c:
        r = c.get("/key/x")
        assert r.http_version == "HTTP/2" and r.status_code == 401, r
        assert r.json()["error"], r.text
        r = c.get("/key/x", headers={"X-Api-Key": "key-abc"})
        assert r.status_code == 200, r.text
        assert {k.lower(): v for k, v in r.json()["headers"].items()}["x-consumer"] == "alice"
        codes = [c.get("/limited").status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and codes[2:] == [429, 429], codes


def test_post_bodies_and_large_streamed_response(node):
    body = bytes(range(256)) * 8192  # 2 MiB
    with httpx.Client(http1=False, http2=True, base_url=node.url(""), timeout=60) as c:
        r = c.post("/upload", content=body)
        assert r.status_code == 200 and r.json()["body_bytes"] == len(body), r.text
        # No length known up front: the upstream gets it chunked.
        r = c.post("/upload", content=iter([body[:100000], body[100000:]]))
        assert r.status_code == 200 and r.json()["body_bytes"] == len(body), r.text
        n = 20 * 1024 * 1024
        with c.stream("GET", f"/bytes/{n}") as r:
            assert r.status_code == 200
            got = sum(len(chunk) for chunk in r.iter_bytes())
        assert got == n


def test_many_concurrent_streams_on_one_connection(node):
    async def run():
        async with httpx.AsyncClient(http1=False, http2=True, base_url=node.url(""),
                                     timeout=60) as c:
            return await asyncio.gather(*(c.get(f"/delay/50?i={i}") for i in range(200)))

    rs = asyncio.run(run())
    assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in rs)
    assert sorted(r.json()["query"] for r in rs) == sorted(f"i={i}" for i in range(200))


def test_h2_over_tls_by_alpn(tmp_path):
    echo = Echo()
    make_cert(tmp_path, "a.test")
    port = free_port()
    extra = (f"tls: {{listen: 127.0.0.1:{port}, certificates: ["
             f"{{cert: {tmp_path}/a.test.pem, key: {tmp_path}/a.test.key}}]}}")
    Node(config(echo.address), node_extra=extra, workers=1)
    wait_port(port)
    base = ["--resolve", f"a.test:{port}:127.0.0.1", "--cacert", str(tmp_path / "a.test.pem")]
    url = f"https://a.test:{port}/tls"
    out = curl("--http2", *base, "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url)
    assert out == b"2 200", out
    doc = json.loads(curl("--http2", *base, url))
    assert {k.lower(): v for k, v in doc["headers"].items()}["x-forwarded-proto"] == "https"
    # A client offering only http/1.1 keeps it.
    out = curl("--http1.1", *base, "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url)
    assert out == b"1.1 200", out
    # One without ALPN may still start with the HTTP/2 preface.
    ctx = ssl.create_default_context(cafile=str(tmp_path / "a.test.pem"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
    with ctx.wrap_socket(raw, server_hostname="a.test") as tls:
        assert tls.selected_alpn_protocol() is None
        conn = h2.connection.H2Connection()
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "GET"), (":path", "/noalpn"), (":scheme", "https"),
                              (":authority", "a.test")], end_stream=True)
        tls.sendall(conn.data_to_send())
        status = None
        while status is None:
            data = tls.recv(65536)
            assert data, "closed without an answer"
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[b":status"]
    assert status == b"200", status


# ---- abuse: raw frames with the h2 library ------------------------------------------


class RawH2:
    """An h2 client connection that sends whatever frames a test asks."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    def headers(self, path, end=True):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"),
                                     (":authority", "gv.test")], end_stream=end)
        return sid

    def events(self):
        """Events from one read; [] at EOF."""
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return []
        if not data:
            return []
        try:
            evs = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            return []
        self.flush()
        return evs

    def goaway(self):
        """The GOAWAY's error code the server ends with, or None at EOF without one."""
        while True:
            evs = self.events()
            if not evs:
                return None
            for ev in evs:
                if isinstance(ev, h2.events.ConnectionTerminated):
                    return ev.error_code

    def close(self):
        self.sock.close()


def get_ok(port, path):
    with httpx.Client(http1=False, http2=True, base_url=f"http://127.0.0.1:{port}",
                      timeout=30) as c:
        r = c.get(path)
        return r.status_code == 200


def test_rapid_reset_gets_goaway_others_unaffected(node):
    bad = RawH2(node.port)
    # HEADERS then RST_STREAM, over and over (CVE-2023-44487).
    for i in range(2000):
        sid = bad.headers(f"/delay/1000?i={i}")
        bad.conn.reset_stream(sid)
        if i % 50 == 0:
            bad.flush()
    bad.flush()
    code = bad.goaway()
    bad.close()
    assert code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, code
    assert get_ok(node.port, "/after-reset")


def test_continuation_flood_and_hpack_bomb_end_only_that_client(node):
    good = httpx.Client(http1=False, http2=True, base_url=node.url(""), timeout=30)
    assert good.get("/before").status_code == 200
    # CONTINUATION flood (CVE-2024-27316): a header block that never ends.
    s = socket.create_connection(("127.0.0.1", node.port), timeout=scaled(10))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    block = b"\x82\x84\x86" + b"\x41\x07gv.test"  # GET / http, :authority
    s.sendall(frame(1, 0x1, 1, block))  # HEADERS, END_STREAM, no END_HEADERS
    pad = b"\x40\x03x-a\x7f\x00" + b"a" * 127  # literal header, incremental indexing
    sent = 0
    try:
        for _ in range(5000):
            s.sendall(frame(9, 0, 1, pad))
            sent += 1
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_with_goaway(s), sent
    s.close()
    # HPACK bomb: one big header indexed once, then referenced many times.
    rss = node.rss_kb()
    s = socket.create_connection(("127.0.0.1", node.port), timeout=scaled(10))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    big = b"\x40\x03x-b" + hpack_len(4000) + b"b" * 4000
    refs = b"\xbe" * 12000  # index 62, the entry just added: 48 MB decoded
    s.sendall(frame(1, 0x5, 1, block + big + refs))
    assert stream_status(s, 1) == b"431"
    s.close()
    assert node.rss_kb() < rss + 32 * 1024  # nothing of what it decoded to is kept
    assert good.get("/after").status_code == 200
    good.close()


def frame(ftype, flags, sid, payload):
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
            sid.to_bytes(4, "big") + payload)


def hpack_len(n):
    """An HPACK string length with a 7-bit prefix, Huffman off."""
    if n < 127:
        return bytes([n])
    out, n = bytearray([127]), n - 127
    while n >= 128:
        out.append((n & 0x7f) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_frames(s):
    """Frames until EOF: (type, flags, stream, payload)."""
    buf = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if chunk:
            buf += chunk
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            yield buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n]
            buf = buf[9 + n:]
        if not chunk:
            return


def closed_with_goaway(s):
    return any(t == 7 for t, _, _, _ in read_frames(s))


def stream_status(s, sid):
    """The :status the server answered stream sid with (HEADERS, decoded by
    the h2 library's decoder), or None when it reset the stream or closed."""
    import hpack
    dec = hpack.Decoder()
    for t, flags, st, payload in read_frames(s):
        if t == 1 and st == sid:
            return dict(dec.decode(payload, raw=True)).get(b":status")
        if t in (3, 7) and (st == sid or t == 7):
            return None
    return None


def test_drain_sends_goaway_and_finishes_streams(node):
    c = RawH2(node.port)
    sid = c.headers("/delay/1500")
    c.flush()
    wait_until(lambda: node.admin_get("/backends").json()[0]["targets"][0]["inflight"] == 1,
               scaled(10), "the request to be in flight")
    stopper = threading.Thread(target=node.stop, kwargs={"timeout": scaled(20)})
    stopper.start()
    # Raw frames: the h2 library stops reading at a GOAWAY.
    import hpack
    dec = hpack.Decoder()
    goaway, status, ended = None, None, False
    for t, flags, st, payload in read_frames(c.sock):
        if t == 7:
            goaway = (int.from_bytes(payload[:4], "big") & 0x7fffffff,
                      int.from_bytes(payload[4:8], "big"))
        elif t == 1 and st == sid:
            status = dict(dec.decode(payload, raw=True)).get(b":status")
        if st == sid and t in (0, 1) and flags & 0x1:
            ended = True
    stopper.join(scaled(20))
    c.close()
    # GOAWAY (no error) names the stream in flight, which still gets its answer.
    assert goaway is not None and goaway[1] == 0 and goaway[0] >= sid, goaway
    assert status == b"200" and ended, (status, ended)


def test_http2_upstream_multiplexed(tmp_path):
    """A service with protocol http2: the upstream is a second node taking
    h2c; HTTP/1.1 and HTTP/2 clients both get through it."""
    echo = Echo()
    inner = Node(config(echo.address), name="inner", workers=1)
    outer = Node(f"""services:
  - name: h2
    protocol: http2
    targets: [{{address: 127.0.0.1:{inner.port}}}]
routes:
  - name: main
    match: {{paths: ["/"], path_type: prefix}}
    service: h2
""", name="outer", workers=1)
    body = bytes(range(256)) * 8192  # 2 MiB
    r = requests.post(outer.url("/up?x=1"), data=body, timeout=60)
    assert r.status_code == 200 and r.json()["body_bytes"] == len(body), r.text
    assert r.json()["query"] == "x=1"
    h = {k.lower(): v for k, v in r.json()["headers"].items()}
    assert h["via"] == "1.1 outer, 1.1 inner", h
    assert requests.get(outer.url("/bytes/5000000"), timeout=60).content == \
        requests.get(echo.url("/bytes/5000000"), timeout=60).content

    async def run():
        async with httpx.AsyncClient(http1=False, http2=True, base_url=outer.url(""),
                                     timeout=60) as c:
            return await asyncio.gather(*(c.get(f"/delay/20?i={i}") for i in range(150)))

    rs = asyncio.run(run())
    assert sorted(r.json()["query"] for r in rs) == sorted(f"i={i}" for i in range(150))
    # Streams share connections: the inner node holds at most GW_H2UP_CONNS
    # (2) from the outer node's one worker, not one per request.
    ss = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{inner.port} )"],
                        capture_output=True, text=True, check=True).stdout
    assert 1 <= len(ss.splitlines()) <= 2, ss
    r = requests.get(outer.url("/key/x"), timeout=10)  # the inner node's 401 passes through
    assert r.status_code == 401 and r.json()["error"], r.text


def test_unknown_method_is_refused_not_fatal(node):
    c = RawH2(node.port)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "BREW"), (":path", "/"), (":scheme", "http"),
                              (":authority", "gv.test")], end_stream=True)
    c.flush()
    status = None
    while status is None:
        evs = c.events()
        assert evs, "connection closed without an answer"
        for ev in evs:
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                status = dict(ev.headers)[":status"]
    c.close()
    assert status == "501", status
    assert get_ok(node.port, "/after")


def test_ping_flood_from_a_client_that_does_not_read(node):
    """PING ACKs a client leaves unread pile up only to nghttp2's outbound
    limit: then GOAWAY ENHANCE_YOUR_CALM, and the node keeps serving."""
    s = socket.create_connection(("127.0.0.1", node.port), timeout=scaled(20))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    ping = frame(6, 0, 0, b"12345678") * 1000
    sent = 0
    try:
        for _ in range(300):  # 300,000 PINGs, 5 MB
            s.sendall(ping)
            sent += 1
    except (BrokenPipeError, ConnectionResetError):
        pass
    # The node ends the connection (with GOAWAY ENHANCE_YOUR_CALM when it
    # could still send one; a reset when it closed on unread input).
    # Without the limit it would answer PINGs forever and this would time out.
    data, how = b"", None
    while how is None:
        try:
            chunk = s.recv(65536)
            data += chunk
            how = None if chunk else "eof"
        except ConnectionResetError:
            how = "reset"
        except socket.timeout:
            how = "timeout"
    s.close()
    assert how in ("eof", "reset"), (how, sent)
    goaway = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"
    if goaway in data:
        at = data.rindex(goaway) + 9
        assert data[at + 4:at + 8] == (11).to_bytes(4, "big"), data[at:at + 8]
    assert get_ok(node.port, "/after-flood")
