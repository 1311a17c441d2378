"""Remote profiling against hostile names and slow devices, with a stand-in `ssh` on PATH that records its
arguments and runs the remote command on this machine (a real sshd is in test_remote.py, where installed)."""
import json
import os
import pathlib
import shutil
import sys

import pytest

from edgelite.scale.remote import Remote, RemoteError
from tests.conftest import DIGITS_INT8

FAKE_SSH = """#!/bin/sh
# Records argv, then runs the last argument (the remote command) here, stdin passed through.
printf '%s\\n' "$@" > "$SSH_LOG"
for last; do :; done
exec sh -c "$last"
"""


@pytest.fixture()
def fake_ssh(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SSH_LOG", str(tmp_path / "ssh.log"))
    return tmp_path / "ssh.log"


def device_edgelite() -> str:
    """The edgelite of the environment under test (its backend is the one this suite checks)."""
    return str(pathlib.Path(sys.executable).parent / "edgelite")


@pytest.mark.parametrize("target", ["-oProxyCommand=touch /tmp/x", "user@-host", "a b", "user@host;rm", "", "@h",
                                    "user@host:99999999"])
def test_targets_that_could_be_options_or_commands_are_refused(target):
    with pytest.raises(RemoteError, match="not a device address; give user@host"):
        Remote(target)


@pytest.mark.parametrize("target", ["pi@raspberrypi", "pi@raspberrypi.local:2222", "192.168.1.5", "me@[fe80::1]:22"])
def test_ordinary_targets_are_accepted(target):
    assert Remote(target).target == target


def test_host_comes_after_a_double_dash_and_hostile_file_names_never_reach_a_parser(tmp_path, fake_ssh):
    hostile = tmp_path / "-model_12:30.tflite"
    shutil.copy(DIGITS_INT8, hostile)
    remote = Remote("pi@device:2222", edgelite=device_edgelite(), timeout=120)
    result = remote.profile(str(hostile), threads=1, runs=3, warmup=0)
    assert result.latency_ms.n == 3 and result.model_size_bytes == DIGITS_INT8.stat().st_size
    argv = fake_ssh.read_text().splitlines()
    assert argv[argv.index("--") + 1] == "pi@device" and "-p" in argv[:argv.index("--")]
    assert not any(":30" in a for a in argv)  # the local name was never on a command line


def test_a_failing_cleanup_does_not_hide_the_first_error(fake_ssh, monkeypatch):
    original = Remote.ssh

    def cleanup_fails(self, command, what, stdin=None):
        if command.startswith("rm -rf"):
            raise RemoteError("pi@device: cannot connect over SSH (connection reset)")
        return original(self, command, what, stdin)
    monkeypatch.setattr(Remote, "ssh", cleanup_fails)
    with pytest.raises(RemoteError, match="edgelite profile failed there"):
        Remote("pi@device", edgelite="/nowhere/edgelite", timeout=60).profile(str(DIGITS_INT8), threads=None,
                                                                              runs=2, warmup=0)


def test_profile_command_carries_the_device_side_timeout(tmp_path, fake_ssh, monkeypatch):
    seen = []
    original = Remote.ssh

    def recording(self, command, what, stdin=None):
        seen.append(command)
        return original(self, command, what, stdin)
    monkeypatch.setattr(Remote, "ssh", recording)
    Remote("pi@device", edgelite=device_edgelite(), timeout=60).profile(str(DIGITS_INT8), threads=1, runs=2,
                                                                         warmup=0)
    (profile,) = [c for c in seen if " profile " in c]
    assert profile.startswith("timeout -k 5 55 ") and json.dumps(profile)
