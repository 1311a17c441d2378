"""Getting back accuracy quantization lost: leave the worst layers in float.

TensorFlow's QuantizationDebugger compares every quantized tensor with its float twin on
the calibration images. Layers are ranked by RMSE relative to their quantization step
(the ranking TensorFlow's own debugger guide uses), and the worst are re-converted in float
(``denylisted_nodes``), a few more at a time, until the budget is met or the attempts run
out. Only for targets that can run float ops (not the Edge TPU).
"""
from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass

import numpy as np

from edgelite.converters.errors import ConversionError
from edgelite.converters.quantize.input_step import InputStep, with_input_step
from edgelite.converters.quantize.modes import QuantizeOptions, converter_call, make_converter, representative
from edgelite.converters.tf import quiet, tensorflow

STEPS = (1, 2, 4, 8)
RANKED_BY = "QuantizationDebugger RMSE/scale"


@dataclass(frozen=True)
class LayerError:
    tensor: str
    op: str
    rmse_over_scale: float


def feeding(model_bytes: bytes, outputs: tuple[str, ...]) -> set[str]:
    """Names of every tensor the named output tensors are computed from (themselves included)."""
    from edgelite.runtime.modelfile.tflite_file import parse
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


class Calibrated:
    """One calibration of the model, quantized many ways: per channel or per tensor, int8 or float I/O, some
    layers left in float. TensorFlow's QuantizationDebugger keeps the calibrated model, so after the first
    conversion (export, MLIR, calibration: seconds) each variant is a re-quantization (tens of milliseconds):
    the ladder's int8 rungs on the same images share one conversion. The calibrated input range is replaced by
    the step ``InputStep.of`` chooses for the images' values, so pixels do not sit on rounding ties. Variants
    with uint8 I/O or sparse encoding go through the converter proper (the debugger does neither)."""

    def __init__(self, loaded, options: QuantizeOptions, calibration: np.ndarray, limit: int = 64):
        self.loaded, self.options, self.calibration, self.limit = loaded, options, calibration, limit
        self._debugger = None
        self._ranked_as: bool | None = None   # per_tensor setting the layer statistics were taken with

    @staticmethod
    def serves(options: QuantizeOptions) -> bool:
        return (options.mode == "int8" and options.io in ("int8", "float32") and not options.sparse_encoding
                and not options.allow_flex)

    @property
    def debugger(self):
        if self._debugger is None:
            tf = tensorflow()
            converter = make_converter(self.loaded, self.options, self.calibration)
            with converter_call(self.loaded.name):
                debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=converter, debug_dataset=representative(self.calibration[:self.limit]))
                debugger.calibrated_model = with_input_step(debugger.calibrated_model, self.input_step)
            self._debugger = debugger
        return self._debugger

    @functools.cached_property
    def input_step(self) -> InputStep:
        """The int8 input's step for these calibration images (see ``input_step``): every variant takes it."""
        return InputStep.of(self.calibration[:self.limit])

    def quantized(self, options: QuantizeOptions, float_layers: tuple[str, ...] = ()) -> bytes:
        """The model as ``options`` say (``serves(options)`` must hold), the named tensors' ops in float."""
        self._configure(options, float_layers)
        with converter_call(self.loaded.name):
            return self.debugger.get_nondebug_quantized_model()

    def _configure(self, options: QuantizeOptions, float_layers: tuple[str, ...] = ()) -> None:
        tf = tensorflow()
        debugger = self.debugger
        debugger.converter._experimental_disable_per_channel = options.per_tensor  # noqa: SLF001 - as make_converter
        with quiet():
            debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                fully_quantize=options.io == "int8", denylisted_nodes=list(float_layers))

    def ranked(self, options: QuantizeOptions, focus: tuple[str, ...] = ()) -> list[LayerError]:
        """Quantized tensors, worst first, by RMSE / scale; with ``focus`` (output tensor names), only the tensors
        those outputs are computed from, so the float layers land on the head that fails."""
        if self._ranked_as != options.per_tensor:
            self._configure(options)
            with converter_call(self.loaded.name):
                self.debugger.run()
            self._ranked_as = options.per_tensor
        buf = io.StringIO()
        self.debugger.layer_statistics_dump(buf)
        buf.seek(0)
        rows = []
        for row in csv.DictReader(buf):
            scale = float(row["scale"] or 0) or 1.0
            rows.append(LayerError(row["tensor_name"], row["op_name"],
                                   float(np.sqrt(float(row["mean_squared_error"]))) / scale))
        if focus:
            upstream = feeding(self.quantized(options), focus)
            rows = [r for r in rows if r.tensor in upstream] or rows
        return sorted(rows, key=lambda r: -r.rmse_over_scale)


def median_ms(model_bytes: bytes) -> float:
    """Median latency on this machine (XNNPACK, 1 thread, 50 runs): what a rung costs in speed."""
    from edgelite.runtime.interpreter.profiler import profile_one
    return profile_one(model_bytes, threads=1, runs=50, warmup=5).latency_ms.median


def recover(session: Calibrated, options: QuantizeOptions, check, budget, focus: tuple[str, ...] = ()):
    """Re-converts with the worst 1, 2, 4, 8 layers in float until ``check(bytes)`` is within budget.

    ``focus`` names the outputs under their SNR budget: only the layers feeding them are ranked.
    Returns (model bytes, verification, float layers) of the first set within budget; raises a
    ConversionError saying what was tried when none is.
    """
    ranked = session.ranked(options, focus)
    tried = []
    for n in (n for n in STEPS if n < len(ranked)):  # all layers in float would no longer be an int8 model
        names = tuple(r.tensor for r in ranked[:n])
        candidate = session.quantized(options, names)
        verified = check(candidate)
        tried.append(f"{n} layer(s): drop {verified.drop_points:.2f}")
        if budget.holds(verified):
            return candidate, verified, names
    raise ConversionError(f"no set of float layers met the budget ({'; '.join(tried) or 'nothing to try'}; ranked "
                          f"by {RANKED_BY})")
