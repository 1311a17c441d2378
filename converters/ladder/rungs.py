"""The ladder's rungs as data: what each one converts to and what it needs. ``ladder`` climbs them; ``options``
checks ``--ladder`` against their names before any work, without importing the ladder's machinery."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    name: str
    what: str
    mode: str
    per_tensor: bool | None = None   # None: as asked
    float_io: bool = False           # the result has float32 inputs and outputs
    more_calibration: bool = False
    float_fallback: bool = False
    qat: bool = False                # quantization-aware fine-tuning on --train-data first
    learn_ranges: bool = True        # (qat) the activations' int8 ranges are learned too, not only the weights
    named_only: bool = False         # tried only when --ladder names it (a comparison, not a step up)


RUNGS = (
    Rung("int8", "full int8, weights per channel", "int8", per_tensor=False),
    Rung("int8-per-tensor", "full int8, weights per tensor", "int8", per_tensor=True),
    Rung("int8-more-calibration", "full int8 calibrated on every calibration image (up to 1,000)", "int8",
         more_calibration=True),
    Rung("float-fallback", "int8 with the worst layers (QuantizationDebugger) left in float", "int8", float_io=True,
         float_fallback=True),
    Rung("int16x8", "16-bit activations, int8 weights (slower kernels, CPU only)", "int16x8", float_io=True),
    Rung("dynamic", "int8 weights, float activations (dynamic range)", "dynamic", float_io=True),
    Rung("fp16", "float16 weights, float activations", "fp16", float_io=True),
    Rung("qat", "quantization-aware fine-tuning of the weights and the activations' int8 ranges on --train-data "
         "(distilled from the float model), then full int8", "int8", qat=True),
    Rung("qat-weights", "quantization-aware fine-tuning of the weights alone (activation ranges as calibrated), "
         "then full int8", "int8", qat=True, learn_ranges=False, named_only=True),
)
NAMES = tuple(r.name for r in RUNGS)
