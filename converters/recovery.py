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
from dataclasses import dataclass

import numpy as np

from edgelite.runtime.errors import ConversionError

from .quantization import QuantizeOptions, make_converter, representative
from .tf import quiet, tensorflow

STEPS = (1, 2, 4, 8)
RANKED_BY = "QuantizationDebugger RMSE/scale"


@dataclass(frozen=True)
class LayerError:
    tensor: str
    op: str
    rmse_over_scale: float


def feeding(model_bytes: bytes, outputs: tuple[str, ...]) -> set[str]:
    """Names of every tensor the named output tensors are computed from (themselves included)."""
    from edgelite.runtime.tflite_file import parse
    graph = parse(model_bytes, "<converted>").main
    producer = {t: op for op in graph.operators for t in op.outputs}
    pending = [t.index for t in graph.tensors if t.name in outputs]
    seen: set[int] = set()
    while pending:
        index = pending.pop()
        if index in seen or index < 0:
            continue
        seen.add(index)
        op = producer.get(index)
        if op is not None:
            pending.extend(op.inputs)
    return {graph.tensors[i].name for i in seen}


def rank_layers(loaded, options: QuantizeOptions, calibration: np.ndarray, limit: int = 64,
                focus: tuple[str, ...] = ()) -> list[LayerError]:
    """Quantized tensors, worst first, by RMSE / scale; with ``focus`` (output tensor names), only the tensors
    those outputs are computed from, so the float layers land on the head that fails."""
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
    if focus:
        upstream = feeding(debugger.get_nondebug_quantized_model(), focus)
        rows = [r for r in rows if r.tensor in upstream] or rows
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


def median_ms(model_bytes: bytes) -> float:
    """Median latency on this machine (XNNPACK, 1 thread, 50 runs): what a rung costs in speed."""
    from edgelite.runtime.profiler import profile_one
    return profile_one(model_bytes, threads=1, runs=50, warmup=5).latency_ms.median


def recover(loaded, options: QuantizeOptions, calibration: np.ndarray, check, budget, focus: tuple[str, ...] = ()):
    """Re-converts with the worst 1, 2, 4, 8 layers in float until ``check(bytes)`` is within budget.

    ``focus`` names the outputs under their SNR budget: only the layers feeding them are ranked.
    Returns (model bytes, verification, float layers) of the first set within budget; raises a
    ConversionError saying what was tried when none is.
    """
    ranked = rank_layers(loaded, options, calibration, focus=focus)
    tried = []
    for n in (n for n in STEPS if n < len(ranked)):  # all layers in float would no longer be an int8 model
        names = tuple(r.tensor for r in ranked[:n])
        candidate = convert_with_float_layers(loaded, options, calibration, list(names))
        verified = check(candidate)
        tried.append(f"{n} layer(s): drop {verified.drop_points:.2f}")
        if budget.holds(verified):
            return candidate, verified, names
    raise ConversionError(f"no set of float layers met the budget ({'; '.join(tried) or 'nothing to try'}; ranked "
                          f"by {RANKED_BY})")
