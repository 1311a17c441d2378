"""TFLiteConverter set up for each quantization mode, and the Flex-op refusal.

Everything here configures TensorFlow's own converter; edgelite adds the choice of
defaults (int8 I/O, per-channel weights, builtin ops only) and errors that say what to do.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from edgelite.converters.errors import ConversionError, converter_boundary
from edgelite.converters.options import ConvertOptions
from edgelite.converters.tf import tensorflow
from edgelite.converters.user_model import LoadedModel
from edgelite.runtime.errors import EdgeliteError

CALIBRATED = ("int8", "int16x8")
INTEGER_WEIGHTS = ("int8", "int16x8", "dynamic")  # modes whose weights are int8, per channel or per tensor


@dataclass(frozen=True)
class QuantizeOptions:
    """How TensorFlow's converter is set up; ConvertOptions has already checked the combination."""

    mode: str = "int8"
    io: str = "int8"
    per_tensor: bool = False
    allow_flex: bool = False
    sparse_encoding: bool = False
    static_batch: bool = False  # batch fixed at 1 (the Edge TPU takes no dynamic shapes)

    @classmethod
    def from_options(cls, o: ConvertOptions) -> QuantizeOptions:
        assert o.quantize is not None and o.io is not None  # noqa: S101 - resolved by ConvertOptions
        return cls(o.quantize, o.io, o.per_tensor, o.allow_flex, o.sparse_encoding, o.target_entry.static_batch)

    @property
    def calibrated(self) -> bool:
        return self.mode in CALIBRATED

    @property
    def per_channel(self) -> bool | None:
        """Per-channel weight scales (True/False); None where the weights are not integers (fp16, none)."""
        return not self.per_tensor if self.mode in INTEGER_WEIGHTS else None

    def to_dict(self, float_layers: tuple[str, ...] = ()) -> dict:
        return {"mode": self.mode, "io": self.io, "per_channel": self.per_channel, "float_layers": list(float_layers)}


def representative(batch: np.ndarray) -> Callable[[], Iterable[list[np.ndarray]]]:
    """The converter's representative dataset: one image per step, float32 as the model takes it."""
    def generate():
        for i in range(len(batch)):
            yield [batch[i:i + 1].astype(np.float32)]
    return generate


def make_converter(loaded: LoadedModel, options: QuantizeOptions, calibration: np.ndarray | None):
    """A configured TFLiteConverter (not yet run)."""
    tf = tensorflow()
    if options.static_batch:
        converter = _static_batch_converter(tf, loaded)
    elif loaded.saved_model_dir:
        converter = tf.lite.TFLiteConverter.from_saved_model(loaded.saved_model_dir)
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(loaded.model)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if options.mode != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if options.sparse_encoding:  # store pruned weights in the flatbuffer's sparse format
        converter.optimizations = [*converter.optimizations, tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    if options.mode == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if options.calibrated:
        if calibration is None or not len(calibration):
            raise ConversionError(f"{options.mode} quantization is calibrated on images: give --calibration DIR")
        converter.representative_dataset = representative(calibration)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] if options.mode == "int8" else \
            [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if options.mode == "int8" and options.io != "float32":
        converter.inference_input_type = converter.inference_output_type = getattr(tf, options.io)
    if options.per_tensor:
        converter._experimental_disable_per_channel = True  # noqa: SLF001 - the converter's documented switch
    if options.allow_flex:
        ops = ops + [tf.lite.OpsSet.SELECT_TF_OPS]
    converter.target_spec.supported_ops = ops
    return converter


def _static_batch_converter(tf, loaded: LoadedModel):
    """A converter over the model wrapped with a batch-1 input, so no tensor has a dynamic dimension."""
    if loaded.flavor == "saved_model":
        raise ConversionError(f"{loaded.name}: a bare SavedModel graph keeps its dynamic batch; load it as a Keras "
                              "model, or re-export it with a fixed batch of 1")
    if loaded.flavor == "tf_keras":
        import tf_keras as keras_module
    else:
        import keras as keras_module
    inputs = keras_module.Input(loaded.input_shape, batch_size=1)
    fixed = keras_module.Model(inputs, loaded.model(inputs))
    return tf.lite.TFLiteConverter.from_keras_model(fixed)


_FLEX_OP = re.compile(r"\btf\.([A-Z]\w+)")  # TF op names are CamelCase


def converter_call(name: str, allow_flex: bool = False) -> contextlib.AbstractContextManager[None]:
    """Every call into TensorFlow's converter goes through here (the converter proper, QuantizationDebugger's
    calibration and re-quantization, the learned-range quantizer), whichever path the conversion takes: what
    it prints is silenced and what it raises (ConverterError with an MLIR dump, ValueError, RuntimeError)
    becomes one ConversionError line naming the ops and the way out."""
    return converter_boundary(lambda text: _one_line(name, text, allow_flex))


def _one_line(name: str, text: str, allow_flex: bool) -> ConversionError:
    flex = sorted(set(_FLEX_OP.findall(text)))
    if flex and allow_flex:
        return ConversionError(f"{name}: ops neither builtin nor available as Flex kernels: {', '.join(flex)}; "
                               "replace them in the model")
    if flex or "Select TF" in text or "not supported by the native TFLite runtime" in text:
        return ConversionError(f"{name}: ops not in TFLite's builtin set: {', '.join(flex) or 'see TensorFlow log'}; "
                               "replace them, or pass --allow-flex to embed TensorFlow (Flex) kernels, which "
                               "needs the Flex delegate on the device")
    detail = " ".join(text.split())[:300]
    return ConversionError(f"{name}: the TFLite converter failed: {detail}")


def run_converter(converter, name: str, allow_flex: bool = False) -> bytes:
    """Runs the converter; unsupported ops become one line naming them and the way out."""
    with converter_call(name, allow_flex):
        return converter.convert()


def convert(loaded: LoadedModel, options: QuantizeOptions, calibration: np.ndarray | None) -> bytes:
    return run_converter(make_converter(loaded, options, calibration), loaded.name, options.allow_flex)


def flex_ops(model_bytes: bytes, name: str) -> tuple[str, ...]:
    """TensorFlow (Flex) ops the converted model uses: the edgelite runtime cannot run them."""
    from edgelite.runtime.modelfile.tflite_file import parse
    return tuple(op for op in parse(model_bytes, name).custom_ops if op.startswith("Flex"))


def keep_runnable_encoding(loaded: LoadedModel, options: QuantizeOptions, calibration, model_bytes: bytes,
                           delegate: str, reporter) -> tuple[bytes, dict]:
    """A sparse-encoded model must load and run under the target's CPU delegate; else the dense one is kept."""
    import dataclasses

    from edgelite.runtime.interpreter.model import Model
    try:
        model = Model(model_bytes, delegate=delegate)
        model.run(*[np.zeros(i.shape, i.dtype) for i in model.inputs])
        return model_bytes, {"requested": True, "kept": True, "checked_with": model.delegate.actual}
    except EdgeliteError as exc:
        reason = str(exc)
    reporter.warn(f"sparse encoding does not run under {delegate}: {reason}; kept the dense encoding")
    dense = convert(loaded, dataclasses.replace(options, sparse_encoding=False), calibration)
    return dense, {"requested": True, "kept": False, "reason": reason}
