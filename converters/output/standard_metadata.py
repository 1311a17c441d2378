"""The standard TFLite metadata (normalization and a label file), so MediaPipe's ImageClassifier
reads an edgelite model unchanged. Written after our own record, by MediaPipe's writers: in
this process when mediapipe is importable, else through EDGELITE_METADATA_PYTHON, else not at
all (the result says why; ``inspect`` says whether a model has it)."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from edgelite.converters.errors import ConversionError
from edgelite.runtime.modelfile.metadata import InputSpec

ENV = "EDGELITE_METADATA_PYTHON"
SCRIPT = pathlib.Path(__file__).with_name("mediapipe_writer.py")
HOW = (f"install mediapipe==0.10.21 in its own environment (it needs numpy<2) and set {ENV} to its python; "
       "scripts/setup.sh builds one")


def _in_process_writer():
    try:
        import mediapipe.tasks.python.metadata.metadata_writers.image_classifier  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or the 1.x wheels whose writers fail to import
        return None
    sys.path.insert(0, str(SCRIPT.parent))
    from mediapipe_writer import write
    return write


def _via_subprocess(python: str, model: bytes, spec: dict) -> bytes:
    with tempfile.TemporaryDirectory(prefix="edgelite-metadata-") as work:
        src, dst, cfg = (pathlib.Path(work) / n for n in ("in.tflite", "out.tflite", "spec.json"))
        src.write_bytes(model)
        cfg.write_text(json.dumps(spec))
        try:
            subprocess.run([python, str(SCRIPT), str(src), str(dst), str(cfg)], capture_output=True, text=True,
                           timeout=300, check=True)
        except subprocess.CalledProcessError as exc:
            raise ConversionError(f"writing the standard TFLite metadata with {python} failed: "
                                  + " ".join(exc.stderr.split())[-300:]) from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConversionError(f"cannot run {ENV}={python}: {exc}") from None
        return dst.read_bytes()


def configured_python() -> str | None:
    """EDGELITE_METADATA_PYTHON, else the helper this environment was set up with (scripts/envs.sh)."""
    if os.environ.get(ENV):
        return os.environ[ENV]
    marker = pathlib.Path(sys.prefix) / "edgelite-metadata-python"
    if marker.is_file():
        python = marker.read_text().strip()
        return python if os.path.exists(python) else None
    return None


def add(model: bytes, spec: InputSpec, labels, input_dtype: str) -> tuple[bytes, dict]:
    """The model with standard metadata when it can be written, and what happened."""
    if input_dtype == "int8":
        return model, {"written": False, "reason": "MediaPipe's ImageClassifier reads uint8 or float32 inputs; "
                                                   "convert with --io uint8 to get it"}
    fields = {"mean": list(spec.mean), "std": list(spec.std), "labels": list(labels) if labels else None}
    writer = _in_process_writer()
    if writer is not None:
        return writer(model, fields["mean"], fields["std"], fields["labels"]), {"written": True, "by": "in process"}
    python = configured_python()
    if python:
        return _via_subprocess(python, model, fields), {"written": True, "by": python}
    return model, {"written": False, "reason": f"MediaPipe's metadata writers are not available: {HOW}"}
