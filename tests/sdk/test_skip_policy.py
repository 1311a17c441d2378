"""The skip rule CI runs under (tests/skips.py): planned skips pass and are listed, others fail on CI."""
import pytest

from tests.conftest import ROOT

pytest_plugins = ["pytester"]

TESTS = '''
import pytest
from tests.skips import elsewhere, lacking

def test_elsewhere():
    pytest.skip(elsewhere("workstation", "needs TensorFlow"))

def test_lacking():
    pytest.skip(lacking("an IPv6 loopback"))

def test_hides_a_path():
    pytest.skip(REASON)
'''


def run(pytester, monkeypatch, *, ci: bool, suite: str, reason: str):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("EDGELITE_SUITE", suite)
    monkeypatch.setenv("EDGELITE_CI", "1" if ci else "0")
    pytester.makeconftest("from tests.conftest import pytest_runtest_logreport, pytest_sessionfinish, "
                          "pytest_terminal_summary  # noqa: F401")
    pytester.makepyfile(test_some=TESTS.replace("REASON", repr(reason)))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")


def test_a_skip_that_hides_a_path_fails_on_ci(pytester, monkeypatch):
    result = run(pytester, monkeypatch, ci=True, suite="litert", reason="gcc is not installed")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["skipped (planned): *test_elsewhere: runs in the workstation suite: needs TensorFlow",
                                 "skipped (planned): *test_lacking: needs what this machine lacks: an IPv6 loopback",
                                 "skipped (FAILS ON CI): *test_hides_a_path: gcc is not installed",
                                 "this run fails: 1 skip hides a path CI must run (tests/skips.py)"])


def test_planned_skips_pass_on_ci_and_any_skip_passes_elsewhere(pytester, monkeypatch):
    from tests.skips import elsewhere
    assert run(pytester, monkeypatch, ci=True, suite="litert", reason=elsewhere("tflite", "x")).ret == 0
    local = run(pytester, monkeypatch, ci=False, suite="litert", reason="gcc is not installed")
    assert local.ret == 0
    local.stdout.fnmatch_lines(["skipped (hides a path): *test_hides_a_path: gcc is not installed"])


def test_a_skip_sent_to_the_suite_it_happens_in_fails_on_ci(pytester, monkeypatch):
    assert run(pytester, monkeypatch, ci=True, suite="workstation", reason="fine").ret == 1


def test_a_failure_keeps_its_own_exit_code(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("EDGELITE_CI", "1")
    pytester.makeconftest("from tests.conftest import pytest_runtest_logreport, pytest_sessionfinish  # noqa: F401")
    pytester.makepyfile(test_fail="def test_fails():\n    assert False\n")
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider").ret == 1


def test_unknown_suite_is_refused():
    from tests.skips import elsewhere
    with pytest.raises(ValueError, match="unknown suite"):
        elsewhere("gpu", "x")
