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

from .quantization import QuantizeOptions, make_converter, representative
from .tf import quiet, tensorflow

STEPS = (1, 2, 4, 8)


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
    converter = make_converter(loaded, QuantizeOptions("int8", "float32", options.per_tensor, options.allow_flex),
                               calibration)
    debug_options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_tensors))
    with quiet():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative(calibration[:8]), debug_options=debug_options)
        return debugger.get_nondebug_quantized_model()
