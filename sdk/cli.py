"""The `edgelite` command: parse options, call the library, print. Nothing else lives here.

Exit codes: 0 success, 1 an error edgelite explained (one line on stderr), 2 usage error.
Every command takes --json for machine-readable output on stdout.
"""
from __future__ import annotations

import contextlib
import functools
import json
import sys
import warnings

import click

from . import __version__
from .options import DELEGATE, MEAN, SPARSITY, STD, THREAD_LIST
from .report import fmt_bytes, fmt_ms, profile_table, stages_table, table


class _Failure(click.ClickException):
    """An explained error: ``error: <message>`` on stderr, exit 1 (same form as per-item errors)."""

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    """Turns edgelite's own errors into one line and exit 1, at the edge only."""

    def invoke(self, ctx):
        from edgelite.runtime.errors import EdgeliteError
        try:
            return super().invoke(ctx)
        except EdgeliteError as exc:
            raise _Failure(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


def json_option(func):
    """The shared --json flag: results go to stdout as one JSON document."""
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(func)


def runtime_options(func):
    """Options every command that loads a model shares."""
    options = [
        click.option("--delegate", "-d", default="auto", show_default=True, type=DELEGATE, metavar="D",
                     help="auto, cpu, xnnpack, gpu, edgetpu[:usb:0|:pci:0] or external:PATH."),
        click.option("--fallback", is_flag=True, help="If the delegate cannot load, fall back to XNNPACK/CPU "
                                                      "(the reason is recorded) instead of failing."),
        click.option("--backend", default=None, metavar="NAME", envvar="EDGELITE_BACKEND",
                     help="ai_edge_litert, tflite_runtime or tensorflow (default: first installed)."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), func)


def remote_options(func):
    """Options for profiling on a device over SSH."""
    options = [
        click.option("--remote", metavar="USER@HOST[:PORT]", default=None,
                     help="Profile on this device over SSH (key authentication); it needs edgelite[litert] only."),
        click.option("--remote-edgelite", default="edgelite", show_default=True,
                     help="The edgelite command on the device (e.g. ~/venv/bin/edgelite)."),
        click.option("--ssh-identity", type=click.Path(), default=None, help="Private key for SSH."),
        click.option("--ssh-option", multiple=True, metavar="KEY=VALUE", help="Extra ssh -o options (repeatable)."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), func)


def _remote(remote, remote_edgelite, ssh_identity, ssh_option):
    if not remote:
        return None
    from .remote import Remote
    return Remote(remote, remote_edgelite, ssh_identity, tuple(ssh_option))


def _emit(as_json: bool, payload, human: str):
    click.echo(json.dumps(payload, indent=2, default=str) if as_json else human)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgelite")
def main():
    """Convert, inspect, run and profile TFLite image classifiers for edge devices.

    \b
    Example:
      edgelite predict model.tflite photo.jpg --top-k 3
    """
    warnings.filterwarnings("ignore", category=Warning, module="PIL")


# -- convert ---------------------------------------------------------------------------------------
class _CliReporter:
    """Progress bars (only on a terminal) and warnings on stderr for the converters."""

    def warn(self, message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    def progress(self, label: str, total: int):
        if not sys.stderr.isatty():
            return contextlib.nullcontext(lambda n=1: None)
        return _bar(label, total)


@contextlib.contextmanager
def _bar(label: str, total: int):
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


@main.command()
@click.argument("model", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="The .tflite file to write (atomically).")
@click.option("--calibration", type=click.Path(), help="Folder of images (class subfolders allowed) to calibrate on.")
@click.option("--calibration-count", default=200, show_default=True, type=click.IntRange(min=1),
              help="Seeded sample of calibration images.")
@click.option("--eval-data", type=click.Path(), help="Folder of class subfolders to verify top-1 on.")
@click.option("--quantize", "-q", default=None, type=click.Choice(["int8", "fp16", "dynamic", "none", "int16x8"]),
              help="Quantization mode [default: int8; fp16 for --target gpu].")
@click.option("--io", default=None, type=click.Choice(["int8", "uint8", "float32"]),
              help="Input/output tensor type of int8 models [default: int8; uint8 for --target edgetpu; "
                   "float32 for float models].")
@click.option("--per-tensor", is_flag=True, help="Per-tensor instead of per-channel weight quantization.")
@click.option("--input-range", type=click.Choice(["0,1", "-1,1", "0,255"]),
              help="Value range the model expects (when it has no leading Rescaling/Normalization layer).")
@click.option("--mean", default=None, type=MEAN, help="Normalization mean on 0..255 pixels (one, or one per channel).")
@click.option("--std", default=None, type=STD, help="Normalization std on 0..255 pixels (one, or one per channel).")
@click.option("--resize", default="stretch", show_default=True,
              type=click.Choice(["stretch", "center-crop", "letterbox"]), help="How images are fitted to the input.")
@click.option("--labels", type=click.Path(), help="Labels file, one per line (default: class folder names).")
@click.option("--target", default="xnnpack", show_default=True, type=click.Choice(["xnnpack", "gpu", "edgetpu"]),
              help="Where the model will run.")
@click.option("--max-accuracy-drop", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Budget in top-1 points; over it the converter tries to recover, then fails.")
@click.option("--allow-flex", is_flag=True, help="Allow TensorFlow (Flex) ops; the device then needs the Flex delegate.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for sampling calibration images.")
@click.option("--verify/--no-verify", "verification", default=True, help="Measure what conversion cost.")
@click.option("--prune", type=SPARSITY, default=None, metavar="SPARSITY",
              help="Magnitude-prune conv/dense kernels to this sparsity in [0, 1) before quantizing.")
@click.option("--train-data", type=click.Path(), help="Class subfolders of labelled images to fine-tune on while pruning.")
@click.option("--epochs", default=3, show_default=True, type=int, help="Fine-tuning epochs while pruning.")
@click.option("--augment", is_flag=True, help="Flips, small rotations, shifts and brightness while fine-tuning.")
@click.option("--prune-structure", default="unstructured", show_default=True,
              type=click.Choice(["unstructured", "2:4"]), help="2:4 zeroes two of every four weights.")
@click.option("--prune-policy", default="all", show_default=True, type=click.Choice(["all", "xnnpack"]),
              help="xnnpack: prune only the 1x1 convolutions XNNPACK's sparse kernels accelerate.")
@click.option("--strategy", type=click.Choice(["mirrored", "multiworker"]), default=None,
              help="Fine-tune under a tf.distribute strategy (MultiWorker needs TF_CONFIG).")
@click.option("--learning-rate", default=1e-3, show_default=True, type=float, help="Fine-tuning learning rate.")
@click.option("--batch-size", default=32, show_default=True, type=int, help="Fine-tuning batch size.")
@click.option("--sparse-encoding", is_flag=True,
              help="Store pruned weights sparsely (smaller file); kept only if the result runs under the target.")
@click.option("--compiler", type=click.Path(), default=None,
              help="edgetpu_compiler to run for --target edgetpu [default: the one on PATH, if any].")
@click.option("--compiler-timeout", default=180.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds the Edge TPU compiler may take.")
@click.option("--standard-metadata/--no-standard-metadata", default=True, show_default=True,
              help="Also write the standard TFLite metadata (MediaPipe's writers) when they are available.")
@json_option
def convert(model, output, calibration, calibration_count, eval_data, quantize, io, per_tensor, input_range, mean,
            std, resize, labels, target, max_accuracy_drop, allow_flex, seed, verification, prune, train_data, epochs,
            augment, prune_structure, prune_policy, strategy, learning_rate, batch_size, sparse_encoding, compiler,
            compiler_timeout, standard_metadata, as_json):
    """Convert a Keras model (.keras, .h5, SavedModel) to a verified .tflite with its record.

    \b
    Example:
      edgelite convert model.keras --calibration images/ --eval-data val/ -o model.tflite
    """
    from edgelite.converters import convert as run_convert
    result = run_convert(model, output=output, calibration=calibration, quantize=quantize, io=io,
                         per_tensor=per_tensor, eval_data=eval_data, calibration_count=calibration_count,
                         input_range=input_range, mean=mean, std=std,
                         resize=resize, labels=labels, target=target, max_accuracy_drop=max_accuracy_drop,
                         allow_flex=allow_flex, seed=seed, verification=verification, prune=prune,
                         train_data=train_data, epochs=epochs, augment=augment, prune_structure=prune_structure,
                         prune_policy=prune_policy, strategy=strategy, learning_rate=learning_rate,
                         batch_size=batch_size, sparse_encoding=sparse_encoding, compiler=compiler,
                         compiler_timeout=compiler_timeout, write_standard_metadata=standard_metadata,
                         reporter=_CliReporter())
    _emit(as_json, result.to_dict(), _convert_text(result, max_accuracy_drop))
    if not result.within_budget:
        v = result.verification
        click.echo(f"error: {model}: accuracy drop {v.drop_points:.2f} points is over the budget of "
                   f"{max_accuracy_drop:.2f}; the model was kept as {result.output}", err=True)
        sys.exit(1)


def _convert_text(r, budget: float) -> str:
    q = r.quantization
    size = f"{fmt_bytes(r.output_size_bytes)}"
    if r.input_size_bytes:
        size += f", {r.output_size_bytes / r.input_size_bytes:.2f}x of {fmt_bytes(r.input_size_bytes)}"
    granularity = {True: "per-channel, ", False: "per-tensor, ", None: ""}[q["per_channel"]]
    lines = [f"wrote {r.output} ({size}): {q['mode']}, {q['io']} I/O, {granularity}target {r.target}"]
    v = r.verification
    if v:
        top1 = (f"float top-1 {100 * v.float_top1:.2f}%, tflite top-1 {100 * v.tflite_top1:.2f}%, "
                if v.float_top1 is not None else "")
        lines.append(f"verified on {v.images} {v.data}: {top1}drop {v.drop_points:.2f} points ({v.drop_basis}; "
                     f"budget {budget:.2f}), agreement {100 * v.agreement:.2f}%, mean |diff| {v.mean_abs_diff:.4f}, "
                     f"max |diff| {v.max_abs_diff:.4f}")
    else:
        lines.append("not verified")
    if r.pruning:
        p = r.pruning
        pruned_top1 = f", pruned Keras top-1 {100 * p['pruned_keras_top1']:.2f}%" if p.get("pruned_keras_top1") else ""
        xnn = p["xnnpack_sparse_kernels"]
        lines.append(f"pruned to {100 * p['target_sparsity']:.0f}% ({p['structure']}, {p['policy']} layers, "
                     f"{p['library']}, {p['fine_tune']['epochs']} epochs): {100 * p['keras_sparsity']['overall']:.1f}% "
                     f"zeros in Keras, {100 * p.get('tflite_sparsity_of_pruned_layers', 0):.1f}% in the .tflite"
                     f"{pruned_top1}; XNNPACK sparse kernels: "
                     + ("eligible" if xnn["eligible"] else "not used (" + "; ".join(xnn["blocked_by"]) + ")"))
    if r.weight_sparsity:
        lines.append(f"weight sparsity in the file: {100 * r.weight_sparsity['overall']:.1f}% of "
                     f"{r.weight_sparsity['weights']} conv/dense weights are zero")
    if r.recovery:
        lines.append("recovery: " + json.dumps(r.recovery, sort_keys=True))
    if r.compatibility:
        c = r.compatibility
        lines.append(f"pre-flight for {c['target']}: {c['on_target']} of {c['ops']} ops on the {c['target']}, "
                     f"{c['on_cpu']} on the CPU" + (f" (first: {c['first_cpu_op']['op']}: {c['first_cpu_op']['reason']})"
                                                     if c["first_cpu_op"] else ""))
    if r.edgetpu:
        e = r.edgetpu
        lines.append(f"Edge TPU: compiled by {e['compiler']} {e['version']} to {e['output']}: "
                     f"{e.get('ops_on_edgetpu', '?')} ops on the Edge TPU, {e.get('ops_on_cpu', '?')} on the CPU, "
                     f"on-chip memory {e.get('on_chip_memory_used', '?')}, off-chip {e.get('off_chip_memory_used', '?')}"
                     if e["compiled"] else f"Edge TPU: not compiled ({e['reason']})")
    if r.standard_metadata:
        s = r.standard_metadata
        lines.append("standard TFLite metadata: " + ("written (MediaPipe's ImageClassifier can read the model)"
                                                      if s["written"] else f"not written: {s['reason']}"))
    lines.append("took " + ", ".join(f"{k} {v:.2f} s" for k, v in r.seconds.items()))
    return "\n".join(lines)


# -- check -----------------------------------------------------------------------------------------
@main.command()
@click.argument("model", type=click.Path())
@click.option("--target", "-t", required=True, type=click.Choice(["edgetpu", "gpu", "xnnpack"]),
              help="Where the model should run.")
@click.option("--calibration", type=click.Path(), help="For a Keras model: images to calibrate the int8 conversion.")
@click.option("--input-range", type=click.Choice(["0,1", "-1,1", "0,255"]), help="For a Keras model without a "
              "leading Rescaling/Normalization layer.")
@json_option
def check(model, target, calibration, input_range, as_json):
    """Pre-flight: which ops the target runs and which fall back to the CPU, op by op.

    A .tflite is checked as it is; a Keras model is converted for the target first.

    \b
    Example:
      edgelite check model.tflite --target edgetpu
    """
    from edgelite.runtime.compatibility import check_model
    if model.endswith(".tflite"):
        report = check_model(model, target)
    else:
        report = _check_keras(model, target, calibration, input_range)
    _emit(as_json, report, _check_text(report))


def _check_keras(model, target, calibration, input_range) -> dict:
    import tempfile

    from edgelite.converters import convert as run_convert
    from edgelite.runtime.compatibility import check_model
    with tempfile.TemporaryDirectory(prefix="edgelite-check-") as work:
        out = f"{work}/model.tflite"
        run_convert(model, output=out, calibration=calibration, input_range=input_range, target=target,
                    verification=False)
        report = check_model(out, target)
    report["model"] = f"{model} (converted for {target})"
    return report


def _check_text(report: dict) -> str:
    rows = [[o["index"], o["op"], o["where"], o["reason"], o["fix"]] for o in report["ops"]]
    s = report["summary"]
    lines = [table(["#", "op", "runs on", "why", "fix"], rows), "",
             f"{report['model']}: {s['on_target']} of {s['ops']} ops on the {report['target']}, {s['on_cpu']} on the CPU"]
    if s["first_cpu_op"]:
        first = s["first_cpu_op"]
        lines.append(f"first op on the CPU: #{first['index']} {first['op']}: {first['reason']}")
    if report.get("analyzer"):
        lines.append(f"analyzer: {report['analyzer']}")
    if report.get("measured"):
        m = report["measured"]
        lines.append(f"measured: delegate {m['delegate']}, {m['partitions']} delegated partition(s)")
    lines.append(f"source: {report['source']}")
    return "\n".join(lines)


# -- inspect ---------------------------------------------------------------------------------------
@main.command()
@click.argument("model", type=click.Path(dir_okay=True))
@click.option("--backend", default=None, metavar="NAME", envvar="EDGELITE_BACKEND",
              help="ai_edge_litert, tflite_runtime or tensorflow (default: first installed).")
@json_option
def inspect(model, backend, as_json):
    """Show a model's tensors, quantization, operators, metadata and size.

    \b
    Example:
      edgelite inspect examples/models/digits_int8.tflite --json
    """
    from edgelite.runtime.inspection import inspect_model
    info = inspect_model(model, backend=backend)
    _emit(as_json, info, _inspect_text(info))


def _tensor_rows(tensors):
    return [[t["name"], t["shape"], t["dtype"], f"scale={t['scale']:.6g} zero_point={t['zero_point']}"
             if t["scale"] else "float"] for t in tensors]


def _inspect_text(info: dict) -> str:
    spec = info["input_spec"]
    lines = [f"model:    {info['path']} ({fmt_bytes(info['size_bytes'])})",
             f"backend:  {info['backend']}" + (f" (cannot load: {info['interpreter_problem']})"
                                                if info["interpreter_problem"] else ""),
             "inputs:", table(["name", "shape", "dtype", "quantization"], _tensor_rows(info["inputs"])),
             "outputs:", table(["name", "shape", "dtype", "quantization"], _tensor_rows(info["outputs"])),
             f"operators ({sum(info['ops'].values())}): "
             + ", ".join(f"{name} x{n}" for name, n in sorted(info["ops"].items(), key=lambda kv: -kv[1]))]
    if spec:
        lines.append(f"input spec ({spec['source']}): {spec['height']}x{spec['width']}x{spec['channels']} "
                     f"{spec['color']}, resize {spec['resize']}, mean {spec['mean']}, std {spec['std']}")
    else:
        lines.append(f"input spec: none ({info['input_spec_problem']})")
    labels = info["labels"]
    lines.append(f"labels:   {len(labels)} ({', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''})"
                 if labels else "labels:   none")
    lines.append(f"output:   {info['output_kind']}")
    record = info["edgelite_record"]
    lines.append("edgelite record:" + ("" if record else " absent"))
    lines += [f"  {key}: {json.dumps(value, sort_keys=True)}" for key, value in sorted((record or {}).items())]
    lines.append("metadata buffers: " + (", ".join(info["metadata_buffers"]) or "none"))
    sparsity = info["weight_sparsity"]
    lines.append(f"weight sparsity: {100 * sparsity['overall']:.1f}% of {sparsity['weights']} conv/dense weights "
                 "are zero (read from the file)")
    lines += [f"  {layer['op']} {layer['shape']} {layer['dtype']} {layer['encoding']}: {100 * layer['sparsity']:.1f}%"
              for layer in sparsity["layers"]]
    lines.append("standard TFLite metadata (TFLITE_METADATA): "
                 + ("present" if info["tflite_metadata"] else "absent"))
    return "\n".join(lines)


# -- predict ---------------------------------------------------------------------------------------
@main.command()
@click.argument("model", type=click.Path(dir_okay=True))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--top-k", "-k", default=5, show_default=True, type=click.IntRange(min=1), help="Classes per image.")
@click.option("--threads", "-t", default=None, type=click.IntRange(min=1), help="Interpreter threads.")
@runtime_options
@click.option("--labels", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Labels file (one per line) overriding the model's own.")
@click.option("--mean", default=None, type=MEAN, help="Override normalization mean (0..255 scale).")
@click.option("--std", default=None, type=STD, help="Override normalization std (0..255 scale).")
@click.option("--resize", type=click.Choice(["stretch", "center-crop", "letterbox"]), default=None,
              help="Override the resize mode.")
@click.option("--exact", is_flag=True, help="Decode large JPEGs at full size (no reduced-scale fast path).")
@json_option
def predict(model, images, top_k, threads, delegate, fallback, backend, labels, mean, std, resize, exact,
            as_json):
    """Classify images with a model; preprocessing comes from the model's record.

    \b
    Example:
      edgelite predict examples/models/digits_int8.tflite examples/images/*.png --top-k 3
    """
    from edgelite.runtime.classifier import classify_many, load
    clf = load(model, delegate=delegate, threads=threads, backend=backend, fallback=fallback, fast=not exact,
               labels=labels, mean=mean, std=std, resize=resize)
    results, failures = [], 0
    for image, outcome in classify_many(clf, list(images), top_k):
        if isinstance(outcome, Exception):
            failures += 1
            results.append({"source": image, "error": str(outcome)})
            if not as_json:
                click.echo(f"error: {outcome}", err=True)
            continue
        results.append(outcome.to_dict())
        if not as_json:
            click.echo(_prediction_line(outcome))
    if as_json:
        _emit(True, {"model": clf.path, "delegate": clf.delegate.to_dict(), "results": results}, "")
    if failures:
        sys.exit(1)


def _prediction_line(result) -> str:
    classes = "  ".join(f"{c.label if c.label is not None else c.id} ({c.score:.3f})" for c in result.classes)
    return f"{result.source}: {classes}  [{result.delegate}, {fmt_ms(sum(result.timings_ms.values()))} ms]"


# -- profile ---------------------------------------------------------------------------------------
@main.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--runs", "-n", default=100, show_default=True, type=click.IntRange(min=1), help="Timed runs.")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(min=0), help="Untimed runs first.")
@click.option("--duration", default=None, type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Time runs for this long instead of --runs.")
@click.option("--threads", "-t", default=None, type=THREAD_LIST, help="Thread counts to compare, e.g. 1,2,4.")
@runtime_options
@click.option("--image", "images", multiple=True, type=click.Path(dir_okay=True),
              help="Profile end to end on this image (repeatable): adds the per-stage breakdown.")
@click.option("--isolate/--no-isolate", default=None,
              help="Profile each configuration in its own process so memory figures are its own "
                   "[default: on when comparing several].")
@remote_options
@json_option
def profile(models, runs, warmup, duration, threads, delegate, fallback, backend, images, isolate, remote,
            remote_edgelite, ssh_identity, ssh_option, as_json):
    """Measure load time, first invoke, latency distribution, stages and memory.

    \b
    Example:
      edgelite profile examples/models/digits_int8.tflite --threads 1,2 --runs 200 --json
    """
    from edgelite.runtime.profiler import profile as run_profile
    counts = threads or [None]
    if isolate is None:
        isolate = len(models) * len(counts) > 1
    device = _remote(remote, remote_edgelite, ssh_identity, ssh_option)
    if device is not None:
        report = _profile_remote(device, models, counts, runs, warmup, delegate, duration)
    else:
        report = run_profile(list(models), threads=counts, isolate=isolate, delegate=delegate, runs=runs, warmup=warmup,
                         duration_s=duration, images=list(images) or None, backend=backend, fallback=fallback,
                         progress=_progress_line if sys.stderr.isatty() and not as_json else None)
    if as_json:
        _emit(True, _profile_json(report), "")
    elif report.results:
        click.echo(profile_table(report.results))
        stages = stages_table(report.results)
        if stages:
            click.echo("\n" + stages)
        for r in report.results:
            click.echo(f"{r.model}: {r.backend} {r.backend_version}, delegate {r.delegate['actual']} "
                       f"({r.delegate['reason']}); {r.runs} runs on {r.input}")
    for err in report.errors:
        click.echo(f"error: {err['error']}", err=True)
    if not report.results or report.errors:
        sys.exit(1)


def _profile_remote(device, models, counts, runs, warmup, delegate, duration):
    from edgelite.runtime.errors import EdgeliteError
    from edgelite.runtime.profiler import ProfileReport
    device.check()
    results, errors = [], []
    for model in models:
        for n in counts:
            try:
                results.append(device.profile(model, threads=n, runs=runs, warmup=warmup, delegate=delegate,
                                              duration_s=duration))
            except EdgeliteError as exc:
                errors.append({"model": model, "threads": n, "error": str(exc)})
    return ProfileReport(tuple(results), tuple(errors))


def _progress_line(what: str):
    click.echo(f"profiling {what} ...", err=True)


def _profile_json(report) -> dict:
    """The report, plus the first result's fields at top level when there is exactly one."""
    data = report.to_dict()
    if len(report.results) == 1:
        data.update(report.results[0].to_dict())
    return data


# -- sweep -----------------------------------------------------------------------------------------
@main.command()
@click.argument("model", type=click.Path())
@click.option("--calibration", required=True, type=click.Path(), help="Images to calibrate the int8 variants on.")
@click.option("--eval-data", required=True, type=click.Path(), help="Class subfolders: top-1 of every variant.")
@click.option("--train-data", type=click.Path(), help="Class subfolders for the pruned variants' fine-tuning.")
@click.option("--output", "-o", default="sweep", show_default=True, type=click.Path(), help="Report folder.")
@click.option("--variants", default=None, metavar="A,B,...",
              help="fp32, fp16, dynamic, int8, int8-per-tensor, prune50-int8, prune75-int8 [default: all that "
                   "apply; the prune variants need --train-data].")
@click.option("--threads", "-t", default="1", show_default=True, type=THREAD_LIST, help="Thread counts to profile.")
@click.option("--runs", default=100, show_default=True, type=click.IntRange(min=1), help="Timed runs per profile.")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(min=0), help="Untimed runs first.")
@click.option("--epochs", default=3, show_default=True, type=int, help="Fine-tuning epochs of the pruned variants.")
@click.option("--input-range", type=click.Choice(["0,1", "-1,1", "0,255"]), help="As for convert.")
@click.option("--max-accuracy-drop", type=float, default=None, help="Budget: top-1 points lost.")
@click.option("--max-latency-ms", type=float, default=None, help="Budget: median latency.")
@click.option("--max-size-kb", type=float, default=None, help="Budget: file size.")
@remote_options
@json_option
def sweep(model, calibration, eval_data, train_data, output, variants, threads, runs, warmup, epochs, input_range,
          max_accuracy_drop, max_latency_ms, max_size_kb, remote, remote_edgelite, ssh_identity, ssh_option, as_json):
    """Build, verify and profile every variant; report accuracy x latency x size x memory and recommend one.

    Writes report.md, report.json, report.csv and pareto.png into --output; rerunning reuses variants
    already built from the same source and options.

    \b
    Example:
      edgelite sweep model.keras --calibration train/ --eval-data val/ --train-data train/ -o sweep/
    """
    from .reports import text_table
    from .sweep import sweep as run_sweep
    budgets = {"max_accuracy_drop": max_accuracy_drop, "max_latency_ms": max_latency_ms, "max_size_kb": max_size_kb}
    report = run_sweep(model, calibration=calibration, eval_data=eval_data, output_dir=output,
                       variants=[v.strip() for v in variants.split(",")] if variants else None,
                       threads=threads, train_data=train_data, epochs=epochs, runs=runs, warmup=warmup,
                       remote=_remote(remote, remote_edgelite, ssh_identity, ssh_option),
                       budgets={k: v for k, v in budgets.items() if v is not None}, input_range=input_range,
                       reporter=_CliReporter(),
                       progress=_progress_line if sys.stderr.isatty() and not as_json else None)
    rec = report.recommendation
    _emit(as_json, report.to_dict(), text_table(report) + f"\n\nrecommendation: {rec.get('choice') or 'none'}: "
          f"{rec['why']}\nreports: " + ", ".join(report.files.values()))
    if not any(r.measured for r in report.rows):
        sys.exit(1)


# -- doctor ----------------------------------------------------------------------------------------
@main.command()
@json_option
def doctor(as_json):
    """Show which backends and delegates work on this machine, and how to install the rest.

    \b
    Example:
      edgelite doctor --json
    """
    from edgelite.runtime.environment import doctor_report
    info = doctor_report()
    _emit(as_json, info, _doctor_text(info))


def _doctor_text(info: dict) -> str:
    mark = {True: "ok", False: "missing"}
    tpu, gpu = info["edgetpu"], info["gpu"]
    lines = [f"python {info['python']} on {info['platform']}",
             "packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v), "", "backends:"]
    lines += [f"  [{mark[b['available']]}] {b['name']} {b['version'] or ''}  {b['detail']}" for b in info["backends"]]
    lines += ["", "delegates:"]
    lines += [f"  [{mark[d['available']]}] {d['name']}  {d['detail']}" for d in info["delegates"]]
    lines += ["", f"Edge TPU: runtime {tpu['runtime_version'] or 'not found'}; devices listed by libedgetpu: "
              f"{', '.join(d['type'] + ' ' + d['path'] for d in tpu['devices']) or 'none'}"]
    lines += [f"  USB {d['id']} {d['what']} at {d['node']}: {'accessible' if d['accessible'] else 'NO PERMISSION'}"
              for d in tpu["usb"]]
    lines += [f"  PCIe {d['node']}: {'accessible' if d['accessible'] else 'NO PERMISSION'}" for d in tpu["pcie"]]
    lines += [f"GPU: OpenCL {gpu['opencl']['detail']}; Vulkan {gpu['vulkan']['detail']}"]
    if info["missing"]:
        lines += ["", "missing, with the command that installs each (Raspberry Pi OS / Debian):"]
        lines += [f"  {m['what']}:\n      {m['install']}" for m in info["missing"]]
    lines.append("\n(Edge TPU and GPU detection is built against the documented interfaces; not verified on hardware)")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    main()
