"""`edgelite sweep`: build the variants, verify and profile each, and say which one to ship.

Each variant is an edgelite.convert call with its own options, verified on the same eval
images, then profiled per thread count in a fresh process (or on a device over SSH) so its
memory figures are its own. Built variants are kept with the key they were built from (the
source file's sha256 and the options), so an interrupted sweep resumes where it stopped.
A variant that fails is reported in its row; the sweep goes on.
"""
from __future__ import annotations

import gzip
import os
import pathlib
import time
from dataclasses import dataclass, field

from edgelite.converters.errors import ConversionError
from edgelite.runtime.errors import EdgeliteError
from edgelite.sweep.cache import cached, keep

VARIANTS: dict[str, dict[str, object]] = {
    "fp32": {"quantize": "none"},
    "fp16": {"quantize": "fp16"},
    "dynamic": {"quantize": "dynamic"},
    "int8": {"quantize": "int8"},
    "int8-per-tensor": {"quantize": "int8", "per_tensor": True},
    "prune50-int8": {"quantize": "int8", "prune": 0.5},
    "prune75-int8": {"quantize": "int8", "prune": 0.75},
}
NEEDS_TRAIN_DATA = ("prune50-int8", "prune75-int8")
NO_RECOVERY = 1e9  # a sweep measures each variant as named; recovery would turn int8 into a mix


@dataclass
class Row:
    variant: str
    threads: int | None = None
    file_bytes: int | None = None
    gzip_bytes: int | None = None
    top1: float | None = None
    float_top1: float | None = None
    drop_points: float | None = None
    agreement: float | None = None
    task: str | None = None
    quality: float | None = None      # the task's own figure (pareto.QUALITY): a fraction, or dB for raw outputs
    snr_db: float | None = None       # the worst output's SNR, as convert's --min-output-snr budget holds it
    median_ms: float | None = None
    p90_ms: float | None = None
    first_invoke_ms: float | None = None
    peak_rss_bytes: int | None = None
    delegate: str | None = None
    where: str = "local"              # where latency was timed: here, or the device over SSH
    built_on: str | None = None       # local, ray:<node address>, or "earlier run" (reused)
    attempts: int = 1                 # how often its build started (a Ray retry after a worker died adds one)
    build_s: float | None = None      # seconds its conversion (and fine-tune) took where it was built
    reused: bool = False
    pareto: bool = False
    error: str | None = None

    @property
    def measured(self) -> bool:
        return self.error is None and self.median_ms is not None


@dataclass
class SweepReport:
    rows: list[Row]
    recommendation: dict
    budgets: dict
    source: str
    output_dir: str
    files: dict = field(default_factory=dict)
    made: dict = field(default_factory=dict)   # edgelite, date, machine: environment.provenance()

    def to_dict(self) -> dict:
        from dataclasses import asdict
        return {"source": self.source, "output_dir": self.output_dir, "budgets": self.budgets,
                "recommendation": self.recommendation, "rows": [asdict(r) for r in self.rows], "files": self.files,
                "made": self.made}


def _build(name: str, model, folder: pathlib.Path, options: dict, reporter) -> tuple[dict, bool]:
    """Converts one variant here, or reuses it when the same source, options and data built it before."""
    from edgelite.converters import convert
    key, saved = cached(folder, name, model, options)
    if saved is not None:
        return saved, True
    result = convert(model, output=folder / f"{name}.tflite", reporter=reporter, **options).to_dict()
    keep(folder, name, key, result)
    return result, False


def _profile(path: str, threads, runs: int, warmup: int, remote):
    from edgelite.runtime.interpreter.profiler import profile
    if remote is not None:
        return remote.profile(path, threads=threads, runs=runs, warmup=warmup)
    report = profile([path], threads=[threads], isolate=True, runs=runs, warmup=warmup)
    if report.errors:
        raise EdgeliteError(report.errors[0]["error"])
    return report.results[0]


def _quality(v: dict) -> dict:
    """The task and the figure a sweep ranks it by: top-1 (or agreement), neighbour agreement, matched
    detections, or for raw outputs the worst output's SNR (None when identical: the record holds no infinity)."""
    task = v.get("task", "classify")
    snr = v.get("snr_db")
    total = [o["original_snr_db"] for o in v.get("outputs", ()) if "original_snr_db" in o]
    if total and task == "raw":  # pruned raw outputs: against the original model, as convert's budget holds them
        snr = None if any(t is None for t in total) else min(total)
    top1 = v.get("tflite_top1")
    quality = snr if task == "raw" else (top1 if top1 is not None else v.get("agreement"))
    drop = None if task == "raw" else v.get("drop_points")  # raw outputs have no task metric to lose
    return {"task": task, "quality": quality, "snr_db": snr, "drop_points": drop}


def _rows_for(name: str, built: dict, facts: dict, threads_list, runs: int, warmup: int, remote) -> list[Row]:
    v = built.get("verification") or {}
    path = built["output"]
    base = dict(variant=name, file_bytes=built["output_size_bytes"],
                gzip_bytes=len(gzip.compress(pathlib.Path(path).read_bytes(), 9)), top1=v.get("tflite_top1"),
                float_top1=v.get("float_top1"), agreement=v.get("agreement"), reused=facts["reused"],
                built_on=facts.get("built_on"), attempts=facts.get("attempts", 1), build_s=facts.get("build_s"),
                where=remote.target if remote else "local", **_quality(v))
    rows = []
    for threads in threads_list:
        row = Row(threads=threads, **base)
        try:
            r = _profile(path, threads, runs, warmup, remote)
            row.median_ms, row.p90_ms = r.latency_ms.median, r.latency_ms.p90
            row.first_invoke_ms, row.peak_rss_bytes, row.delegate = r.first_invoke_ms, r.peak_rss_bytes, \
                r.delegate["actual"]
        except EdgeliteError as exc:
            row.error = f"profiling failed: {exc}"
        rows.append(row)
    return rows


def check_eval_classes(eval_data, n_classes: int, labels) -> None:
    """Class folders must match the model (count, and names when labels are given), or every figure in the
    report would be nonsense; images without class folders are ranked by agreement with the float model."""
    from edgelite.converters.images import scan
    if eval_data is None:
        return
    found = scan(eval_data, "eval-data").class_names
    if not found:
        return
    if len(found) != n_classes:
        raise ConversionError(f"{eval_data}: {len(found)} class folders, but the model has {n_classes} outputs")
    if labels is not None and list(labels) != list(found):
        raise ConversionError(f"{eval_data}: its classes {found[:5]} do not match the model's labels "
                              f"{list(labels)[:5]}; rename the class folders or give matching --labels")


def _variant_names(variants, train_data) -> list[str]:
    names = list(variants or [n for n in VARIANTS if n not in NEEDS_TRAIN_DATA or train_data is not None])
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ConversionError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if any(n in NEEDS_TRAIN_DATA for n in names) and train_data is None:
        raise ConversionError("the prune variants fine-tune on images: give --train-data DIR")
    return names


def _check_task(model, eval_data, options: dict) -> None:
    """A classifier is ranked by top-1 on labelled images, so the model and the class folders must agree;
    any other task by its own metric (``pareto.QUALITY``) on any images."""
    from edgelite.converters.user_model import load_model
    from edgelite.runtime.tasks.task import read_labels
    labels, task = options.get("labels"), options.get("task")
    if isinstance(labels, (str, os.PathLike)):
        labels = read_labels(labels)
    n_classes = load_model(model, options.get("input_shape"), options.get("custom_objects")).n_classes
    chosen = task or ("detect" if options.get("decoder") is not None else "classify" if n_classes else "raw")
    if chosen == "classify" and n_classes is not None:
        check_eval_classes(eval_data, n_classes, labels)


def _build_all(model, jobs, folder: pathlib.Path, reporter, ray_address, on_event) -> dict:
    """name -> (result or None, facts): here one after another, or side by side on a Ray cluster."""
    if ray_address:
        from edgelite.scale.cluster import connect
        from edgelite.sweep.on_ray import build_on_ray
        with connect(ray_address) as cluster:
            return build_on_ray(model, jobs, folder, cluster, on_event)
    built: dict[str, tuple[dict | None, dict]] = {}
    for name, options in jobs:
        if on_event:
            on_event({"event": "started", "variant": name})
        t0 = time.perf_counter()
        try:
            result, reused = _build(name, model, folder, options, reporter)
            built[name] = (result, {"reused": reused, "built_on": "earlier run" if reused else "local",
                                    "attempts": 0 if reused else 1, "build_s": time.perf_counter() - t0})
        except EdgeliteError as exc:
            built[name] = (None, {"error": str(exc), "built_on": "local", "attempts": 1})
        if on_event:
            on_event({"event": "finished", "variant": name, "status": "failed" if built[name][0] is None else "ok"})
    return built


def sweep(model, *, calibration, output_dir, eval_data=None, variants=None, threads=(1,), train_data=None, epochs=3,
          runs: int = 100, warmup: int = 10, remote=None, budgets: dict | None = None, reporter=None,
          ray_address: str | None = None, on_event=None, **convert_options) -> SweepReport:
    """Builds, verifies and profiles the variants; writes the reports into ``output_dir``. Without ``eval_data``
    each variant is verified on calibration images held out, as ``convert`` does.

    With ``ray_address`` the variants are built as Ray tasks side by side (``sweep_ray``); latency is then timed
    here (or on ``remote``), one variant after another, once every build has finished."""
    from edgelite.cli import report as reports
    from edgelite.sweep import pareto
    names = _variant_names(variants, train_data)
    _check_task(model, eval_data, convert_options)
    if remote is not None:
        remote.check()
    out = pathlib.Path(output_dir)
    (out / "variants").mkdir(parents=True, exist_ok=True)
    common = {"calibration": calibration, "eval_data": eval_data, "max_accuracy_drop": NO_RECOVERY, "recover": False,
              "min_output_snr": -NO_RECOVERY, **convert_options}
    jobs = [(name, {**common, **VARIANTS[name],
                    **({"train_data": train_data, "epochs": epochs} if name in NEEDS_TRAIN_DATA else {})})
            for name in names]
    built = _build_all(model, jobs, out / "variants", reporter, ray_address, on_event)
    rows: list[Row] = []
    for name, _ in jobs:
        result, facts = built[name]
        if result is None:
            rows.append(Row(variant=name, error=f"conversion failed: {facts['error']}", built_on=facts.get("built_on"),
                            attempts=facts.get("attempts", 1)))
            continue
        rows.extend(_rows_for(name, result, facts, threads, runs, warmup, remote))
    pareto.mark(rows)
    budget = budgets or {}
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else getattr(model, "name", type(model).__name__)
    from edgelite.runtime.interpreter.environment import provenance
    report = SweepReport(rows, pareto.recommend(rows, budget), budget, source, str(out), made=provenance())
    report.files = reports.write_all(report, out)
    return report


__all__ = ["VARIANTS", "Row", "SweepReport", "sweep"]
