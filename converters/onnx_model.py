"""ONNX models in: made static, folded, turned into a torch module by onnx2torch, then the PyTorch path.

Why this route (measured, see the From PyTorch page): onnx2tf pins an older TensorFlow and protobuf and
downloads a calibration file at convert time, and mis-converted a real YOLOv8n; onnx2torch reproduces the
ONNX graph in torch to within float rounding, and litert-torch converts that. Four steps make an export
from Ultralytics or torch.onnx convertible, and its int8 model worth verifying:

- the input's dynamic dimensions are fixed (batch 1; height and width from the graph or ``input_shape``),
  and onnxruntime folds the shape arithmetic they fed (Shape, Range, Gather ...) into constants, so
  ``torch.export`` sees no data-dependent shapes;
- a Resize, Split, Reshape or Slice whose sizes are constants is given them as numbers (``torch.export``
  cannot read a tensor's values);
- a YOLO head whose one output concatenates pixel-scale boxes with 0-1 scores is split into two outputs,
  boxes divided by the input size, before anything is quantized: in one int8 tensor the scores would get the
  boxes' step and round to nothing (ultralytics/ultralytics#22644);
- YOLOv8's head joins each level's box-distribution and class logits only to split them again; they are kept
  apart, for the same reason.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgelite.converters.errors import ConversionError, first_line

SUFFIXES = (".onnx",)
MAX_BYTES = 2 << 30  # protobuf's own limit for one message
OPSET = 17  # the newest opset onnx2torch 1.5 converts every core op of
INSTALL = "pip install 'edgelite[convert,onnx]' and pip install --no-deps onnx2torch (see the From PyTorch page)"


@dataclass(frozen=True)
class YoloSplit:
    """The YOLO head split before quantization: outputs (boxes, scores), boxes normalized by the input size."""

    classes: int
    anchors: int

    def to_dict(self) -> dict:
        return {"split": "boxes / input size, scores", "classes": self.classes, "anchors": self.anchors}


@dataclass(frozen=True)
class OnnxSource:
    module: Any                         # the onnx2torch module (NCHW in)
    nchw: tuple[int, int, int, int]
    yolo: YoloSplit | None


def _modules():
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ConversionError(f"converting an ONNX model needs onnx and onnxruntime ({exc}); install: {INSTALL}"
                              ) from None
    return onnx, onnxruntime


def load(path: str, input_shape: tuple[int, int, int] | None, name: str) -> OnnxSource:
    """The ONNX file as a torch module with a static NCHW input, its YOLO head split where it has one."""
    onnx, onnxruntime = _modules()
    if os.path.getsize(path) > MAX_BYTES:
        raise ConversionError(f"{path}: larger than an ONNX file can be (2 GB)")
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file raises anything
        raise ConversionError(f"{path}: not a valid ONNX model ({first_line(exc)})") from None
    nchw = _static_input(model, input_shape, name)
    model = _known_opset(model, onnx)
    folded = _folded(model, onnx, onnxruntime, name)
    separate_head_concats(folded, onnx)
    yolo = split_yolo_head(folded, nchw, onnx)
    return OnnxSource(_to_torch(folded, name), nchw, yolo)


def _known_opset(model, onnx):
    """The graph in opset ``OPSET`` when it was written in a later one (torch.onnx writes 18 and up), which
    onnx2torch has no converters for; onnx's own version converter does it, and a graph it cannot convert is
    left as it is (onnx2torch then names the op it lacks)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    if opset <= OPSET:
        return model
    try:
        return onnx.version_converter.convert_version(model, OPSET)
    except Exception:  # noqa: BLE001 - an op without an adapter raises; onnx2torch says which one below
        return model


def _static_input(model, input_shape, name: str) -> tuple[int, int, int, int]:
    """Batch 1, channels from the graph, height and width from the graph or ``input_shape``; written into it."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ConversionError(f"{name}: the model has {len(inputs)} inputs; edgelite converts image models with one "
                              "image input")
    dims = inputs[0].type.tensor_type.shape.dim
    given = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    if len(given) != 4:
        raise ConversionError(f"{name}: input of rank {len(given)}; edgelite converts NCHW image inputs")
    shape = input_shape or (None, None, None)
    height, width, channels = given[2] or shape[0], given[3] or shape[1], given[1] or shape[2]
    if height is None or width is None or channels is None:
        raise ConversionError(f"{name}: the input's height and width are not fixed in the graph; give "
                              "--input-shape H,W,C")
    nchw = (1, int(channels), int(height), int(width))
    if nchw[1] not in (1, 3):
        raise ConversionError(f"{name}: input shape {list(nchw)} is not an image; edgelite converts models whose "
                              "one input is [batch, 1 or 3 channels, height, width] (NCHW)")
    for dim, value in zip(dims, nchw):
        dim.ClearField("dim_param")
        dim.dim_value = value
    for output in model.graph.output:  # let shape inference fill them again from the static input
        output.type.tensor_type.ClearField("shape")
    return nchw


def split_yolo_head(model, nchw: tuple[int, ...], onnx) -> YoloSplit | None:
    """Splits an output ``Concat(boxes, sigmoid(scores))`` of shape [1, 4 + C, N] into boxes / input size and
    scores, in the graph, when the graph has one output made that way; else leaves it and returns None."""
    if len(model.graph.output) != 1:
        return None
    producers = {o: n for n in model.graph.node for o in n.output}
    head = producers.get(model.graph.output[0].name)
    if head is None or head.op_type != "Concat" or len(head.input) != 2:
        return None
    axis = next((a.i for a in head.attribute if a.name == "axis"), None)
    scores = producers.get(head.input[1])
    if axis not in (1, -2) or scores is None or scores.op_type != "Sigmoid":
        return None
    shapes = _shapes(model, onnx)
    boxes_shape, scores_shape = shapes.get(head.input[0]), shapes.get(head.input[1])
    if not boxes_shape or not scores_shape or len(boxes_shape) != 3 or boxes_shape[1] != 4 or \
            scores_shape[2] != boxes_shape[2]:
        return None
    height, width = nchw[2], nchw[3]
    scale = onnx.numpy_helper.from_array(_box_scale(width, height), "edgelite_box_scale")
    model.graph.initializer.append(scale)
    model.graph.node.append(onnx.helper.make_node("Mul", [head.input[0], scale.name], ["boxes"]))
    model.graph.node.append(onnx.helper.make_node("Identity", [head.input[1]], ["scores"]))
    del model.graph.output[:]
    model.graph.output.extend([onnx.helper.make_empty_tensor_value_info("boxes"),
                               onnx.helper.make_empty_tensor_value_info("scores")])
    return YoloSplit(int(scores_shape[1]), int(boxes_shape[2]))


def separate_head_concats(model, onnx) -> int:
    """``Split(Concat(Reshape(Concat(box_i, cls_i)) over levels))`` -> one Concat per part, never joined: YOLOv8's
    head joins each level's box-distribution logits and class logits in one tensor only to split them again, and
    in int8 that tensor's one step would serve both ranges. Returns how many splits were rewritten."""
    producers = {o: n for n in model.graph.node for o in n.output}
    constants = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    shapes = _shapes(model, onnx)
    rewritten = 0
    for split in [n for n in model.graph.node if n.op_type == "Split"]:
        parts = _head_parts(split, producers, constants, shapes)
        if parts is None:
            continue
        for out, (channels, sources) in zip(split.output, parts):
            shape = onnx.numpy_helper.from_array(np.array([1, channels, -1], np.int64), f"{out}_edgelite_shape")
            model.graph.initializer.append(shape)
            levels = [f"{out}_edgelite_level{k}" for k in range(len(sources))]
            model.graph.node.extend(onnx.helper.make_node("Reshape", [source, shape.name], [level])
                                    for source, level in zip(sources, levels))
            model.graph.node.append(onnx.helper.make_node("Concat", levels, [out], axis=2))
        model.graph.node.remove(split)
        rewritten += 1
    if rewritten:
        _sort_topologically(model)
    return rewritten


def _head_parts(split, producers, constants, shapes) -> list[tuple[int, list[str]]] | None:
    """For a two-way Split along channels of a Concat (over levels) of Reshapes of two-input Concats whose channel
    counts are the split's sizes: (channels, each level's input) for each output; else None."""
    sizes = constants.get(split.input[1]) if len(split.input) > 1 else None
    joined = producers.get(split.input[0])
    if sizes is None or len(sizes) != 2 or next((a.i for a in split.attribute if a.name == "axis"), 0) != 1 or \
            joined is None or joined.op_type != "Concat":
        return None
    levels = [producers.get(i) for i in joined.input]
    if any(r is None or r.op_type != "Reshape" for r in levels):
        return None
    pairs = [producers.get(r.input[0]) for r in levels]
    if any(c is None or c.op_type != "Concat" or len(c.input) != 2 for c in pairs):
        return None
    for c in pairs:
        widths = [shapes.get(i, [None, None])[1] for i in c.input]
        if widths != [int(v) for v in sizes]:
            return None
    return [(int(sizes[j]), [c.input[j] for c in pairs]) for j in range(2)]


def _sort_topologically(model) -> None:
    """Nodes in an order where each one's inputs are made before it (ONNX requires it; the rewrite appended)."""
    made = {i.name for i in model.graph.initializer} | {i.name for i in model.graph.input} | {""}
    pending, ordered = list(model.graph.node), []
    while pending:
        ready = [n for n in pending if all(i in made for i in n.input)]
        if not ready:
            raise ConversionError("the ONNX graph has a cycle or an input nothing makes")
        for n in ready:
            ordered.append(n)
            made.update(n.output)
        pending = [n for n in pending if n not in ready]
    del model.graph.node[:]
    model.graph.node.extend(ordered)


def _box_scale(width: int, height: int):
    return np.array([1 / width, 1 / height, 1 / width, 1 / height], np.float32).reshape(1, 4, 1)


def _shapes(model, onnx) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    found = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            found[value.name] = [d.dim_value for d in dims]
    return found


def _folded(model, onnx, onnxruntime, name: str):
    """onnxruntime's basic graph optimizations: with the input static, the shape arithmetic becomes constants."""
    with tempfile.TemporaryDirectory(prefix="edgelite-onnx-") as work:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = os.path.join(work, "folded.onnx")
        options.log_severity_level = 3
        try:
            onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            return onnx.load(options.optimized_model_filepath)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidGraph types
            raise ConversionError(f"{name}: onnxruntime cannot load the graph with a static input "
                                  f"({first_line(exc)})") from None


def _to_torch(model, name: str):
    _torchvision_absent_stand_in()
    try:
        import onnx2torch
    except ImportError as exc:
        raise ConversionError(f"converting an ONNX model needs onnx2torch ({exc}); install: {INSTALL}") from None
    try:
        module = onnx2torch.convert(model).eval()
    except Exception as exc:  # noqa: BLE001 - an op onnx2torch does not convert raises NotImplementedError & co
        raise ConversionError(f"{name}: onnx2torch cannot convert the graph ({first_line(exc)})") from None
    _constant_arguments(module)
    return module


def _torchvision_absent_stand_in() -> None:
    """onnx2torch imports torchvision for two converters (NonMaxSuppression, RoiAlign) at import time. PyPI's
    torchvision does not import beside a CPU torch, and edgelite's extra leaves it out; when it is absent, a
    stand-in that refuses those two ops lets onnx2torch import (a graph using them fails with one line)."""
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return

    def refused(*args, **kwargs):
        raise NotImplementedError("NonMaxSuppression/RoiAlign need torchvision, which is not installed")

    vision, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    ops.nms = ops.roi_align = ops.box_convert = refused  # type: ignore[attr-defined]
    vision.ops = ops  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": vision, "torchvision.ops": ops})


def _constant_arguments(module) -> None:
    """Each Resize, Split, Reshape and Slice whose sizes come from constants of the graph gets them as Python
    numbers."""
    import inspect

    import torch
    for node in module.graph.nodes:
        if node.op != "call_module":
            continue
        op = module.get_submodule(node.target)
        fixed = _FIXED.get(type(op).__name__)
        if fixed is None:
            continue
        names = list(inspect.signature(op.forward).parameters)[1:]
        given = {**dict(zip(names, node.args[1:])), **node.kwargs}
        values = {k: _constant(module, v) for k, v in given.items() if v is not None}
        if any(v is None for v in values.values()):
            continue  # computed at run time: left as it is (torch.export then says why it cannot)
        op.forward = types.MethodType(fixed(torch, op, values), op)


def _fixed_resize(torch, op, values: dict):
    from onnx2torch.node_converters.resize import _onnx_mode_to_torch_mode
    scales, sizes = values.get("scales") or None, values.get("sizes") or None
    options = dict(scale_factor=tuple(scales[2:]) if scales else None,
                   size=tuple(int(s) for s in sizes[2:]) if sizes else None,
                   mode=_onnx_mode_to_torch_mode(op.onnx_mode, 2), align_corners=op.align_corners)
    return lambda self, x, *args, **kwargs: torch.nn.functional.interpolate(x, **options)


def _fixed_split(torch, op, values: dict):
    sections = [int(v) for v in values["split"]] if values.get("split") else None
    if sections is None:
        return type(op).forward
    return lambda self, x, *args, **kwargs: torch.split(x, sections, dim=op.axis)


def _fixed_reshape(torch, op, values: dict):
    shape = [int(v) for v in values["shape"]]
    return lambda self, x, *args, **kwargs: torch.reshape(x, [x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


def _fixed_slice(torch, op, values: dict):
    from onnx2torch.node_converters.slice import _get_slices
    given = {k: torch.tensor(values[k], dtype=torch.int64) if values.get(k) else None
             for k in ("starts", "ends", "axes", "steps")}
    flips, positive, negative = _get_slices(given["starts"], given["ends"], given["axes"], given["steps"])
    positive = tuple(slice(*(None if v is None else int(v) for v in (p.start, p.stop, p.step))) for p in positive)
    negative = tuple(n if n is Ellipsis else slice(*(None if v is None else int(v) for v in (n.start, n.stop, n.step)))
                     for n in negative)

    def forward(self, x, *args, **kwargs):
        x = torch.flip(x, dims=[int(d) for d in flips]) if flips else x
        x = x[positive] if positive else x
        return x[negative] if negative else x
    return forward


_FIXED = {"OnnxResize": _fixed_resize, "OnnxSplit13": _fixed_split, "OnnxReshape": _fixed_reshape,
          "OnnxSlice": _fixed_slice}


def _constant(module, node) -> list[float] | None:
    if getattr(node, "op", None) != "get_attr":
        return None
    value = _attribute(module, node.target)
    return [float(v) for v in value.flatten().tolist()] if value.numel() else []


def _attribute(module, dotted: str):
    owner = module
    for part in dotted.split("."):
        owner = getattr(owner, part)
    return owner
