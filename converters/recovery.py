"""Getting back accuracy quantization lost: leave the worst layers in float.

TensorFlow's QuantizationDebugger compares every quantized tensor with its float twin on
the calibration images. Layers are ranked by RMSE relative to their quantization step
(the ranking TensorFlow's own debugger guide uses), and the worst are re-converted in float
(``denylisted_nodes``), a few more at a time, until the budget is met or the attempts run
out. Only for targets that can run float ops (not the Edge TPU).
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass

import numpy as np

from .quantization import QuantizeOptions, make_converter, representative
from .tf import quiet, tensorflow

STEPS = (1, 2, 4, 8)
RANKED_BY = "QuantizationDebugger RMSE/scale"


@dataclass(frozen=True)
class LayerError:
    tensor: str
    op: str
    rmse_over_scale: float


def rank_layers(loaded, options: QuantizeOptions, calibration: np.ndarray, limit: int = 64) -> list[LayerError]:
    """Quantized tensors, worst first, by RMSE / scale."""
    tf = tensorflow()
    converter = make_converter(loaded, options, calibration[:limit])
    with quiet():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative(calibration[:limit]))
        debugger.run()
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    buf.seek(0)
    rows = []
    for row in csv.DictReader(buf):
        scale = float(row["scale"] or 0) or 1.0
        rows.append(LayerError(row["tensor_name"], row["op_name"], float(np.sqrt(float(row["mean_squared_error"]))) / scale))
    return sorted(rows, key=lambda r: -r.rmse_over_scale)


def convert_with_float_layers(loaded, options: QuantizeOptions, calibration: np.ndarray,
                              float_tensors: list[str]) -> bytes:
    """A selectively quantized model: the named tensors' ops stay float (float model I/O)."""
    tf = tensorflow()
    converter = make_converter(loaded, options, calibration)
    debug_options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_tensors))
    with quiet():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative(calibration[:8]), debug_options=debug_options)
        return debugger.get_nondebug_quantized_model()


@dataclass(frozen=True)
class Attempt:
    """One re-conversion with ``float_layers`` left in float, and what it measured."""

    float_layers: tuple[str, ...]
    drop_points: float | None = None
    size_bytes: int | None = None
    median_ms: float | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Recovery:
    """What recovery tried and kept; ``skipped`` says why it did not run."""

    skipped: str | None = None
    float_layers: tuple[str, ...] = ()
    ranked_by: str | None = None
    attempts: tuple[Attempt, ...] = ()
    all_int8: dict | None = None

    def to_dict(self) -> dict:
        data: dict[str, object] = {"float_layers": list(self.float_layers)}
        if self.skipped:
            data["skipped"] = self.skipped
        if self.ranked_by:
            data.update(ranked_by=self.ranked_by, attempts=[a.to_dict() for a in self.attempts],
                        all_int8=self.all_int8)
        return data


def median_ms(model_bytes: bytes) -> float:
    """Median latency on this machine (XNNPACK, 1 thread, 50 runs): what recovery costs in speed."""
    from edgelite.runtime.profiler import profile_one
    return profile_one(model_bytes, threads=1, runs=50, warmup=5).latency_ms.median


def why_not(options: QuantizeOptions, runs_float_ops: bool, target_name: str) -> str | None:
    """Why float fallback cannot run here, or None when it can."""
    if not runs_float_ops:
        return f"the {target_name} target runs no float ops"
    if options.mode != "int8":
        return f"{options.mode} has no int8 layers to undo"
    if options.io != "float32":
        return (f"layers left in float need float32 inputs and outputs, and --io {options.io} was asked for; give "
                "--io float32 to allow it")
    return None


def recover(loaded, options: QuantizeOptions, calibration: np.ndarray, check, budget: float,
            first_drop: float, first_bytes: bytes):
    """Re-converts with the worst layers in float until ``check(bytes)`` (a Verification) is within budget.

    Returns (model bytes, verification, Recovery); the first two are None when nothing met the budget.
    """
    ranked = rank_layers(loaded, options, calibration)
    attempts: list[Attempt] = []
    baseline = {"drop_points": first_drop, "size_bytes": len(first_bytes), "median_ms": median_ms(first_bytes)}
    for n in (n for n in STEPS if n < len(ranked)):  # all layers in float would no longer be an int8 model
        names = tuple(r.tensor for r in ranked[:n])
        try:
            candidate = convert_with_float_layers(loaded, options, calibration, list(names))
        except (ValueError, RuntimeError) as exc:
            attempts.append(Attempt(names, error=" ".join(str(exc).split())[:200]))
            break
        verified = check(candidate)
        attempts.append(Attempt(names, verified.drop_points, len(candidate), median_ms(candidate)))
        if verified.drop_points <= budget:
            return candidate, verified, Recovery(None, names, RANKED_BY, tuple(attempts), baseline)
    return None, None, Recovery(None, (), RANKED_BY, tuple(attempts), baseline)
