"""The one-call API: load a classifier, give it images, get labelled classes.

Thread safety: one ``Classifier`` may be shared by many threads. Decoding and resizing run
in the calling thread (pillow releases the GIL), so threads overlap there; the interpreter
itself runs one invoke at a time under the model's lock. For parallel inference, give
each thread its own Classifier (each holds its own interpreter).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from edgelite.runtime.errors import InputError, ModelError
from edgelite.runtime.interpreter.model import Model
from edgelite.runtime.tasks.postprocess import Class, dequantize, output_is_probability, softmax, top_k
from edgelite.runtime.tasks.preprocess import describe
from edgelite.runtime.tasks.task import Task, TaskResult
from edgelite.runtime.tasks.task_options import TaskOptions


def _check_classifier_io(model: Model):
    """Refuses models the classifier cannot feed, saying which tensor is the problem."""
    if len(model.inputs) != 1:
        raise ModelError(f"{model.path}: has {len(model.inputs)} inputs; an image classifier takes one image input")
    if len(model.outputs) != 1:
        raise ModelError(f"{model.path}: has {len(model.outputs)} outputs; an image classifier has one score output")
    tensor = model.inputs[0]
    scales = model.file.main.tensors[tensor.index].scales
    if len(scales) > 1:
        raise ModelError(f"{model.path}: input {tensor.name!r} is quantized per channel ({len(scales)} scales); "
                         "edgelite feeds inputs quantized per tensor or float")
    if len(tensor.shape) != 4 or tensor.shape[3] not in (1, 3):
        raise ModelError(f"{model.path}: input {tensor.name!r} has shape {list(tensor.shape)}; the classifier "
                         "feeds [batch, height, width, 1 or 3 channels] images")
    if tensor.dtype.kind not in "fiu":
        raise ModelError(f"{model.path}: input {tensor.name!r} is {tensor.dtype.name}; the classifier feeds "
                         "float, uint8, int8 or int16 inputs")
    if not tensor.quantized and tensor.dtype.kind != "f":
        raise ModelError(f"{model.path}: input {tensor.name!r} is {tensor.dtype.name} without quantization "
                         "parameters, so pixels cannot be mapped onto it")


class Classifier(Task):
    """An image classifier on a TFLite model, a task object like ``Detector``: ``run(image)`` (or its friendly
    name ``classify``) returns a ``TaskResult`` carrying the classes. See the module docstring for threads."""

    task = "classify"

    def __init__(self, path, *, options: TaskOptions | None = None, **given: Any):
        super().__init__(path, options=options, **given)
        self.labels = self._checked_labels(self.options.labels)
        self.output_kind = self.metadata.output or (
            "probabilities" if output_is_probability(self.model.file.main, self.model.outputs[0].index) else "logits")

    def _check_io(self) -> None:
        _check_classifier_io(self.model)

    def _checked_labels(self, given) -> tuple[str, ...] | None:
        n_classes = self.model.outputs[0].shape[-1]
        if self.labels and len(self.labels) != n_classes:
            if given is None:
                raise ModelError(f"{self.model.path}: the embedded edgelite record field 'labels' has "
                                 f"{len(self.labels)} labels for a model with {n_classes} classes")
            raise InputError(f"{describe(given) if not isinstance(given, (list, tuple)) else 'labels'}: "
                             f"{len(self.labels)} labels for a model with {n_classes} classes")
        return tuple(str(x) for x in self.labels) if self.labels else self.labels

    # -- inference -------------------------------------------------------------------------------
    def preprocess(self, image, stages: dict | None = None) -> np.ndarray:
        """One image as the [1, H, W, C] input tensor; ``stages`` collects decode/resize/quantize milliseconds."""
        return self._preprocess(image, stages=stages)

    def run_tensor(self, array: np.ndarray) -> np.ndarray:
        """Runs a ready input tensor (from ``preprocess``); returns a copy of the raw output tensor."""
        return self.model.run(array)[0]

    def scores(self, output: np.ndarray) -> np.ndarray:
        """Class probabilities from a raw output tensor (dequantized; softmax if logits)."""
        info = self.model.outputs[0]
        values = dequantize(output, info.scale, info.zero_point) if info.quantized else output.astype(np.float32)
        return softmax(values) if self.output_kind == "logits" else values

    def finish(self, raw: list[np.ndarray], size: tuple[int, int], top_k: int = 5) -> dict:
        return {"classes": tuple(self.top_classes(raw[0], top_k))}

    def classify(self, image, top_k: int = 5) -> TaskResult:
        """The image's ``top_k`` classes, best first (``run`` under its friendly name)."""
        return self.run(image, top_k=top_k)

    def top_classes(self, output: np.ndarray, k: int) -> list[Class]:
        return top_k(self.scores(output)[0], k, self.labels)

    def classify_batch(self, images: Iterable, top_k: int = 5) -> list[TaskResult]:
        return [self.classify(image, top_k) for image in images]


__all__ = ["Classifier"]
