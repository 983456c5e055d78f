"""The admin API's limits (issue 14): a client that sends its head or body too
slowly is cut once its time is up (header_timeout, admin_body_timeout), the
connections over admin_max_connections are closed as they come while the
others are served, and a body over 4 MiB gets a 413 that the client reads
before the connection closes."""

import socket
import threading
import time

import requests

from gvtest import HOST, Node, scaled, wait_until

def raw(node, timeout=10.0):
    """A socket whose reads give up after timeout (scaled): a cut that never
    comes fails the test there, without asserting how fast it came."""
    s = socket.create_connection((HOST, node.admin_port), timeout=scaled(timeout))
    s.settimeout(scaled(timeout))
    return s


def read_to_close(s):
    """Everything the peer sends until it closes (a reset ends it too)."""
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_slow_heads_are_cut_after_header_timeout():
    node = Node("", node_extra="header_timeout: 1s")
    start = time.monotonic()  # before any connection: none can be due before start + 1 s
    socks = []
    for _ in range(200):
        # Each head is sent as soon as its connection is up: on a busy machine
        # connecting 200 can outlast a first head's timeout and linger, and
        # bytes sent to a socket the server has closed come back as a reset
        # that discards its 408 unread.
        socks.append(raw(node))
        socks[-1].sendall(b"GET /health HTTP/1.1\r\nHost: admin\r\nX-Slow: ")
    # a client that sends its request whole is served meanwhile
    assert node.admin_get("/health").status_code == 200
    answers, took = [], []
    for s in socks:
        answers.append(read_to_close(s))
        took.append(time.monotonic() - start)
        s.close()
    assert took[0] >= 0.8, f"a slow head was cut after {took[0]:.2f}s, before its time"
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[0][:200]
    assert b"request head not received in time" in answers[0]
    assert node.admin_get("/health").status_code == 200


def test_slow_body_is_cut_after_admin_body_timeout():
    node = Node("", node_extra="admin_body_timeout: 1s")
    start = time.monotonic()
    s = raw(node)
    s.sendall(b"PUT /config/services/s HTTP/1.1\r\nHost: admin\r\nContent-Length: 100\r\n\r\n{")
    answer = read_to_close(s)
    took = time.monotonic() - start
    s.close()
    assert took >= 0.8, f"cut after {took:.2f}s, before its time"
    assert answer.startswith(b"HTTP/1.1 408 ") and b"body not received in time" in answer
    assert node.admin_get("/config/services/s").status_code == 404  # nothing applied


def served(s):
    """Sends a request on s and tells whether it was answered 200 (False:
    refused over the cap, with a 503 or a bare close)."""
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: admin\r\n\r\n")
        return s.recv(65536).startswith(b"HTTP/1.1 200 ")
    except (ConnectionResetError, BrokenPipeError):
        return False


def test_connections_over_the_cap_are_closed_while_others_are_served():
    node = Node("", node_extra="admin_max_connections: 8")
    # fill the cap with connections proven served; a slot may still be held
    # by the harness's own start-up request until the node sees it closed
    held = []

    def fill():
        s = raw(node)
        if served(s):
            held.append(s)
        else:
            s.close()
        return len(held) == 8
    wait_until(fill, 20, "8 admin connections to be served")
    # over the cap: closed at once (a 503 may come first)
    for _ in range(3):
        s = raw(node)
        data = read_to_close(s)
        s.close()
        assert data == b"" or data.startswith(b"HTTP/1.1 503 "), data[:200]
    # the connections under the cap are still served
    for s in held[:2]:
        assert served(s)
    # a place frees up: a new client is served again
    held.pop().close()
    wait_until(lambda: requests.get(node.admin_url("/health"), timeout=2).status_code == 200, 5,
               "a new admin connection to be served once one closed")
    for s in held:
        s.close()


def test_a_body_over_4_mib_gets_413_before_the_close():
    node = Node("")
    body = b"x" * (10 * 1024 * 1024)
    # Content-Length says it: answered at once, the body drained meanwhile
    r = requests.put(node.admin_url("/config/services/s"), data=body, timeout=scaled(20))
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "request body too large"
    assert r.headers["Connection"] == "close"

    # chunked: answered once it is over; a raw client reads it before the close
    s = raw(node, timeout=20)
    s.sendall(b"PUT /config/services/s HTTP/1.1\r\nHost: admin\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"%x\r\n" % (1 << 20) + b"y" * (1 << 20) + b"\r\n"

    def send_body():
        try:
            for _ in range(10):
                s.sendall(piece)
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may have stopped reading once the answer left

    sender = threading.Thread(target=send_body)
    sender.start()
    answer = read_to_close(s)
    sender.join()
    s.close()
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"request body too large" in answer
    assert node.admin_get("/config/services/s").status_code == 404
