"""Profiling across a fleet: three private sshd on loopback are three devices (each a venv without TensorFlow)."""
import json
import threading
import time

import pytest
from click.testing import CliRunner

from edgelite.cli.commands import main
from tests.conftest import DIGITS_FLOAT, DIGITS_INT8, cleanly, start_sshd, stop_sshd

SECOND_MODEL = DIGITS_FLOAT


def _script(path, body: str):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def _devices_file(tmp_path, servers, edgelites, labels=("pi4", "pi5", "coral")):
    lines = []
    for i, ((info, _), edgelite, label) in enumerate(zip(servers, edgelites, labels)):
        options = ", ".join(json.dumps(o) for o in info["options"])
        lines.append(f'[[device]]\nname = "board-{i}"\nhost = "{info["target"]}"\nlabels = ["{label}"]\n'
                     f'edgelite = "{edgelite}"\nidentity = "{info["identity"]}"\nssh_options = [{options}]\n')
    path = tmp_path / "devices.toml"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture()
def fleet(tmp_path):
    servers = [start_sshd(tmp_path / f"sshd{i}") for i in range(3)]
    yield servers
    for _, server in servers:
        stop_sshd(server)


def test_three_devices_at_once_one_stopped_mid_run(fleet, tmp_path):
    """The third board stops answering after its first profile: the other two complete, it is reported down,
    and the exit code says not every device answered. The devices' start and end times overlap."""
    real = fleet[0][0]["edgelite"]
    started = tmp_path / "third-profiling"
    slow = _script(tmp_path / "slow-edgelite",
                   f'[ "$1" = profile ] && touch {started} && sleep 2\nexec "{real}" "$@"\n')
    path = _devices_file(tmp_path, fleet, [real, real, slow])

    def stop_third():
        deadline = time.time() + 60
        while not started.exists() and time.time() < deadline:
            time.sleep(0.05)
        stop_sshd(fleet[2][1])  # its session in flight finishes; the next connection is refused
    stopper = threading.Thread(target=stop_third)
    stopper.start()
    result = CliRunner().invoke(main, ["profile", str(DIGITS_INT8), str(SECOND_MODEL), "--devices", str(path),
                                       "--runs", "5", "--warmup", "1", "--json"])
    stopper.join()
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    status = {d["name"]: d["status"] for d in data["devices"]}
    assert status == {"board-0": "ok", "board-1": "ok", "board-2": "down"}
    done = {d["name"]: d for d in data["devices"]}
    for name in ("board-0", "board-1"):
        assert [r["model"] for r in done[name]["results"]] == [str(DIGITS_INT8), str(SECOND_MODEL)]
        assert all(r["runs"] == 5 for r in done[name]["results"])
    assert "cannot connect over SSH" in done["board-2"]["errors"][-1]["error"]
    assert data["overlap_s"] > 0 and not data["all_answered"]
    assert done["board-0"]["labels"] == ["pi4"] and done["board-2"]["edgelite"].startswith("edgelite, version")
    assert "board-2" in result.stderr and cleanly(result)


def test_a_device_answering_garbage_is_marked_and_the_others_go_on(fleet, tmp_path):
    """Text mode: a column per device, a status per device, one error line per failing device, exit 1."""
    real = fleet[0][0]["edgelite"]
    garbage = _script(tmp_path / "garbage", 'echo "hello from a toaster"\n')
    liar = _script(tmp_path / "liar", f'[ "$1" = profile ] && echo "{{not json" && exit 0\nexec "{real}" "$@"\n')
    path = _devices_file(tmp_path, fleet, [real, garbage, liar])
    result = CliRunner().invoke(main, ["profile", str(DIGITS_INT8), "--devices", str(path), "--runs", "3"])
    assert result.exit_code == 1, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("model"))
    assert [f"board-{i} median (p90) ms" in header for i in range(3)] == [True] * 3
    status = {line.split()[0]: line.split()[3] for line in result.stdout.splitlines() if line.startswith("board-")}
    assert status == {"board-0": "ok", "board-1": "failed", "board-2": "failed"}
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and cleanly(result)
    assert "board-1" in errors[0] and "not edgelite's version" in errors[0]
    assert "board-2" in errors[1] and "unexpected output from edgelite profile" in errors[1]


@pytest.mark.parametrize(("text", "message"), [
    ('[[device]]\nname = "a"\nhost = "-oProxyCommand=x"\n', r"device 1 \(a\): .*not a device address"),
    ('[[device]]\nname = "a"\nhost = "pi@h"\nport = 22\n', r"device 1: unknown key 'port'"),
    ('[[device]]\nname = "a b"\nhost = "pi@h"\n', r"device 1: name .* must be"),
    ('[[device]]\nname = "a"\n', r"device 1: no host"),
    ('[[device]]\nname = "a"\nhost = "pi@h"\n[[device]]\nname = "a"\nhost = "pi@g"\n', r"used twice"),
    ('[[device]]\nname = "a"\nhost = "pi@h"\nlabels = "pi5"\n', r"labels must be a list"),
    ('hosts = ["pi@h"]\n', r"unknown key 'hosts'"),
    ("[[device]\nname=", r"not a TOML devices file"),
    ("", r"no devices"),
])
def test_bad_devices_files_are_one_line(tmp_path, text, message):
    path = tmp_path / "devices.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["profile", str(DIGITS_INT8), "--devices", str(path)])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "devices.toml" in result.stderr
    assert __import__("re").search(message, result.stderr), result.stderr


def test_devices_file_that_is_not_a_file(tmp_path):
    result = CliRunner().invoke(main, ["profile", str(DIGITS_INT8), "--devices", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.stderr
