"""PyTorch models in: a ``torch.export`` archive (.pt2), a live ``nn.Module`` or an ONNX file (through
onnx_model), converted by litert-torch.

Why litert-torch (Google's PyTorch -> TFLite converter): it lowers a ``torch.export`` graph straight to
TFLite with its own PT2E int8 quantizer, needs no TensorFlow and no network, and its channel-last wrapper
gives NHWC inputs without a TRANSPOSE at the edge. The ONNX bridges (onnx2tf, onnx-tf, nobuco) pin old
TensorFlow or protobuf, download files at convert time, or mis-convert YOLO heads (docs: From PyTorch).

The loaded model takes NHWC float pixels like a Keras model, so calibration, the float checks and
verification run unchanged on it; only the converter call differs (``convert`` below). What the PT2E
quantizer leaves in float (ops it has no int8 kernel annotation for) is counted and reported, and the
Edge TPU, which runs no float op, refuses such a model.
"""
from __future__ import annotations

import contextlib
import functools
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgelite.converters import onnx_model
from edgelite.converters.errors import ConversionError, converter_boundary, first_line
from edgelite.converters.onnx_model import YoloSplit
from edgelite.runtime.errors import BackendUnavailableError
from edgelite.runtime.modelfile.tflite_file import op_name, parse

SUFFIXES = (".pt2", ".onnx")  # an ONNX file becomes a torch module first (onnx_model)
INSTALL = "pip install 'edgelite[convert,torch]' (with a CPU build of torch: see the From PyTorch page)"
MODES = ("int8", "dynamic", "none")  # what litert-torch's quantizer makes; fp16 and int16x8 are TensorFlow's
_CONVERSIONS = ("QUANTIZE", "DEQUANTIZE")


@functools.cache
def torch_modules():
    """torch and litert_torch, imported on first use (their start-up notes silenced) with one message saying how
    to install them; once per process, since every float prediction asks for them."""
    import logging

    from edgelite.converters.tf import quiet
    logging.getLogger("torchao").setLevel(logging.ERROR)  # notes on CUDA kernels a CPU build does not have
    try:
        with quiet():
            import litert_torch
            import torch
    except ImportError as exc:
        raise BackendUnavailableError(f"converting a PyTorch model needs torch and litert-torch ({exc}); "
                                      f"install them: {INSTALL}") from None
    return torch, litert_torch


def is_torch_model(source: Any) -> bool:
    """A .pt2 or .onnx path, or an object whose class is a torch.nn.Module (checked without importing torch)."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source).endswith(SUFFIXES)
    return any(f"{c.__module__}.{c.__qualname__}" == "torch.nn.modules.module.Module" for c in type(source).__mro__)


@dataclass(frozen=True)
class TorchSource:
    """The user's module as edgelite runs it: NHWC float pixels in, the module's own outputs out."""

    module: Any                        # litert_torch's channel-last wrapper around the user's module
    input_shape: tuple[int, int, int]  # height, width, channels
    yolo: YoloSplit | None = None      # an ONNX YOLO head split into boxes and scores (onnx_model)


def load(source: Any, input_shape: tuple[int, int, int] | None, name: str) -> TorchSource:
    """A .pt2 archive (its recorded example input gives the shape) or an nn.Module (``input_shape`` gives it).

    PyTorch vision models take NCHW; the module is wrapped so it takes NHWC, as the device feeds it."""
    torch, litert_torch = torch_modules()
    yolo: YoloSplit | None = None
    nchw: tuple[int, ...]
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).endswith(onnx_model.SUFFIXES):
        found = onnx_model.load(os.fspath(source), input_shape, name)
        module, nchw, yolo = found.module, found.nchw, found.yolo
    elif isinstance(source, (str, os.PathLike)):
        module, nchw = _exported(torch, os.fspath(source))
    else:
        if input_shape is None:
            raise ConversionError(f"{name}: an nn.Module records no input shape; give input_shape=(height, width, "
                                  "channels) (the module itself takes NCHW, as PyTorch vision models do)")
        module, nchw = source.eval(), (1, int(input_shape[2]), *(int(d) for d in input_shape[:2]))
    if len(nchw) != 4 or nchw[1] not in (1, 3):
        raise ConversionError(f"{name}: input shape {list(nchw)} is not an image; edgelite converts PyTorch models "
                              "whose one input is [batch, 1 or 3 channels, height, width] (NCHW)")
    return TorchSource(litert_torch.to_channel_last_io(module, args=[0]), (nchw[2], nchw[3], nchw[1]), yolo)


def _exported(torch, path: str) -> tuple[Any, tuple[int, ...]]:
    """The archive's module and its one input's shape (from the example input torch.export recorded)."""
    try:
        program = torch.export.load(path)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign archive raises anything
        raise ConversionError(f"{path}: cannot load the torch.export archive ({first_line(exc)})") from None
    example = program.example_inputs
    args, kwargs = (tuple(example[0]), dict(example[1])) if example else ((), {})
    if len(args) != 1 or kwargs:
        raise ConversionError(f"{path}: the exported program takes {len(args) + len(kwargs)} inputs; edgelite "
                              "converts image models with one image input")
    return program.module(), tuple(int(d) for d in args[0].shape)


def predict_all(module: Any, batch: np.ndarray) -> list[np.ndarray]:
    """The float module's outputs, one image at a time (an exported graph is specialised to batch 1)."""
    torch, _ = torch_modules()
    per_image = []
    with torch.no_grad():
        for i in range(len(batch)):
            out = module(torch.from_numpy(np.ascontiguousarray(batch[i:i + 1], dtype=np.float32)))
            per_image.append([np.asarray(o.detach().numpy()) for o in _flat(out)])
    return [np.concatenate(parts) for parts in zip(*per_image)]


def _flat(out) -> list:
    return list(out) if isinstance(out, (list, tuple)) else (list(out.values()) if isinstance(out, dict) else [out])


def convert(module: Any, input_shape: tuple[int, int, int], mode: str, per_tensor: bool,
            calibration: np.ndarray | None, name: str) -> bytes:
    """litert-torch's conversion: float (``none``), or its PT2E quantizer, static int8 calibrated on
    ``calibration`` (float NHWC, normalized as the model takes it) or dynamic-range."""
    torch, litert_torch = torch_modules()
    if mode not in MODES:
        raise ConversionError(f"{name}: --quantize {mode} is not available for PyTorch models; choose "
                              f"{', '.join(MODES)}")
    example = (torch.zeros((1, *input_shape), dtype=torch.float32),)
    with _converter_call(name):
        if mode == "none":
            return litert_torch.convert(module, example).model_content()
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        quantizer = _fixed_softmax_quantizer(torch, PT2EQuantizer)().set_global(get_symmetric_quantization_config(
            is_per_channel=not per_tensor, is_dynamic=mode == "dynamic"))
        prepared = prepare_pt2e(_core_softmax(torch, torch.export.export(module, example).module()), quantizer)
        # The weights' observers run in the forward pass too: a dynamic-range model needs one pass as well.
        feed = calibration if calibration is not None and len(calibration) else example[0].numpy()
        for i in range(len(feed) if mode == "int8" else 1):
            prepared(torch.from_numpy(np.ascontiguousarray(feed[i:i + 1], dtype=np.float32)))
        quantized = convert_pt2e(prepared, fold_quantize=False)
        return litert_torch.convert(quantized, example, quant_config=QuantConfig(pt2e_quantizer=quantizer)
                                    ).model_content()


def _fixed_softmax_quantizer(torch, base):
    """litert-torch's quantizer, with every softmax given TFLite's fixed int8 output step (1/256, zero point -128).

    Its own annotator does so only when the softmax's input is already annotated; YOLOv8's DFL softmax follows a
    permute, took the next convolution's input step, and TFLite's SOFTMAX kernel refused the model at load."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    class FixedSoftmax(base):  # type: ignore[valid-type,misc]
        def annotate(self, model):
            model = super().annotate(model)
            config = self.global_config
            if config is None or config.input_activation is None or config.fixed_qparams is None:
                return model  # dynamic range: activations stay float
            for node in model.graph.nodes:
                if node.op == "call_function" and node.target == torch.ops.aten._softmax.default:
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={node.args[0]: config.input_activation}, output_qspec=config.fixed_qparams,
                        _annotated=True)
            return model
    return FixedSoftmax


def _core_softmax(torch, graph_module):
    """``softmax.int`` as ``_softmax``, the form litert-torch's quantizer annotates (an ONNX Softmax exports as
    ``softmax.int``)."""
    for node in graph_module.graph.nodes:
        if node.op == "call_function" and node.target == torch.ops.aten.softmax.int and len(node.args) == 2 \
                and node.kwargs.get("dtype") is None:
            node.target, node.args, node.kwargs = torch.ops.aten._softmax.default, (*node.args, False), {}
    graph_module.recompile()
    return graph_module


def _converter_call(name: str) -> contextlib.AbstractContextManager[None]:
    """litert-torch's progress lines and warnings silenced; anything it raises is one line."""
    return converter_boundary(lambda text: ConversionError(
        f"{name}: litert-torch could not convert the module ({first_line(text)}); see the From PyTorch page for "
        "what converts"))


@dataclass(frozen=True)
class FloatOps:
    """Ops an int8 conversion left computing in float, and the QUANTIZE/DEQUANTIZE ops around them."""

    ops: dict[str, int]
    conversions: dict[str, int]

    @property
    def count(self) -> int:
        return sum(self.ops.values())

    def to_dict(self) -> dict:
        return {"count": self.count, "ops": self.ops, "conversions": self.conversions}

    def line(self) -> str:
        """``21 ops in float (MUL x10, RELU x5, ...)``."""
        listed = ", ".join(f"{n} x{c}" for n, c in sorted(self.ops.items()))
        return f"{self.count} ops in float ({listed})"


def float_ops(model_bytes: bytes, name: str) -> FloatOps:
    """Ops (QUANTIZE/DEQUANTIZE apart) that write a float32 tensor: the work the int8 kernels do not do."""
    graph = parse(model_bytes, name).main
    left: Counter = Counter()
    conversions: Counter = Counter()
    for op in graph.operators:
        kind = op_name(op.builtin_code, op.custom_code)
        if kind in _CONVERSIONS:
            conversions[kind] += 1
        elif any(graph.tensors[t].dtype == "float32" for t in op.outputs if t >= 0):
            left[kind] += 1
    return FloatOps(dict(left), dict(conversions))
