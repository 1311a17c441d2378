"""A Ray head started the way the docs tell users to start one: the real ``ray start --head`` command, with Ray's
defaults (token authentication on), in a process group of its own with its own temporary folder and its own HOME
(where it writes the token), ended by that process group, never by ``ray stop``. ``predict --ray`` and ``sweep
--ray`` against it must give the local results; a missing or wrong token must be one line within 30 s."""
import json
import subprocess
import sys
import time

import pytest

from tests.conftest import DIGITS_INT8, ROOT, saved_scans


def edgelite(*args, env, timeout=300):
    return subprocess.run([sys.executable, "-c", "from edgelite.cli.commands import main; main()", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def scans(tmp_path_factory, digits):
    return saved_scans(tmp_path_factory.mktemp("scans"), digits[0], 33)


def test_predict_on_a_head_ray_start_made_gives_the_local_results(ray_head, scans):
    address, env = ray_head
    args = ["predict", DIGITS_INT8, scans, "--jsonl", "--threads", "1"]
    here = edgelite(*args, env=env)
    there = edgelite(*args, "--ray", address, env=env)
    assert here.returncode == there.returncode == 0, there.stderr
    local = [json.loads(line) for line in here.stdout.splitlines()]
    remote = [json.loads(line) for line in there.stdout.splitlines()]
    assert len(local) == len(remote) == 33
    for a, b in zip(local, remote):
        assert a["source"] == b["source"] and [c["label"] for c in a["classes"]] == [c["label"] for c in b["classes"]]
    assert there.stderr.strip() == "", there.stderr  # Ray's own warnings are not the user's


@pytest.mark.parametrize("token", [None, "not-the-heads-token"])
def test_a_missing_or_wrong_token_is_one_line_within_30_s(ray_head, scans, tmp_path, token):
    address, env = ray_head
    elsewhere = {**env, "HOME": str(tmp_path)}  # another machine's home: no ~/.ray/auth_token
    if token:
        elsewhere["RAY_AUTH_TOKEN"] = token
    started = time.monotonic()
    done = edgelite("predict", DIGITS_INT8, scans, "--ray", address, env=elsewhere, timeout=120)
    assert time.monotonic() - started < 30
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: cannot join the Ray cluster at {address}: ")
    assert ("refused the token from RAY_AUTH_TOKEN" if token else "requires a token and this machine has none") \
        in lines[0], lines[0]
    assert "~/.ray/auth_token" in lines[0]
    assert token is None or token not in lines[0]
