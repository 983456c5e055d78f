"""pytest wiring for the grapevine scenario tests (helpers live in gvtest.py).

Every test runs inside a gvtest.Scope: each Echo/Node/Proc it starts (directly
or through a fixture) is stopped at teardown even when the test fails, and a
process that crashed, exited non-zero on SIGTERM or printed a sanitizer report
fails the test. When a test fails, the logs of its processes are attached to
the report.
"""

import pytest

import gvtest


@pytest.fixture(scope="session", autouse=True)
def gv_session_scope(tmp_path_factory):
    """Holds processes started outside any test (e.g. by module fixtures)."""
    scope = gvtest.push_scope("session", tmp_path_factory.mktemp("session"))
    yield scope
    problems = gvtest.pop_scope(scope)
    if problems:
        pytest.fail("\n".join(problems) + "\n" + scope.logs(), pytrace=False)


@pytest.fixture(autouse=True)
def gv_scope(request, tmp_path):
    """The test's own scope; its processes' files are under tmp_path."""
    scope = gvtest.push_scope(request.node.nodeid, tmp_path)
    request.node._gv_scope = scope
    yield scope
    problems = gvtest.pop_scope(scope)
    if problems:
        pytest.fail("process problems:\n  " + "\n  ".join(problems) + "\n" + scope.logs(),
                    pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    scope = getattr(item, "_gv_scope", None)
    if scope is None or not rep.failed or rep.when not in ("setup", "call"):
        return
    for proc in scope.procs:
        rep.sections.append((f"{proc.label} (pid {proc.popen.pid if proc.popen else '-'})",
                             proc.logs()))
