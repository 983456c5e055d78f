"""gRPC through the gateway: grpcio clients and a grpcio server (generic
handlers over raw bytes, no generated code) behind `protocol: grpc`
services. All four call kinds with trailers intact, gateway-made errors as
gRPC statuses (key_auth, a cluster rate limit, ip_restriction, no target,
no route), grpc-timeout honoured, and a target that dies mid-stream."""

import os
import threading
import time
from concurrent import futures

# The harness forks the node processes while grpcio's threads run here:
# grpcio's fork handlers must stay out of those children (they abort).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import grpc  # noqa: E402 (after the fork setting, which it reads on import)
import httpx
import pytest

from gvtest import Echo, Node, free_port, scaled

SERVICE = "test.Echo"


def unary(req, ctx):
    ctx.set_trailing_metadata((("x-trail", "kept"),))
    return b"echo:" + req


def server_stream(req, ctx):
    for i in range(int(req)):
        yield b"%d" % i


def client_stream(it, ctx):
    return b"|".join(it)


def bidi(it, ctx):
    for m in it:
        yield m.upper()


def fails(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


def forever(req, ctx):
    i = 0
    while ctx.is_active():
        yield b"%d" % i
        i += 1
        time.sleep(0.01)


HEALTH = {"status": b"\x08\x01"}  # HealthCheckResponse{status: SERVING}


def health_check(req, ctx):
    return HEALTH["status"]


def start_server():
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fails": grpc.unary_unary_rpc_method_handler(fails),
        "Forever": grpc.unary_stream_rpc_method_handler(forever),
    }
    server = grpc.server(futures.ThreadPoolExecutor(16))
    health = {"Check": grpc.unary_unary_rpc_method_handler(health_check)}
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(SERVICE, handlers),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", health)))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def config(port, dead_port):
    return f"""services:
  - name: g
    protocol: grpc
    retries: 0
    targets: [{{address: 127.0.0.1:{port}}}]
    health_check: {{interval: 3s, timeout: 3s, healthy: 1, unhealthy: 1}}
  - name: dead
    protocol: grpc
    retries: 0
    targets: [{{address: 127.0.0.1:{dead_port}}}]
routes:
  - name: open
    match: {{paths: [/test.Echo/], path_type: prefix}}
    service: g
  - name: keyed
    match: {{paths: [/test.Keyed/], path_type: prefix}}
    service: g
    plugins:
      - key_auth: {{}}
  - name: limited
    match: {{paths: [/test.Limited/], path_type: prefix}}
    service: g
    plugins:
      - rate_limit: {{limit: 1, window: 1m, key: route, scope: cluster}}
  - name: denied
    match: {{paths: [/test.Denied/], path_type: prefix}}
    service: g
    plugins:
      - ip_restriction: {{deny: [127.0.0.0/8]}}
  - name: dead
    match: {{paths: [/test.Dead/], path_type: prefix}}
    service: dead
consumers:
  - name: alice
    key_auth: [key-abc]
"""


@pytest.fixture
def env():
    HEALTH["status"] = b"\x08\x01"
    server, port = start_server()
    node = Node(config(port, free_port()), workers=1)
    channel = grpc.insecure_channel(f"127.0.0.1:{node.port}")
    yield node, channel, server
    channel.close()
    server.stop(0)


def method(channel, name, kind="unary_unary", service=SERVICE):
    return getattr(channel, kind)(f"/{service}/{name}")


def test_four_call_kinds_with_trailers(env):
    node, ch, _ = env
    resp, call = method(ch, "Unary").with_call(b"hi", timeout=scaled(10))
    assert resp == b"echo:hi"
    assert ("x-trail", "kept") in call.trailing_metadata()
    got = list(method(ch, "ServerStream", "unary_stream")(b"200", timeout=scaled(20)))
    assert got == [b"%d" % i for i in range(200)]
    parts = [b"a", b"b" * 100000, b"c"]
    assert method(ch, "ClientStream", "stream_unary")(iter(parts), timeout=scaled(20)) == \
        b"|".join(parts)
    words = [b"x%d" % i for i in range(50)]
    assert list(method(ch, "Bidi", "stream_stream")(iter(words), timeout=scaled(20))) == \
        [w.upper() for w in words]
    # A status the target sets passes through with its message.
    with pytest.raises(grpc.RpcError) as e:
        method(ch, "Fails")(b"", timeout=scaled(10))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and e.value.details() == "no such thing"


def test_many_concurrent_calls(env):
    node, ch, _ = env
    f = method(ch, "Unary")
    calls = [f.future(b"%d" % i, timeout=scaled(30)) for i in range(300)]
    assert [c.result() for c in calls] == [b"echo:%d" % i for i in range(300)]


def status_of(ch, path):
    service, name = path.strip("/").split("/")
    with pytest.raises(grpc.RpcError) as e:
        method(ch, name, service=service)(b"x", timeout=scaled(10))
    return e.value.code()


def test_gateway_errors_are_grpc_statuses(env):
    node, ch, _ = env
    assert status_of(ch, "/test.Keyed/Unary") == grpc.StatusCode.UNAUTHENTICATED
    keyed = method(ch, "Unary", service="test.Keyed")
    with pytest.raises(grpc.RpcError) as e:  # authenticated: the target says it has no such service
        keyed(b"x", timeout=scaled(10), metadata=(("x-api-key", "key-abc"),))
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert status_of(ch, "/test.Limited/Unary") == grpc.StatusCode.UNIMPLEMENTED  # allowed
    assert status_of(ch, "/test.Limited/Unary") == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_of(ch, "/test.Denied/Unary") == grpc.StatusCode.PERMISSION_DENIED
    assert status_of(ch, "/test.Dead/Unary") == grpc.StatusCode.UNAVAILABLE
    assert status_of(ch, "/nowhere.Svc/Unary") == grpc.StatusCode.UNIMPLEMENTED  # no route


def test_grpc_timeout_is_honoured_by_the_gateway():
    # The target must not enforce the deadline itself (a grpcio server
    # would, and answer first): a second node takes the h2c stream and
    # sends it to an HTTP/1.1 echo that delays 3 s. A raw HTTP/2 client
    # that does not enforce the deadline either gets the gateway's
    # DEADLINE_EXCEEDED when grpc-timeout runs out.
    echo = Echo()
    inner = Node(f"""services:
  - name: e
    targets: [{{address: {echo.address}}}]
routes:
  - name: all
    match: {{paths: ["/"], path_type: prefix}}
    service: e
""", name="inner", workers=1)
    outer = Node(f"""services:
  - name: g
    protocol: grpc
    targets: [{{address: 127.0.0.1:{inner.port}}}]
routes:
  - name: all
    match: {{paths: ["/"], path_type: prefix}}
    service: g
""", name="outer", workers=1)
    frame = b"\x00" + (1).to_bytes(4, "big") + b"x"
    with httpx.Client(http1=False, http2=True, timeout=scaled(30)) as c:
        r = c.post(f"http://127.0.0.1:{outer.port}/delay/3000", content=frame,
                   headers={"content-type": "application/grpc", "te": "trailers",
                            "grpc-timeout": "300m"})
    assert r.status_code == 200
    assert r.headers.get("grpc-status") == "4", r.headers
    assert r.headers.get("grpc-message") == "deadline exceeded", r.headers


def test_target_killed_mid_stream(env):
    node, ch, server = env
    it = method(ch, "Forever", "unary_stream")(b"", timeout=scaled(30))
    for _ in range(5):
        next(it)
    threading.Thread(target=server.stop, args=(0,)).start()
    with pytest.raises(grpc.RpcError) as e:
        for _ in it:
            pass
    assert e.value.code() != grpc.StatusCode.OK
    # The node lives on and answers the next call itself.
    assert status_of(ch, f"/{SERVICE}/Unary") == grpc.StatusCode.UNAVAILABLE


def test_active_health_check_asks_grpc_health(env):
    node, ch, server = env
    address = node.config_text.split("targets: [{address: ")[1].split("}")[0]
    node.wait_backend("g", address, True, timeout=scaled(10))
    HEALTH["status"] = b"\x08\x02"  # NOT_SERVING
    node.wait_backend("g", address, False, timeout=scaled(10))
    assert status_of(ch, f"/{SERVICE}/Unary") == grpc.StatusCode.UNAVAILABLE
    HEALTH["status"] = b"\x08\x01"
    node.wait_backend("g", address, True, timeout=scaled(10))
    assert method(ch, "Unary")(b"back", timeout=scaled(10)) == b"echo:back"


def test_grpc_target_over_tls(tmp_path):
    """h2 over TLS to the target (ALPN h2), verified against its CA; the
    gRPC health probe goes the same way."""
    from test_tls import make_cert
    pem = make_cert(tmp_path, "a.test")
    key = (tmp_path / "a.test.key").read_bytes()
    handlers = {"Unary": grpc.unary_unary_rpc_method_handler(unary),
                "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream)}
    server = grpc.server(futures.ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(SERVICE, handlers),
        grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(health_check)})))
    port = server.add_secure_port("127.0.0.1:0",
                                  grpc.ssl_server_credentials([(key, pem.read_bytes())]))
    server.start()
    HEALTH["status"] = b"\x08\x01"
    try:
        node = Node(f"""services:
  - name: g
    protocol: grpc
    targets: [{{address: 127.0.0.1:{port}}}]
    tls: {{ca_file: {pem}, server_name: a.test}}
    health_check: {{interval: 3s, timeout: 3s, healthy: 1, unhealthy: 1}}
routes:
  - name: open
    match: {{paths: [/test.Echo/], path_type: prefix}}
    service: g
""", workers=1)
        node.wait_backend("g", f"127.0.0.1:{port}", True, timeout=scaled(10))
        with grpc.insecure_channel(f"127.0.0.1:{node.port}") as ch:
            resp, call = method(ch, "Unary").with_call(b"tls", timeout=scaled(10))
            assert resp == b"echo:tls"
            assert ("x-trail", "kept") in call.trailing_metadata()
            got = list(method(ch, "ServerStream", "unary_stream")(b"50", timeout=scaled(20)))
            assert got == [b"%d" % i for i in range(50)]
    finally:
        server.stop(0)
