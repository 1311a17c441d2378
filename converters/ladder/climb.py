"""When the model asked for is over budget: a ladder of real alternatives, each converted, verified
on the held-out images and measured, tried in order of cost until one is within budget.

The order runs from what changes least (per-tensor weights, more calibration images) to what
costs most on the device (float layers, 16-bit activations, float activations). A rung is on
the ladder only when the target can run it (the Edge TPU keeps the full-int8 rungs) and when it
keeps the I/O type the user fixed: with ``--io`` given (or a target that runs no float I/O), rungs
that make float inputs and outputs need ``--io float32`` or the rung named in ``--ladder``; without
it, a CPU or GPU conversion may end on a float-I/O rung, and the result, the record and the table
say so (``io_note``). Nothing is rewritten silently.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgelite.converters import torch_model
from edgelite.converters.errors import ConversionError
from edgelite.converters.ladder import float_layers as recovery
from edgelite.converters.ladder import learned_ranges, qat
from edgelite.converters.ladder.rungs import NAMES, RUNGS, Rung
from edgelite.converters.quantize.modes import QuantizeOptions, convert
from edgelite.converters.verify.cost import Budget
from edgelite.runtime.errors import EdgeliteError
from edgelite.runtime.interpreter.targets import Target


@dataclass(frozen=True)
class Best:
    """The best rung so far: its model, its verification, the options it converted with, the layers it left in
    float, and its name."""

    model_bytes: bytes = field(repr=False)
    verified: Any              # verify.cost.Verification
    options: QuantizeOptions
    float_layers: tuple[str, ...]
    rung: str


@dataclass(frozen=True)
class RungResult:
    """One rung tried: what it is and what it measured (or why it failed)."""

    name: str
    mode: str
    io: str
    per_channel: bool | None
    within_budget: bool = False
    drop_points: float | None = None
    agreement: float | None = None
    agreement_interval: tuple[float, float] | None = None
    snr_db: float | None = None
    size_bytes: int | None = None
    median_ms: float | None = None
    seconds: float = 0.0
    float_layers: tuple[str, ...] = ()
    error: str | None = None
    fine_tune: dict | None = None    # the QAT rung's report

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["float_layers"] = list(self.float_layers)
        data["agreement_interval"] = list(self.agreement_interval) if self.agreement_interval else None
        return data


@dataclass(frozen=True)
class LadderReport:
    """Every rung tried (the first is the model asked for), the ones left out and why, and the one kept."""

    rungs: tuple[RungResult, ...] = ()
    not_tried: tuple[dict, ...] = ()
    chosen: str | None = None
    skipped: str | None = None  # why the ladder did not climb at all
    io_note: str | None = None  # set when the kept rung changed the I/O type (no --io was given)

    @property
    def float_layers(self) -> tuple[str, ...]:
        return next((r.float_layers for r in self.rungs if r.name == self.chosen), ())

    def to_dict(self) -> dict:
        return {"rungs": [r.to_dict() for r in self.rungs], "not_tried": list(self.not_tried), "chosen": self.chosen,
                "skipped": self.skipped, "float_layers": list(self.float_layers), "io_note": self.io_note}


def io_note(first_io: str, kept_io: str) -> str | None:
    """What the result says when the ladder moved to a float-I/O rung because no --io fixed the type."""
    if first_io == kept_io:
        return None
    return f"I/O became {kept_io}: no full-integer rung held; pass --io {first_io} to forbid"


def first_rung(options: QuantizeOptions) -> Rung:
    """The rung the user asked for (where the ladder starts)."""
    if options.mode == "int8":
        return RUNGS[1] if options.per_tensor else RUNGS[0]
    return next((r for r in RUNGS if r.mode == options.mode),
                Rung(options.mode, f"{options.mode} as asked", options.mode, float_io=True))


@dataclass(frozen=True)
class Inputs:
    """What rungs beyond the first may need, each read only when such a rung runs."""

    calibration: np.ndarray | None                       # the float batch the first conversion calibrated on
    more_calibration: Callable[[], np.ndarray | None]    # every calibration image not held out
    train_images: Callable[[], np.ndarray | None] | None = None  # --train-data, float, minus verification images
    seed: int = 0
    focus: tuple[str, ...] = ()   # outputs under their SNR budget while the task metric holds: recover those
    session: Callable[[], Any] | None = None  # recovery.Calibrated on ``calibration``, built on first use


def allowed(rung: Rung, target: Target, options: QuantizeOptions, named: bool, has_train: bool = False,
            io_fixed: bool = True, torch: bool = False) -> str | None:
    """Why ``rung`` cannot be tried here, or None when it can."""
    if torch and (rung.qat or rung.float_fallback or rung.mode not in torch_model.MODES):
        return "builds on Keras or TensorFlow's converter: not available for a PyTorch model"
    if rung.qat and not has_train:
        return "needs --train-data DIR (images like the ones the model will see; no labels needed)"
    if rung.mode not in target.allowed_quantize:
        return f"the {target.name} target does not run {rung.mode}"
    if rung.float_fallback and not target.runs_float_ops:
        return f"the {target.name} target runs no float ops"
    if rung.float_io and options.io != "float32" and not named and io_fixed:
        return f"makes float32 inputs and outputs, and --io {options.io} was given (give --io float32, leave --io " \
               "out, or name it in --ladder)"
    return None


def plan(options: QuantizeOptions, target: Target, names: tuple[str, ...] | None,
         has_train: bool = False, io_fixed: bool = True, torch: bool = False) -> tuple[list[Rung], list[dict]]:
    """The rungs to try after the first, in order, and the ones left out with the reason."""
    if names is not None:
        unknown = [n for n in names if n not in NAMES]
        if unknown:
            raise ConversionError(f"--ladder {','.join(unknown)}: not a rung; choose from {', '.join(NAMES)}")
        candidates = [r for r in RUNGS if r.name in names]
    else:
        start = first_rung(options)
        candidates = [r for r in RUNGS[RUNGS.index(start) + 1:] if not r.named_only] if start in RUNGS else []
        if options.per_tensor and options.mode == "int8":
            candidates = [r for r in candidates if r.per_tensor is not False]
    chosen, skipped = [], []
    for rung in candidates:
        why = allowed(rung, target, options, names is not None, has_train, io_fixed, torch)
        (skipped.append({"name": rung.name, "why": why}) if why else chosen.append(rung))
    return chosen, skipped


def options_for(rung: Rung, options: QuantizeOptions) -> QuantizeOptions:
    per_tensor = options.per_tensor if rung.per_tensor is None else rung.per_tensor
    io = "float32" if rung.float_io else options.io
    return dataclasses.replace(options, mode=rung.mode, io=io, per_tensor=per_tensor and rung.mode != "fp16")


def measure(rung: Rung, model_bytes: bytes, options: QuantizeOptions, verified, budget: Budget, started: float,
            float_layers: tuple[str, ...] = (), fine_tune: dict | None = None) -> RungResult:
    snr = verified.snr_db if np.isfinite(verified.snr_db) else None
    return RungResult(rung.name, options.mode, options.io, options.per_channel, budget.holds(verified),
                      verified.drop_points, verified.agreement, verified.agreement_interval, snr, len(model_bytes),
                      recovery.median_ms(model_bytes), time.perf_counter() - started, float_layers,
                      fine_tune=fine_tune)


def climb(rungs: list[Rung], loaded, options: QuantizeOptions, inputs: Inputs, check, budget: Budget,
          reporter) -> tuple[list[RungResult], Best | None]:
    """Tries each rung until one is within budget. Returns (results, the best rung or None)."""
    results: list[RungResult] = []
    best: Best | None = None
    for rung in rungs:
        started, rung_options = time.perf_counter(), options_for(rung, options)
        try:
            with reporter.progress(f"ladder: {rung.name}", 1) as advance:
                found = _candidate(rung, loaded, rung_options, inputs, check, budget)
                advance(1)
        except (EdgeliteError, ValueError, RuntimeError) as exc:
            results.append(RungResult(rung.name, rung_options.mode, rung_options.io, rung_options.per_channel,
                                      error=" ".join(str(exc).split())[:200], seconds=time.perf_counter() - started))
            continue
        if found is None:
            results.append(RungResult(rung.name, rung_options.mode, rung_options.io, rung_options.per_channel,
                                      error=_nothing_new(rung),
                                      seconds=time.perf_counter() - started))
            continue
        model_bytes, verified, layers, tuned = found
        results.append(measure(rung, model_bytes, rung_options, verified, budget, started, layers, tuned))
        if best is None or budget.rank(verified) < budget.rank(best.verified):
            best = Best(model_bytes, verified, rung_options, layers, rung.name)
        if budget.holds(verified):
            break
    return results, best


def _nothing_new(rung: Rung) -> str:
    if rung.qat:
        return "no --train-data images left once the verification images are set aside"
    return "nothing new to try here (no calibration images beyond those used)"


def qat_model(loaded, options: QuantizeOptions, pixels: np.ndarray, batch: np.ndarray, tune: qat.QatOptions,
              seed: int) -> tuple[bytes, dict]:
    """The QAT rung's int8 model and its record: fine-tuned on ``pixels`` with the input rounded at the step the
    int8 model takes, then calibrated on ``batch`` with the learned activation ranges put in where the calibrated
    model can take them (the int8 variants QuantizationDebugger serves; else calibrated as usual)."""
    session = recovery.Calibrated(loaded, options, batch, limit=len(batch))  # calibrates on first use: tuned
    with qat.fine_tuned(loaded, pixels, tune, seed, input_step=session.input_step) as report:
        if report.learned and recovery.Calibrated.serves(options):
            model_bytes, in_model = learned_ranges.convert(session, options, report.learned,
                                                           qat.observed_ranges(loaded, batch))
        else:
            model_bytes, in_model = _quantized(loaded, options, batch), 0
    return model_bytes, {**report.to_dict(), "ranges_in_model": in_model}


def _quantized(loaded, options: QuantizeOptions, batch: np.ndarray | None) -> bytes:
    """The model converted as ``options`` say: through a calibrated model (whose input step keeps pixels off the
    rounding ties: input_step.py) for the variants QuantizationDebugger serves, else by the converter proper (a
    PyTorch model's: litert-torch's)."""
    if loaded.flavor == "torch":
        return torch_model.convert(loaded.model, loaded.input_shape, options.mode, options.per_tensor, batch,
                                   loaded.name)
    if batch is not None and options.calibrated and recovery.Calibrated.serves(options):
        return recovery.Calibrated(loaded, options, batch, limit=len(batch)).quantized(options)
    return convert(loaded, options, batch if options.calibrated else None)


def _candidate(rung: Rung, loaded, options: QuantizeOptions, inputs: Inputs, check, budget: Budget):
    """(model bytes, verification, float layers, fine-tune report) for one rung; None when it has nothing to try."""
    shared = inputs.session() if inputs.session is not None else None
    if rung.float_fallback:
        if shared is None:
            return None
        return (*recovery.recover(shared, options, check, budget, inputs.focus), None)
    if shared is not None and not rung.more_calibration and not rung.qat and recovery.Calibrated.serves(options):
        model_bytes = shared.quantized(options)  # the first calibration, quantized another way
        return model_bytes, check(model_bytes), (), None
    batch = inputs.calibration
    if rung.more_calibration:
        batch = inputs.more_calibration()
        if batch is None:
            return None
    if rung.qat:
        pixels = inputs.train_images() if inputs.train_images is not None else None
        if pixels is None or batch is None:
            return None
        tune = qat.QatOptions(per_tensor=options.per_tensor, learn_ranges=rung.learn_ranges)
        model_bytes, record = qat_model(loaded, options, pixels, batch, tune, inputs.seed)
        return model_bytes, check(model_bytes), (), record
    model_bytes = _quantized(loaded, options, batch)
    return model_bytes, check(model_bytes), (), None
