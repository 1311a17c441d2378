"""Keras model -> verified .tflite with its record: the orchestration and nothing else."""
from __future__ import annotations

import dataclasses
import datetime
import os
import time
from dataclasses import dataclass, field

import numpy as np

from edgelite.runtime.classifier import read_labels
from edgelite.runtime.errors import ConversionError
from edgelite.runtime.metadata import SCHEMA_VERSION, InputSpec, embed_record
from edgelite.runtime.model import Model
from edgelite.runtime.sparsity import weight_sparsity
from edgelite.runtime.tflite_file import parse
from edgelite.runtime.version import __version__

from . import edgetpu, prune_finetune, pruning, recovery, standard_metadata, training, verify
from . import images as imgs
from .contract import resolve_input_spec
from .loading import LoadedModel, load_model
from .quantization import QuantizeOptions
from .quantization import convert as run_conversion
from .reporting import RecordingReporter, Reporter
from .tf import tensorflow
from .writing import atomic_write, check_writable, over_budget_name

TARGETS = ("xnnpack", "gpu", "edgetpu")
HELD_OUT = 100  # images kept out of calibration to verify on when no eval data is given


@dataclass(frozen=True)
class ConversionResult:
    """What was written and what it cost, measured."""

    output: str
    source: str
    within_budget: bool
    input_size_bytes: int | None
    output_size_bytes: int
    quantization: dict
    target: str
    verification: verify.Verification | None
    recovery: dict | None
    labels: list[str] | None
    input_spec: InputSpec
    seconds: dict
    warnings: list[str] = field(default_factory=list)
    pruning: dict | None = None
    weight_sparsity: dict | None = None
    compatibility: dict | None = None
    edgetpu: dict | None = None
    standard_metadata: dict | None = None

    def to_dict(self) -> dict:
        return {"output": self.output, "source": self.source, "within_budget": self.within_budget,
                "input_size_bytes": self.input_size_bytes, "output_size_bytes": self.output_size_bytes,
                "quantization": self.quantization, "target": self.target,
                "verification": self.verification.to_dict() if self.verification else None,
                "recovery": self.recovery, "labels": self.labels, "input_spec": self.input_spec.to_dict(),
                "seconds": self.seconds, "warnings": self.warnings, "pruning": self.pruning,
                "weight_sparsity": self.weight_sparsity, "compatibility": self.compatibility, "edgetpu": self.edgetpu,
                "standard_metadata": self.standard_metadata}


@dataclass
class _Data:
    calibration: np.ndarray | None = None
    eval_pixels: np.ndarray | None = None
    eval_labels: list[int] | None = None
    eval_source: str = ""
    class_names: list[str] | None = None


def _resolve_labels(labels, class_names: list[str] | None, n_classes: int) -> list[str] | None:
    found = list(read_labels(labels)) if isinstance(labels, (str, os.PathLike)) else (
        [str(x) for x in labels] if labels is not None else class_names)
    if found is not None and len(found) != n_classes:
        where = labels if isinstance(labels, (str, os.PathLike)) else "the class folders"
        raise ConversionError(f"{where}: {len(found)} labels for a model with {n_classes} outputs")
    return found


def _gather_data(spec: InputSpec, calibration, eval_data, count: int, seed: int, needs_calibration: bool,
                 reporter: Reporter) -> _Data:
    data = _Data()
    cal_set = imgs.scan(calibration, "calibration") if calibration is not None else None
    eval_set = imgs.scan(eval_data, "eval-data") if eval_data is not None else None
    if cal_set is None and needs_calibration:
        raise ConversionError("int8 quantization is calibrated on images: give --calibration DIR")
    data.class_names = imgs.class_names_from(eval_set, cal_set)
    held_out = None
    if cal_set is not None:
        chosen, rest = imgs.sample(cal_set, count, seed)
        data.calibration, _ = imgs.load(chosen, spec, reporter, "calibration images")
        held_out = rest.subset(range(min(HELD_OUT, len(rest))))
    if eval_set is not None:
        if eval_set.labels is None:
            reporter.warn(f"{eval_data}: no class subfolders, so top-1 cannot be measured; the drop is measured as "
                          "disagreement with the float model (put each class's images in a subfolder named for it)")
        data.eval_pixels, data.eval_labels = imgs.load(eval_set, spec, reporter, "eval images")
        data.eval_source = "eval-data"
    elif held_out is not None and len(held_out):
        data.eval_pixels, data.eval_labels = imgs.load(held_out, spec, reporter, "held-out images")
        data.eval_source = "held-out calibration images"
    elif data.calibration is not None:
        reporter.warn("no eval data and no calibration images left over: verifying on the calibration images")
        data.eval_pixels, data.eval_source = data.calibration, "calibration images (no held-out images left)"
    return data


def _record(loaded: LoadedModel, spec, labels, options: QuantizeOptions, target, verification, rec, model_bytes,
            settings: dict, prune_report: dict | None, sparsity: dict) -> dict:
    tf = tensorflow()
    return {
        "schema_version": SCHEMA_VERSION, "task": "image-classification", "input": spec.to_dict(),
        "labels": labels, "output": "probabilities" if verify.outputs_are_probabilities(model_bytes) else "logits",
        "target": target,
        "quantization": {"mode": options.mode, "io": options.io, "per_channel": options.per_channel,
                         "float_layers": rec["float_layers"] if rec else []},
        "verification": verification.to_dict() if verification else None,
        "pruning": prune_report, "weight_sparsity": {"overall": sparsity["overall"], "weights": sparsity["weights"]},
        "provenance": {"source": loaded.name, "source_sha256": loaded.sha256, "keras_flavor": loaded.flavor,
                       "edgelite": __version__, "tensorflow": tf.__version__, "options": settings,
                       "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
    }


def _pruning_cost(checked: verify.Verification, prune_report: dict | None) -> float | None:
    """Top-1 points lost by pruning alone (original float model vs pruned float model)."""
    if prune_report is None or prune_report.get("pruned_keras_top1") is None or checked.float_top1 is None:
        return None
    return 100.0 * (checked.float_top1 - prune_report["pruned_keras_top1"])


def _median_ms(model_bytes: bytes) -> float:
    """Median latency on this machine (XNNPACK, 1 thread, 50 runs): what recovery costs in speed."""
    from edgelite.runtime.profiler import profile_one
    return profile_one(model_bytes, threads=1, runs=50, warmup=5).latency_ms.median


def _recover(loaded, options, target, data: _Data, spec, budget: float, reporter: Reporter,
             first: verify.Verification, first_bytes: bytes, reference: LoadedModel):
    """Re-converts with the worst layers in float until within budget.

    Returns (model bytes, verification, report); the first two are None when nothing met the budget.
    """
    if target == "edgetpu" or options.mode != "int8":
        why = "the Edge TPU runs no float ops" if target == "edgetpu" else f"{options.mode} has no int8 layers to undo"
        return None, None, {"skipped": why, "float_layers": []}
    calibration = imgs.float_batch(data.calibration, spec)
    ranked = recovery.rank_layers(loaded, options, calibration)
    report = {"ranked_by": "QuantizationDebugger RMSE/scale", "attempts": [],
              "all_int8": {"drop_points": first.drop_points, "size_bytes": len(first_bytes),
                           "median_ms": _median_ms(first_bytes)}}
    for n in recovery.STEPS:
        if n >= len(ranked):  # all layers in float is no longer an int8 model
            break
        names = [r.tensor for r in ranked[:n]]
        try:
            candidate = recovery.convert_with_float_layers(loaded, options, calibration, names)
        except (ValueError, RuntimeError) as exc:
            report["attempts"].append({"float_layers": names, "error": " ".join(str(exc).split())[:200]})
            break
        check = verify.verify(reference, candidate, spec, data.eval_pixels, data.eval_labels, data.eval_source, reporter)
        report["attempts"].append({"float_layers": names, "drop_points": check.drop_points, "size_bytes": len(candidate),
                                   "median_ms": _median_ms(candidate)})
        if check.drop_points <= budget:
            report.update(float_layers=names, io="float32")
            reporter.warn(f"recovered accuracy by keeping {len(names)} layer(s) in float: {', '.join(names)}; "
                          f"inputs and outputs are float32")
            return candidate, check, report
    report["float_layers"] = []
    return None, None, report


TARGET_DEFAULT_QUANTIZE = {"xnnpack": "int8", "edgetpu": "int8", "gpu": "fp16"}


def _target_options(target: str, quantize: str | None, io: str | None) -> tuple[str, str]:
    """Quantization and I/O for the target: defaults filled in, conflicts refused (never rewritten)."""
    if target not in TARGETS:
        raise ConversionError(f"target {target!r} is not one of {', '.join(TARGETS)}")
    quantize = quantize or TARGET_DEFAULT_QUANTIZE[target]
    if target == "edgetpu" and quantize != "int8":
        raise ConversionError(f"the Edge TPU runs full-int8 models only; --quantize {quantize} cannot target it "
                              "(use --quantize int8)")
    if target == "edgetpu" and io == "float32":
        raise ConversionError("the Edge TPU needs int8 or uint8 inputs and outputs; --io float32 cannot target it "
                              "(use --io uint8, the Coral default, or --io int8)")
    if target == "gpu" and quantize not in ("fp16", "none"):
        raise ConversionError(f"--target gpu takes fp16 or none (float) models; --quantize {quantize} would run "
                              "dequantized on the GPU delegate at best (use --quantize fp16)")
    default_io = {"edgetpu": "uint8"}.get(target, "int8") if quantize == "int8" else "float32"
    return quantize, io or default_io


def _compatibility(target: str, model_bytes: bytes, name: str, rep: Reporter) -> dict | None:
    """The pre-flight placement for edgetpu and gpu targets, with a warning for what falls to the CPU."""
    from edgelite.runtime import compatibility as compat
    model = parse(model_bytes, name)
    if target == "edgetpu":
        placement = compat.edgetpu_placement(model)
        report = {"source": compat.EDGETPU_SOURCE, **compat.summarize(placement, target)}
    elif target == "gpu":
        placement, verdict = compat.gpu_placement(model, model_bytes)
        report = {"source": "TFLite model analyzer", "analyzer": verdict, **compat.summarize(placement, target)}
    else:
        return None
    first = report["first_cpu_op"]
    if first:
        rep.warn(f"{report['on_cpu']} of {report['ops']} ops will run on the CPU, not the {target}: first "
                 f"{first['op']} (#{first['index']}): {first['reason']}" + (f"; fix: {first['fix']}" if first["fix"]
                                                                               else ""))
    return report


def _compile_for_edgetpu(path, record_bytes_for, compiler_path, timeout: float, rep: Reporter) -> dict | None:
    """Compiles the written CPU model when a compiler is available; the CPU model stays either way."""
    compiler = edgetpu.find_compiler(compiler_path)
    if compiler is None:
        rep.warn(f"edgetpu_compiler not found: wrote the CPU int8 model and the pre-flight report; to compile, "
                 f"{edgetpu.INSTALL}")
        return {"compiled": False, "reason": "edgetpu_compiler not found", "install": edgetpu.INSTALL}
    compiled, report = edgetpu.compile_model(path, compiler, timeout)
    target = edgetpu.compiled_name(path)
    report.output = str(target)
    atomic_write(target, record_bytes_for(compiled, report.to_dict()))
    return {"compiled": True, **report.to_dict()}


def _check_sparse_encoding(loaded, options: QuantizeOptions, calibration, model_bytes: bytes, target: str,
                           reporter: Reporter) -> tuple[bytes, dict]:
    """The sparse-encoded model must load and run with the target's CPU delegate; else keep dense."""
    from edgelite.runtime.errors import EdgeliteError
    delegate = "xnnpack" if target == "xnnpack" else "auto"
    try:
        model = Model(model_bytes, delegate=delegate)
        model.run(*[np.zeros(i.shape, i.dtype) for i in model.inputs])
        return model_bytes, {"requested": True, "kept": True, "checked_with": model.delegate.actual}
    except EdgeliteError as exc:
        reason = str(exc)
    reporter.warn(f"sparse encoding does not run under {delegate}: {reason}; kept the dense encoding")
    dense = run_conversion(loaded, dataclasses.replace(options, sparse_encoding=False), calibration)
    return dense, {"requested": True, "kept": False, "reason": reason}


def _pruned(loaded, spec, prune_options, tune, train_data, quantize, seed, rep):
    """Runs pruning and adds XNNPACK's verdict on its sparse kernels to the report."""
    loaded, report, classes = prune_finetune.prune(loaded, prune_options, tune, train_data, spec, seed, rep)
    blockers = pruning.xnnpack_sparse_blockers(loaded.model, prune_options, quantize)
    report["xnnpack_sparse_kernels"] = {"eligible": not blockers, "blocked_by": blockers}
    if prune_options.policy == "xnnpack" and blockers:
        rep.warn("XNNPACK's sparse kernels will not speed this model up: " + "; ".join(blockers))
    return loaded, report, classes


def _sparsity_survived(report: dict | None, sparsity: dict, rep: Reporter):
    """Makes pruning that conversion undid visible."""
    if report is None:
        return
    before = report["keras_sparsity"]["overall"]
    pruned_weights = sum(layer["total"] for layer in report["keras_sparsity"]["layers"])
    after = sparsity["overall"] * sparsity["weights"] / pruned_weights if pruned_weights else 0.0
    report["tflite_sparsity_of_pruned_layers"] = min(after, 1.0)
    if after < before - 0.01:
        rep.warn(f"conversion undid pruning: {100 * before:.1f}% zeros in the Keras kernels, "
                 f"{100 * after:.1f}% in the .tflite")


@dataclass(frozen=True)
class ConvertOptions:
    """Everything ``convert`` takes besides the model; see the README for each option."""

    output: object
    calibration: object = None
    quantize: str | None = None
    io: str | None = None
    per_tensor: bool = False
    eval_data: object = None
    calibration_count: int = 200
    input_range: str | None = None
    mean: object = None
    std: object = None
    resize: str = "stretch"
    labels: object = None
    target: str = "xnnpack"
    max_accuracy_drop: float = 1.0
    allow_flex: bool = False
    seed: int = 0
    verification: bool = True
    prune: float | None = None
    prune_structure: str = "unstructured"
    prune_policy: str = "all"
    train_data: object = None
    epochs: int = 3
    augment: bool = False
    strategy: object = None
    learning_rate: float = 1e-3
    batch_size: int = 32
    sparse_encoding: bool = False
    compiler: str | None = None
    compiler_timeout: float = 180.0
    write_standard_metadata: bool = True

    def settings(self, quantize: str, io: str) -> dict:
        """What goes into the record's provenance (no paths, no objects)."""
        keys = ("per_tensor", "calibration_count", "input_range", "resize", "target", "max_accuracy_drop",
                "allow_flex", "seed", "prune", "prune_structure", "prune_policy", "epochs", "augment",
                "sparse_encoding")
        return {"quantize": quantize, "io": io, **{k: getattr(self, k) for k in keys}}


class _Conversion:
    """One conversion's state, advanced by named steps; ``run`` is the whole story."""

    def __init__(self, opts: ConvertOptions, reporter: Reporter | None):
        self.opts, self.rep = opts, RecordingReporter(reporter)
        self.started, self.seconds = time.perf_counter(), {}
        quantize, io = _target_options(opts.target, opts.quantize, opts.io)
        if opts.calibration_count < 1:
            raise ConversionError(f"calibration count must be >= 1, got {opts.calibration_count}")
        self.options = QuantizeOptions(quantize, io, opts.per_tensor, opts.allow_flex, opts.sparse_encoding,
                                       static_batch=opts.target == "edgetpu")
        self.prune_options = pruning.PruneOptions(opts.prune, opts.prune_structure, opts.prune_policy) \
            if opts.prune is not None else None
        self.tune = training.FineTune(opts.epochs, opts.batch_size, opts.learning_rate, opts.augment, opts.strategy)
        if opts.train_data is not None and self.prune_options is None:
            raise ConversionError("--train-data is for fine-tuning while pruning; give --prune too")
        check_writable(opts.output)
        self.prune_report = self.train_classes = self.checked = self.rec = self.encoding = None
        self.standard = self.compiled = None

    def run(self, model) -> ConversionResult:
        self.load(model)
        self.prune()
        self.gather()
        self.convert()
        self.verify()
        self.embed()
        self.write()
        return self.result(model)

    def _timed(self, name: str, t0: float):
        self.seconds[name] = time.perf_counter() - t0

    def load(self, model):
        o = self.opts
        self.loaded = self.original = load_model(model)  # original: what compression is measured against
        self.spec = resolve_input_spec(self.loaded, input_range=o.input_range, mean=o.mean, std=o.std, resize=o.resize)

    def prune(self):
        if self.prune_options is None:
            return
        t0 = time.perf_counter()
        self.loaded, self.prune_report, self.train_classes = _pruned(
            self.loaded, self.spec, self.prune_options, self.tune, self.opts.train_data, self.options.mode,
            self.opts.seed, self.rep)
        self._timed("prune", t0)

    def gather(self):
        o = self.opts
        self.data = _gather_data(self.spec, o.calibration, o.eval_data, o.calibration_count, o.seed,
                                 self.options.calibrated, self.rep)
        self.labels = _resolve_labels(o.labels, self.data.class_names or self.train_classes, self.loaded.n_classes)

    def convert(self):
        t0 = time.perf_counter()
        calibration = imgs.float_batch(self.data.calibration, self.spec) if self.data.calibration is not None \
            else None
        self.model_bytes = run_conversion(self.loaded, self.options, calibration)
        if self.opts.sparse_encoding:
            self.model_bytes, self.encoding = _check_sparse_encoding(self.loaded, self.options, calibration,
                                                                     self.model_bytes, self.opts.target, self.rep)
        self._timed("convert", t0)
        self.compat = _compatibility(self.opts.target, self.model_bytes, self.loaded.name, self.rep)
        self.flex_ops = [op for op in parse(self.model_bytes, self.loaded.name).custom_ops if op.startswith("Flex")]
        if self.flex_ops:
            self.rep.warn(f"the model uses TensorFlow (Flex) ops {', '.join(self.flex_ops)}: the edgelite runtime "
                          "cannot load it without the Flex delegate, so it was not verified or test-loaded here")

    def verify(self):
        if self.flex_ops or not self.opts.verification:
            return
        if self.data.eval_pixels is None:
            self.rep.warn("not verified: give --eval-data DIR or --calibration DIR to measure what conversion cost")
            return
        t0 = time.perf_counter()
        d, budget = self.data, self.opts.max_accuracy_drop
        self.checked = verify.verify(self.original, self.model_bytes, self.spec, d.eval_pixels, d.eval_labels,
                                     d.eval_source, self.rep)
        if self.prune_report is not None:
            self.prune_report["pruned_keras_top1"] = verify.float_top1(self.loaded, self.spec, d.eval_pixels,
                                                                       d.eval_labels)
        if self.checked.drop_points > budget:
            self.recover(budget)
        self._timed("verify", t0)

    def recover(self, budget: float):
        cost = _pruning_cost(self.checked, self.prune_report)
        if cost is not None and cost > budget:
            self.rec = {"skipped": f"pruning itself costs {cost:.2f} points (the pruned Keras model before "
                                   "conversion); float layers cannot recover that: fine-tune longer (--epochs) or "
                                   "prune less", "float_layers": []}
            return
        recovered, rechecked, self.rec = _recover(self.loaded, self.options, self.opts.target, self.data, self.spec,
                                                  budget, self.rep, self.checked, self.model_bytes, self.original)
        if recovered is not None:
            self.model_bytes, self.checked = recovered, rechecked

    @property
    def within(self) -> bool:
        return self.checked is None or self.checked.drop_points <= self.opts.max_accuracy_drop

    def embed(self):
        """Our record, then the standard metadata (MediaPipe appends its label file, so it goes last)."""
        recovered_float_io = self.rec and self.rec.get("io") == "float32"
        self.final_options = dataclasses.replace(self.options, io="float32") if recovered_float_io else self.options
        self.sparsity = weight_sparsity(parse(self.model_bytes, self.loaded.name), self.model_bytes)
        _sparsity_survived(self.prune_report, self.sparsity, self.rep)
        if self.prune_report is not None and self.encoding is not None:
            self.prune_report["sparse_encoding"] = self.encoding
        self.record = _record(self.loaded, self.spec, self.labels, self.final_options, self.opts.target, self.checked,
                              self.rec, self.model_bytes, self.opts.settings(self.options.mode, self.options.io),
                              self.prune_report, self.sparsity)
        self.record["compatibility"] = self.compat
        self.model_bytes = embed_record(self.model_bytes, self.record)
        if self.opts.write_standard_metadata and not self.flex_ops:
            graph = parse(self.model_bytes, self.loaded.name).main
            self.model_bytes, self.standard = standard_metadata.add(self.model_bytes, self.spec, self.labels,
                                                                    graph.tensors[graph.inputs[0]].dtype)

    def write(self):
        """Test-loads under the runtime, writes atomically, then compiles for the Edge TPU if asked."""
        o = self.opts
        if not self.flex_ops:
            Model(self.model_bytes, delegate="auto")  # must load under the runtime before it is called done
        self.path = atomic_write(o.output if self.within else over_budget_name(o.output), self.model_bytes)
        if o.target == "edgetpu" and self.within:
            self.compiled = _compile_for_edgetpu(
                self.path, lambda data, report: embed_record(data, {**self.record, "edgetpu_compiler": report}),
                o.compiler, o.compiler_timeout, self.rep)

    def result(self, model) -> ConversionResult:
        self.seconds["total"] = time.perf_counter() - self.started
        source_size = os.path.getsize(model) if isinstance(model, (str, os.PathLike)) and os.path.isfile(model) \
            else None
        q = self.final_options
        return ConversionResult(
            output=str(self.path), source=self.loaded.name, within_budget=self.within, input_size_bytes=source_size,
            output_size_bytes=len(self.model_bytes),
            quantization={"mode": q.mode, "io": q.io, "per_channel": q.per_channel}, target=self.opts.target,
            verification=self.checked, recovery=self.rec, labels=self.labels, input_spec=self.spec,
            seconds=self.seconds, warnings=list(self.rep.warnings), pruning=self.prune_report,
            weight_sparsity=self.sparsity, compatibility=self.compat, edgetpu=self.compiled,
            standard_metadata=self.standard)


def convert(model, *, output, reporter: Reporter | None = None, **options) -> ConversionResult:
    """Converts a Keras model (path or object) into a verified .tflite at ``output``.

    ``options`` are ConvertOptions' fields (quantize, calibration, eval_data, prune, target, ...);
    see the README. TensorFlow is needed, and asked for first with the command that installs it.
    """
    tensorflow()
    try:
        opts = ConvertOptions(output=output, **options)
    except TypeError as exc:
        raise ConversionError(f"convert: {exc}") from None
    return _Conversion(opts, reporter).run(model)
