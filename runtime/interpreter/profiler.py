"""Measures a model on this machine: load, first invoke, latency distribution, stages, memory.

Every figure is measured here with ``time.perf_counter_ns`` and the process's own RSS; none
is estimated. Several models and thread counts give one comparison report. With
``isolate=True`` each configuration runs in a fresh interpreter process so its memory
figures are its own (peak RSS never goes down within a process).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgelite.runtime.errors import EdgeliteError, InputError
from edgelite.runtime.interpreter.memory import current_rss, peak_rss
from edgelite.runtime.interpreter.model import Model

PREPROCESS_STAGES = ("decode", "resize", "quantize")  # as runtime.preprocess times them


@dataclass(frozen=True)
class Stats:
    """Latency distribution in milliseconds."""

    min: float
    median: float
    mean: float
    p90: float
    p99: float
    std: float
    n: int

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Stats:
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(float(ms.min()), float(p50), float(ms.mean()), float(p90), float(p99), float(ms.std()), int(ms.size))


@dataclass(frozen=True)
class ProfileResult:
    """One model at one thread count."""

    model: str
    model_size_bytes: int
    backend: str
    backend_version: str
    delegate: dict
    threads: int | None
    runs: int
    warmup: int
    load_ms: float           # the model: read, validate, interpreter, delegate, tensors
    first_invoke_ms: float
    latency_ms: Stats
    throughput_ips: float
    stages_ms: dict | None
    input: str
    rss_before_load_bytes: int | None
    rss_added_by_load_bytes: int | None
    peak_rss_bytes: int | None
    isolated: bool = False
    start_ms: float = 0.0    # before the load: the backend's import (once per process) and a sandboxed first load

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ProfileResult:
        data = dict(data)
        data["latency_ms"] = Stats(**data["latency_ms"])
        if data.get("stages_ms"):
            data["stages_ms"] = {k: Stats(**v) for k, v in data["stages_ms"].items()}
        return cls(**data)


@dataclass(frozen=True)
class ProfileReport:
    results: tuple[ProfileResult, ...]
    errors: tuple[dict, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"results": [r.to_dict() for r in self.results], "errors": list(self.errors)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _random_input(info, rng: np.random.Generator) -> np.ndarray:
    """Inputs of the right dtype and shape when no image is given."""
    if np.issubdtype(info.dtype, np.integer):
        limits = np.iinfo(info.dtype)
        return rng.integers(limits.min, limits.max, size=info.shape, endpoint=True).astype(info.dtype)
    if info.dtype == np.bool_:
        return rng.integers(0, 2, size=info.shape).astype(bool)
    return rng.random(info.shape).astype(info.dtype)


class _Schedule:
    """Runs for a count, or until a duration has passed (at least one run either way)."""

    def __init__(self, runs: int, duration_s: float | None):
        self.runs, self.duration_s = runs, duration_s

    def __iter__(self):
        if self.duration_s is None:
            yield from range(self.runs)
            return
        end = time.perf_counter() + self.duration_s
        i = 0
        while i == 0 or time.perf_counter() < end:
            yield i
            i += 1


def _time_runs(step: Callable[[int], object], warmup: int, schedule: _Schedule) -> list[int]:
    for i in range(warmup):
        step(i)
    clock = time.perf_counter_ns
    samples = []
    for i in schedule:
        t0 = clock()
        step(i)
        samples.append(clock() - t0)
    return samples


def _profile_tensors(model: Model, warmup: int, schedule: _Schedule) -> tuple[float, list[int], None]:
    rng = np.random.default_rng(0)
    inputs = [_random_input(info, rng) for info in model.inputs]
    run = model.run
    t0 = time.perf_counter_ns()
    run(*inputs)
    first = (time.perf_counter_ns() - t0) / 1e6
    return first, _time_runs(lambda _: run(*inputs), warmup, schedule), None


def _stages_of(task) -> tuple[Callable, Callable, str]:
    """(prepare(image, stages) -> (size, tensor), finish(raw, size), the post-processing stage's name)."""
    return task.prepare, task.finish, task.post_stage


def _profile_images(task, images: Sequence, warmup: int, schedule: _Schedule):
    """End to end on real images, each stage timed: decode, resize, quantize, invoke, the task's post-processing."""
    prepare, finish, post = _stages_of(task)
    run, clock = task.model.run, time.perf_counter_ns
    t0 = clock()
    size, tensor = prepare(images[0], None)
    finish(run(tensor), size)
    first = (clock() - t0) / 1e6
    stage_ms: dict[str, list[float]] = {s: [] for s in (*PREPROCESS_STAGES, "invoke", post)}

    def step(i: int):
        stages: dict[str, float] = {}
        size, tensor = prepare(images[i % len(images)], stages)
        b = clock()
        raw = run(tensor)
        c = clock()
        finish(raw, size)
        d = clock()
        for name in PREPROCESS_STAGES:
            stage_ms[name].append(stages.get(name, 0.0))
        stage_ms["invoke"].append((c - b) / 1e6)
        stage_ms[post].append((d - c) / 1e6)

    samples = _time_runs(step, warmup, schedule)
    stages = {s: Stats.of([int(v * 1e6) for v in values[warmup:]]) for s, values in stage_ms.items()}
    return first, samples, stages


def profile_one(model_path, *, threads: int | None = None, delegate: str = "auto", runs: int = 100,
                warmup: int = 10, duration_s: float | None = None, images: Sequence | None = None,
                backend=None, fallback: bool = False, task: str | None = None, decoder=None) -> ProfileResult:
    """Profiles one model at one thread count in this process; with ``images``, end to end as its task
    (``task``/``decoder`` as for ``edgelite.load``)."""
    if runs < 1 or warmup < 0:
        raise InputError(f"runs must be >= 1 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    schedule = _Schedule(runs, duration_s)
    rss0 = current_rss()
    if images:
        from edgelite.runtime.tasks.loading import load
        loaded = load(model_path, delegate=delegate, threads=threads, backend=backend, fallback=fallback, task=task,
                      decoder=decoder)
        model = loaded.model
        rss1 = current_rss()
        first, samples, stages = _profile_images(loaded, list(images), warmup, schedule)
        source = ", ".join(os.path.basename(os.fspath(i)) if isinstance(i, (str, os.PathLike)) else type(i).__name__
                           for i in images[:3]) + (" ..." if len(images) > 3 else "")
    else:
        model = Model(model_path, delegate=delegate, threads=threads, backend=backend, fallback=fallback)
        rss1 = current_rss()
        first, samples, stages = _profile_tensors(model, warmup, schedule)
        source = "random tensors of the input dtype"
    latency = Stats.of(samples)
    return ProfileResult(
        model=model.path, model_size_bytes=model.size, backend=model.backend.name,
        backend_version=model.backend.version, delegate=model.delegate.to_dict(), threads=threads,
        runs=len(samples), warmup=warmup, load_ms=model.load_ms, first_invoke_ms=first, latency_ms=latency,
        throughput_ips=1e3 / latency.mean if latency.mean else 0.0, stages_ms=stages, input=source,
        rss_before_load_bytes=rss0, rss_added_by_load_bytes=(rss1 - rss0) if rss0 and rss1 else None,
        peak_rss_bytes=peak_rss(), start_ms=model.start_ms)


def _profile_isolated(model_path, threads, options: dict) -> ProfileResult:
    """profile_one in a fresh Python process, so memory figures belong to this model alone."""
    args = {"model": os.fspath(model_path), "threads": threads, **options}
    proc = subprocess.run([sys.executable, "-m", "edgelite.runtime.interpreter.profiler", json.dumps(args)],
                          capture_output=True, text=True, check=False, timeout=3600)
    lines = proc.stdout.strip().splitlines()
    reply = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    if reply is None:
        raise EdgeliteError(f"{model_path}: profiling process failed (exit {proc.returncode}): "
                            + " ".join(proc.stderr.split())[-300:])
    if "error" in reply:
        raise EdgeliteError(reply["error"])
    return ProfileResult.from_dict({**reply, "isolated": True})


def profile(models: str | os.PathLike | Sequence[str | os.PathLike], *, threads: Sequence[int | None] = (None,),
            isolate: bool | None = None, progress: Callable[[str], None] | None = None,
            **options: Any) -> ProfileReport:
    """Profiles every model at every thread count; one report, failures listed per configuration.

    Args:
      models: a .tflite path, or several.
      threads: thread counts to compare (None: the backend's default).
      isolate: each configuration in its own process, so memory figures are its own; None (the
        default, also the CLI's) isolates when more than one configuration is compared.
      progress: called with a short description before each configuration.
      **options: for ``profile_one``: delegate, runs, warmup, duration_s, images, backend, fallback.
    Returns:
      A ProfileReport: one ProfileResult per configuration that ran, and one error row per one that failed.
    """
    models = [models] if isinstance(models, (str, os.PathLike)) else list(models)
    if isolate is None:
        isolate = len(models) * len(threads) > 1
    results, errors = [], []
    for path in models:
        for n in threads:
            if progress:
                progress(f"{os.fspath(path)} threads={n or 'default'}")
            try:
                if isolate:
                    iso_options = {k: ([os.fspath(i) for i in v] if k == "images" and v else v)
                                   for k, v in options.items()}
                    results.append(_profile_isolated(path, n, iso_options))
                else:
                    results.append(profile_one(path, threads=n, **options))
            except EdgeliteError as exc:
                errors.append({"model": os.fspath(path), "threads": n, "error": str(exc)})
    return ProfileReport(tuple(results), tuple(errors))


def _worker(argv: list[str]) -> int:
    """Entry for isolated profiling: JSON options in argv[0], one JSON line out."""
    args = json.loads(argv[0])
    try:
        result = profile_one(args.pop("model"), **args)
        print(json.dumps(result.to_dict()))
    except EdgeliteError as exc:
        print(json.dumps({"error": str(exc)}))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
