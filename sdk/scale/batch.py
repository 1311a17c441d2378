"""Batch prediction on a Ray cluster (``edgelite predict MODEL DIR --ray ADDRESS``), through Ray Data.

Each worker is a Ray Data actor that loads the model once (the sandboxed first load included: a hostile
model crashes a sandbox child on the worker, never the worker) and then runs its task on every image of
the batches it is given. The model's bytes go to the object store once; each image's bytes travel with
its row, so no node needs this machine's files. A bad image is an error line carrying its source, never
a failed job. Results come back in the order of the images given, so ``--jsonl`` output is the same as a
local ``predict`` (timings aside).

The driver reads the images and hands them to Ray Data in blocks; Ray keeps what does not fit in memory
spilled to disk. For archives already on shared storage, a reader on the workers would avoid the copy
(not built: the tool assumes no shared filesystem).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

from edgelite.runtime.errors import EdgeliteError
from edgelite.runtime.modelfile.files import (
    DEFAULT_IMAGE_LIMIT,
    DEFAULT_MODEL_LIMIT,
    IMAGE_LIMIT_ENV,
    MODEL_LIMIT_ENV,
    limit_from_env,
    read_regular,
)

BATCH = 16                       # images per Ray Data batch: large enough to amortize, small for even spread


class Predictor:
    """A Ray Data callable class: one model per worker, ``task.run`` on each image's bytes; with a reference
    model, both on each image, giving ``edgelite.runtime.tasks.compare.Pair`` instead (``predict --compare``)."""

    def __init__(self, model_ref, load_options: dict, run_options: dict, reference_ref=None):
        import tempfile

        import ray

        from edgelite.runtime.tasks.loading import load
        # Loaded from files, not from bytes (which the runtime trusts): the sandboxed first load runs on this node.
        self._folder = tempfile.TemporaryDirectory(prefix="edgelite-worker-")

        def loaded(ref, name: str):
            data = ray.get(ref) if isinstance(ref, ray.ObjectRef) else ref
            path = f"{self._folder.name}/{name}.tflite"
            with open(path, "wb") as fh:
                fh.write(bytes(data))
            return load(path, **load_options)
        self.task = loaded(model_ref, "model")
        self.reference = loaded(reference_ref, "reference") if reference_ref is not None else None
        self.run_options = run_options

    def __call__(self, batch: dict) -> dict:
        import numpy as np
        outcomes = np.empty(len(batch["index"]), dtype=object)
        outcomes[:] = [self._one(str(source), image) for source, image in zip(batch["source"], batch["image"])]
        return {"index": batch["index"], "outcome": outcomes}

    def _one(self, source: str, image):
        """The TaskResult (its source the image's path) or the EdgeliteError the image raised."""
        if image is None or len(image) == 0:
            return None  # read failed on the driver, which keeps its error
        try:
            if self.reference is not None:
                from edgelite.runtime.tasks.compare import pair
                return dataclasses.replace(pair(self.task, self.reference, bytes(image), self.run_options),
                                           source=source)
            return dataclasses.replace(self.task.run(bytes(image), **self.run_options), source=source)
        except EdgeliteError as exc:
            return type(exc)(str(exc).replace(f"<{len(image)} bytes>", source, 1))  # the name a path would give


def _read(paths: Sequence[str]) -> tuple[list[dict], dict[int, Exception]]:
    """Rows for Ray Data, and the error of each image that could not be read here."""
    from edgelite.runtime.errors import InputError
    image_limit = limit_from_env(IMAGE_LIMIT_ENV, DEFAULT_IMAGE_LIMIT)  # the local predict's bound, declared there
    rows: list[dict] = []
    failed: dict[int, Exception] = {}
    for i, path in enumerate(paths):
        try:
            data = read_regular(path, "an image", image_limit, InputError)
        except InputError as exc:
            failed[i], data = exc, b""
        rows.append({"index": i, "source": path, "image": data})
    return rows, failed


def predict_on_ray(model: str, images: Sequence[str], *, workers: int | None, load_options: dict,
                   run_options: dict, on_event: Callable[[dict], None] | None = None,
                   reference: str | None = None) -> Iterator[tuple]:
    """Yields (image, TaskResult or the EdgeliteError it raised) for every image, in order, as ``run_many``
    does locally; with ``reference`` (a second model file), a ``compare.Pair`` of both models instead of the
    TaskResult. Runs inside ``cluster.connect``; ``workers`` Ray Data actors of one CPU each (default: the
    cluster's CPUs)."""
    import logging

    import ray
    from ray.data import ActorPoolStrategy, DataContext

    from edgelite.runtime.errors import ModelError
    context = DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)   # not a line per dataset run on the user's terminal
    # nor Ray Data's notice that its progress bars are off (turned off above: edgelite counts the images itself)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    model_limit = limit_from_env(MODEL_LIMIT_ENV, DEFAULT_MODEL_LIMIT)
    data = read_regular(model, "a model", model_limit, ModelError)
    other = ray.put(read_regular(reference, "a model", model_limit, ModelError)) if reference else None
    rows, failed = _read(images)
    size = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    # A block per BATCH images, at least one per worker (else Ray warns that workers will idle), at most 4 each.
    blocks = max(1, min(len(rows), max(size, min(len(rows) // BATCH, 4 * size))))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    results = dataset.map_batches(Predictor, batch_size=BATCH, num_cpus=1, compute=ActorPoolStrategy(size=size),
                                  fn_constructor_args=(ray.put(data), load_options, run_options, other),
                                  batch_format="numpy")
    for row in results.iter_rows():
        index = int(row["index"])
        outcome = failed.get(index) or row["outcome"]
        if on_event:
            on_event({"event": "finished", "status": "failed" if isinstance(outcome, Exception) else "ok"})
        yield images[index], outcome


__all__ = ["predict_on_ray"]
