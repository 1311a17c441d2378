"""Files a user hands us (issue: hostile models, files and hosts): each case is one line and a non-zero
exit, never a hang, an exhausted machine or a traceback. Run in every suite (no TensorFlow needed)."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import edgelite
from edgelite.cli.commands import main
from edgelite.runtime.errors import InputError, ModelError
from edgelite.runtime.modelfile.tflite_file import read_file
from edgelite.runtime.tasks.preprocess import load_pixels
from tests.conftest import DIGITS_INT8, ROOT, cleanly


def finishes(target, seconds: float = 10.0):
    """Runs target in a thread; fails the test if it has not returned in time (a hang)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = target()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung"
    return outcome


def test_a_fifo_is_refused_at_once_for_models_and_images(tmp_path):
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    for load in (lambda: read_file(fifo), lambda: load_pixels(fifo, edgelite.InputSpec(8, 8))):
        error = finishes(load)["error"]
        assert isinstance(error, (ModelError, InputError)) and "not a regular file" in str(error)


def test_dev_zero_is_refused_not_read_until_memory_runs_out():
    error = finishes(lambda: read_file("/dev/zero"))["error"]
    assert isinstance(error, ModelError) and "/dev/zero: not a regular file" in str(error)


def test_a_symlink_loop_is_named_as_one(tmp_path):
    loop = tmp_path / "loop.tflite"
    os.symlink(loop, loop)
    with pytest.raises(ModelError, match="symlink loop"):
        read_file(loop)


def test_files_over_the_size_cap_are_refused_before_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.tflite"
    with open(big, "wb") as fh:
        fh.truncate(3 << 20)  # sparse: 3 MB that cost no disk
    monkeypatch.setenv("EDGELITE_MAX_MODEL_BYTES", str(1 << 20))
    with pytest.raises(ModelError, match=r"3145728 bytes is over the limit of 1048576"):
        read_file(big)


def test_a_large_16_bit_png_is_reduced_without_a_float64_copy(tmp_path):
    """9400x9400 16-bit grayscale (194 KB as PNG) once took 2.24 GB; measured here in a child's peak RSS."""
    path = tmp_path / "big16.png"
    Image.fromarray(np.full((9400, 9400), 40000, np.uint16)).save(path)
    # VmHWM, not ru_maxrss: ru_maxrss survives fork+exec and would report the pytest parent's peak.
    code = (f"import edgelite\nfrom edgelite.runtime.tasks.preprocess import load_pixels\n"
            f"p = load_pixels({str(path)!r}, edgelite.InputSpec(32, 32, 1, \"grayscale\"))\n"
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "print(int(p.mean()), int(hwm.split()[1]) // 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    mean, peak_mb = map(int, out.stdout.split())
    assert mean == round(40000 / 257) and peak_mb < 800, peak_mb  # 539 MB measured here, 2.24 GB before


def test_a_float_tiff_with_nan_is_read_without_warnings(tmp_path, recwarn):
    path = tmp_path / "nan.tiff"
    values = np.full((16, 16), 100.0, np.float32)
    values[0, :] = np.nan
    Image.fromarray(values, "F").save(path)
    pixels = load_pixels(path, edgelite.InputSpec(16, 16, 1, "grayscale"))
    assert pixels[0].max() == 0 and pixels[5, 5, 0] == 100
    assert not [w for w in recwarn if "invalid value" in str(w.message)]


def test_a_file_name_with_a_newline_stays_on_one_line(tmp_path, digits):
    images, labels = digits
    path = tmp_path / "two\nlines.png"
    Image.fromarray(images[list(labels).index(3)], "L").save(path)
    result = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(path), "-k", "1"])
    assert result.exit_code == 0 and result.stdout.count("\n") == 1 and "'" in result.stdout
    missing = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(tmp_path / "gone\nfile.png")])
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1


HOSTILE = ROOT / "tests" / "fixtures" / "models" / "hostile"  # built by tests/fixtures/build_hostile.py


@pytest.mark.parametrize("command", ["inspect", "profile", "predict"])
@pytest.mark.parametrize("name", ["zero_operators", "per_channel_input"])
def test_edited_models_give_one_line_or_a_result_never_a_traceback(name, command, digit_png):
    args = [command, str(HOSTILE / f"{name}.tflite")] + ([str(digit_png)] if command == "predict" else [])
    result = CliRunner().invoke(main, args + (["--runs", "3"] if command == "profile" else []))
    assert cleanly(result)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    if name == "per_channel_input" and command == "predict":
        assert "quantized per channel (3 scales)" in result.stderr


def test_a_large_file_that_is_not_a_model_is_refused_after_its_first_bytes(tmp_path, monkeypatch):
    big = tmp_path / "video.tflite"
    with open(big, "wb") as fh:
        fh.write(b"\x00\x00\x00\x18ftypmp42")
        fh.truncate(200 << 20)
    reads = []
    original = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: reads.append(n) or original(fd, n))
    with pytest.raises(ModelError, match="no TFL3 file identifier"):
        read_file(big)
    assert sum(reads) <= 8  # the head only, not 200 MB


def test_check_for_the_gpu_says_what_is_missing_where_there_is_no_analyzer():
    """tflite-runtime ships no model analyzer: one line there, a placement elsewhere (all three suites run it)."""
    from edgelite.runtime.interpreter.backend import find_backend
    result = CliRunner().invoke(main, ["check", str(DIGITS_INT8), "--target", "gpu"])
    if find_backend().name == "tflite_runtime" and not __import__("importlib").util.find_spec("ai_edge_litert"):
        assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "model analyzer" in result.stderr
    else:
        assert result.exit_code == 0 and "ops on the gpu" in result.stdout
