"""The admin API against its OpenAPI description (GET /openapi.json,
docs/openapi.json, written by `grapevine docs openapi`).

- the served description is the committed one, and names every row of the
  admin route table;
- schemathesis (PyPI; skipped when missing) drives a live node from the
  description, bounded in examples and time: no 5xx, every status code,
  content type and JSON body as the description says. /events is left out
  (an answer that never ends) and /ready too (its 503 without routes is
  documented behaviour, which the generated PUT /config calls cause).
"""

import json
import re
import shutil
import subprocess

import pytest

from gvtest import REPO, Echo, Node, run_cli, scaled


def config(echo):
    return f"""
services:
  - name: web
    targets: [{{address: {echo.address}}}]
routes:
  - name: all
    match: {{paths: [/]}}
    service: web
"""


def test_served_description_is_the_committed_one():
    r = run_cli("docs", "openapi")
    assert r.returncode == 0, r.stderr
    committed = (REPO / "docs" / "openapi.json").read_text()
    assert r.stdout == committed, ("docs/openapi.json is stale: run "
                                   "build/grapevine docs openapi > docs/openapi.json")
    doc = json.loads(committed)
    assert doc["openapi"].startswith("3.1")
    node = Node(config(Echo("e1")))
    served = node.admin_get("/openapi.json")
    assert served.status_code == 200 and served.json() == doc
    # every endpoint of node/admin/routes.c is described, with its methods
    table = (REPO / "node" / "admin" / "routes.c").read_text()
    for method, pattern in re.findall(r'\{(GET|POST|PUT|DELETE), "([^"]+)"', table):
        path = re.sub(r":(\w+)", r"{\1}", pattern)
        assert path in doc["paths"], path
        assert method.lower() in doc["paths"][path], f"{method} {path}"
    # the config objects' schemas come from the schema tables
    assert "targets" in doc["components"]["schemas"]["Service"]["properties"]
    assert "match" in doc["components"]["schemas"]["Route"]["properties"]


def test_schemathesis_against_a_live_node(tmp_path):
    st = shutil.which("schemathesis") or shutil.which("st")
    if st is None:
        pytest.skip("schemathesis is not installed (scripts/setup.sh)")
    node = Node(config(Echo("e1")))
    argv = [st, "run", node.admin_url("/openapi.json"),
            "--exclude-path", "/events", "--exclude-path", "/ready",
            "--checks", "not_a_server_error,status_code_conformance,"
                        "content_type_conformance,response_schema_conformance",
            "--phases", "coverage,fuzzing", "--max-examples", "5",
            "--max-time", str(int(scaled(40))), "--request-timeout", str(int(scaled(10))),
            "--workers", "1", "--seed", "19", "--generation-database", "none",
            "--no-color"]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path,
                       timeout=scaled(40) + 120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert re.search(r"[1-9]\d* generated", out), out[-3000:]  # it did send requests
    assert node.alive(), "the node died under schemathesis"
    assert node.admin_get("/health").status_code == 200
