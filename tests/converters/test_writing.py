"""Atomic writes survive failure, interruption and SIGKILL without litter."""
import os
import signal
import subprocess
import sys
import time

import pytest

from edgelite.converters.output import writing
from tests.conftest import ROOT


def test_replaces_atomically_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")
    writing.atomic_write(target, b"new model")
    assert target.read_bytes() == b"new model" and os.listdir(tmp_path) == ["m.tflite"]
    assert target.stat().st_mode & 0o644 == 0o644


def test_named_fallback_path(tmp_path, monkeypatch):
    monkeypatch.setattr(writing, "_unnamed_write", lambda target, data: False)
    target = tmp_path / "m.tflite"
    writing.atomic_write(target, b"via a named temporary")
    assert target.read_bytes() == b"via a named temporary" and os.listdir(tmp_path) == ["m.tflite"]


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    target = tmp_path / "m.tflite"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".m.tflite.{dead}.abcd.tmp").write_bytes(b"left by a killed writer")
    (tmp_path / f".m.tflite.{os.getpid()}.live.tmp").write_bytes(b"a live writer's")
    writing.atomic_write(target, b"x")
    assert sorted(os.listdir(tmp_path)) == [f".m.tflite.{os.getpid()}.live.tmp", "m.tflite"]


@pytest.mark.parametrize("unnamed", [True, False])
def test_sigkill_mid_write_keeps_the_old_model_and_leaves_no_litter(tmp_path, unnamed):
    """A child writes 400 MB slowly through atomic_write; it is SIGKILLed while writing."""
    target = tmp_path / "model.tflite"
    target.write_bytes(b"previous good model")
    code = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from edgelite.converters.output import writing
if not {unnamed}:
    writing._unnamed_write = lambda target, data: False
real = writing._write_all
def slow(fd, data):
    print("writing", flush=True)
    for i in range(0, len(data), 1 << 20):
        os.write(fd, data[i:i + (1 << 20)])
    os.fsync(fd)
writing._write_all = slow
writing.atomic_write({str(target)!r}, b"x" * (400 << 20))
"""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"previous good model"
    leftovers = sorted(os.listdir(tmp_path))
    if unnamed:
        assert leftovers == ["model.tflite"]
    else:  # the named fallback leaves a file a killed process cannot remove; the next write does
        writing.atomic_write(target, b"next")
        assert sorted(os.listdir(tmp_path)) == ["model.tflite"]


@pytest.mark.tensorflow
@pytest.mark.parametrize("stage", ["calibration images", "verifying"])
def test_sigkilled_conversion_keeps_the_previous_model(tmp_path, digits_keras, digit_folders, stage):
    """A real conversion SIGKILLed at a named stage (reading calibration images, the model loaded; verifying, the
    int8 model built), not wherever a timer lands
    (a timer most often hit TensorFlow's import): the previous model stays byte for byte, nothing is left."""
    out = tmp_path / "model.tflite"
    out.write_bytes(b"previous good model")
    train, evaluation = digit_folders
    code = f"""
import os, signal, sys
sys.path.insert(0, {str(ROOT)!r})
from edgelite.converters.pipeline import convert
from edgelite.converters.reporting import Reporter
class KilledAt(Reporter):
    def progress(self, label, total):
        if label == {stage!r}:
            print("killed at", label, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return super().progress(label, total)
convert({str(digits_keras)!r}, output={str(out)!r}, calibration={str(train)!r}, eval_data={str(evaluation)!r},
        reporter=KilledAt())
"""
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert child.returncode == -signal.SIGKILL and child.stdout.strip() == f"killed at {stage}", child.stderr[-2000:]
    assert out.read_bytes() == b"previous good model"
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"]


def test_a_full_disk_is_one_line_and_the_old_file_stays(tmp_path, monkeypatch):
    import errno
    import os

    from edgelite.converters.errors import ConversionError
    from edgelite.converters.output.writing import atomic_write
    target = tmp_path / "model.tflite"
    target.write_bytes(b"the good model")

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "write", full)
    with pytest.raises(ConversionError, match=r"model.tflite: cannot write \(No space left on device\)"):
        atomic_write(target, b"new bytes")
    assert target.read_bytes() == b"the good model" and sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


def test_names_with_glob_characters_clean_up_their_own_stale_temporaries(tmp_path):
    from edgelite.converters.output.writing import atomic_write
    target = tmp_path / "model[1]*?.tflite"
    stale = tmp_path / f".{target.name}.999999.deadbeef.tmp"  # a writer with this pid is long gone
    stale.write_bytes(b"leftover")
    atomic_write(target, b"model")
    assert target.read_bytes() == b"model" and not stale.exists()
