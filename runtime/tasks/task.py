"""Task objects beyond classification: ``Detector``, ``Embedder`` and ``RawModel`` (every output by name),
and ``load()``, which picks the task from the record, the caller, or the model's outputs.

Each task object owns a validated ``Model`` and a ``Preprocessor`` built from the record's input spec
(or the caller's overrides), as ``Classifier`` does; results are copies, safe to keep.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgelite.runtime.errors import InputError, ModelError
from edgelite.runtime.interpreter.model import Model
from edgelite.runtime.modelfile.input_spec import InputSpec
from edgelite.runtime.modelfile.metadata import derive_input_spec, read_metadata
from edgelite.runtime.tasks import decoders
from edgelite.runtime.tasks import detection as det
from edgelite.runtime.tasks.postprocess import Class, dequantize
from edgelite.runtime.tasks.preprocess import (
    InputQuantization,
    Preprocessor,
    as_image,
    center_box,
    describe,
    letterbox_box,
)
from edgelite.runtime.tasks.task_options import TaskOptions


@dataclass(frozen=True)
class Detection:
    """One object: its box in pixels of the original image (xmin, ymin, xmax, ymax), score, label, keypoints."""

    box: tuple[float, float, float, float]
    score: float
    label_id: int
    label: str | None
    keypoints: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict:
        return {"box": [round(v, 2) for v in self.box], "score": self.score, "label": self.label,
                "label_id": self.label_id, "keypoints": [[round(x, 2), round(y, 2)] for x, y in self.keypoints]}


@dataclass(frozen=True)
class TaskResult:
    """What a task object returns for one image: one shape for every task (classes, detections, an embedding
    or named outputs), so a folder, a stream or a cluster handles them all alike."""

    source: str
    task: str
    delegate: str
    timings_ms: dict
    detections: tuple[Detection, ...] = ()
    embedding: np.ndarray | None = None
    outputs: dict | None = None
    classes: tuple[Class, ...] = ()

    @property
    def top(self) -> Class | None:
        """A classifier's best class (None for other tasks)."""
        return self.classes[0] if self.classes else None

    def to_dict(self) -> dict:
        data = {"source": self.source, "task": self.task, "delegate": self.delegate, "timings_ms": self.timings_ms}
        if self.task == "classify":
            data["classes"] = [c.to_dict() for c in self.classes]
        if self.task == "detect":
            data["detections"] = [d.to_dict() for d in self.detections]
        if self.embedding is not None:
            data["embedding"] = [float(v) for v in self.embedding]
        if self.outputs is not None:
            data["outputs"] = {k: v.tolist() for k, v in self.outputs.items()}
        return data


def rescaled(result: TaskResult, sx: float, sy: float) -> TaskResult:
    """``result`` with its boxes and keypoints scaled by (sx, sy): from a frame the decoder scaled back to the
    source's pixels."""
    if not result.detections:
        return result
    scaled = tuple(dataclasses.replace(
        d, box=(d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy),
        keypoints=tuple((x * sx, y * sy) for x, y in d.keypoints)) for d in result.detections)
    return dataclasses.replace(result, detections=scaled)


class Task:
    """A model, its input spec and preprocessing; subclasses decide what the outputs mean (``finish``)."""

    task = "raw"
    assumed_task: str | None = None  # set by ``load`` when it guessed the task from the outputs' shapes alone

    def __init__(self, path, *, options: TaskOptions | None = None, **given: Any):
        """``options`` (a TaskOptions), or its fields as keywords (delegate, threads, backend, fallback, trust,
        fast, labels, mean, std, resize, color); an unknown keyword is an InputError."""
        self.options = o = TaskOptions.of(options, **given)
        self.model = Model(path, **o.run_options())
        self._check_io()
        self.metadata = read_metadata(self.model.file)
        self.fast = o.fast
        self._use_spec(self._spec(o.spec_overrides()))
        labels = o.labels
        self.labels = tuple(labels) if labels is not None and not isinstance(labels, (str, os.PathLike)) else \
            (read_labels(labels) if labels is not None else self.metadata.labels)

    def _check_io(self) -> None:
        """Refuses a model this task cannot feed or read (a subclass's rules), before anything else."""

    def _use_spec(self, spec: InputSpec) -> None:
        """Preprocessing for ``spec``, onto this model's input tensor (its type and quantization)."""
        info = self.model.inputs[0]
        self.input_spec = spec
        self._preprocess = Preprocessor(spec, InputQuantization(info.dtype, info.scale, info.zero_point),
                                        fast=self.fast)

    def _spec(self, overrides: dict) -> InputSpec:
        if len(self.model.inputs) != 1:
            raise ModelError(f"{self.model.path}: has {len(self.model.inputs)} inputs; edgelite feeds one image")
        tensor = self.model.file.main.tensors[self.model.inputs[0].index]
        spec = self.metadata.input or derive_input_spec(tensor)
        try:
            spec = spec.replace(**overrides)
        except (TypeError, ValueError) as exc:
            raise InputError(f"invalid preprocessing override: {exc}") from None
        shape = tuple(self.model.inputs[0].shape[1:])
        if len(shape) == 3 and (spec.height, spec.width, spec.channels) != shape:
            raise ModelError(f"{self.model.path}: the embedded spec says {spec.height}x{spec.width}x{spec.channels} "
                             f"but the input tensor is {'x'.join(map(str, shape))}")
        return spec

    @property
    def delegate(self):
        return self.model.delegate

    @property
    def path(self) -> str:
        return self.model.path

    post_stage = "postprocess"   # the timing name of what follows the invoke

    def warm_up(self) -> None:
        """One untimed run of the whole task on a small blank PNG: the first invoke sets up the delegate's kernels
        and the first decode loads pillow's plugins, each many times a later image's cost, so per-image times
        reported after this are what each image costs."""
        import io

        from PIL import Image
        blank = io.BytesIO()
        Image.new("RGB", (16, 16)).save(blank, "PNG")
        self.run(blank.getvalue())

    def prepare(self, image, stages: dict | None = None) -> tuple[tuple[int, int], np.ndarray]:
        """The image's size once EXIF-oriented (boxes map back onto it) and its input tensor."""
        placed = self._preprocess.placed(image, stages=stages)  # a frame already sized for the input: numpy alone
        if placed is not None:
            return (image.shape[1], image.shape[0]), placed
        t0 = time.perf_counter()
        pil = as_image(image)  # opening may decode already (a PNG's EXIF can sit after its pixels): count it
        if stages is not None:
            stages["decode"] = stages.get("decode", 0.0) + (time.perf_counter() - t0) * 1e3
        return pil.size, self._preprocess(pil, stages=stages, name=describe(image))

    def dequantized(self, raw: list[np.ndarray]) -> list[np.ndarray]:
        return [dequantize(r, o.scale, o.zero_point) if o.quantized else r.astype(np.float32)
                for r, o in zip(raw, self.model.outputs)]

    def finish(self, raw: list[np.ndarray], size: tuple[int, int]) -> dict:
        """What the task makes of the raw outputs: TaskResult's fields (here every output by name)."""
        return {"outputs": {o.name: v for o, v in zip(self.model.outputs, self.dequantized(raw))}}

    def run(self, image, **options) -> TaskResult:
        """Preprocess, invoke and the task's own post-processing (``finish``, given ``options``), each timed."""
        t0 = time.perf_counter()
        prepared = self.prepare(image)
        return self.run_prepared(image, prepared, (time.perf_counter() - t0) * 1e3, **options)

    def run_prepared(self, image, prepared: tuple[tuple[int, int], np.ndarray], preprocess_ms: float,
                     **options) -> TaskResult:
        """``run`` from the output of ``prepare`` (which ``run_many`` calls on other threads)."""
        size, tensor = prepared
        t1 = time.perf_counter()
        raw = self.model.run(tensor)
        t2 = time.perf_counter()
        fields = self.finish(raw, size, **options)
        timings = {"preprocess": preprocess_ms, "invoke": (t2 - t1) * 1e3,
                   self.post_stage: (time.perf_counter() - t2) * 1e3}
        return TaskResult(describe(image), self.task, self.delegate.actual, timings, **fields)

    def run_many(self, images: Sequence, workers: int | None = None, **options):
        """``run`` on each image in order, yielding (image, TaskResult or the InputError it raised); images are
        preprocessed a few ahead on other cores while this thread runs the interpreter."""
        from edgelite.runtime.tasks.ahead import run_ahead
        return run_ahead(list(images), self.prepare,
                         lambda image, prepared, ms: self.run_prepared(image, prepared, ms, **options), workers)


class RawModel(Task):
    """Any image model: every output by name, dequantized."""


class Embedder(Task):
    """An embedding model: one vector per image, L2-normalised unless ``normalize=False``."""

    task = "embed"

    def finish(self, raw: list[np.ndarray], size: tuple[int, int], normalize: bool = True) -> dict:
        vector = self.dequantized(raw)[0].reshape(-1)
        if normalize:
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return {"embedding": vector}

    def embed(self, image, normalize: bool = True) -> TaskResult:
        """The image's vector, L2-normalised unless ``normalize=False``."""
        return self.run(image, normalize=normalize)

    @staticmethod
    def cosine(a, b) -> float:
        a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
        return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


class Detector(Task):
    """Boxes, scores, labels and keypoints in pixels of the original image, decoded as the decoder says."""

    task = "detect"

    def __init__(self, path, *, decoder=None, **options):
        super().__init__(path, **options)
        source = decoder if decoder is not None else (self.metadata.parsed.decoder if self.metadata.parsed else None)
        self.postprocess = _postprocess_positions(self.model) if source is None else None
        if self.postprocess is not None:  # the model decodes itself (TFLite_Detection_PostProcess)
            self.decoder, self.anchors = None, None
            return
        if source is None:
            raise InputError(f"{self.model.path}: detection needs a decoder: give --decoder FILE (MediaPipe's option "
                             "names) or convert the model with one")
        embedded = decoder is None
        self.decoder = decoders.read(source, self.model.path if embedded else None)
        spec = self.decoder.sections.get("image_to_tensor")
        if spec is not None:
            self._use_spec(_spec_from_image_to_tensor(self.input_spec, spec))
        decoders.check_fit(self.decoder, [o.shape for o in self.model.outputs],
                           f"{self.model.path}: the decoder in its edgelite record" if embedded else
                           (describe(decoder) if isinstance(decoder, (str, os.PathLike)) else "decoder"),
                           ModelError if embedded else InputError)
        self.anchors = det.ssd_anchors(self.decoder) if self.decoder.kind == "ssd" else None

    post_stage = "boxes+nms"

    def finish(self, raw: list[np.ndarray], size: tuple[int, int]) -> dict:
        values = self.dequantized(raw)
        if self.postprocess is not None:
            found = _postprocessed(values, self.postprocess)
        else:
            assert self.decoder is not None  # noqa: S101 - __init__ sets one or the other
            found = det.detections(values, self.decoder, self.anchors, (self.input_spec.width, self.input_spec.height))
        boxes, keypoints = _to_pixels(found, self.input_spec, size)
        return {"detections": tuple(
            Detection((float(b[0]), float(b[1]), float(b[2]), float(b[3])), float(s), int(c), self._label(int(c)),
                      tuple((float(x), float(y)) for x, y in k))
            for b, s, c, k in zip(boxes, found.scores, found.classes, keypoints))}

    def detect(self, image) -> TaskResult:
        return self.run(image)

    def _label(self, index: int) -> str | None:
        return self.labels[index] if self.labels and 0 <= index < len(self.labels) else None


def _postprocess_positions(model: Model) -> tuple[int, int, int, int] | None:
    """Where the boxes, classes, scores and count of a TFLite_Detection_PostProcess op sit among the outputs."""
    op = next((o for o in model.file.main.operators if o.custom_code == "TFLite_Detection_PostProcess"), None)
    if op is None or len(op.outputs) != 4:
        return None
    positions = {o.index: i for i, o in enumerate(model.outputs)}
    if not all(t in positions for t in op.outputs):
        return None
    boxes, classes, scores, count = (positions[t] for t in op.outputs)
    return boxes, classes, scores, count


def _postprocessed(values: list[np.ndarray], positions: tuple[int, int, int, int]) -> det.RawDetections:
    """The op's outputs: boxes (ymin, xmin, ymax, xmax, normalized), class indices, scores and a count."""
    boxes, classes, scores, count = (values[p] for p in positions)
    n = max(0, min(int(count.reshape(-1)[0]), boxes.shape[1]))
    ymin, xmin, ymax, xmax = boxes[0, :n].T
    return det.RawDetections(np.stack([xmin, ymin, xmax, ymax], -1), scores[0, :n].astype(np.float32),
                             classes[0, :n].astype(np.int64), np.zeros((n, 0, 2), np.float32))


def _spec_from_image_to_tensor(spec: InputSpec, options: dict) -> InputSpec:
    """MediaPipe's ImageToTensorCalculator options: keep_aspect_ratio is a letterbox, output_tensor_float_range
    maps 0..255 onto [min, max]."""
    changes: dict = {}
    if options.get("keep_aspect_ratio"):
        changes["resize"] = "letterbox"
    span = options.get("output_tensor_float_range")
    if span:
        std = 255.0 / (span["max"] - span["min"])
        changes.update(mean=(-span["min"] * std,), std=(std,))
    return spec.replace(**changes)


def _to_pixels(found: det.RawDetections, spec: InputSpec, size: tuple[int, int]):
    """Normalized input-tensor coordinates -> pixels of the original image, undoing letterbox or crop."""
    width, height = size
    xs = np.concatenate([found.boxes[:, [0, 2]], found.keypoints[..., 0]], axis=1)
    ys = np.concatenate([found.boxes[:, [1, 3]], found.keypoints[..., 1]], axis=1)
    if spec.resize == "letterbox":
        pad_x, pad_y, inner_w, inner_h = letterbox_box(width, height, spec)
        xs = (xs * spec.width - pad_x) * width / inner_w
        ys = (ys * spec.height - pad_y) * height / inner_h
    elif spec.resize == "center-crop":
        left, top, right, bottom = center_box(width, height, spec.width / spec.height)
        xs, ys = left + xs * (right - left), top + ys * (bottom - top)
    else:
        xs, ys = xs * width, ys * height
    boxes = np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], -1)
    keypoints = np.stack([xs[:, 2:], ys[:, 2:]], -1)
    return boxes, keypoints


def read_labels(path) -> tuple[str, ...]:
    """One label per line; blank lines ignored."""
    try:
        with open(path, encoding="utf-8") as fh:
            return tuple(line.strip() for line in fh if line.strip())
    except OSError as exc:
        raise InputError(f"{path}: cannot read labels ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: labels file is not UTF-8 text") from None
