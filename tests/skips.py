"""Why a test may skip, and the rule CI holds skips to.

The three suites split the tests by environment (scripts/test.sh): a test that needs TensorFlow runs in the
workstation suite, one that needs ai-edge-litert's extras in the LiteRT-only suite. Skipping there is by design,
and the reason says where the test does run (``elsewhere``). Hardware and kernel features a machine may lack are
the other planned skip (``lacking``). Every other skip (a missing program, extra or environment) hides a path:
on CI (``EDGELITE_CI=1``, set by .ci/run) it fails the run, because .ci/run installs what the tests need. A
skip that names the suite it happens in is also a failure: that suite was meant to run it.
"""
from __future__ import annotations

import os

SUITES = ("workstation", "litert", "tflite")  # scripts/test.sh names each suite in EDGELITE_SUITE
_ELSEWHERE = "runs in the {suite} suite: "
_LACKING = "needs what this machine lacks: "


def elsewhere(suite: str, why: str) -> str:
    """The reason for a skip because another suite runs the test (``suite``: one of SUITES)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; one of {SUITES}")
    return _ELSEWHERE.format(suite=suite) + why


def lacking(what: str) -> str:
    """The reason for a skip because the machine lacks hardware or a kernel feature (nothing to install)."""
    return _LACKING + what


def suite_here() -> str | None:
    return os.environ.get("EDGELITE_SUITE")


def planned(reason: str) -> bool:
    """Whether a skip with this reason is by design here (see the module's docstring)."""
    if reason.startswith(_LACKING):
        return True
    return any(reason.startswith(_ELSEWHERE.format(suite=s)) and s != suite_here() for s in SUITES)


def strict() -> bool:
    """On CI an unplanned skip fails the run; elsewhere it is listed with its reason."""
    return os.environ.get("EDGELITE_CI") == "1"
