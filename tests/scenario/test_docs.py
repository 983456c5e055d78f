"""docs/config-reference.md is what `grapevine docs config` writes from the
schemas: a setting added, renamed or re-documented in code shows here, so the
reference cannot drift from what the config file and the admin API accept.
(Regenerate: build/grapevine docs config > docs/config-reference.md)"""

from gvtest import REPO, run_cli


def test_config_reference_is_generated_from_the_schemas():
    r = run_cli("docs", "config")
    assert r.returncode == 0, r.stderr
    committed = (REPO / "docs" / "config-reference.md").read_text()
    assert r.stdout == committed, ("docs/config-reference.md is stale: run "
                                   "build/grapevine docs config > docs/config-reference.md")


def test_every_plugin_and_kind_is_documented():
    text = run_cli("docs", "config").stdout
    for name in ("key_auth", "jwt", "basic_auth", "rate_limit", "ip_restriction", "cors",
                 "request_headers", "response_headers", "request_size_limit", "request_id"):
        assert f"\n### {name} (order " in text, name
    for section in ("## node:", "## services", "## routes", "## consumers", "## Plugins"):
        assert section in text
    assert "`routes[].match.path_type`" in text and "segment_prefix" in text
