"""The `edgelite` command: parse options, call the library, print. Nothing else lives here.

Exit codes: 0 success, 1 an error edgelite explained (one line on stderr), 2 usage error.
Every command takes --json for machine-readable output on stdout.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import pathlib
import sys
import warnings

import click

from edgelite import __version__
from edgelite.cli.draw import draw_detections, picture_names
from edgelite.cli.limits import MIN_TOKEN, VIEWERS
from edgelite.cli.params import DELEGATE, INPUT_SHAPE, use
from edgelite.cli.report import (
    check_text,
    comparison_text,
    conventions_text,
    convert_text,
    doctor_text,
    example_text,
    inspect_text,
    over_budget,
    profile_table,
    stages_table,
    task_text,
    text_table,
)
from edgelite.converters.options import DEFAULTS
from edgelite.runtime.video import sources


class _Failure(click.ClickException):
    """An explained error: ``error: <message>`` on stderr, exit 1 (same form as per-item errors)."""

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True)


# The option groups of the long commands' --help, by the options' names; an option named nowhere here is listed
# under "Other options". One table, so a new option's place is decided once.
RUN = ("threads", "trust", "delegate", "fallback", "backend")
SPEC = ("labels", "mean", "std", "resize")
TASK = ("task", "decoder")
REMOTE = ("remote", "devices_file", "remote_edgelite", "ssh_identity", "ssh_option")
SECTIONS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "convert": (("Images", ("calibration", "calibration_count", "eval_data", "labels", "seed")),
                ("The input contract", ("input_range", "mean", "std", "force_input_scale", "resize", "input_shape",
                                        "accept_float_model")),
                ("Quantization and target", ("quantize", "io", "per_tensor", "target", "allow_flex", "compiler",
                                             "compiler_timeout", "sparse_encoding", "write_standard_metadata")),
                ("Verification and budgets", ("verification", "max_accuracy_drop", "min_output_snr", *TASK,
                                              "recover", "ladder")),
                ("Pruning and fine-tuning", ("prune", "train_data", "epochs", "prune_structure", "prune_policy",
                                             "strategy", "augment", "learning_rate", "batch_size"))),
    "predict": (("Running the model", RUN), ("Preprocessing", (*SPEC, "exact")), ("The task", TASK),
                ("Output", ("top_k", "draw", "jsonl", "reference")), ("On a Ray cluster", ("ray_address", "workers"))),
    "stream": (("Running the model", RUN), ("Preprocessing", SPEC), ("The task", TASK),
               ("The source", ("realtime", "speed", "every_frame", "frames", "duration", "timeout", "reconnect",
                               "max_frame_mb")),
               ("Output and the live page", ("jsonl", "draw", "serve", "token", "viewers"))),
    "profile": (("Measuring", ("runs", "warmup", "duration", "images", "isolate")), ("Running the model", RUN),
                ("The task", TASK), ("On devices over SSH", REMOTE)),
    "sweep": (("Images", ("calibration", "eval_data", "train_data", "input_range")),
              ("Variants and timing", ("output", "variants", "threads", "runs", "warmup", "epochs", "jsonl")),
              ("Budgets", ("max_accuracy_drop", "min_output_snr", "max_latency_ms", "max_size_kb", *TASK)),
              ("On devices over SSH", REMOTE), ("On a Ray cluster", ("ray_address",))),
}


class _Sectioned(click.Command):
    """A command whose --help lists its options in the groups SECTIONS gives it."""

    def format_options(self, ctx, formatter) -> None:
        rows = {p.name: p.get_help_record(ctx) for p in self.get_params(ctx)}
        placed: set = set()
        for title, names in SECTIONS.get(self.name or "", ()):
            records = [rows[n] for n in names if rows.get(n)]
            placed.update(names)
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)
        rest = [record for name, record in rows.items() if record and name not in placed]
        with formatter.section("Other options" if placed else "Options"):
            formatter.write_dl(rest)


class _Group(click.Group):
    """Lists the commands in the order people use them, and turns edgelite's own errors into one line and
    exit 1, at the edge only."""

    command_class = _Sectioned

    ORDER = ("example", "convert", "check", "check-input", "inspect", "predict", "stream", "profile", "sweep",
             "doctor")

    def list_commands(self, ctx):
        return sorted(super().list_commands(ctx), key=lambda n: (self.ORDER.index(n) if n in self.ORDER else 99, n))

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


def _trust(ctx, param, value):
    if value:
        os.environ["EDGELITE_TRUST"] = "1"  # read by the runtime's sandbox, inherited by profiling workers
    return value


def trust_option(func):
    """--trust: load model files in this process at once, without the sandboxed first load."""
    return click.option("--trust", is_flag=True, expose_value=False, callback=_trust,
                        help="Skip the sandboxed first load of model files (for models you made yourself).")(func)


def backend_option(func):
    """--backend: which TFLite implementation runs the model (declared once, for every command that loads one)."""
    return click.option("--backend", default=None, metavar="NAME", envvar="EDGELITE_BACKEND",
                        help="ai_edge_litert, tflite_runtime or tensorflow (default: first installed).")(func)


def runtime_options(func):
    """Options every command that loads a model shares."""
    options = [
        trust_option,
        click.option("--delegate", "-d", default="auto", show_default=True, type=DELEGATE, metavar="D",
                     help="auto, cpu, xnnpack, gpu, edgetpu[:usb:0|:pci:0] or external:PATH."),
        click.option("--fallback", is_flag=True, help="If the delegate cannot load, fall back to XNNPACK/CPU "
                                                      "(the reason is recorded) instead of failing."),
        backend_option,
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), func)


def ray_option(func):
    """--ray ADDRESS: run the command's work on a Ray cluster (declared once, for every command that can)."""
    return click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
                        help="Run on a Ray cluster: host:port of its head, auto (RAY_ADDRESS) or local (a private "
                             "Ray for this run). Needs edgelite[ray]; without it everything runs here.")(func)


def remote_options(func):
    """Options for profiling on devices over SSH: one or several hosts, or a devices file."""
    options = [
        click.option("--remote", metavar="USER@HOST[:PORT]", multiple=True,
                     help="Profile on this device over SSH (key authentication); it needs edgelite[litert] only. "
                          "Repeat it for several devices: they run at the same time."),
        click.option("--devices", "devices_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                     help="A TOML file of [[device]] tables (name, host, labels, edgelite, identity, ssh_options): "
                          "profile on all of them at the same time."),
        click.option("--remote-edgelite", default="edgelite", show_default=True,
                     help="The edgelite command on the device (e.g. ~/venv/bin/edgelite)."),
        click.option("--ssh-identity", type=click.Path(), default=None, help="Private key for SSH."),
        click.option("--ssh-option", multiple=True, metavar="KEY=VALUE", help="Extra ssh -o options (repeatable)."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), func)


def _devices(remote, devices_file, remote_edgelite, ssh_identity, ssh_option) -> tuple:
    """The devices the remote options name (none: run here). A devices file and --remote do not mix."""
    from edgelite.scale.fleet import devices_from_hosts, read_devices
    from edgelite.scale.remote import Remote
    if devices_file and remote:
        raise click.UsageError("give --remote or --devices, not both")
    if devices_file:
        return read_devices(devices_file)
    return devices_from_hosts([Remote(r, remote_edgelite, ssh_identity, tuple(ssh_option)) for r in remote])


def _one_device(devices):
    """The sweep's timing device (none: here). Its recommendation ranks one device's latencies."""
    if len(devices) > 1:
        raise click.UsageError("a sweep times its variants on one device; give one --remote (profile the chosen "
                               "model across the fleet with edgelite profile --devices)")
    return devices[0].remote if devices else None


def _emit(as_json: bool, payload, human: str):
    click.echo(json.dumps(payload, indent=2, default=str) if as_json else human)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgelite")
def main():
    """Convert, inspect, run (still images and live video) and profile TFLite vision models on edge devices.

    \b
    Example:
      edgelite predict model.tflite photo.jpg --top-k 3
    """
    warnings.filterwarnings("ignore", category=Warning, module="PIL")


# -- example ---------------------------------------------------------------------------------------
@main.command(short_help="Write an example to start from: real images, a model.")
@click.argument("name", type=click.Choice(["digits"]))
@click.argument("folder", type=click.Path(file_okay=False, path_type=pathlib.Path))
@use("epochs", epochs={"default": 10, "help": "Epochs to train the example model for."})
@click.option("--no-model", is_flag=True, help="Write the image folders only (no TensorFlow needed).")
@json_option
def example(name, folder, epochs, no_model, as_json):
    """Write the digits example into FOLDER (new or empty): 1,797 real handwritten digit scans in train/ and
    eval/ (a folder per digit) and a small Keras CNN trained on train/, digits.keras. Nothing is downloaded;
    training needs the convert extra.

    \b
    Example:
      edgelite example digits work/
      edgelite convert work/digits.keras -o work/digits_int8.tflite --calibration work/train --eval-data work/eval
    """
    from edgelite.examples import digits
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise _Failure(f"{folder}: exists and is not an empty folder; name a new one (nothing was written)")
    if not no_model:
        from edgelite.converters.tf import tensorflow
        tensorflow()  # before anything is written: a device without TensorFlow is told so, and nothing is left
    written = digits.write_folders(folder)
    if not no_model:
        from edgelite.runtime.interpreter.native_log import captured_native_stderr
        with captured_native_stderr():  # TensorFlow's device probes (CUDA) on fd 2 when training starts
            written = digits.train(written, folder / "digits.keras", epochs)
    _emit(as_json, {**dataclasses.asdict(written), "data": digits.SOURCE}, example_text(written, epochs))


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


@main.command(short_help="Keras model -> pruned, int8, verified .tflite.")
@click.argument("model", type=click.Path())
@click.option("--output", "-o", required=True, type=click.Path(), help="The .tflite file to write (atomically).")
@use("calibration", "calibration_count", "eval_data", "quantize", "io", "per_tensor", "input_range", "mean", "std",
     "force_input_scale", "resize", "labels", "accept_float_model", "target", "max_accuracy_drop",
     resize={"default": "stretch", "show_default": True, "help": "How images are fitted to the input."})
@click.option("--allow-flex", is_flag=True, help="Allow TensorFlow (Flex) ops; the device then needs the Flex delegate.")
@click.option("--seed", default=DEFAULTS["seed"], show_default=True, type=int,
              help="Seed for sampling calibration images.")
@click.option("--verify/--no-verify", "verification", default=True, help="Measure what conversion cost.")
@use("prune", "train_data", "epochs", "prune_structure", "prune_policy", "strategy")
@click.option("--augment", is_flag=True, help="Flips, small rotations, shifts and brightness while fine-tuning.")
@click.option("--learning-rate", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Fine-tuning learning rate [default: 1e-3 fitting labels, 1e-4 fitting the float model's "
                   "outputs].")
@click.option("--batch-size", default=DEFAULTS["batch_size"], show_default=True, type=click.IntRange(min=1),
              help="Fine-tuning batch size.")
@click.option("--sparse-encoding", is_flag=True,
              help="Store pruned weights sparsely (smaller file); kept only if the result runs under the target.")
@click.option("--compiler", type=click.Path(), default=None,
              help="edgetpu_compiler to run for --target edgetpu [default: the one on PATH, if any].")
@click.option("--compiler-timeout", default=DEFAULTS["compiler_timeout"], show_default=True,
              type=click.FloatRange(min=1), help="Seconds the Edge TPU compiler may take.")
@use("task", "decoder", task={"help": "What the model does [default: classify when it has one [batch, classes] "
                                       "output, else raw]; every output is verified either way."},
     decoder={"help": "Detection decoder (JSON, MediaPipe's option names): implies --task detect, verifies "
                      "detections and goes into the record, so the device needs no flags."})
@use("min_output_snr")
@click.option("--input-shape", type=INPUT_SHAPE, default=None,
              help="H,W,C for a subclassed model, which records no input shape.")
@click.option("--recover/--no-recover", default=DEFAULTS["recover"], show_default=True,
              help="Over budget, climb the ladder of alternatives (per-tensor, more calibration, float layers, "
                   "16x8, dynamic, fp16) where the target and --io allow them.")
@click.option("--ladder", default=None, metavar="RUNG[,RUNG]", help="The rungs to try, in order: "
              "int8, int8-per-tensor, int8-more-calibration, float-fallback, int16x8, dynamic, fp16 (naming a "
              "float-I/O rung allows it).")
@click.option("--standard-metadata/--no-standard-metadata", "write_standard_metadata", default=True,
              show_default=True, help="Also write the standard TFLite metadata (MediaPipe's writers) when available.")
@json_option
def convert(model, output, as_json, **options):
    """Convert a model (Keras .keras, .h5, SavedModel; PyTorch .pt2; ONNX .onnx) to a verified .tflite with its
    record.

    \b
    Example:
      edgelite convert model.keras --calibration images/ --eval-data val/ -o model.tflite
      edgelite convert detector.onnx --input-shape 320,320,3 --input-range 0,1 --calibration images/ -o det.tflite
    """
    from edgelite.converters import convert as run_convert
    result = run_convert(model, output=output, reporter=_CliReporter(), **options)
    budget = options["max_accuracy_drop"]
    _emit(as_json, result.to_dict(), convert_text(result, budget, options["min_output_snr"]))
    if not result.within_budget and result.verification is not None:
        why = over_budget(result.verification, budget, options["min_output_snr"])
        click.echo(f"error: {model}: {why}; the model was kept as {result.output}", err=True)
        sys.exit(1)


# -- check -----------------------------------------------------------------------------------------
@main.command(short_help="Which ops a target runs, before converting.")
@click.argument("model", type=click.Path())
@use("target", "calibration", "input_range", target={"required": True, "default": None, "show_default": False})
@trust_option
@json_option
def check(model, target, calibration, input_range, as_json):
    """Pre-flight: which ops the target runs and which fall back to the CPU, op by op.

    A .tflite is checked as it is; a Keras model is converted for the target first.

    \b
    Example:
      edgelite check model.tflite --target edgetpu
    """
    from edgelite.runtime.interpreter.compatibility import check_model
    if model.endswith(".tflite"):
        report = check_model(model, target)
    else:
        from edgelite.converters.pipeline import check_keras
        report = check_keras(model, target, calibration=calibration, input_range=input_range)
    _emit(as_json, report, check_text(report))


# -- check-input -----------------------------------------------------------------------------------
@main.command("check-input", short_help="Which input scale a classifier was trained on.")
@click.argument("model", type=click.Path(dir_okay=True))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=True))
@use("input_range", "mean", "std")
@click.option("--count", default=64, show_default=True, type=click.IntRange(min=8), help="Images to compare on "
              "(a seeded sample).")
@json_option
def check_input(model, images, input_range, mean, std, count, as_json):
    """Which input scale a classifier's answers say it was trained with (no labels needed).

    Runs the float model on the images under each usual convention (0,1; -1,1; 0,255; ImageNet's mean/std;
    each in BGR too) and compares how much its answers say about the images. A hint, with how sure it is:
    a Keras model (needs the convert extra) or a float-input .tflite.

    \b
    Example:
      edgelite check-input model.keras images/ --input-range 0,255
    """
    import numpy as np

    from edgelite.runtime.modelfile.files import expand_images
    if input_range and (mean or std):
        raise click.UsageError("give either --input-range or --mean/--std, not both")
    from edgelite.runtime.errors import InputError
    from edgelite.runtime.tasks.conventions import MIN_IMAGES
    found = expand_images(images)
    if len(found) < MIN_IMAGES:
        raise InputError(f"{len(found)} image(s) given: the convention check compares answers over at least "
                         f"{MIN_IMAGES} images of several classes")
    picked = [found[i] for i in sorted(np.random.default_rng(0).permutation(len(found))[:count])]
    if model.endswith(".tflite"):
        from edgelite.runtime.modelfile.input_spec import range_normalization
        from edgelite.runtime.tasks.conventions import check_file
        if input_range:
            mean, std = range_normalization(input_range)
        result = check_file(model, picked, mean=mean, std=std)
    else:
        from edgelite.converters.verify.float_model import check_keras_input
        result = check_keras_input(model, picked, input_range=input_range, mean=mean, std=std)
    if result is None:
        raise InputError(f"{model}: no output scores three or more classes: the convention check applies to "
                         "classifiers (and softmax heads) of 3+ classes")
    _emit(as_json, result.to_dict(), conventions_text(result))


# -- inspect ---------------------------------------------------------------------------------------
@main.command(short_help="A model's tensors, record and verification.")
@click.argument("model", type=click.Path(dir_okay=True))
@backend_option
@trust_option
@json_option
def inspect(model, backend, as_json):
    """Show a model's tensors, quantization, operators, metadata and size.

    \b
    Example:
      edgelite inspect examples/models/digits_int8.tflite --json
    """
    from edgelite.runtime.modelfile.inspection import inspect_model
    info = inspect_model(model, backend=backend)
    _emit(as_json, info, inspect_text(info))


# -- predict ---------------------------------------------------------------------------------------
@main.command(short_help="Classify, detect or embed images.")
@click.argument("model", type=click.Path(dir_okay=True))
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--top-k", "-k", default=5, show_default=True, type=click.IntRange(min=1), help="Classes per image.")
@use("threads", threads={"help": "Interpreter threads [default: the backend's].", "metavar": "N"})
@runtime_options
@use("labels", "mean", "std", "resize")
@click.option("--exact", is_flag=True, help="Decode large JPEGs at full size (no reduced-scale fast path).")
@use("task", "decoder")
@click.option("--draw", type=click.Path(file_okay=False), default=None,
              help="Write each image with its boxes and keypoints drawn into this folder (detectors).")
@click.option("--jsonl", is_flag=True, help="One JSON object per line, each printed as its image finishes.")
@click.option("--compare", "reference", type=click.Path(dir_okay=True), default=None, metavar="OTHER.tflite",
              help="Run OTHER (the model in the field, or the float model) on the same images too and report how "
                   "far MODEL is from it: agreement of the task's decisions (95% interval), each output's SNR and "
                   "cosine, and the images where the two differ.")
@ray_option
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With --ray: prediction workers, one CPU each [default: the cluster's CPUs].")
@json_option
def predict(model, images, top_k, threads, delegate, fallback, backend, labels, mean, std, resize, exact, task,
            decoder, draw, jsonl, reference, ray_address, workers, as_json):
    """Run a model on images: classes, detections, embeddings or raw outputs; preprocessing from the record.

    \b
    Example:
      edgelite predict examples/models/digits_int8.tflite examples/images/*.png --top-k 3
      edgelite predict face.tflite photo.jpg --decoder examples/decoders/face_detection_short_range.json
      edgelite predict new.tflite photos/ --compare field.tflite     # before replacing a model
    """
    from edgelite.runtime.tasks.loading import load
    images = _predict_inputs(images, threads, draw, reference, ray_address, workers)
    load_options = dict(delegate=delegate, backend=backend, fallback=fallback, fast=not exact, labels=labels, mean=mean,
                        std=std, resize=resize, task=task, decoder=decoder)
    if ray_address:
        _predict_on_ray(ray_address, model, images, workers, jsonl, as_json, top_k, reference,
                        {**load_options, "threads": threads[0] if threads else 1})
        return
    clf = load(model, threads=threads[0] if threads else None, **load_options)
    clf.warm_up()
    if reference:
        _compare_here(clf, load(reference, threads=threads[0] if threads else None, **load_options), images,
                      {"top_k": top_k} if clf.task == "classify" else {}, jsonl, as_json)
        return
    if draw and clf.task != "detect":
        hint = "; give --decoder FILE to decode a detector's raw outputs" if clf.task == "raw" else ""
        raise click.UsageError(f"--draw draws a detector's boxes, and {model} runs as {clf.task}{hint}")
    header = {"model": clf.path, "task": clf.task, "assumed_task": getattr(clf, "assumed_task", None),
              "delegate": clf.delegate.to_dict()}
    names = picture_names(images)
    after = (lambda image, result: draw_detections(image, result, draw, names[image])) if draw else None
    options = {"top_k": top_k} if clf.task == "classify" else {}
    _report_each(clf.run_many(images, **options), task_text, header, as_json, jsonl, after)


def _predict_inputs(images, threads, draw, reference, ray_address, workers) -> list[str]:
    """predict's images, once its options are known to fit together (usage errors, exit 2)."""
    from edgelite.runtime.modelfile.files import expand_images
    if threads and len(threads) > 1:
        raise click.BadParameter("predict runs one thread count", param_hint="--threads")
    if workers and not ray_address:
        raise click.UsageError("--workers sets Ray's prediction workers; give --ray ADDRESS too")
    if draw and (ray_address or reference):
        raise click.UsageError(f"--draw draws one model's boxes here; run it without "
                               f"{'--ray' if ray_address else '--compare'}")
    found = expand_images(images)
    if not found:
        raise click.UsageError("no images found in the folders given (looked below them for image files)")
    return found


def _predict_on_ray(address, model, images, workers, jsonl, as_json, top_k, reference, load_options) -> None:
    """predict's local output, from Ray Data workers: each loads the model once (the header's task from here)."""
    from edgelite.runtime.tasks.compare import check_comparable
    from edgelite.runtime.tasks.loading import load
    from edgelite.scale.batch import predict_on_ray
    from edgelite.scale.cluster import connect
    from edgelite.scale.progress import Progress
    here = load(model, **{**load_options, "threads": 1})  # checks the model (sandboxed) before a cluster is asked
    other = load(reference, **{**load_options, "threads": 1}) if reference else None
    if other is not None:
        check_comparable(here, other)
    header = {"model": here.path, "task": here.task, "assumed_task": getattr(here, "assumed_task", None),
              "delegate": here.delegate.to_dict()}
    options = {"top_k": top_k} if here.task == "classify" else {}
    with connect(address) as cluster, Progress("images", len(images), jsonl=False) as progress:
        header["ray"] = cluster.to_dict()
        outcomes = predict_on_ray(model, images, workers=workers, load_options=load_options, run_options=options,
                                  on_event=progress.event, reference=reference)
        if other is not None:
            _report_comparison(here, other, outcomes, jsonl, as_json, header["ray"])
        else:
            _report_each(outcomes, task_text, header, as_json, jsonl)


def _compare_here(model, reference, images, options: dict, jsonl: bool, as_json: bool) -> None:
    """``predict --compare`` on this machine: both task objects on each image, one after the other."""
    from edgelite.runtime.errors import InputError
    from edgelite.runtime.tasks.compare import check_comparable, pair
    from edgelite.scale.progress import Progress
    check_comparable(model, reference)

    def outcomes(progress):
        for image in images:
            try:
                outcome: object = pair(model, reference, image, options)
            except InputError as exc:
                outcome = exc
            progress.event({"event": "finished", "status": "failed" if isinstance(outcome, Exception) else "ok"})
            yield image, outcome
    with Progress("images", len(images)) as progress:
        _report_comparison(model, reference, outcomes(progress), jsonl, as_json)


def _report_comparison(model, reference, outcomes, jsonl: bool, as_json: bool, ray: dict | None = None) -> None:
    """The comparison's report (text, one JSON document, or a JSON line per image and the summary last); each
    image either model could not run is an error line, and exits 1 at the end."""
    from edgelite.runtime.tasks.compare import summarize
    pairs, failures = [], 0
    for image, outcome in outcomes:
        if isinstance(outcome, Exception):
            failures += 1
            if jsonl:
                click.echo(json.dumps({"source": image, "error": str(outcome)}))
            else:
                click.echo(f"error: {outcome}", err=True)
            continue
        pairs.append(outcome)
        if jsonl:
            click.echo(json.dumps({"source": outcome.source, "agree": outcome.agree, "why": outcome.why or None}))
    comparison = summarize(model, reference, pairs)
    data = {**comparison.to_dict(), **({"ray": ray} if ray else {}), "failed": failures}
    if jsonl:
        click.echo(json.dumps({"summary": data}))
    else:
        _emit(as_json, data, comparison_text(comparison))
    if failures:
        sys.exit(1)


def _report_each(outcomes, render, header: dict, as_json: bool, jsonl: bool, after=None) -> None:
    """Prints every result it can (a block, a JSON document or one JSON line each) and each bad image on a line
    of its own; exits 1 if any failed."""
    results, failures = [], 0
    for image, outcome in outcomes:
        failed = isinstance(outcome, Exception)
        failures += failed
        if after is not None and not failed:
            after(image, outcome)
        item = {"source": image, "error": str(outcome)} if failed else outcome.to_dict()
        if jsonl:
            click.echo(json.dumps(item))
        elif as_json:
            results.append(item)
        elif failed:
            click.echo(f"error: {outcome}", err=True)
        else:
            click.echo(render(outcome))
    if as_json and not jsonl:
        _emit(True, {**header, "results": results}, "")
    if failures:
        sys.exit(1)


# -- profile ---------------------------------------------------------------------------------------
@main.command(short_help="Load time and latency, here or on devices.")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=True))
@use("runs", "warmup")
@click.option("--duration", default=None, type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Time runs for this long instead of --runs.")
@use("threads")
@runtime_options
@click.option("--image", "images", multiple=True, type=click.Path(dir_okay=True),
              help="Profile end to end on this image (repeatable): adds the per-stage breakdown (decode, resize, "
                   "quantize, invoke, and the task's post-processing).")
@use("task", "decoder")
@click.option("--isolate/--no-isolate", default=None,
              help="Profile each configuration in its own process so memory figures are its own "
                   "[default: on when comparing several].")
@remote_options
@json_option
def profile(models, runs, warmup, duration, threads, delegate, fallback, backend, images, task, decoder, isolate,
            remote, devices_file, remote_edgelite, ssh_identity, ssh_option, as_json):
    """Measure load time, first invoke, latency distribution, stages and memory.

    \b
    Example:
      edgelite profile examples/models/digits_int8.tflite --threads 1,2 --runs 200 --json
      edgelite profile model.tflite --devices boards.toml
    """
    from edgelite.runtime.interpreter.profiler import profile as run_profile
    counts = threads or [None]
    devices = _devices(remote, devices_file, remote_edgelite, ssh_identity, ssh_option)
    if devices_file or len(devices) > 1:
        _profile_fleet(devices, models, counts, as_json, runs=runs, warmup=warmup, delegate=delegate,
                       duration_s=duration)
        return
    if devices:
        report = devices[0].remote.profile_many(models, counts, runs=runs, warmup=warmup, delegate=delegate,
                                                duration_s=duration)
    else:
        report = run_profile(list(models), threads=counts, isolate=isolate, delegate=delegate, runs=runs, warmup=warmup,
                         duration_s=duration, images=list(images) or None, backend=backend, fallback=fallback,
                         task=task, decoder=decoder,
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


def _profile_fleet(devices, models, counts, as_json: bool, **options) -> None:
    """Every model on every device at once; exit 1 unless every device answered."""
    from edgelite.cli.report import fleet_text
    from edgelite.scale.fleet import profile_fleet
    from edgelite.scale.progress import Progress
    with Progress("devices", len(devices), jsonl=False) as progress:
        report = profile_fleet(devices, models, counts, on_event=progress.event, **options)
    _emit(as_json, report.to_dict(), fleet_text(report))
    for run in report.runs:
        for err in run.errors:
            click.echo(f"error: {run.device.name}: {err['error']}", err=True)
    if not report.all_answered:
        sys.exit(1)


def _progress_line(what: str):
    click.echo(f"profiling {what} ...", err=True)


def _profile_json(report) -> dict:
    """The report, plus the first result's fields at top level when there is exactly one."""
    data = report.to_dict()
    if len(report.results) == 1:
        data.update(report.results[0].to_dict())
    return data


# -- stream ----------------------------------------------------------------------------------------
@main.command(short_help="Run a model on live video; serve a live page.")
@click.argument("model", type=click.Path())
@click.argument("source")
@use("threads", threads={"help": "Interpreter threads [default: the backend's].", "metavar": "N"})
@runtime_options
@use("labels", "mean", "std", "resize", "task", "decoder")
@click.option("--realtime", is_flag=True, help="Replay a file at its own frame rate as a camera would produce it "
              "(live mode: newest frame wins, older ones are dropped and counted).")
@click.option("--speed", type=click.FloatRange(min=0.01, max=1000), default=1.0, show_default=True,
              help="With --realtime: replay at this multiple of the file's frame rate.")
@click.option("--every-frame", "every_frame", is_flag=True,
              help="Process every frame even from a live source (latency then grows when the model is slower).")
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Stop after this many processed frames.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, metavar="S",
              help="Stop after this many seconds.")
@click.option("--jsonl", is_flag=True, help="One JSON object per processed frame, then a summary line.")
@click.option("--draw", type=click.Path(dir_okay=False), default=None, metavar="OUT.mp4",
              help="Write the annotated video to this file.")
@click.option("--serve", default=None, metavar="HOST:PORT", help="Serve a live page (video and figures); "
              "127.0.0.1 unless told otherwise, and any other address needs --token.")
@click.option("--token", default=None, envvar="EDGELITE_LIVE_TOKEN", show_envvar=True,
              help=f"The token the live page requires; off loopback at least {MIN_TOKEN} characters. The environment "
              "variable keeps it out of ps.")
@click.option("--viewers", type=click.IntRange(min=1, max=32), default=VIEWERS, show_default=True,
              help="Video viewers the live page serves at once (503 beyond).")
@click.option("--timeout", type=click.FloatRange(min=0.1, max=600), default=10.0, show_default=True, metavar="S",
              help="Seconds a camera or network source may take to open, then to deliver each packet.")
@click.option("--reconnect", type=click.FloatRange(min=0, max=86400), default=0, show_default=True, metavar="S",
              help="A network camera that drops is opened again, with growing waits, for up to S seconds (0: the "
              "run ends with the camera). Files never reconnect.")
@click.option("--max-frame-mb", type=click.FloatRange(min=1, max=4096), default=sources.FRAME_CEILING_MB, show_default=True,
              metavar="MB", help="The most one compressed frame may take (and any one allocation of the decoder); a "
              "frame is also refused above twice a raw frame of the stream's size.")
@json_option
def stream(model, source, threads, delegate, fallback, backend, labels, mean, std, resize, task, decoder, realtime,
           speed, every_frame, frames, duration, jsonl, draw, serve, token, viewers, timeout, reconnect, max_frame_mb,
           as_json):
    """Run a model on live video: a file, a folder of images, a camera, a network stream or the Pi camera.

    SOURCE is a video file (mp4, mkv, avi, mjpeg), a folder or glob of images, /dev/videoN or a camera
    index, an rtsp://, http:// (MJPEG and more) or tcp:// URL, or picamera2. Cameras, streams and
    --realtime files run live (newest frame first, bounded latency); files and folders run every frame.

    \b
    Example:
      edgelite stream face.tflite street.mp4 --decoder face.json --realtime --serve 127.0.0.1:8080
      edgelite stream model.tflite /dev/video0 --jsonl --duration 60
    """
    from edgelite.cli.watch import Outputs, check_outputs, watch
    from edgelite.runtime.tasks.loading import load
    from edgelite.runtime.video.stream import RunningMode, Stream
    if threads and len(threads) > 1:
        raise click.BadParameter("stream runs one thread count", param_hint="--threads")
    outputs = Outputs(jsonl=jsonl, draw=draw, serve=serve, token=token, viewers=viewers)
    check_outputs(outputs)
    clf = load(model, delegate=delegate, threads=threads[0] if threads else None, backend=backend,
               fallback=fallback, labels=labels, mean=mean, std=std, resize=resize, task=task, decoder=decoder)
    try:
        opened = sources.open_source(source, realtime=speed if realtime else None, timeout=timeout,
                                     size=None if (draw or serve) else clf.input_spec, max_frame_mb=max_frame_mb,
                                     reconnect=reconnect)
    except sources.UsageError as exc:
        raise click.UsageError(str(exc)) from None
    run = Stream(clf, opened, mode=RunningMode.VIDEO if every_frame else None, frames=frames, duration=duration)
    summary = watch(run, outputs)
    _end_of_stream(summary, jsonl, as_json)


def _end_of_stream(summary, jsonl: bool, as_json: bool) -> None:
    """The summary (a JSON line after --jsonl's frames, else text or --json), the warning, and the error's exit."""
    from edgelite.cli.watch import summary_text
    if jsonl:
        click.echo(json.dumps({"summary": summary.to_dict()}))
    else:
        _emit(as_json, {"summary": summary.to_dict()}, summary_text(summary))
    if summary.warning:
        click.echo(f"warning: {summary.warning}", err=True)
    if summary.error:
        click.echo(f"error: {summary.error}", err=True)
        sys.exit(1)


# -- sweep -----------------------------------------------------------------------------------------
@main.command(short_help="Build, verify and rank every variant.")
@click.argument("model", type=click.Path())
@use("calibration", "eval_data", "train_data", calibration={"required": True})
@click.option("--output", "-o", default="sweep", show_default=True, type=click.Path(), help="Report folder.")
@click.option("--variants", default=None, metavar="A,B,...",
              help="fp32, fp16, dynamic, int8, int8-per-tensor, prune50-int8, prune75-int8 [default: all that "
                   "apply; the prune variants need --train-data].")
@use("threads", "runs", "warmup", "epochs", "input_range", "task", "decoder", "max_accuracy_drop", "min_output_snr")
@click.option("--max-latency-ms", type=float, default=None, help="Budget: median latency.")
@click.option("--max-size-kb", type=float, default=None, help="Budget: file size.")
@remote_options
@ray_option
@click.option("--jsonl", is_flag=True, help="Progress as JSON lines on stdout (variants started, finished, "
              "failed, retried), then the report as one JSON line.")
@json_option
def sweep(model, calibration, eval_data, train_data, output, variants, threads, runs, warmup, epochs, input_range,
          task, decoder, max_accuracy_drop, min_output_snr, max_latency_ms, max_size_kb, remote, devices_file,
          remote_edgelite, ssh_identity, ssh_option, ray_address, jsonl, as_json):
    """Build, verify and profile every variant; report accuracy x latency x size x memory and recommend one.

    Writes report.md, report.json, report.csv and pareto.png into --output; rerunning reuses variants
    already built from the same source and options.

    \b
    Example:
      edgelite sweep model.keras --calibration train/ --eval-data val/ --train-data train/ -o sweep/
    """
    from edgelite.scale.progress import Progress
    from edgelite.sweep.run import _variant_names
    from edgelite.sweep.run import sweep as run_sweep
    budgets = {"max_accuracy_drop": max_accuracy_drop, "min_output_snr": min_output_snr, "max_latency_ms": max_latency_ms,
               "max_size_kb": max_size_kb}
    chosen = [v.strip() for v in variants.split(",")] if variants else None
    with Progress("variants", len(_variant_names(chosen, train_data)), jsonl=jsonl) as progress:
        report = run_sweep(model, calibration=calibration, eval_data=eval_data, output_dir=output,
                           variants=chosen, threads=threads or [None], train_data=train_data, epochs=epochs, runs=runs, warmup=warmup,
                           remote=_one_device(_devices(remote, devices_file, remote_edgelite, ssh_identity, ssh_option)),
                           budgets={k: v for k, v in budgets.items() if v is not None}, input_range=input_range,
                           task=task, decoder=decoder, ray_address=ray_address, on_event=progress.event,
                           reporter=_CliReporter())
    rec = report.recommendation
    if jsonl:
        click.echo(json.dumps({"report": report.to_dict()}, default=str))
        if not any(r.measured for r in report.rows):
            sys.exit(1)
        return
    _emit(as_json, report.to_dict(), text_table(report) + f"\n\nrecommendation: {rec.get('choice') or 'none'}: "
          f"{rec['why']}\nreports: " + ", ".join(report.files.values()))
    if not any(r.measured for r in report.rows):
        sys.exit(1)


# -- doctor ----------------------------------------------------------------------------------------
@main.command(short_help="What this machine can run, what to install.")
@json_option
def doctor(as_json):
    """Show which backends and delegates work on this machine, and how to install the rest.

    \b
    Example:
      edgelite doctor --json
    """
    from edgelite.runtime.interpreter.environment import doctor_report
    info = doctor_report()
    _emit(as_json, info, doctor_text(info))


if __name__ == "__main__":  # pragma: no cover
    main()
