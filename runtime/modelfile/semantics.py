"""The parts of a model native code trusts beyond its structure, checked before any interpreter sees it.

``tflite_file.parse`` checks that every offset, length and index lies inside the file. This module
checks what those bytes mean where the interpreters act on them unchecked (each one crashed or hung
a process when probed with models edited through the schema's object API):

- control flow (IF, WHILE, CALL_ONCE): subgraph indices in range, never the subgraph itself or one
  of its callers (the interpreter recurses until the stack overflows), nesting at most MAX_DEPTH;
- sparse tensors: ``traversal_order`` a permutation, ``block_map`` valid, one ``dim_metadata`` per
  traversed dimension, dense sizes equal to the dimensions, CSR segments from 0 and non-decreasing,
  indices inside their dimension, and the stored values filling the buffer exactly;
- absent (-1) operator inputs: never the first, and for the convolution and fully connected kernels
  only the bias;
- ``TFLite_Detection_PostProcess``: its custom options a flexbuffer map with every field the kernel
  reads, each in a sane range, and its three inputs shaped as the options say.

This list is the one place that says what is validated; the README repeats it.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

CONTROL_FLOW = {118: "IF", 119: "WHILE", 129: "CALL_ONCE"}  # builtin code -> name (fields hold subgraph indices)
MAX_DEPTH = 16
DETECTION_POSTPROCESS = "TFLite_Detection_PostProcess"
DETECTION_FIELDS = {  # name -> (low, high): what the kernel reads from its options
    "max_detections": (1, 10_000), "max_classes_per_detection": (1, 1_000), "num_classes": (1, 100_000),
    "nms_score_threshold": (-1e9, 1e9), "nms_iou_threshold": (0.0, 1.0), "y_scale": (1e-6, 1e6),
    "x_scale": (1e-6, 1e6), "h_scale": (1e-6, 1e6), "w_scale": (1e-6, 1e6),
}
DETECTION_OPTIONAL = {"detections_per_class": (1, 10_000)}  # read only when present (regular NMS)
MAX_DETECTION_ROWS = 100_000  # the kernel sizes its outputs max_detections x max_classes_per_detection


# Ops whose kernels take an absent (-1) input only at these positions (a bias); any other absent input of
# theirs, and an absent first input of any op, was dereferenced by the interpreter (a segfault).
OPTIONAL_INPUTS = {9: {2}, 3: {2}, 4: {2}, 67: {3}}  # FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV


def check_optional_inputs(op_index: int, builtin_code: int, inputs: tuple[int, ...],
                          fail: Callable[[str], None]) -> None:
    """An absent input (-1) only where the kernel allows one."""
    absent = {k for k, t in enumerate(inputs) if t == -1}
    allowed = OPTIONAL_INPUTS.get(builtin_code)
    if absent and (0 in absent or (allowed is not None and not absent <= allowed)):
        fail(f"operator {op_index} leaves input {min(absent - (allowed or set()) or absent)} absent, which its "
             "kernel needs")


@dataclass(frozen=True)
class DimensionMetadata:
    """One traversed dimension of a sparse tensor: DENSE (``dense_size``) or SPARSE_CSR (segments, indices)."""

    dense: bool
    dense_size: int
    segments: tuple[int, ...] | None
    indices: tuple[int, ...] | None


@dataclass(frozen=True)
class Sparsity:
    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dims: tuple[DimensionMetadata, ...]


def check_call_graph(calls: list[list[int]], fail: Callable[[str], None]) -> None:
    """``calls[s]`` lists the subgraphs subgraph ``s``'s control-flow ops call; no cycle, no deep nesting."""
    for s, targets in enumerate(calls):
        for t in targets:
            if not 0 <= t < len(calls):
                fail(f"subgraph {s} calls subgraph {t}, which does not exist")
    state = [0] * len(calls)  # 0 unvisited, 1 on the current path, 2 done

    def visit(s: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            fail(f"control flow nests deeper than {MAX_DEPTH} subgraphs")
        state[s] = 1
        for t in calls[s]:
            if state[t] == 1:
                fail(f"subgraph {s} calls subgraph {t}, which is itself or one of its callers (endless recursion)")
            if state[t] == 0:
                visit(t, depth + 1)
        state[s] = 2
    for s in range(len(calls)):
        if state[s] == 0:
            visit(s, 0)


def check_sparsity(name: str, shape: tuple[int, ...], itemsize: int, stored_bytes: int, sparsity: Sparsity,
                   fail: Callable[[str], None]) -> None:
    """Walks the sparse format the way the interpreter densifies it, and checks it against the shape."""
    rank, order, blocks = len(shape), sparsity.traversal_order, sparsity.block_map
    if sorted(order) != list(range(len(order))) or len(order) != rank + len(blocks):
        fail(f"tensor {name} traversal_order {list(order)} is not a permutation of {rank} + {len(blocks)} dimensions")
    if len(set(blocks)) != len(blocks) or any(not 0 <= b < rank for b in blocks):
        fail(f"tensor {name} block_map {list(blocks)} names dimensions outside 0..{rank - 1} or twice")
    if len(sparsity.dims) != len(order):
        fail(f"tensor {name} has {len(sparsity.dims)} dim_metadata for {len(order)} traversed dimensions")
    sizes = _dimension_sizes(name, shape, sparsity, fail)
    count = 1
    for position, dim in enumerate(sparsity.dims):
        size = sizes[order[position]]
        count = _walk_dimension(name, position, dim, size, count, fail)
        if count > 1 << 28:
            fail(f"tensor {name} sparse format describes over 2^28 values")
    if itemsize and stored_bytes and count * itemsize != stored_bytes:
        fail(f"tensor {name} sparse format describes {count} values but its buffer holds {stored_bytes} bytes")


def _dimension_sizes(name: str, shape, sparsity: Sparsity, fail) -> list[int]:
    """Size of every traversed dimension: original dimensions divided by their block, then the blocks."""
    rank, sizes = len(shape), list(shape)
    for k, b in enumerate(sparsity.block_map):
        block = sparsity.dims[rank + k].dense_size if rank + k < len(sparsity.dims) else 0
        if block < 1 or shape[b] % block:
            fail(f"tensor {name} block of {block} does not divide dimension {b} of size {shape[b]}")
        sizes[b] = shape[b] // block
        sizes.append(block)
    return sizes


def _walk_dimension(name: str, position: int, dim: DimensionMetadata, size: int, count: int, fail) -> int:
    """The number of stored entries after this dimension, given ``count`` before it."""
    if dim.dense:
        if dim.dense_size != size:
            fail(f"tensor {name} dimension {position} is dense with size {dim.dense_size}, expected {size}")
        return count * size
    segments, indices = dim.segments, dim.indices
    if segments is None or indices is None:
        fail(f"tensor {name} dimension {position} is sparse without array_segments and array_indices")
        return 0
    if len(segments) != count + 1 or segments[0] != 0 or any(a > b for a, b in zip(segments, segments[1:])):
        fail(f"tensor {name} dimension {position} array_segments are not {count + 1} non-decreasing offsets from 0")
    if segments[-1] != len(indices) or any(not 0 <= i < size for i in indices):
        fail(f"tensor {name} dimension {position} array_indices do not fit {segments[-1]} entries in 0..{size - 1}")
    return len(indices)


def check_detection_options(op_index: int, options: bytes, input_shapes: list[tuple[int, ...]],
                            fail: Callable[[str], None]) -> None:
    """``TFLite_Detection_PostProcess`` reads these fields from a flexbuffer without checking them."""
    where = f"operator {op_index} ({DETECTION_POSTPROCESS})"
    if not options:
        fail(f"{where} has no custom options")
    fields = _flexbuffer_map(options, where, fail)
    for key, (low, high) in DETECTION_FIELDS.items():
        value = fields.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
                not low <= value <= high:
            fail(f"{where} option {key} is {value!r}, not a number in {low}..{high}")
    for key, (low, high) in DETECTION_OPTIONAL.items():
        value = fields.get(key, low)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            fail(f"{where} option {key} is {value!r}, not a number in {low}..{high}")
    rows = int(fields["max_detections"]) * int(fields["max_classes_per_detection"])
    if rows > MAX_DETECTION_ROWS:
        fail(f"{where} options ask for {rows} output rows (max_detections x max_classes_per_detection), over "
             f"{MAX_DETECTION_ROWS}")
    if len(input_shapes) != 3:
        fail(f"{where} takes boxes, scores and anchors; it has {len(input_shapes)} inputs")
    boxes, scores, anchors = input_shapes
    n = anchors[0] if len(anchors) == 2 and anchors[1] == 4 else -1
    if len(boxes) != 3 or boxes[1] != n or boxes[2] < 4 or len(scores) != 3 or scores[1] != n or \
            scores[2] < int(fields["num_classes"]):
        fail(f"{where} inputs {[list(s) for s in input_shapes]} do not fit {n} anchors and "
             f"{int(fields['num_classes'])} classes")


def _flexbuffer_map(data: bytes, where: str, fail) -> dict:
    try:
        from flatbuffers import flexbuffers
        value = flexbuffers.Loads(bytes(data))
    except ImportError:
        fail(f"{where}: checking its options needs the flatbuffers package (pip install flatbuffers)")
    except Exception:  # noqa: BLE001 - a malformed flexbuffer raises anything from IndexError to struct.error
        fail(f"{where} custom options are not a readable flexbuffer")
    if not isinstance(value, dict):
        fail(f"{where} custom options are not a flexbuffer map")
    return value
