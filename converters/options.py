"""Everything `convert` takes besides the model, checked before any work is done.

Constructing ``ConvertOptions`` validates every path, range, choice and combination and raises
one ConversionError naming the option, before TensorFlow is imported and before pruning
fine-tunes for minutes. Target defaults (quantization, I/O type) are filled in here, from the
Target registry, so later steps never compare target names. The CLI builds its options from
``DEFAULTS`` and the choice tuples below, so the two can never disagree.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from edgelite.converters.errors import ConversionError
from edgelite.runtime.interpreter.targets import TARGET_NAMES, Target, target
from edgelite.runtime.modelfile.input_spec import RANGES, RESIZE_MODES

MODES = ("int8", "fp16", "dynamic", "none", "int16x8")
IO_TYPES = ("int8", "uint8", "float32")
STRUCTURES = ("unstructured", "2:4")
POLICIES = ("all", "xnnpack")
STRATEGIES = ("mirrored", "multiworker")
INPUT_RANGES = tuple(RANGES)
TASKS = ("classify", "detect", "embed", "raw")


def _fail(option: str, problem: str):
    raise ConversionError(f"--{option.replace('_', '-')} {problem}")


def _path(value: Any) -> str | None:
    return None if value is None else os.fspath(value)


@dataclass(frozen=True)
class ConvertOptions:
    """What to convert to and how; see the README for each option. ``quantize`` and ``io`` are
    the resolved values (the target's defaults when not given)."""

    output: str
    calibration: str | None = None
    calibration_count: int = 200
    eval_data: str | None = None
    quantize: str | None = None
    io: str | None = None
    per_tensor: bool = False
    input_range: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    force_input_scale: bool = False       # feed a leading Rescaling/Normalization layer a scale it was not built for
    accept_float_model: bool = False      # convert a float model near chance or with swapped-looking labels anyway
    resize: str = "stretch"
    labels: Any = None                    # a labels file path, or a sequence of names
    target: str = "xnnpack"
    max_accuracy_drop: float = 1.0
    allow_flex: bool = False
    seed: int = 0
    verification: bool = True
    prune: float | None = None
    prune_structure: str = "unstructured"
    prune_policy: str = "all"
    train_data: str | None = None
    epochs: int = 3
    augment: bool = False
    strategy: Any = None                  # "mirrored", "multiworker" or a tf.distribute.Strategy
    learning_rate: float | None = None    # None: 1e-3 fitting labels, 1e-4 fitting the float model's outputs
    batch_size: int = 32
    sparse_encoding: bool = False
    compiler: str | None = None
    compiler_timeout: float = 180.0
    write_standard_metadata: bool = True
    task: str | None = None               # classify, detect, embed or raw; None: inferred from the outputs
    decoder: Any = None                   # detect: a decoder file or dict (MediaPipe's option names)
    min_output_snr: float = 20.0          # dB every output must keep against the float model
    input_shape: tuple[int, int, int] | None = None  # for subclassed models, which record none
    custom_objects: dict | None = None    # passed to Keras when loading a file
    recover: bool = True                  # climb the ladder when the first model is over budget
    ladder: tuple[str, ...] | None = None  # the rungs to try, in order (None: every rung that applies)
    io_given: bool | None = None          # whether --io was given; None: read from ``io`` before it is resolved

    @property
    def io_fixed(self) -> bool:
        """Whether the ladder must keep this I/O type: when the user gave --io, or the target runs no float I/O
        (the Edge TPU). Otherwise a CPU or GPU target may end on a float-I/O rung, and says so."""
        return bool(self.io_given) or "float32" not in self.target_entry.allowed_int8_io

    def __post_init__(self):
        for name in ("output", "calibration", "eval_data", "train_data", "compiler"):
            object.__setattr__(self, name, _path(getattr(self, name)))
        if isinstance(self.labels, os.PathLike):
            object.__setattr__(self, "labels", os.fspath(self.labels))
        if self.decoder is not None:
            object.__setattr__(self, "decoder", _decoder_sections(self.decoder))
            object.__setattr__(self, "task", self.task or "detect")
        if isinstance(self.ladder, str):
            object.__setattr__(self, "ladder", tuple(n.strip() for n in self.ladder.split(",") if n.strip()))
        for check in (_check_choices, _check_numbers, _check_combinations, _check_paths):
            check(self)
        if self.io_given is None:
            object.__setattr__(self, "io_given", self.io is not None)
        entry = self.target_entry
        quantize = self.quantize or entry.default_quantize
        problem = entry.check(quantize, self.io)
        if problem:
            raise ConversionError(problem)
        object.__setattr__(self, "quantize", quantize)
        object.__setattr__(self, "io", entry.io_for(quantize, self.io))
        _check_io(self)

    @property
    def target_entry(self) -> Target:
        return target(self.target)

    def settings(self) -> dict:
        """What goes into the record's provenance (no paths, no objects)."""
        keys = ("task", "min_output_snr", "quantize", "io", "per_tensor", "calibration_count", "input_range", "resize", "target",
                "max_accuracy_drop", "allow_flex", "seed", "prune", "prune_structure", "prune_policy", "epochs",
                "augment", "sparse_encoding")
        return {k: getattr(self, k) for k in keys}


DEFAULTS = {f.name: f.default for f in dataclasses.fields(ConvertOptions) if f.default is not dataclasses.MISSING}


def _decoder_sections(source) -> dict:
    """The decoder as validated JSON sections (read and checked by the runtime's own parser)."""
    from edgelite.runtime.errors import InputError
    from edgelite.runtime.tasks import decoders
    try:
        return decoders.read(source).sections
    except InputError as exc:
        raise ConversionError(str(exc)) from None


def _check_choices(o: ConvertOptions):
    choices = {"task": TASKS, "quantize": MODES, "io": IO_TYPES, "resize": RESIZE_MODES, "target": TARGET_NAMES,
               "input_range": INPUT_RANGES, "prune_structure": STRUCTURES, "prune_policy": POLICIES}
    for name, allowed in choices.items():
        value = getattr(o, name)
        if value is not None and value not in allowed:
            _fail(name, f"{value!r} is not one of {', '.join(allowed)}")
    if isinstance(o.strategy, str) and o.strategy not in STRATEGIES:
        _fail("strategy", f"{o.strategy!r} is not one of {', '.join(STRATEGIES)}")
    from edgelite.converters.ladder.rungs import NAMES
    unknown = [n for n in (o.ladder or ()) if n not in NAMES]
    if unknown or o.ladder == ():
        _fail("ladder", f"{','.join(unknown) or '(empty)'}: name rungs from {', '.join(NAMES)}")


def _check_numbers(o: ConvertOptions):
    whole = {"calibration_count": 1, "epochs": 1, "batch_size": 1}
    for name, low in whole.items():
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            _fail(name, f"must be a whole number >= {low}, got {value!r}")
    positive = {"learning_rate": o.learning_rate, "compiler_timeout": o.compiler_timeout}
    for name, value in positive.items():
        if name == "learning_rate" and value is None:
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            _fail(name, f"must be a positive number, got {value!r}")
    if not isinstance(o.min_output_snr, (int, float)) or not -math.inf < o.min_output_snr < math.inf:
        _fail("min_output_snr", f"must be a number of dB, got {o.min_output_snr!r}")
    if o.input_shape is not None and (len(o.input_shape) != 3 or o.input_shape[2] not in (1, 3) or
                                      not all(isinstance(d, int) and d > 0 for d in o.input_shape)):
        _fail("input_shape", f"takes height,width,channels (channels 1 or 3), got {o.input_shape!r}")
    if not isinstance(o.max_accuracy_drop, (int, float)) or not 0 <= o.max_accuracy_drop < math.inf:
        _fail("max_accuracy_drop", f"must be a number of points >= 0, got {o.max_accuracy_drop!r}")
    if o.prune is not None and not (isinstance(o.prune, (int, float)) and 0.0 <= o.prune < 1.0):
        _fail("prune", f"must be a sparsity in [0, 1), got {o.prune!r}")
    for name in ("mean", "std"):
        value = getattr(o, name)
        if value is not None and (len(value) not in (1, 3) or not all(math.isfinite(v) for v in value)):
            _fail(name, f"takes one finite number or one per channel (3), got {value!r}")
    if o.std is not None and any(v <= 0 for v in o.std):
        _fail("std", f"values must be > 0, got {o.std!r}")


def _check_combinations(o: ConvertOptions):
    if o.prune_structure == "2:4" and o.prune not in (None, 0.0, 0.5):
        raise ConversionError(f"2:4 pruning zeroes exactly half the weights; --prune {o.prune} conflicts with it "
                              "(give --prune 0.5 or leave the structure unstructured)")
    if o.task == "detect" and o.decoder is None:
        raise ConversionError("--task detect needs --decoder FILE (MediaPipe's option names) to decode detections")
    if o.ladder is not None and not o.recover:
        raise ConversionError("--ladder names rungs to try and --no-recover tries none; give one of them")
    if o.input_range is not None and (o.mean is not None or o.std is not None):
        raise ConversionError("give either --input-range or --mean/--std, not both")


def _check_io(o: ConvertOptions):
    if o.io != "float32" and o.quantize != "int8":
        raise ConversionError(f"--io {o.io} applies to int8 models only; {o.quantize} models keep float inputs and "
                              "outputs (use --io float32)")
    if o.per_tensor and o.quantize not in ("int8", "int16x8", "dynamic"):
        raise ConversionError(f"--per-tensor applies to integer weights (int8, int16x8, dynamic); {o.quantize} "
                              "weights are float")


def _check_paths(o: ConvertOptions):
    from edgelite.converters.output.writing import check_writable
    for name, what in (("calibration", "calibration"), ("eval_data", "eval-data"), ("train_data", "train-data")):
        folder = getattr(o, name)
        if folder is not None and not os.path.exists(folder):
            raise ConversionError(f"{folder}: {what} folder does not exist")
        if folder is not None and not os.path.isdir(folder):
            raise ConversionError(f"{folder}: {what} must be a folder of images")
    if isinstance(o.labels, str) and not os.path.isfile(o.labels):
        raise ConversionError(f"{o.labels}: labels file does not exist")
    if o.compiler is not None and not os.path.exists(o.compiler):
        import shutil
        if shutil.which(o.compiler) is None:
            raise ConversionError(f"{o.compiler}: Edge TPU compiler not found or not executable")
    check_writable(o.output)
