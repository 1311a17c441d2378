"""``load``: a model file in, the task object it asks for out (from its record, else from its outputs' shapes).

It sits above every task (``Classifier`` in classifier.py, the others in task.py), so none of them imports it.
"""
from __future__ import annotations

import os
from typing import Any

from edgelite.runtime.errors import InputError
from edgelite.runtime.interpreter.model import read_source
from edgelite.runtime.modelfile.metadata import read_metadata
from edgelite.runtime.modelfile.tflite_file import ModelFile, ReadModel
from edgelite.runtime.tasks.classifier import Classifier
from edgelite.runtime.tasks.task import Detector, Embedder, RawModel

TASKS = ("classify", "detect", "embed", "raw")
RECORD_TASKS = {"image-classification": "classify", "object-detection": "detect", "image-embedding": "embed",
                "raw": "raw"}


def _outline(file: ModelFile) -> tuple[list[tuple[int, ...]], int, str | None]:
    """Output shapes, input count and the record's task, read from the file (no interpreter needed)."""
    record = read_metadata(file).parsed
    graph = file.main
    task = record.task if record else ("object-detection" if "TFLite_Detection_PostProcess" in file.custom_ops
                                       else None)
    return [graph.tensors[i].shape for i in graph.outputs], len(graph.inputs), task


def infer_task(output_shapes: list[tuple[int, ...]], inputs: int, record_task: str | None) -> str:
    """The record's task, else a classifier for one [batch, classes] output, else raw outputs."""
    if record_task:
        return RECORD_TASKS.get(record_task, "raw")
    return "classify" if len(output_shapes) == 1 and len(output_shapes[0]) == 2 and inputs == 1 else "raw"


def load(path: str | os.PathLike | bytes, delegate: str | None = None, threads: int | None = None, *,
         task: str | None = None, decoder: str | os.PathLike | dict | None = None, **options: Any):
    """Loads a .tflite model as the task object it is; needs no TensorFlow. Never refuses a valid image model for
    not being a classifier: without a record, task or decoder, it returns a RawModel (``assumed_task`` says so).

    Args:
      path: the .tflite file (validated, and sandboxed on first load, before this process runs it).
      delegate: auto (the default), cpu, xnnpack, gpu, edgetpu[:usb:N|:pci:N] or external:PATH.
      threads: interpreter threads (default: the backend's).
      task: classify, detect, embed or raw; default from the record, else from the outputs.
      decoder: for detect: a decoder file, dict or Decoder (MediaPipe's option names); default the record's.
      **options: ``TaskOptions``' fields (backend, fallback, trust, fast, labels, mean, std, resize, color), or
        ``options=TaskOptions(...)``; an unknown one is an InputError.
    Returns:
      A Classifier, Detector, Embedder or RawModel.
    Raises:
      ModelError, InputError, DelegateError, BackendUnavailableError: one line each.
    """
    if task is not None and task not in TASKS:
        raise InputError(f"task {task!r} is not one of {', '.join(TASKS)}")
    chosen = task or ("detect" if decoder is not None else None)
    source: str | os.PathLike | bytes | ReadModel = path
    if chosen is None:
        data, file = read_source(path)
        source = path if isinstance(path, (bytes, bytearray, memoryview)) else ReadModel(data, file)
        chosen = infer_task(*_outline(file))
    kinds = {"classify": Classifier, "detect": Detector, "embed": Embedder, "raw": RawModel}
    extra: dict[str, Any] = {"decoder": decoder} if chosen == "detect" else {}
    given: dict[str, Any] = {name: value for name, value in (("delegate", delegate), ("threads", threads))
                             if value is not None}
    loaded = kinds[chosen](source, **given, **extra, **options)
    loaded.assumed_task = None if task is not None or decoder is not None else chosen
    return loaded
