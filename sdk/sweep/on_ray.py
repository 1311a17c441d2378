"""A sweep's conversions and fine-tunes as Ray tasks, side by side on a cluster (``edgelite sweep --ray``).

Each variant is one task with its resource request (one CPU; a GPU for the fine-tuned variants when
the cluster has one). The model and the data folders travel as one zip through the object store
(nothing assumes a shared filesystem); the task converts into a temporary folder on its node and
returns the .tflite bytes and the result, which the driver keeps in the sweep's folder under the
variant's key (``cache.variant_key``), exactly as a local sweep does: a sweep killed and run again,
locally or on Ray, converts only what is missing.

A task whose worker dies mid-variant is retried by Ray (``max_retries``); the attempts are counted by
a small actor and reported. A variant that fails for its own reasons (a ConversionError) is not
retried: it is reported in its row and the others finish. Latency is never timed on the cluster,
where other variants are converting beside it; the sweep times each built variant afterwards, here
or on the ``--remote`` device, with nothing else of its own running.
"""
from __future__ import annotations

import io
import os
import pathlib
import time
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

from edgelite.runtime.errors import EdgeliteError
from edgelite.sweep.cache import PATH_OPTIONS, cached, keep

RETRIES = 2   # a worker that dies mid-variant (killed, out of memory, node lost) is retried this many times
FINE_TUNED = ("prune",)


def _shipped_paths(model, options: dict) -> dict:
    return {"model": model, **{k: options[k] for k in PATH_OPTIONS
                               if isinstance(options.get(k), (str, os.PathLike)) and os.path.exists(options[k])}}


def bundle_options(model, options: dict) -> dict:
    """The options with every shipped path replaced by its name in the bundle ('@calibration')."""
    names = _shipped_paths(model, options)
    model_name = pathlib.Path(model).name if pathlib.Path(model).is_file() else ""
    return {"@model": model_name, **{k: ("@" + k if k in names else v) for k, v in options.items()}}


def bundle(model, options: dict) -> tuple[bytes, dict]:
    """One zip of the model and every file or folder the options name, and the options rewritten to its names."""
    buffer = io.BytesIO()
    names = _shipped_paths(model, options)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for key, path in names.items():
            path = pathlib.Path(path)
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for f in files:
                inner = key + "/" + (path.name if f == path else f.relative_to(path).as_posix())
                archive.write(f, inner)
    return buffer.getvalue(), bundle_options(model, options)


def _unpacked(data: bytes, options: dict, folder: str) -> tuple[str, dict]:
    """The model's path and the options with '@name' placeholders made paths in ``folder``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
    model_name = options.pop("@model")
    model = os.path.join(folder, "model", model_name) if model_name else os.path.join(folder, "model")
    real = {}
    for key, value in options.items():
        if isinstance(value, str) and value.startswith("@"):
            inner = os.path.join(folder, value[1:])
            entries = os.listdir(inner)
            single = len(entries) == 1 and os.path.isfile(os.path.join(inner, entries[0])) and key in ("labels",
                                                                                                         "decoder")
            value = os.path.join(inner, entries[0]) if single else inner
        real[key] = value
    return model, real


def build_remotely(name: str, data, options: dict, attempts) -> tuple[bytes, dict, str, float]:
    """On a worker: unpack, convert, return (.tflite bytes, the result, the node that built it, seconds)."""
    import ray
    ray.get(attempts.started.remote(name))  # counted first: a worker killed during TensorFlow's import still counts
    import tempfile

    from edgelite.converters import convert
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgelite-variant-") as folder:
        model, real = _unpacked(bytes(data), dict(options), folder)
        out = os.path.join(folder, f"{name}.tflite")
        result = convert(model, output=out, **real).to_dict()
        with open(result["output"], "rb") as fh:
            return fh.read(), result, ray.util.get_node_ip_address(), time.perf_counter() - t0


class Attempts:
    """A Ray actor counting how often each variant's task started (a retry starts it again)."""

    def __init__(self):
        self.counts: dict[str, int] = {}

    def started(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def all(self) -> dict[str, int]:
        return dict(self.counts)


def build_on_ray(model, jobs: Sequence[tuple[str, dict]], folder: pathlib.Path, cluster,
                 on_event: Callable[[dict], None] | None = None) -> dict[str, tuple[dict | None, dict]]:
    """Builds every (variant, options) not already in ``folder``; returns name -> (result or None, facts), where
    facts say reused, built_on, build_s, attempts and error. Runs inside ``cluster.connect``."""
    import ray
    emit = on_event or (lambda event: None)
    out: dict[str, tuple[dict | None, dict]] = {}
    attempts: Any = ray.remote(num_cpus=0)(Attempts).remote()
    pending = _submit(model, jobs, folder, cluster, attempts, out, emit)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        name, key = pending.pop(done[0])
        out[name] = _collect(done[0], name, key, folder)
        emit({"event": "finished", "variant": name, "status": "failed" if out[name][0] is None else "ok"})
    counts: dict = ray.get(attempts.all.remote())
    for name, (_, facts) in out.items():
        if not facts.get("reused"):
            facts["attempts"] = counts.get(name, 1)
            if facts["attempts"] > 1:
                emit({"event": "retried", "variant": name})
    return out


def _submit(model, jobs, folder: pathlib.Path, cluster, attempts, out: dict, emit) -> dict:
    """One task per variant not built before (those are put in ``out`` as reused); {task ref: (name, key)}."""
    import ray
    task = ray.remote(build_remotely)
    shipped: dict[tuple, object] = {}
    pending = {}
    for name, options in jobs:
        key, saved = cached(folder, name, model, options)
        if saved is not None:
            out[name] = (saved, {"reused": True, "built_on": "earlier run", "attempts": 0})
            emit({"event": "finished", "variant": name, "status": "ok", "reused": True})
            continue
        paths = tuple(str(options.get(k)) for k in PATH_OPTIONS)
        if paths not in shipped:   # variants with the same data share one copy in the object store
            shipped[paths] = ray.put(bundle(model, options)[0])
        gpus = 1 if cluster.gpus and any(options.get(k) for k in FINE_TUNED) else 0
        ref = task.options(num_cpus=1, num_gpus=gpus, max_retries=RETRIES, retry_exceptions=False,
                           name=f"edgelite-variant-{name}").remote(name, shipped[paths], bundle_options(model, options),
                                                                   attempts)
        pending[ref] = (name, key)
        emit({"event": "started", "variant": name})
    return pending


def _collect(ref, name: str, key: str, folder: pathlib.Path) -> tuple[dict | None, dict]:
    """A finished task's variant, kept in ``folder`` at once (so a sweep killed after this point keeps it)."""
    import ray

    from edgelite.converters.output.writing import atomic_write
    facts: dict = {"reused": False}
    try:
        data, result, node, seconds = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - a variant's own failure or Ray's; either is its row's error
        facts["error"] = _cause(exc)
        return None, facts
    path = folder / f"{name}.tflite"
    atomic_write(path, data)
    result["output"] = str(path)
    keep(folder, name, key, result)
    facts["built_on"], facts["build_s"] = f"ray:{node}", seconds
    return result, facts


def _cause(exc: BaseException) -> str:
    """The variant's own error (the ConversionError inside Ray's wrapper), or what Ray says happened."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, EdgeliteError):
        return str(cause)
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


__all__ = ["build_on_ray", "bundle"]
