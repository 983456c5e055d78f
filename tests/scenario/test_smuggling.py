"""Malformed and ambiguous requests: the smuggling shapes of SPEC, oversized
heads and slow clients get 400/408/414/431 and a closed connection, and
nothing reaches the upstream (a recording TCP server stands in for it)."""

import socket
import threading

import pytest

from gvtest import HOST, Node, wait_until


class Recorder:
    """An upstream that records every byte it receives and answers nothing."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.connections = 0
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._drain, args=(c,), daemon=True).start()

    def _drain(self, c):
        c.settimeout(30)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                with self.lock:
                    self.received += d
        except OSError:
            pass
        c.close()

    def close(self):
        self.stopped = True
        self.sock.close()


@pytest.fixture
def setup():
    rec = Recorder()
    node = Node(f"""
        services:
          - name: rec
            targets: [{{address: {HOST}:{rec.port}}}]
            timeouts: {{connect: 1s, read: 2s}}
        routes:
          - name: all
            match: {{paths: [/]}}
            service: rec
        """, node_extra="header_timeout: 1s\nworkers: 1")
    yield node, rec
    rec.close()


SMUGGLING = {
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    "two_cl_different": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "two_cl_same": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
    "cl_list": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd",
    "cl_negative": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "cl_plus": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
    "cl_hex": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x4\r\n\r\nabcd",
    "cl_space_inside": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
    "te_not_chunked_last": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "te_unknown": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "bad_chunk_size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_overflow": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
    "chunk_missing_crlf": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n",
    "bare_lf_headers": b"GET / HTTP/1.1\nHost: x\n\n",
    "bare_lf_in_header": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\nX-B: 2\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
    "bad_version": b"GET / HTTP/1.7\r\nHost: x\r\n\r\n",
    "missing_host_11": b"GET / HTTP/1.1\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "bad_method_chars": b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul_in_header": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "absolute_form_junk": b"GET x HTTP/1.1\r\nHost: x\r\n\r\n",
}


def read_all(sock, limit=1 << 20):
    data = b""
    sock.settimeout(5)
    while len(data) < limit:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"connection was not closed; got {data!r}")
        if not d:
            break
        data += d
    return data


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_shape_rejected(setup, name):
    node, rec = setup
    s = socket.create_connection((HOST, node.port), timeout=5)
    s.sendall(SMUGGLING[name])
    data = read_all(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert data.count(b"HTTP/1.1") == 1, data
    assert b'"error"' in data
    assert b"Connection: close" in data
    assert rec.connections == 0 and rec.received == b"", rec.received


def test_smuggled_second_request_not_forwarded(setup):
    """The classic CL.TE attack: the 'body' holds a second request."""
    node, rec = setup
    payload = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
    s = socket.create_connection((HOST, node.port), timeout=5)
    s.sendall(payload)
    data = read_all(s)
    assert data.startswith(b"HTTP/1.1 400 ") and data.count(b"HTTP/1.1 ") == 1, data
    assert rec.received == b""


def test_headers_too_large(setup):
    node, rec = setup
    s = socket.create_connection((HOST, node.port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    data = read_all(s)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]
    assert rec.received == b""


def test_too_many_headers(setup):
    node, rec = setup
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    s = socket.create_connection((HOST, node.port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
    data = read_all(s)
    assert data.startswith(b"HTTP/1.1 431 "), data[:200]
    assert rec.received == b""


def test_request_line_too_long(setup):
    node, rec = setup
    s = socket.create_connection((HOST, node.port), timeout=5)
    s.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_all(s)
    assert data.startswith(b"HTTP/1.1 414 "), data[:200]
    assert rec.received == b""


def test_slow_header_gets_408(setup):
    node, rec = setup
    s = socket.create_connection((HOST, node.port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    data = read_all(s)  # the node must answer and close within header_timeout (1s) + tick
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert rec.received == b""


def test_good_request_after_rejections_still_proxied(setup):
    """The recorder sees exactly the one valid request (sanity check that it
    would have seen the bad ones too)."""
    node, rec = setup
    s = socket.create_connection((HOST, node.port), timeout=5)
    s.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: b"GET /ok HTTP/1.1" in rec.received, 5, "upstream to receive the request")
    s.close()
