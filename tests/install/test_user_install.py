"""The user install the README documents: a wheel built from the checkout, installed into a fresh
virtual environment with one pip line, no editable install and no shared environment.

On the device side the extra matches this suite's backend ([litert] here, [tflite] in the
tflite-runtime suite); the workstation side ([convert]) is checked in the TensorFlow suite with
TensorFlow taken from the existing environment, since downloading it again per run is not
worth minutes of CI.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import DIGITS_INT8, HAS_TENSORFLOW, ROOT
from tests.skips import elsewhere


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kwargs)
    assert out.returncode == 0, f"{argv}: {out.stderr[-2000:]}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    dist = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")  # keep setuptools' build/ out of the checkout
    import fcntl
    # The device suites run side by side (scripts/test.sh): one wheel build at a time writes the checkout's egg-info.
    with open(ROOT / ".wheel-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT), "-w", dist],
             cwd=build)
    (found,) = dist.glob("edgelite-*-py3-none-any.whl")
    return found


def _fresh_venv(path: pathlib.Path) -> pathlib.Path:
    _run([sys.executable, "-m", "venv", path])
    return path / "bin"


def test_wheel_carries_the_package_data_and_entry_point(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"edgelite/runtime/interpreter/probe_float32.tflite", "edgelite/runtime/interpreter/probe_int8.tflite",
            "edgelite/py.typed", "edgelite/cli/commands.py", "edgelite/converters/pipeline.py",
            "edgelite/runtime/tasks/loading.py", "edgelite/sweep/on_ray.py", "edgelite/scale/cluster.py",
            "edgelite/converters/ladder/qat.py"} <= names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "edgelite = edgelite.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def _python_at_least(version: tuple[int, int]) -> str | None:
    """A Python interpreter of at least ``version`` that runs here (a pyenv shim may name one it cannot run)."""
    import glob
    import shutil
    candidates = [shutil.which(f"python3.{minor}") for minor in (13, 12)]
    candidates += sorted(glob.glob(str(pathlib.Path.home() / ".pyenv/versions/3.1[2-9]*/bin/python3")))
    for python in filter(None, candidates):
        done = subprocess.run([python, "-c", f"import sys; sys.exit(sys.version_info[:2] < {version})"],
                              capture_output=True, timeout=60)
        if done.returncode == 0:
            return python
    return None


def test_the_tflite_extra_stops_pip_on_python_3_12_and_later_with_the_reason(tmp_path, wheel):
    """tflite-runtime has no wheel past Python 3.11: there the extra resolves as before; on 3.12+ pip stops on a
    path that names the Pythons it needs. Run with a real Python 3.12+ pip when one is installed, and the
    wheel's own markers are evaluated for both versions either way."""
    import email

    from packaging.requirements import Requirement
    metadata = email.message_from_bytes(zipfile.ZipFile(wheel).read(
        next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("METADATA"))))
    extra = [Requirement(r) for r in metadata.get_all("Requires-Dist") if 'extra == "tflite"' in r]
    for version, wanted in (("3.11", {"tflite-runtime>=2.13", "numpy<2"}), ("3.13", {"tflite-runtime"})):
        picked = {str(Requirement(f"{r.name}{r.specifier}")) for r in extra
                  if r.marker.evaluate({"python_version": version, "extra": "tflite"})}
        assert picked == wanted, (version, picked)
    newer = _python_at_least((3, 12))
    if newer is not None:
        bin_dir = tmp_path / "venv" / "bin"
        _run([newer, "-m", "venv", tmp_path / "venv"])
        out = subprocess.run([bin_dir / "pip", "install", "--dry-run", f"{wheel}[tflite]"], capture_output=True,
                             text=True, timeout=600)
        assert out.returncode != 0 and "edgelite-tflite-extra-needs-Python-3.8-to-3.11" in out.stderr, out.stderr


@pytest.mark.skipif(HAS_TENSORFLOW, reason=elsewhere("litert", "the device install goes into a fresh venv, so it "
                    "is the same wherever the suite runs; the tflite-runtime suite installs [tflite]"))
def test_device_install_from_the_wheel(tmp_path, wheel, digit_png):
    from edgelite.runtime.interpreter.backend import find_backend
    extra = "tflite" if find_backend().name == "tflite_runtime" else "litert"
    bin_dir = _fresh_venv(tmp_path / "device")
    _run([bin_dir / "pip", "install", "-q", f"{wheel}[{extra}]"])
    probe = _run([bin_dir / "python", "-c", "import importlib.util as u; print(u.find_spec('tensorflow') is None)"])
    assert probe.stdout.strip() == "True"  # the device install brings no TensorFlow
    edgelite = bin_dir / "edgelite"
    info = json.loads(_run([edgelite, "inspect", DIGITS_INT8, "--json"]).stdout)
    assert info["input_spec"]["height"] == 32 and len(info["labels"]) == 10
    predicted = _run([edgelite, "predict", DIGITS_INT8, digit_png, "-k", "1"])
    assert predicted.stdout.startswith(f"{digit_png}: 7 (")
    profiled = json.loads(_run([edgelite, "profile", DIGITS_INT8, "--runs", "5", "--json"]).stdout)
    assert profiled["latency_ms"]["n"] == 5
    doctor = json.loads(_run([edgelite, "doctor", "--json"]).stdout)
    assert {d["name"] for d in doctor["delegates"]} >= {"cpu", "xnnpack"}  # the probe model was found and loaded


@pytest.mark.tensorflow
@pytest.mark.skipif(not HAS_TENSORFLOW, reason=elsewhere("workstation", "the workstation install needs TensorFlow"))
def test_workstation_install_from_the_wheel_converts(tmp_path, wheel, digits):
    """The wheel with TensorFlow beside it (seen through a .pth), as `pip install 'edgelite-*.whl[convert]'`
    leaves it: convert a Keras model, then read it back."""
    import keras
    import numpy as np
    from PIL import Image
    bin_dir = _fresh_venv(tmp_path / "workstation")
    site = next((tmp_path / "workstation" / "lib").glob("python*/site-packages"))
    # Every site-packages folder this interpreter sees (a contributor .venv reaches the shared one through a .pth).
    (site / "tensorflow_env.pth").write_text("".join(f"{p}\n" for p in sys.path if p.endswith("site-packages")))
    _run([bin_dir / "pip", "install", "-q", "--no-deps", wheel])
    images, labels = digits
    calibration = tmp_path / "cal"
    calibration.mkdir()
    for i in range(40):
        Image.fromarray(images[i], "L").save(calibration / f"{i}.png")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Rescaling(1 / 255.0), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(images[:400, :, :, None].astype(np.float32), labels[:400], epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    out = tmp_path / "m.tflite"
    where = _run([bin_dir / "python", "-c", "import edgelite, sys; print(edgelite.__file__)"]).stdout
    assert str(tmp_path / "workstation") in where  # the wheel's copy, not the checkout's
    converted = json.loads(_run([bin_dir / "edgelite", "convert", tmp_path / "m.keras", "-o", out, "--calibration",
                                 calibration, "--calibration-count", "20", "--no-standard-metadata", "--max-accuracy-drop", "100",
                                 "--json"]).stdout)
    assert converted["output"] == str(out) and out.stat().st_size > 0
