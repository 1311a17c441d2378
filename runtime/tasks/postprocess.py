"""From an output tensor to classes: dequantize, softmax where needed, top-k with labels."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from edgelite.runtime.modelfile.tflite_file import (
    OP_DEQUANTIZE,
    OP_LOGISTIC,
    OP_QUANTIZE,
    OP_RESHAPE,
    OP_SOFTMAX,
    SubgraphDesc,
)

_PASS_THROUGH = {OP_DEQUANTIZE, OP_QUANTIZE, OP_RESHAPE}


class Class(NamedTuple):
    """One predicted class (pycoral's shape, plus the label)."""

    id: int
    score: float
    label: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "score": self.score}


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Real values of a quantized tensor; int64 so uint8/int8 minus zero point cannot wrap."""
    if not scale:
        return values.astype(np.float32, copy=False)
    return (scale * (values.astype(np.int64) - zero_point)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def output_is_probability(graph: SubgraphDesc, output_index: int) -> bool:
    """Whether the graph ends in SOFTMAX/LOGISTIC (looking through (de)quantize and reshape)."""
    tensor = output_index
    for _ in range(8):
        op = graph.producer(tensor)
        if op is None:
            return False
        if op.builtin_code in (OP_SOFTMAX, OP_LOGISTIC):
            return True
        if op.builtin_code not in _PASS_THROUGH or not op.inputs:
            return False
        tensor = op.inputs[0]
    return False


def top_k(scores: np.ndarray, k: int, labels: Sequence[str] | None = None) -> list[Class]:
    """The k best classes of a 1-D score vector, best first (ties: lower id first)."""
    scores = np.asarray(scores).reshape(-1)
    k = max(0, min(int(k), scores.size))
    if k == 0:
        return []
    order = np.argsort(-scores, kind="stable")[:k]
    label = (lambda i: labels[i] if i < len(labels) else None) if labels else (lambda i: None)
    return [Class(int(i), float(scores[i]), label(int(i))) for i in order]
