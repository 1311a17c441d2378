"""How many weights are really zero in a .tflite file, read back from its weight buffers.

Pruning is only worth what survives conversion: quantization can turn zeros into non-zeros
(an asymmetric zero point) and a converter can fold or densify tensors. This module looks
at the bytes the device will load, per layer and overall.
"""
from __future__ import annotations

import numpy as np

from edgelite.runtime.modelfile.tflite_file import (
    OP_CONV_2D,
    OP_DEPTHWISE_CONV_2D,
    OP_DEQUANTIZE,
    OP_FULLY_CONNECTED,
    TENSOR_TYPES_BY_NAME,
    ModelFile,
)

WEIGHT_INPUT = {OP_CONV_2D: ("CONV_2D", 1), OP_DEPTHWISE_CONV_2D: ("DEPTHWISE_CONV_2D", 1),
                OP_FULLY_CONNECTED: ("FULLY_CONNECTED", 1)}
_NUMPY = {"float32": np.float32, "float16": np.float16, "int8": np.int8, "uint8": np.uint8, "int16": np.int16,
          "int32": np.int32}


def _constant(model: ModelFile, data: bytes, tensor_index: int):
    """The weight tensor behind an op input (through a DEQUANTIZE of fp16/sparse weights), if constant."""
    graph = model.main
    tensor = graph.tensors[tensor_index]
    if not model.buffer_sizes[tensor.buffer]:
        producer = graph.producer(tensor_index)
        if producer is None or producer.builtin_code != OP_DEQUANTIZE or not producer.inputs:
            return None
        tensor = graph.tensors[producer.inputs[0]]
    start, length = model.buffer_spans[tensor.buffer]
    if not length or tensor.dtype not in _NUMPY:
        return None
    return tensor, np.frombuffer(data, dtype=_NUMPY[tensor.dtype], count=length // TENSOR_TYPES_BY_NAME[tensor.dtype],
                                 offset=start)


def _zero_count(tensor, values: np.ndarray) -> tuple[int, int]:
    """(zeros, total). A zero weight is one that dequantizes to 0.0: its zero point, per channel."""
    total = int(np.prod(tensor.shape))
    if tensor.sparse:  # sparse encoding stores the non-zeros only (plus block padding)
        return total - int(np.count_nonzero(values)), total
    if len(tensor.zero_points) > 1 and len(tensor.shape) > tensor.quantized_dimension:
        shape = [1] * len(tensor.shape)
        shape[tensor.quantized_dimension] = -1
        zeros = np.asarray(tensor.zero_points).reshape(shape)
        return int(np.count_nonzero(values.reshape(tensor.shape) == zeros)), total
    zero = tensor.zero_points[0] if tensor.zero_points else 0
    return int(np.count_nonzero(values == zero)), total


def weight_sparsity(model: ModelFile, data: bytes) -> dict:
    """Per conv/dense layer and overall: the fraction of weights that are zero in the file."""
    layers, zeros_all, total_all = [], 0, 0
    for op in model.main.operators:
        if op.builtin_code not in WEIGHT_INPUT or len(op.inputs) <= 1:
            continue
        kind, slot = WEIGHT_INPUT[op.builtin_code]
        found = _constant(model, data, op.inputs[slot])
        if found is None:
            continue
        tensor, values = found
        zeros, total = _zero_count(tensor, values)
        layers.append({"op": kind, "tensor": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype,
                       "encoding": "sparse" if tensor.sparse else "dense", "zeros": zeros, "total": total,
                       "sparsity": zeros / total if total else 0.0})
        zeros_all += zeros
        total_all += total
    return {"overall": zeros_all / total_all if total_all else 0.0, "weights": total_all, "layers": layers}
