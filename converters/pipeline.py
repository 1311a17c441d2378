"""Keras or PyTorch model -> verified .tflite with its record: the sequence of steps, and nothing else.

Each step is a function of the previous step's frozen value and the options; the values are
``Source`` (loaded, maybe pruned) -> ``Converted`` -> ``Checked`` (verified, maybe recovered)
-> ``Embedded`` (record inside) -> the written file. The steps live in the concept modules.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgelite.converters import images, torch_model
from edgelite.converters.errors import ConversionError
from edgelite.converters.ladder import climb as ladder
from edgelite.converters.ladder import float_layers as recovery
from edgelite.converters.options import ConvertOptions
from edgelite.converters.output import recording as records
from edgelite.converters.output import target_steps as targets
from edgelite.converters.output.edgetpu_compiler import CompileReport
from edgelite.converters.output.writing import atomic_write, over_budget_name, refuse_source
from edgelite.converters.pruning import magnitude as pruning
from edgelite.converters.pruning import training
from edgelite.converters.pruning.step import PruneReport, prune
from edgelite.converters.quantize import calibration
from edgelite.converters.quantize import modes as quantization
from edgelite.converters.quantize.calibration import Data
from edgelite.converters.reporting import RecordingReporter, Reporter, Reports
from edgelite.converters.tf import tensorflow
from edgelite.converters.user_model import LoadedModel, load_model
from edgelite.converters.verify import cost as verify
from edgelite.converters.verify import float_model
from edgelite.converters.verify.contract import resolve_input_spec
from edgelite.runtime.interpreter.compatibility import Compatibility
from edgelite.runtime.interpreter.model import Model
from edgelite.runtime.interpreter.targets import TARGET_NAMES
from edgelite.runtime.modelfile.input_spec import InputSpec
from edgelite.runtime.modelfile.metadata import embed_record
from edgelite.runtime.modelfile.sparsity import weight_sparsity
from edgelite.runtime.modelfile.tflite_file import parse

TARGETS = TARGET_NAMES


@dataclass(frozen=True)
class Source:
    """The user's model as loaded (the reference) and the model to convert (pruned, or the same)."""

    original: LoadedModel
    model: LoadedModel
    spec: InputSpec
    pruning: PruneReport | None = None
    train_classes: tuple[str, ...] | None = None
    eval_outputs: list[np.ndarray] | None = None  # the original float model's outputs on the eval images, once


@dataclass(frozen=True)
class Converted:
    model_bytes: bytes
    quantize: quantization.QuantizeOptions
    flex_ops: tuple[str, ...] = ()
    sparse_encoding: dict | None = None
    compatibility: Compatibility | None = None
    calibration: np.ndarray | None = None       # the float batch it was calibrated on (the ladder's rungs reuse it)
    session: recovery.Calibrated | None = None  # the calibration the ladder's int8 rungs re-quantize
    float_ops: torch_model.FloatOps | None = None  # what litert-torch's int8 quantizer left in float


@dataclass(frozen=True)
class Checked:
    """The model that will be written (the ladder may have chosen another rung), with what was measured."""

    model_bytes: bytes
    quantize: quantization.QuantizeOptions
    verification: verify.Verification | None
    recovery: ladder.LadderReport | None
    float_layers: tuple[str, ...] = ()
    unverified: str | None = None
    pruned_top1: float | None = None  # the pruned float model alone, when pruned and labelled

    def within(self, budget: verify.Budget) -> bool:
        return self.verification is None or budget.holds(self.verification)


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
    recovery: ladder.LadderReport | None
    labels: tuple[str, ...] | None
    input_spec: InputSpec
    seconds: dict
    warnings: tuple[str, ...] = ()
    pruning: PruneReport | None = None
    weight_sparsity: dict | None = None
    compatibility: Compatibility | None = None
    edgetpu: CompileReport | None = None
    standard_metadata: dict | None = None
    unverified: str | None = None
    float_checks: float_model.FloatChecks | None = None  # the float model before int8: labelled top-1, input conventions

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("verification", "recovery", "pruning", "compatibility", "edgetpu", "input_spec", "float_checks"):
            value = data[name]
            data[name] = value.to_dict() if value is not None else None
        data["labels"] = list(self.labels) if self.labels is not None else None
        data["warnings"] = list(self.warnings)
        return data


@dataclass
class _Clock:
    started: float = field(default_factory=time.perf_counter)
    seconds: dict = field(default_factory=dict)

    def lap(self, name: str, since: float) -> None:
        self.seconds[name] = time.perf_counter() - since


def load_source(model, o: ConvertOptions) -> Source:
    """Loads the model and decides its input contract."""
    original = load_model(model, o.input_shape, o.custom_objects)
    if original.flavor == "torch":
        check_torch_options(original, o)
    spec = resolve_input_spec(original, input_range=o.input_range, mean=o.mean, std=o.std, resize=o.resize,
                              force=o.force_input_scale)
    return Source(original, original, spec)


def judge_float(source: Source, data: Data, task: str, o: ConvertOptions, rep: Reporter) -> tuple[Source, float_model.FloatChecks]:
    """The float model on the user's images before int8: the input conventions compared on calibration images,
    then, with labelled images, its own top-1 through the labels it ships with (a contract that is wrong stops
    here). Its eval outputs are kept for verification."""
    found = float_model.check_conventions(source.original, data.calibration, source.spec, o.seed, rep,
                                          task == "classify") if task in ("classify", "raw") else None
    outputs = verify.float_outputs(source.original, data.eval_pixels, source.spec) \
        if data.eval_pixels is not None and o.verification else None
    names = data.labels_given or data.class_names
    labelled = float_model.judge(source.original, outputs, data.eval_labels, names, task, o.accept_float_model,
                                 found.better if found else None, rep, data.eval_pixels, source.spec, o.seed)
    return dataclasses.replace(source, eval_outputs=outputs), float_model.FloatChecks(labelled, found)


def prune_source(source: Source, train: training.TrainSet | None, o: ConvertOptions, rep: Reporter) -> Source:
    """The model pruned (fine-tuned on ``train``, which holds no verification image), when asked."""
    if o.prune is None:
        return source
    tune = training.FineTune(o.epochs, o.batch_size, o.learning_rate, o.augment, o.strategy)
    assert o.quantize is not None  # noqa: S101 - resolved by ConvertOptions
    pruned, report, classes = prune(source.original, pruning.PruneOptions(o.prune, o.prune_structure,
                                                                          o.prune_policy),
                                    tune, train, source.spec, o.seed, rep, o.quantize)
    return dataclasses.replace(source, model=pruned, pruning=report, train_classes=tuple(classes) if classes else None)


def convert_source(source: Source, data: Data, o: ConvertOptions, rep: Reporter) -> Converted:
    """TensorFlow's converter, the sparse-encoding check, Flex detection and the target's pre-flight."""
    options = quantization.QuantizeOptions.from_options(o)
    batch = images.float_batch(data.calibration, source.spec) if data.calibration is not None else None
    if source.model.flavor == "torch":
        return _convert_torch(source, options, batch, o, rep)
    session = recovery.Calibrated(source.model, options, batch) if batch is not None and \
        recovery.Calibrated.serves(options) else None
    model_bytes = session.quantized(options) if session is not None else quantization.convert(source.model, options,
                                                                                             batch)
    encoding = None
    if o.sparse_encoding:
        delegate = "xnnpack" if o.target_entry.name == "xnnpack" else "auto"
        model_bytes, encoding = quantization.keep_runnable_encoding(source.model, options, batch, model_bytes,
                                                                    delegate, rep)
    flex = quantization.flex_ops(model_bytes, source.model.name)
    if flex:
        rep.warn(f"the model uses TensorFlow (Flex) ops {', '.join(flex)}: the edgelite runtime cannot load it "
                 "without the Flex delegate, so it was not verified or test-loaded here")
    compat = targets.placement(o.target_entry, model_bytes, source.model.name, rep)
    return Converted(model_bytes, options, flex, encoding, compat, batch, session)


def check_torch_options(loaded: LoadedModel, o: ConvertOptions) -> None:
    """What a PyTorch model cannot be asked for, refused before any image is read: the steps built on
    Keras or on TensorFlow's converter (pruning, sparse encoding, fp16 and int16x8) and I/O types
    other than the int8 litert-torch's quantizer makes."""
    refused = {"--prune": (o.prune is not None, "prune in PyTorch (torch.nn.utils.prune) before exporting"),
               "--sparse-encoding": (o.sparse_encoding, "leave it out: litert-torch writes dense weights"),
               f"--io {o.io}": (o.io_given and o.quantize == "int8" and o.io != "int8",
                                "litert-torch's int8 quantizer makes int8 inputs and outputs: give --io int8 or "
                                "leave --io out")}
    for what, (asked, instead) in refused.items():
        if asked:
            raise ConversionError(f"{loaded.name}: {what} is not available for PyTorch models (see the From PyTorch "
                                  f"page); {instead}")
    if o.quantize not in torch_model.MODES:
        raise ConversionError(f"{loaded.name}: --quantize {o.quantize} is not available for PyTorch models "
                              f"(litert-torch makes {', '.join(torch_model.MODES)}); for --target {o.target} give "
                              "--quantize " + " or ".join(m for m in torch_model.MODES
                                                          if m in o.target_entry.allowed_quantize))


def _convert_torch(source: Source, options: quantization.QuantizeOptions, batch, o: ConvertOptions,
                   rep: Reporter) -> Converted:
    """litert-torch's converter; int8 I/O when int8 (what its quantizer makes), and what it left in float counted.
    A target that runs no float op (the Edge TPU) refuses a model with any."""
    options = dataclasses.replace(options, io="int8" if options.mode == "int8" else "float32")
    model_bytes = torch_model.convert(source.model.model, source.model.input_shape, options.mode,
                                      options.per_tensor, batch, source.model.name)
    left = torch_model.float_ops(model_bytes, source.model.name) if options.mode == "int8" else None
    if left is not None and left.count:
        if not o.target_entry.runs_float_ops:
            raise ConversionError(f"{source.model.name}: litert-torch's int8 quantizer left {left.line()}; "
                                  f"--target {o.target} runs no float op, so the model is refused")
        rep.warn(f"litert-torch's int8 quantizer left {left.line()}: they run on the CPU in float")
    compat = targets.placement(o.target_entry, model_bytes, source.model.name, rep)
    return Converted(model_bytes, options, compatibility=compat, calibration=batch, float_ops=left)


def check(source: Source, converted: Converted, data: Data, task: str, o: ConvertOptions,
          rep: Reporter) -> Checked:
    """Verifies against the original float model; over budget, climbs the ladder of alternatives."""
    if not o.verification:
        return Checked(converted.model_bytes, converted.quantize, None, None, unverified="not asked for (--no-verify)")
    if converted.flex_ops or data.eval_pixels is None:
        why = "the runtime cannot load Flex ops" if converted.flex_ops else data.unverified
        rep.warn(f"not verified: {why}")
        return Checked(converted.model_bytes, converted.quantize, None, None, unverified=why)
    floats = verify.Reference.of(source.original, source.model if source.pruning is not None else None,
                                 data.eval_pixels, source.spec, source.eval_outputs)
    pruned_top1 = floats.converted_top1(data.eval_labels) if source.pruning is not None else None
    pruned_snr = floats.pruned_snr_db() if source.pruning is not None and task == "raw" else None
    measure = lambda model_bytes: verify.verify(  # noqa: E731 - one comparison, used for every candidate
        floats, model_bytes, source.spec, data.eval_pixels, data.eval_labels, data.eval_source, rep, task, o.decoder,
        o.min_output_snr)
    t0 = time.perf_counter()
    first = measure(converted.model_bytes)
    for pitfall in first.pitfalls:
        rep.warn(pitfall)
    rung = ladder.measure(ladder.first_rung(converted.quantize), converted.model_bytes, converted.quantize, first,
                          budget_of(o), t0)
    if rung.within_budget or not o.recover:
        return Checked(converted.model_bytes, converted.quantize, first, ladder.LadderReport(
            (rung,), chosen=rung.name, skipped=None if rung.within_budget else "--no-recover"),
            pruned_top1=pruned_top1)
    why = _pruning_alone_over(first, pruned_top1, pruned_snr, o)
    if why is not None:  # no quantization rung can recover what pruning cost
        return Checked(converted.model_bytes, converted.quantize, first, ladder.LadderReport((rung,), skipped=why),
                       pruned_top1=pruned_top1)
    return dataclasses.replace(_climbed(source, converted, data, o, first, rung, measure, rep), pruned_top1=pruned_top1)


def _pruning_alone_over(first: verify.Verification, pruned_top1: float | None, pruned_snr, o: ConvertOptions):
    """Why the ladder cannot help when the pruned float model alone is already over budget, else None."""
    if first.float_top1 is not None and pruned_top1 is not None:
        cost = 100.0 * (first.float_top1 - pruned_top1)  # top-1 points lost by pruning alone
        if cost > o.max_accuracy_drop:  # pruning is judged on top-1 alone
            return (f"pruning itself costs {cost:.2f} points (the pruned Keras model before conversion); no "
                    "quantization rung can recover that: fine-tune longer (--epochs) or prune less")
    if pruned_snr is not None and pruned_snr[1] < o.min_output_snr:
        return (f"pruning itself leaves output {pruned_snr[0]} at {pruned_snr[1]:.1f} dB against the original model "
                f"(the pruned Keras model before conversion, budget {o.min_output_snr:.1f} dB); no quantization rung "
                "can recover that: fine-tune on --train-data, longer (--epochs), prune less, or lower --min-output-snr")
    return None


def _climbed(source: Source, converted: Converted, data: Data, o: ConvertOptions, first: verify.Verification,
             rung: ladder.RungResult, measure, rep: Reporter) -> Checked:
    rungs, not_tried = ladder.plan(converted.quantize, o.target_entry, o.ladder, o.train_data is not None,
                                   o.io_fixed, torch=source.model.flavor == "torch")
    assert data.calibration is not None or not converted.quantize.calibrated  # noqa: S101 - gather ensures it
    batch, budget = converted.calibration, budget_of(o)
    inputs = ladder.Inputs(  # images decoded, and the shared calibration made, only if a rung needs them
        batch, lambda: calibration.more_calibration(o, source.spec, rep),
        lambda: _train_pixels(data.train(), source.spec), o.seed, _failing_outputs(first, budget),
        functools.cache(lambda: converted.session or (recovery.Calibrated(source.model, converted.quantize, batch)
                                                      if batch is not None and source.model.flavor != "torch"
                                                      else None)))
    results, best = ladder.climb(rungs, source.model, converted.quantize, inputs, measure, budget, rep)
    report = ladder.LadderReport((rung, *results), tuple(not_tried))
    if best is None or budget.rank(best.verified) >= budget.rank(first):
        return Checked(converted.model_bytes, converted.quantize, first, dataclasses.replace(report, chosen=rung.name))
    note = ladder.io_note(converted.quantize.io, best.options.io) if not o.ladder else None
    if budget.holds(best.verified):
        rep.warn(f"{rung.name} was over budget; kept rung {best.rung} ({best.options.mode}, {best.options.io} I/O), "
                 "the first within budget" + (f". {note}" if note else ""))
    return Checked(best.model_bytes, best.options, best.verified,
                   dataclasses.replace(report, chosen=best.rung, io_note=note), best.float_layers)


def _failing_outputs(first: verify.Verification, budget: verify.Budget) -> tuple[str, ...]:
    """The outputs under their SNR budget, when only some are and the task metric holds: recovery aims there."""
    if first.drop_points > budget.max_drop_points:
        return ()
    failing = tuple(o.name for o in first.outputs if first.budget_snr(o) < budget.min_output_snr_db)
    return failing if len(failing) < len(first.outputs) else ()


def _train_pixels(train: training.TrainSet | None, spec: InputSpec):
    return images.float_batch(train.pixels, spec) if train is not None else None


def with_yolo_decoder(loaded: LoadedModel, o: ConvertOptions) -> ConvertOptions:
    """A model whose YOLO head was split at load is a detector, decoded by edgelite's YOLO decoder (its boxes are
    normalized now); the user's yolo thresholds are kept. ``--task raw`` keeps the two raw outputs."""
    if loaded.yolo is None or o.task not in (None, "detect"):
        return o
    sections = dict(o.decoder or {"yolo": {}})
    if "yolo" not in sections:
        raise ConversionError(f"{loaded.name}: the model has a YOLO head (split into boxes and scores at load); "
                              "give a yolo decoder, not an SSD one")
    return dataclasses.replace(o, decoder={**sections, "yolo": {**sections["yolo"], "normalized": True}},
                               task="detect")


def task_of(loaded: LoadedModel, o: ConvertOptions) -> str:
    """The task asked for, else inferred: one [batch, classes] output is a classifier, anything else raw."""
    if o.task is not None:
        if o.task == "detect":
            from edgelite.runtime.tasks import decoders
            decoder = decoders.parse(o.decoder, "decoder")
            try:
                decoders.check_fit(decoder, [tuple(d or 1 for d in s) for s in loaded.output_shapes], "--decoder")
            except Exception as exc:  # noqa: BLE001 - InputError from the runtime: the decoder does not fit
                raise ConversionError(str(exc)) from None
        if o.task == "classify" and loaded.n_classes is None:
            raise ConversionError(f"{loaded.name}: --task classify needs one [batch, classes] output; the model's "
                                  f"outputs are {[list(s) for s in loaded.output_shapes]}")
        return o.task
    return "classify" if loaded.n_classes is not None else "raw"


def budget_of(o: ConvertOptions) -> verify.Budget:
    return verify.Budget(o.max_accuracy_drop, o.min_output_snr)


def embed(source: Source, converted: Converted, checked: Checked, labels, sparsity: dict, task: str,
          o: ConvertOptions) -> records.Embedded:
    """The record (every step's report) and the standard metadata, inside the model bytes."""
    quantized = {**checked.quantize.to_dict(checked.float_layers),
                 **({"float_ops": converted.float_ops.to_dict()} if converted.float_ops is not None else {})}
    reports = {"target": o.target, "quantization": quantized,
               "verification": checked.verification.to_dict() if checked.verification else None,
               "recovery": checked.recovery.to_dict() if checked.recovery else None,
               "pruning": source.pruning.to_dict() if source.pruning else None,
               "compatibility": converted.compatibility.to_dict() if converted.compatibility else None,
               "provenance": records.provenance(source.original, o), "decoder": o.decoder}
    return records.embed(checked.model_bytes, source.model.name, source.spec, labels, reports, sparsity, task,
                         o.write_standard_metadata and not converted.flex_ops and task == "classify")


def write(embedded: records.Embedded, converted: Converted, checked: Checked, o: ConvertOptions,
          rep: Reporter) -> tuple[str, CompileReport | None]:
    """Test-loads under the runtime, writes atomically, then runs the target's compile step."""
    if not converted.flex_ops:
        Model(embedded.model_bytes, delegate="auto")  # must load under the runtime before it is called done
    within = checked.within(budget_of(o))
    path = atomic_write(o.output if within else over_budget_name(o.output), embedded.model_bytes)
    record = embedded.record.to_dict()
    compiled = targets.compile_written(
        o.target_entry, path, lambda data, report: embed_record(data, {**record, "edgetpu_compiler": report}),
        o.compiler, o.compiler_timeout, rep) if within else None
    return str(path), compiled


def convert(model: str | os.PathLike | Any, *, output: str | os.PathLike, reporter: Reports | None = None,
            **options: Any) -> ConversionResult:
    """Converts a Keras model into a verified .tflite at ``output``.

    Args:
      model: a path (.keras, .h5, SavedModel directory, torch.export .pt2) or a live keras / tf_keras model or
        torch nn.Module (which takes NCHW; give input_shape=(height, width, channels)).
      output: the .tflite file to write (atomically; an over-budget model gets ``.over-budget`` in its name).
      reporter: receives warnings and progress (the default drops them; they are in the result too).
      **options: ConvertOptions' fields (quantize, calibration, eval_data, prune, target, ...); see the README.
    Returns:
      A ConversionResult: what was written and what it cost, measured.
    Raises:
      ConversionError: a bad option (before any work), a model edgelite cannot convert, or a failed step.
      BackendUnavailableError: TensorFlow is not installed (said after the options are checked).
    """
    try:
        o = ConvertOptions(output=os.fspath(output), **options)
    except TypeError as exc:
        raise ConversionError(f"convert: {exc}") from None
    refuse_source(model, o.output)
    tensorflow()
    return _run(model, o, RecordingReporter(reporter))


def _run(model, o: ConvertOptions, rep: RecordingReporter) -> ConversionResult:
    clock = _Clock()
    source = load_source(model, o)
    o = with_yolo_decoder(source.original, o)
    assert o.quantize is not None  # noqa: S101 - resolved by ConvertOptions
    task = task_of(source.original, o)
    data = calibration.gather(o, source.spec, o.quantize in quantization.CALIBRATED, rep)
    resolution = calibration.resolution(data, task, o.max_accuracy_drop)
    if resolution:
        rep.warn(resolution)
    source, judged = judge_float(source, data, task, o, rep)
    train = functools.cache(lambda: calibration.train_set(o, source.spec, data.eval_paths, data.labels_given,
                                                                 rep))
    data = dataclasses.replace(data, train=train)
    t0 = time.perf_counter()
    source = prune_source(source, train() if o.prune is not None else None, o, rep)
    if source.pruning is not None:
        clock.lap("prune", t0)
    labels = calibration.resolve_labels(o.labels, data.labels_given, data.class_names or source.train_classes,
                                        source.model.n_classes)
    t0 = time.perf_counter()
    converted = convert_source(source, data, o, rep)
    clock.lap("convert", t0)
    t0 = time.perf_counter()
    checked = check(source, converted, data, task, o, rep)
    if checked.verification is not None:
        clock.lap("verify", t0)
    sparsity = weight_sparsity(parse(checked.model_bytes, source.model.name), checked.model_bytes)
    source = _with_pruning_measurements(source, checked, converted, sparsity, rep)
    embedded = embed(source, converted, checked, labels, sparsity, task, o)
    path, compiled = write(embedded, converted, checked, o, rep)
    clock.seconds["total"] = time.perf_counter() - clock.started
    return _result(model, o, source, converted, checked, embedded, path, compiled, labels, clock, rep, judged)


def _with_pruning_measurements(source: Source, checked: Checked, converted: Converted, sparsity: dict,
                               rep: Reporter) -> Source:
    """Adds what the pruned model scores alone and how much sparsity survived conversion."""
    if source.pruning is None:
        return source
    top1 = checked.pruned_top1
    survived = pruning.surviving_sparsity(source.pruning.keras_sparsity, sparsity, rep)
    report = dataclasses.replace(source.pruning, pruned_keras_top1=top1, tflite_sparsity_of_pruned_layers=survived,
                                 sparse_encoding=converted.sparse_encoding)
    return dataclasses.replace(source, pruning=report)


def _result(model, o: ConvertOptions, source: Source, converted: Converted, checked: Checked,
            embedded: records.Embedded, path: str, compiled, labels, clock: _Clock,
            rep: RecordingReporter, judged: float_model.FloatChecks) -> ConversionResult:
    size = os.path.getsize(model) if isinstance(model, (str, os.PathLike)) and os.path.isfile(model) else None
    return ConversionResult(
        output=path, source=source.model.name, within_budget=checked.within(budget_of(o)),
        input_size_bytes=size, output_size_bytes=len(embedded.model_bytes),
        quantization=embedded.record.quantization or {}, target=o.target, verification=checked.verification,
        recovery=checked.recovery, labels=labels, input_spec=source.spec, seconds=clock.seconds,
        warnings=tuple(rep.warnings), pruning=source.pruning, weight_sparsity=embedded.weight_sparsity,
        compatibility=converted.compatibility, edgetpu=compiled, standard_metadata=embedded.standard_metadata,
        unverified=checked.unverified, float_checks=judged)


def check_keras(model, target_name: str, **options) -> dict:
    """`edgelite check` of a Keras model: converted for the target (unverified) in a scratch folder, then placed."""
    import tempfile

    from edgelite.runtime.interpreter.compatibility import check_model
    with tempfile.TemporaryDirectory(prefix="edgelite-check-") as work:
        out = f"{work}/model.tflite"
        convert(model, output=out, target=target_name, verification=False, **options)
        report = check_model(out, target_name)
    return {**report, "model": f"{model} (converted for {target_name})"}
