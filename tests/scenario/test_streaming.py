"""Streaming: 1 GiB up and down through the proxy with flat memory, and a
WebSocket echo tunnelled through an upgrade."""

import base64
import os
import socket
import threading

import pytest

from gvtest import Echo, HOST, Node, sanitized

GIB = 1 << 30
RSS_LIMIT_KB = 64 * 1024


@pytest.fixture
def node():
    echo = Echo("e1")
    n = Node(f"""
        services:
          - name: s
            targets: [{{address: {echo.address}}}]
        routes:
          - name: all
            match: {{paths: [/]}}
            service: s
        """, node_extra="workers: 1", env=small_quarantine())
    return n


def small_quarantine():
    """ASan keeps up to 256 MiB of freed memory in quarantine by default, so
    an ASan build's RSS grows with the bytes that passed whatever the proxy
    holds; a small quarantine keeps the bound meaningful there too."""
    if not sanitized():
        return None
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "quarantine_size_mb=4"}


class RssSampler:
    """Samples a process's RSS every few ms in a thread; peak in .peak_kb."""

    def __init__(self, proc):
        self.proc, self.peak_kb, self.stop = proc, 0, threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.wait(0.005):
            self.peak_kb = max(self.peak_kb, self.proc.rss_kb())

    def done(self):
        self.stop.set()
        self.t.join()
        return self.peak_kb


def test_download_1gib_flat_memory(node):
    s = socket.create_connection((HOST, node.port), timeout=60)
    s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % GIB)
    sampler = RssSampler(node)
    total = 0
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(65536)
    head, rest = head.split(b"\r\n\r\n", 1)
    total += len(rest)
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        total += len(d)
    peak = sampler.done()
    assert b" 200 " in head.split(b"\r\n")[0]
    if b"chunked" not in head.lower():
        assert total == GIB
    else:
        assert total > GIB
    assert peak < RSS_LIMIT_KB, f"peak RSS {peak} KiB"


def test_upload_1gib_chunked_flat_memory(node):
    s = socket.create_connection((HOST, node.port), timeout=60)
    s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    sampler = RssSampler(node)
    block = b"x" * (1 << 20)
    frame = b"%x\r\n" % len(block) + block + b"\r\n"
    for _ in range(GIB // len(block)):
        s.sendall(frame)
    s.sendall(b"0\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    peak = sampler.done()
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert b'"body_bytes":%d' % GIB in data
    assert peak < RSS_LIMIT_KB, f"peak RSS {peak} KiB"


def test_upload_1gib_content_length(node):
    s = socket.create_connection((HOST, node.port), timeout=60)
    s.sendall(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % GIB)
    sampler = RssSampler(node)
    block = b"y" * (1 << 20)
    for _ in range(GIB // len(block)):
        s.sendall(block)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    peak = sampler.done()
    assert b'"body_bytes":%d' % GIB in data, data[:300]
    assert peak < RSS_LIMIT_KB, f"peak RSS {peak} KiB"


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        hdr = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        hdr = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        hdr = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(s, buf):
    while len(buf) < 2:
        buf += s.recv(65536)
    n = buf[1] & 0x7F
    off = 2
    if n == 126:
        while len(buf) < 4:
            buf += s.recv(65536)
        n, off = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        while len(buf) < 10:
            buf += s.recv(65536)
        n, off = int.from_bytes(buf[2:10], "big"), 10
    while len(buf) < off + n:
        buf += s.recv(65536)
    return buf[0] & 0x0F, buf[off:off + n], buf[off + n:]


def test_websocket_echo(node):
    s = socket.create_connection((HOST, node.port), timeout=10)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"sec-websocket-accept" in head.lower()
    for payload in [b"hello", b"x" * 300, os.urandom(70000)]:
        s.sendall(ws_frame(payload, 2))
        op, got, buf = read_frame(s, buf)
        assert got == payload
    s.sendall(ws_frame(b"", 8))  # close
    op, _, buf = read_frame(s, buf)
    assert op == 8
