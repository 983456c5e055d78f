"""Traces, the access log and /metrics (docs/observability.md).

- one request through two grapevine nodes (gw1 proxies to gw2, which proxies
  to an echo upstream): one trace id end to end, a new span id per hop, the
  same trace id in both access logs; a client's traceparent is continued, a
  malformed one replaced, and without one the first node starts the trace;
- an access log line has its time (RFC 3339, ms), host, user agent,
  upstream address and time, attempts and trace id; an error body names the
  trace id;
- a busy node's /metrics passes `promtool check metrics` (skipped without
  promtool) and has the latency histogram by route, service and status class.
"""

import json
import re
import shutil
import subprocess

import pytest

from gvtest import Echo, Node, wait_until, scaled

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def chain_config(address, service="next"):
    return f"""
services:
  - name: {service}
    targets: [{{address: "{address}"}}]
routes:
  - name: all
    match: {{paths: [/]}}
    service: {service}
"""


def log_lines(node):
    lines = []
    for ln in node.stdout_path.read_text().splitlines():
        if ln.startswith("{"):
            lines.append(json.loads(ln))
    return lines


def logged(node, trace):
    return [ln for ln in log_lines(node) if ln.get("trace_id") == trace]


def two_hops():
    echo = Echo("e1")
    gw2 = Node(chain_config(echo.address, "up"), name="gw2", access_log=True)
    gw1 = Node(chain_config(gw2.listen), name="gw1", access_log=True)
    return echo, gw1, gw2


def test_one_trace_through_two_nodes():
    echo, gw1, gw2 = two_hops()
    r = gw1.get("/a", headers={"traceparent": TP, "tracestate": "v=1",
                               "User-Agent": "trace-test/1"})
    assert r.status_code == 200, r.text
    h = r.json()["headers"]
    m = TP_RE.match(h["traceparent"])
    assert m, h["traceparent"]
    assert m.group(1) == TRACE  # the client's trace, continued through both hops
    assert m.group(2) != "00f067aa0ba902b7" and m.group(3) == "01"
    assert h["tracestate"] == "v=1"
    wait_until(lambda: logged(gw1, TRACE) and logged(gw2, TRACE), scaled(10),
               "both nodes to log the request with the trace id")
    (l1,), (l2,) = logged(gw1, TRACE), logged(gw2, TRACE)
    # gw2 saw gw1's span as parent: the upstream's parent is gw2's own span,
    # so three different span ids: the client's, gw1's and gw2's
    assert l1["node"] == "gw1" and l2["node"] == "gw2"
    # the chain of spans: client -> gw1 -> gw2 -> upstream
    assert l1["parent_span_id"] == "00f067aa0ba902b7"
    assert l2["parent_span_id"] == l1["span_id"] != l2["span_id"]
    assert m.group(2) == l2["span_id"]  # the upstream's parent is gw2's span
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", l1["time"]), l1
    assert l1["user_agent"] == "trace-test/1" and l2["user_agent"] == "trace-test/1"
    assert l1["host"].startswith("127.0.0.1:") and l1["target"] == gw2.listen
    assert l2["target"] == echo.address and l1["attempts"] == 1
    assert 0 <= l2["upstream_ms"] <= l1["upstream_ms"] <= l1["duration_ms"], (l1, l2)

    # no traceparent: gw1 starts the trace, gw2 continues it
    r = gw1.get("/b")
    m = TP_RE.match(r.json()["headers"]["traceparent"])
    assert m and m.group(1) != TRACE
    trace = m.group(1)
    wait_until(lambda: logged(gw1, trace) and logged(gw2, trace), scaled(10),
               "both nodes to log the trace gw1 started")
    assert logged(gw1, trace)[0]["parent_span_id"] == ""  # gw1 started it

    # a malformed one is replaced, and its tracestate dropped with it
    r = gw1.get("/c", headers={"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                               "tracestate": "v=1"})
    h = r.json()["headers"]
    m = TP_RE.match(h["traceparent"])
    assert m and m.group(1) != "0" * 32 and "tracestate" not in h


def test_error_body_names_the_trace():
    node = Node(chain_config("127.0.0.1:1"), access_log=True)
    r = node.get("/nowhere", headers={"traceparent": TP})
    assert r.status_code in (502, 503), r.text
    assert r.json()["trace_id"] == TRACE
    wait_until(lambda: logged(node, TRACE), scaled(10), "the failed request in the log")
    line = logged(node, TRACE)[0]
    assert line["upstream_ms"] == -1 and line["status"] == r.status_code


def test_promtool_accepts_a_busy_nodes_metrics():
    echo = Echo("e1")
    node = Node(f"""
services:
  - name: web
    targets: [{{address: "{echo.address}"}}]
routes:
  - name: all
    match: {{paths: [/]}}
    service: web
    plugins:
      - rate_limit: {{limit: 5, window: 1m, key: ip, scope: node}}
  - name: second
    match: {{paths: [/q]}}
    service: web
""")
    codes = {node.get("/x").status_code for _ in range(8)}
    assert codes == {200, 429}
    assert node.get("/q").status_code == 200
    text = node.admin_get("/metrics").text
    assert ('grapevine_http_request_duration_seconds_count'
            '{route="all",service="web",code_class="2xx"} 5') in text
    assert ('grapevine_http_request_duration_seconds_count'
            '{route="all",service="web",code_class="4xx"} 3') in text
    assert 'route="second",service="web",code_class="2xx"' in text
    # the upstream's time by service: the 6 answered requests, not the 3 limited ones
    assert 'grapevine_upstream_response_seconds_count{service="web"} 6' in text, text
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_start_time_seconds",
                 "grapevine_upstream_retries_total"):
        assert re.search(rf"^{name} \d", text, flags=re.M), name
    # an open client connection shows in the gauge
    conn = node.raw()

    def open_conns():
        m = re.search(r"^grapevine_http_connections (\d+)$", node.admin_get("/metrics").text,
                      flags=re.M)
        return int(m.group(1)) if m else -1
    wait_until(lambda: open_conns() >= 1, scaled(10), "the open connection in the gauge")
    conn.close()
    wait_until(lambda: open_conns() == 0, scaled(10), "the gauge back to 0")
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; scripts/setup.sh)")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_grafana_dashboard_names_only_metrics_a_node_exports():
    """deploy/grafana/grapevine-dashboard.json: valid JSON whose queries use
    metric names a busy node's /metrics has."""
    from gvtest import REPO
    dash = json.loads((REPO / "deploy" / "grafana" / "grapevine-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    echo = Echo("e1")
    node = Node(f"""
services:
  - name: web
    targets: [{{address: "{echo.address}"}}]
routes:
  - name: all
    match: {{paths: [/]}}
    service: web
    plugins:
      - rate_limit: {{limit: 5, window: 1m, key: ip, scope: node}}
""")
    assert node.get("/x").status_code == 200
    families = set(re.findall(r"^# TYPE (\S+) ", node.admin_get("/metrics").text, flags=re.M))
    for e in exprs:
        for name in re.findall(r"\b((?:grapevine|process)_[a-z_]+)\b", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in families or base in families, (name, e)


def test_http2_clients_are_traced_too():
    """An HTTP/2 (h2c) request continues the client's trace like an
    HTTP/1.1 one, and its log line says so."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("h2")
    echo = Echo("e1")
    node = Node(chain_config(echo.address, "up"), access_log=True)
    with httpx.Client(http1=False, http2=True, base_url=node.url(""), timeout=30) as c:
        r = c.get("/h2", headers={"traceparent": TP})
    assert r.status_code == 200 and r.http_version == "HTTP/2", r
    m = TP_RE.match(r.json()["headers"]["traceparent"])
    assert m and m.group(1) == TRACE and m.group(2) != "00f067aa0ba902b7"
    wait_until(lambda: logged(node, TRACE), scaled(10), "the h2 request in the log")
    line = logged(node, TRACE)[0]
    assert line["span_id"] == m.group(2) and line["upstream_ms"] >= 0, line
