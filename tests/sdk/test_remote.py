"""Profiling over SSH, for real: an OpenSSH server on loopback, the device side a venv without TensorFlow."""
import glob
import json

import pytest
from click.testing import CliRunner

from edgelite.cli.commands import main
from edgelite.scale.remote import Remote, RemoteError
from tests.conftest import DIGITS_INT8


def device(ssh_server, **overrides) -> Remote:
    args = dict(target=ssh_server["target"], edgelite=ssh_server["edgelite"], identity=ssh_server["identity"],
                options=ssh_server["options"], timeout=120)
    return Remote(**{**args, **overrides})


def test_profile_on_the_device_and_clean_up(ssh_server):
    before = set(glob.glob("/tmp/tmp.*"))
    remote = device(ssh_server)
    assert remote.check().startswith("edgelite, version")
    result = remote.profile(str(DIGITS_INT8), threads=1, runs=10, warmup=2)
    assert result.backend == "ai_edge_litert" and result.latency_ms.n == 10 and result.threads == 1
    assert result.model.endswith("digits_int8.tflite") and result.model_size_bytes == DIGITS_INT8.stat().st_size
    # the copied model and its folder are gone (other tests running beside this one make /tmp/tmp.* folders too)
    assert [d for d in set(glob.glob("/tmp/tmp.*")) - before if glob.glob(f"{d}/*.tflite")] == []


def test_device_without_edgelite_says_what_to_install(ssh_server):
    with pytest.raises(RemoteError, match=r"edgelite is not installed there .*pip install 'edgelite-<version>-py3-none-any.whl\[litert\]'"):
        device(ssh_server, edgelite="/nowhere/bin/edgelite").check()


def test_refused_connection(ssh_server):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(RemoteError, match=r"cannot connect over SSH \(.*refused"):
        device(ssh_server, target=f"{ssh_server['target'].rsplit(':', 1)[0]}:{closed}").check()


def test_cli_profile_remote_json(ssh_server):
    args = ["profile", str(DIGITS_INT8), "--remote", ssh_server["target"], "--remote-edgelite", ssh_server["edgelite"],
            "--ssh-identity", ssh_server["identity"], "--runs", "5", "--threads", "1,2", "--json"]
    for option in ssh_server["options"]:
        args += ["--ssh-option", option]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["threads"] for r in data["results"]] == [1, 2] and data["errors"] == []


def test_cli_profile_remote_unreachable_is_one_line():
    result = CliRunner().invoke(main, ["profile", str(DIGITS_INT8), "--remote", "nobody@127.0.0.1:1",
                                       "--ssh-option", "ConnectTimeout=5"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "cannot connect over SSH" in result.stderr
