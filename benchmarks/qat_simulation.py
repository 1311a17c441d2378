"""The QAT rung's int8 simulation, taken apart: where the error it trains against comes from, and the outputs it
predicts beside TFLite's (benchmarks/qat_error.py reports both). Benchmark code, kept out of the package: the rung
needs none of it. It reuses the rung's own simulation (edgelite.converters.ladder.qat), private parts included,
so what it measures is what the rung trains on."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgelite.converters.ladder.qat import (
    _hooked,
    _loss,
    _quantized_run,
    _quantizer,
    _ranges,
    kernel_variables,
)
from edgelite.converters.pruning import training
from edgelite.converters.pruning.magnitude import _all_layers
from edgelite.converters.quantize.input_step import InputStep
from edgelite.converters.tf import tensorflow
from edgelite.converters.user_model import flat_outputs


@dataclass(frozen=True)
class SimulatedError:
    """Where int8 error comes from, simulated as the QAT rung simulates it: the distillation loss (error over
    the outputs' variance, summed over outputs) with everything rounded (the input at the step the int8 model
    takes, the weights, the activations), with the input alone (at that step, and at the step calibration
    alone would give), the weights alone, the activations alone, and the activation tensors that cost most
    alone. Fine-tuning moves weights and ranges: what the input's rounding costs, it can only work around."""

    both: float
    input: float
    input_calibrated: float
    weights: float
    activations: float
    worst_activations: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict:
        return asdict(self)


def simulated_error(loaded, pixels: np.ndarray, per_tensor: bool = False, worst: int = 5,
                    size: int = 8) -> SimulatedError:
    """The int8 error decomposition on ``pixels`` (float, normalized as the model takes them)."""
    tf = tensorflow()
    model = loaded.model
    kernels = kernel_variables(model)
    targets, scales = training.teacher_outputs(loaded, pixels, size)
    ranges = _ranges(tf, model, pixels, size)
    quantize = _quantizer(tf, ranges)
    step, tied = InputStep.of(pixels), InputStep.calibrated(float(pixels.min()), float(pixels.max()))

    def mean_loss(input_step: InputStep | None = None) -> float:
        loss_of = _loss(tf, model, scales, input_step)
        return float(np.mean([float(loss_of(pixels[i:i + size], [t[i:i + size] for t in targets]))
                              for i in range(0, len(pixels), size)]))

    def measured(weights: bool, only=None, input_step: InputStep | None = None) -> float:
        def hook(key, t):
            return quantize(key, t) if only is None or key == only else t
        with _hooked(tf, model, hook):
            run = lambda: mean_loss(input_step)  # noqa: E731 - one body, with or without rounded kernels
            return _quantized_run(tf, kernels, per_tensor, run) if weights else run()
    names = {id(layer): layer.name for layer in _all_layers(model)}
    alone = sorted(((measured(False, key), names[key[0]] + ("" if key[1] == "out" else f" ({key[1]})"))
                    for key in ranges), reverse=True)
    return SimulatedError(measured(True, input_step=step), mean_loss(step), mean_loss(tied),
                          _quantized_run(tf, kernels, per_tensor, mean_loss), measured(False),
                          tuple((name, loss) for loss, name in alone[:worst]))


def simulated_outputs(loaded, pixels: np.ndarray, calibration: np.ndarray, per_tensor: bool = False,
                      size: int = 8) -> list[np.ndarray]:
    """The model's outputs on ``pixels`` as the rung's simulation computes int8 (the input at the int8 model's
    step, the kernels and every activation the simulation rounds, ranges from ``calibration``): set beside the
    converted model's outputs, it says how far the simulation the fine-tune trusts is from TFLite's int8."""
    tf = tensorflow()
    model = loaded.model
    ranges, step = _ranges(tf, model, calibration, size), InputStep.of(calibration)
    with _hooked(tf, model, _quantizer(tf, ranges)):
        chunks = [_quantized_run(tf, kernel_variables(model), per_tensor,
                                 lambda x=pixels[i:i + size]: flat_outputs(model(step.apply(tf, x), training=False)))
                  for i in range(0, len(pixels), size)]
    return [np.concatenate([np.asarray(c[k]) for c in chunks]) for k in range(len(chunks[0]))]
