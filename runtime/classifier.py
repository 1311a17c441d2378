"""The one-call API: load a classifier, give it images, get labelled classes.

Thread safety: one ``Classifier`` may be shared by many threads. Decoding and resizing run
in the calling thread (pillow releases the GIL), so threads overlap there; the interpreter
itself runs one invoke at a time under the model's lock. For parallel inference, give
each thread its own Classifier (each holds its own interpreter).
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputError, ModelError
from .metadata import InputSpec, Metadata, derive_input_spec, read_metadata
from .model import DelegateInfo, Model
from .postprocess import Class, dequantize, output_is_probability, softmax, top_k
from .preprocess import InputQuantization, Preprocessor, describe


@dataclass(frozen=True)
class Classification:
    """Classes for one image, which delegate produced them, and what each stage cost."""

    source: str
    classes: tuple[Class, ...]
    delegate: str
    timings_ms: dict

    @property
    def top(self) -> Class | None:
        return self.classes[0] if self.classes else None

    def to_dict(self) -> dict:
        return {"source": self.source, "classes": [c.to_dict() for c in self.classes],
                "delegate": self.delegate, "timings_ms": self.timings_ms}


def read_labels(path) -> tuple[str, ...]:
    """One label per line; blank lines ignored."""
    try:
        with open(path, encoding="utf-8") as fh:
            return tuple(line.strip() for line in fh if line.strip())
    except OSError as exc:
        raise InputError(f"{path}: cannot read labels ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: labels file is not UTF-8 text") from None


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


class Classifier:
    """An image classifier on a TFLite model; see the module docstring for thread safety."""

    def __init__(self, path, *, delegate: str = "auto", threads: int | None = None, backend=None,
                 fallback: bool = False, fast: bool = True, labels=None, mean=None, std=None,
                 resize: str | None = None, color: str | None = None, trust: bool | None = None):
        self.model = Model(path, delegate=delegate, threads=threads, backend=backend, fallback=fallback, trust=trust)
        _check_classifier_io(self.model)
        self.metadata: Metadata = read_metadata(self.model.file)
        self.input_spec = self._spec(mean=mean, std=std, resize=resize, color=color)
        self.labels = self._labels(labels)
        info = self.model.inputs[0]
        self._preprocess = Preprocessor(self.input_spec, InputQuantization(info.dtype, info.scale, info.zero_point),
                                        fast=fast)
        self.output_kind = self.metadata.output or (
            "probabilities" if output_is_probability(self.model.file.main, self.model.outputs[0].index) else "logits")

    # -- construction helpers --------------------------------------------------------------------
    def _spec(self, **overrides) -> InputSpec:
        tensor = self.model.file.main.tensors[self.model.inputs[0].index]
        spec = self.metadata.input or derive_input_spec(tensor)
        try:
            spec = spec.replace(**overrides)
        except (TypeError, ValueError) as exc:
            raise InputError(f"invalid preprocessing override: {exc}") from None
        shape = self.model.inputs[0].shape[1:]
        if (spec.height, spec.width, spec.channels) != tuple(shape):
            raise ModelError(f"{self.model.path}: the embedded spec says {spec.height}x{spec.width}x{spec.channels} "
                             f"but the input tensor is {'x'.join(map(str, shape))}")
        return spec

    def _labels(self, labels) -> tuple[str, ...] | None:
        if labels is None:
            found = self.metadata.labels
        elif isinstance(labels, (str, os.PathLike)):
            found = read_labels(labels)
        else:
            found = tuple(str(x) for x in labels)
        n_classes = self.model.outputs[0].shape[-1]
        if found and len(found) != n_classes:
            if labels is None:
                raise ModelError(f"{self.model.path}: the embedded edgelite record field 'labels' has {len(found)} "
                                 f"labels for a model with {n_classes} classes")
            raise InputError(f"{describe(labels) if not isinstance(labels, (list, tuple)) else 'labels'}: "
                             f"{len(found)} labels for a model with {n_classes} classes")
        return found

    # -- properties ------------------------------------------------------------------------------
    @property
    def delegate(self) -> DelegateInfo:
        return self.model.delegate

    @property
    def path(self) -> str:
        return self.model.path

    # -- inference -------------------------------------------------------------------------------
    def preprocess(self, image, stages: dict | None = None) -> np.ndarray:
        """One image as the [1, H, W, C] input tensor; ``stages`` collects decode/resize/quantize milliseconds."""
        return self._preprocess(image, stages=stages)

    def run(self, array: np.ndarray) -> np.ndarray:
        """Runs a ready input tensor; returns a copy of the raw output tensor."""
        return self.model.run(array)[0]

    def scores(self, output: np.ndarray) -> np.ndarray:
        """Class probabilities from a raw output tensor (dequantized; softmax if logits)."""
        info = self.model.outputs[0]
        values = dequantize(output, info.scale, info.zero_point) if info.quantized else output.astype(np.float32)
        return softmax(values) if self.output_kind == "logits" else values

    def classify(self, image, top_k: int = 5) -> Classification:
        t0 = time.perf_counter()
        tensor = self._preprocess(image)
        return self.classify_tensor(tensor, describe(image), top_k, (time.perf_counter() - t0) * 1e3)

    def classify_tensor(self, tensor: np.ndarray, source: str, top_k: int, preprocess_ms: float) -> Classification:
        """Classifies a ready input tensor (from ``preprocess``)."""
        t1 = time.perf_counter()
        output = self.model.run(tensor)[0]
        t2 = time.perf_counter()
        classes = self.top_classes(output, top_k)
        timings = {"preprocess": preprocess_ms, "invoke": (t2 - t1) * 1e3,
                   "postprocess": (time.perf_counter() - t2) * 1e3}
        return Classification(source, tuple(classes), self.delegate.actual, timings)

    def top_classes(self, output: np.ndarray, k: int) -> list[Class]:
        return top_k(self.scores(output)[0], k, self.labels)

    def classify_batch(self, images: Iterable, top_k: int = 5) -> list[Classification]:
        return [self.classify(image, top_k) for image in images]


def load(path, delegate: str = "auto", threads: int | None = None, **options) -> Classifier:
    """Loads a .tflite image classifier; needs no TensorFlow.

    Args:
      path: the .tflite file (validated before any interpreter sees it).
      delegate: auto, cpu, xnnpack, gpu, edgetpu[:usb:N|:pci:N] or external:PATH; the result says what ran.
      threads: interpreter threads (None: the backend's default).
      **options: backend, fallback, fast, labels, mean, std, resize, color (see ``Classifier``).
    Returns:
      A Classifier, safe to share between threads.
    Raises:
      ModelError: the file is not a valid model, or its embedded record is invalid.
      DelegateError: the delegate asked for cannot load (and ``fallback`` is off).
      BackendUnavailableError: no TFLite backend is installed.
    """
    return Classifier(path, delegate=delegate, threads=threads, **options)


def classify_many(classifier: Classifier, images: Sequence, top_k: int = 5, workers: int | None = None):
    """Classifies each image in order, yielding (image, Classification or the InputError it raised); images are
    preprocessed a few ahead on other cores while this thread runs the interpreter (``ahead.run_ahead``)."""
    from .ahead import run_ahead
    return run_ahead(list(images), classifier.preprocess,
                     lambda image, tensor, ms: classifier.classify_tensor(tensor, describe(image), top_k, ms), workers)
