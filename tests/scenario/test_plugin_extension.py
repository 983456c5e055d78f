"""A plugin is one file plus one registry line: tests/plugins/stamp.c, linked
into build/grapevine-test only, is configurable in the YAML file and through
the admin API, validated by its own schema (error paths included), shown in
canonical form, and runs on requests, with nothing else in the tree naming
it. The real binary does not know it."""

import requests

from gvtest import Echo, Node, binary, extension_binary, run_cli


def config(echo):
    return f"""
        services:
          - name: s
            targets: [{{address: {echo.address}}}]
        routes:
          - name: stamped
            match: {{paths: [/s], path_type: prefix}}
            service: s
            plugins:
              - test_stamp: {{value: from-yaml, times: 2}}
          - name: plain
            match: {{paths: [/p], path_type: prefix}}
            service: s
        """


def test_a_plugin_in_one_file_is_configured_and_runs():
    echo = Echo()
    node = Node(config(echo), bin=extension_binary())
    r = requests.get(node.url("/s"), timeout=5)
    assert r.status_code == 200
    assert r.json()["headers"]["x-stamp"] == "from-yaml, from-yaml"  # times: 2
    assert r.headers["X-Stamped"] == "from-yaml"
    assert "x-stamp" not in requests.get(node.url("/p"), timeout=5).json()["headers"]

    # its schema judges the admin API too, with the path of the bad value
    route = {"match": {"paths": ["/p"], "path_type": "prefix"}, "service": "s",
             "plugins": [{"test_stamp": {"value": "v", "times": 9}}]}
    r = node.admin_put("/config/routes/plain", json=route)
    assert r.status_code == 400
    assert r.json()["path"] == "plugins[0].test_stamp.times", r.text
    route["plugins"] = [{"test_stamp": {"header": "X-Other"}}]
    r = node.admin_put("/config/routes/plain", json=route)
    assert r.status_code == 400 and "missing \"value\"" in r.json()["error"], r.text

    route["plugins"] = [{"test_stamp": {"header": "X-Other", "value": "from-api"}}]
    r = node.admin_put("/config/routes/plain", json=route)
    assert r.status_code == 200, r.text
    assert r.json()["plugins"] == [{"test_stamp": {"header": "X-Other", "value": "from-api",
                                                   "times": 1}}]
    got = requests.get(node.url("/p"), timeout=5)
    assert got.json()["headers"]["x-other"] == "from-api"
    assert got.headers["X-Stamped"] == "from-api"

    # as a global plugin, through the plugins kind
    r = node.admin_put("/config/plugins/test_stamp", json={"value": "everywhere"})
    assert r.status_code == 200, r.text
    assert requests.get(node.url("/s"), timeout=5).headers["X-Stamped"] == "from-yaml"  # route's wins
    assert requests.get(node.url("/p"), timeout=5).headers["X-Stamped"] == "from-api"


def test_the_real_binary_does_not_know_it(tmp_path):
    echo = Echo()
    path = tmp_path / "gw.yaml"
    path.write_text("\n".join(ln[8:] for ln in config(echo).splitlines()))
    r = run_cli("validate", "-c", str(path))
    assert r.returncode == 2
    assert 'unknown plugin "test_stamp"' in r.stderr, r.stderr
    r = run_cli("validate", "-c", str(path), bin=extension_binary())
    assert r.returncode == 0, r.stderr
    assert binary() != extension_binary()
