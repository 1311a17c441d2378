"""Click parameter types for the values edgelite's commands share.

Each type checks its value at parse time, so a malformed value is a usage error (exit 2) that
names the option, before any model is loaded or any work is done.
"""
from __future__ import annotations

import click


class DelegateType(click.ParamType):
    """``--delegate``: auto, cpu, xnnpack, gpu, edgetpu[:usb:N|:pci:N] or external:PATH."""

    name = "delegate"

    def convert(self, value, param, ctx):
        from edgelite.runtime.errors import DelegateError
        from edgelite.runtime.interpreter.delegates import DelegateRequest
        try:
            return str(DelegateRequest.parse(str(value)))
        except DelegateError as exc:
            self.fail(str(exc), param, ctx)


class _CommaSeparated(click.ParamType):
    """A comma-separated value parsed item by item, then checked as a whole; one message form for all."""

    item: type = float
    what = "a number or comma-separated numbers"

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return value
        try:
            values = [self.item(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            self.fail(f"{value!r} is not {self.what}", param, ctx)
        problem = self.problem(values)
        if problem:
            self.fail(f"{value!r}: {problem}", param, ctx)
        return self.result(values)

    def problem(self, values: list) -> str | None:
        return None

    def result(self, values: list):
        return tuple(values)


class FloatsType(_CommaSeparated):
    """One number, or one per channel (three): ``--mean 127.5`` or ``--mean 123.7,116.3,103.5``."""

    name = "M[,M,M]"

    def __init__(self, positive: bool = False):
        self.positive = positive

    def problem(self, values: list) -> str | None:
        if len(values) not in (1, 3):
            return f"has {len(values)} values; give one, or one per channel (3)"
        if any(n != n or n in (float("inf"), float("-inf")) for n in values):
            return "is not finite"
        return "every value must be > 0" if self.positive and any(n <= 0 for n in values) else None


class ThreadListType(_CommaSeparated):
    """``--threads 1,2,4``: thread counts to compare, each >= 1."""

    name, item, what = "N[,N]", int, "a comma-separated list of whole numbers"

    def problem(self, values: list) -> str | None:
        return "thread counts must be >= 1" if not values or any(n < 1 for n in values) else None

    def result(self, values: list):
        return list(values)


class InputShapeType(_CommaSeparated):
    """``--input-shape 48,48,3``: height, width and 1 or 3 channels."""

    name, item, what = "H,W,C", int, "three whole numbers H,W,C"

    def problem(self, values: list) -> str | None:
        if len(values) != 3 or min(values) < 1 or values[2] not in (1, 3):
            return "give height,width,channels with 1 or 3 channels"
        return None


DELEGATE = DelegateType()
INPUT_SHAPE = InputShapeType()
MEAN = FloatsType()
STD = FloatsType(positive=True)
THREAD_LIST = ThreadListType()
SPARSITY = click.FloatRange(0.0, 1.0, max_open=True)


# -- the shared options, each declared once -------------------------------------------------------------
def _declarations() -> dict:
    """name -> (param decls, click.option keywords). Choices and defaults come from the library."""
    from edgelite.converters.options import DEFAULTS, INPUT_RANGES, IO_TYPES, MODES, POLICIES, STRATEGIES, STRUCTURES
    from edgelite.runtime.interpreter.targets import TARGET_NAMES
    from edgelite.runtime.modelfile.input_spec import RESIZE_MODES
    path, d = click.Path(), DEFAULTS
    return {**_data_options(path, d),
            **_conversion_options(d, MODES, IO_TYPES, TARGET_NAMES, INPUT_RANGES, RESIZE_MODES),
            **_pruning_options(d, STRUCTURES, POLICIES, STRATEGIES), **_timing_options(), **_task_options()}


def _task_options() -> dict:
    from edgelite.runtime.tasks.loading import TASKS
    return {
        "task": (("--task",), dict(type=click.Choice(TASKS), default=None, help="What the model does [default: the "
                 "record's; else classify for one [batch, classes] output, else raw outputs by name].")),
        "decoder": (("--decoder",), dict(type=click.Path(dir_okay=False), default=None, help="Detection decoder "
                    "(JSON with MediaPipe's option names); implies --task detect.")),
    }


def _data_options(path, d) -> dict:
    return {
        "calibration": (("--calibration",), dict(type=path, help="Folder of images (found recursively; no labels "
                                                 "needed) to calibrate on.")),
        "calibration_count": (("--calibration-count",), dict(default=d["calibration_count"], show_default=True,
                              type=click.IntRange(min=1), help="Seeded sample of calibration images.")),
        "eval_data": (("--eval-data",), dict(type=path, help="Folder of class subfolders to verify top-1 on.")),
        "train_data": (("--train-data",), dict(type=path, help="Images to fine-tune on: class subfolders for "
                       "pruning a classifier; any images for the ladder's QAT rung.")),
    }


def _conversion_options(d, MODES, IO_TYPES, TARGET_NAMES, INPUT_RANGES, RESIZE_MODES) -> dict:  # noqa: N803
    return {
        "quantize": (("--quantize", "-q"), dict(type=click.Choice(MODES), help="Quantization mode [default: the "
                     "target's: int8; fp16 for --target gpu].")),
        "io": (("--io",), dict(type=click.Choice(IO_TYPES), help="Input/output type of int8 models [default: int8, "
               "and for xnnpack and gpu the ladder may end on a float32-I/O rung, saying so; uint8 for --target "
               "edgetpu, kept; float32 for float models]. Given, it is kept.")),
        "per_tensor": (("--per-tensor",), dict(is_flag=True, help="Per-tensor instead of per-channel weights.")),
        "target": (("--target", "-t"), dict(default=d["target"], show_default=True, type=click.Choice(TARGET_NAMES),
                   help="Where the model will run.")),
        "input_range": (("--input-range",), dict(type=click.Choice(INPUT_RANGES), help="Value range the model "
                        "expects (when it has no leading Rescaling/Normalization layer).")),
        "mean": (("--mean",), dict(type=MEAN, help="Normalization mean on 0..255 pixels (one, or one per channel).")),
        "std": (("--std",), dict(type=STD, help="Normalization std on 0..255 pixels (one, or one per channel).")),
        "force_input_scale": (("--force-input-scale",), dict(is_flag=True, help="Feed a leading Rescaling/"
                              "Normalization layer the scale given even though it was built for raw pixels.")),
        "accept_float_model": (("--accept-float-model",), dict(is_flag=True, help="Convert even when the float "
                               "model itself is near chance on the labelled images or its labels look swapped "
                               "(then a warning).")),
        "resize": (("--resize",), dict(type=click.Choice(RESIZE_MODES), help="How images are fitted to the input "
                   "[default: the model's record; stretch when converting].")),
        "labels": (("--labels",), dict(type=click.Path(dir_okay=False), help="Labels file, one per line [default: "
                   "the model's record, or the class folder names when converting].")),
        "max_accuracy_drop": (("--max-accuracy-drop",), dict(default=d["max_accuracy_drop"], show_default=True,
                              type=click.FloatRange(min=0), help="Budget in points of the task metric lost to "
                              "compression: top-1 on labelled --eval-data, else changed decisions against the float "
                              "model (a flip where the float model's top two lie within the outputs' noise is reported, "
                              "not counted). 1 point is one image in a hundred; with fewer images convert says what "
                              "the set can resolve.")),
        "min_output_snr": (("--min-output-snr",), dict(default=d["min_output_snr"], show_default=True, type=float,
                           metavar="DB", help="Budget: every output must keep this SNR against the float model, judged at "
                           "the low end of what unseen images may give (per-image noise is heavy-tailed). 20 dB is "
                           "noise at 1% of an output's power: full int8 kept 26 dB on fer's emotion CNN and agreed "
                           "on 98% of 50 faces it never saw; MTCNN's ONet heads kept 24-48 dB.")),
    }


def _pruning_options(d, STRUCTURES, POLICIES, STRATEGIES) -> dict:  # noqa: N803
    return {
        "prune": (("--prune",), dict(type=SPARSITY, metavar="SPARSITY", help="Magnitude-prune conv/dense kernels "
                  "to this sparsity in [0, 1) before quantizing.")),
        "epochs": (("--epochs",), dict(default=d["epochs"], show_default=True, type=click.IntRange(min=1),
                   help="Fine-tuning epochs while pruning.")),
        "prune_structure": (("--prune-structure",), dict(default=d["prune_structure"], show_default=True,
                            type=click.Choice(STRUCTURES), help="2:4 zeroes two of every four weights.")),
        "prune_policy": (("--prune-policy",), dict(default=d["prune_policy"], show_default=True,
                         type=click.Choice(POLICIES), help="xnnpack: prune only the 1x1 convolutions XNNPACK's "
                         "sparse kernels accelerate.")),
        "strategy": (("--strategy",), dict(type=click.Choice(STRATEGIES), help="Fine-tune under a tf.distribute "
                     "strategy (MultiWorker needs TF_CONFIG).")),
    }


def _timing_options() -> dict:
    return {
        "threads": (("--threads",), dict(type=THREAD_LIST, help="Interpreter threads; several to compare "
                    "(profile, sweep), e.g. 1,2,4 [default: the backend's].")),
        "runs": (("--runs", "-n"), dict(default=100, show_default=True, type=click.IntRange(min=1),
                 help="Timed runs.")),
        "warmup": (("--warmup",), dict(default=10, show_default=True, type=click.IntRange(min=0),
                   help="Untimed runs first.")),
    }


def use(*names: str, **changes):
    """A decorator adding the named shared options; ``changes`` maps a name to keyword overrides
    (e.g. ``calibration={"required": True}``)."""
    declared = _declarations()

    def decorate(func):
        for name in reversed(names):
            decls, keywords = declared[name]
            func = click.option(*decls, **{**keywords, **changes.get(name, {})})(func)
        return func
    return decorate
