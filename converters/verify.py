"""What compression cost, measured: the float model and the .tflite on the same images.

Both sides start from the same decoded pixels; each is normalized for its own input
tensor by the runtime's Normalizer, so the only difference measured is the conversion.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from edgelite.runtime.metadata import InputSpec
from edgelite.runtime.model import Model
from edgelite.runtime.postprocess import dequantize, output_is_probability, softmax
from edgelite.runtime.preprocess import InputQuantization, Normalizer

from .images import float_batch
from .loading import LoadedModel
from .reporting import Reporter

BATCH = 64


@dataclass(frozen=True)
class Verification:
    """Figures from one comparison; accuracies are fractions, the drop is in points."""

    images: int
    data: str                  # "eval-data" or "held-out calibration images"
    float_top1: float | None
    tflite_top1: float | None
    agreement: float
    mean_abs_diff: float
    max_abs_diff: float
    snr_db: float = math.inf        # float output power over the power of the difference, in dB
    cosine: float = 1.0             # mean cosine similarity of the two outputs, image by image
    near_ties: float | None = None  # share of images whose float top-1 margin is below the output's step
    #                                 (measured where the output is quantized probabilities)

    @property
    def agreement_interval(self) -> tuple[float, float]:
        """95% Wilson interval of the agreement: with 50 images one flip is 2 points, and this shows it."""
        return wilson(round(self.agreement * self.images), self.images)

    @property
    def drop_points(self) -> float:
        """Top-1 lost, in points; without labels, disagreement bounds what could be lost."""
        if self.float_top1 is not None and self.tflite_top1 is not None:
            return 100.0 * (self.float_top1 - self.tflite_top1)
        return 100.0 * (1.0 - self.agreement)

    @property
    def drop_basis(self) -> str:
        return "top-1 on labelled images" if self.float_top1 is not None else "disagreement with the float model"

    def to_dict(self) -> dict:
        snr = self.snr_db if math.isfinite(self.snr_db) else None  # JSON has no infinity: identical outputs
        return {**asdict(self), "snr_db": snr, "drop_points": self.drop_points, "drop_basis": self.drop_basis,
                "agreement_interval": list(self.agreement_interval)}


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) for no observations."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def fidelity(reference: np.ndarray, converted: np.ndarray) -> dict:
    """SNR in dB and mean cosine similarity of converted against reference outputs (rows are images)."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = converted.reshape(len(converted), -1).astype(np.float64)
    noise = float(np.mean((ref - out) ** 2))
    signal = float(np.mean(ref ** 2))
    snr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cos = np.where(norms > 0, np.sum(ref * out, axis=1) / np.where(norms > 0, norms, 1), 1.0)
    return {"snr_db": snr, "cosine": float(np.mean(cos))}


def near_tie_share(reference: np.ndarray, step: float) -> float | None:
    """Images whose top-1 beats the runner-up by less than one output quantization step flip for free."""
    if reference.shape[1] < 2 or step <= 0:
        return None
    top2 = np.sort(reference, axis=1)[:, -2:]
    return float(np.mean(top2[:, 1] - top2[:, 0] < step))


def _float_probabilities(loaded: LoadedModel, pixels: np.ndarray, spec: InputSpec, as_probability) -> np.ndarray:
    out = []
    for start in range(0, len(pixels), BATCH):
        batch = float_batch(pixels[start:start + BATCH], spec)
        out.append(as_probability(loaded.predict(batch).astype(np.float32)))
    return np.concatenate(out)


def _tflite_probabilities(model_bytes: bytes, pixels: np.ndarray, spec: InputSpec, as_probability,
                          reporter: Reporter) -> tuple[np.ndarray, float]:
    model = Model(model_bytes, delegate="xnnpack", fallback=True)
    info, out_info = model.inputs[0], model.outputs[0]
    norm = Normalizer(spec, InputQuantization(info.dtype, info.scale, info.zero_point))
    x = np.empty(info.shape, info.dtype)
    rows = []
    with reporter.progress("verifying", len(pixels)) as advance:
        for p in pixels:
            norm(p, x[0])
            raw = model.run(x)[0]
            rows.append(dequantize(raw, out_info.scale, out_info.zero_point) if out_info.quantized else raw)
            advance(1)
    return as_probability(np.concatenate(rows).astype(np.float32)), out_info.scale if out_info.quantized else 0.0


def float_top1(loaded: LoadedModel, spec: InputSpec, pixels: np.ndarray, labels) -> float | None:
    """Top-1 of a Keras model alone (e.g. the pruned model before conversion)."""
    if labels is None:
        return None
    probabilities = _float_probabilities(loaded, pixels, spec, lambda x: x)
    return float((probabilities.argmax(1) == np.asarray(labels)).mean())


def outputs_are_probabilities(model_bytes: bytes) -> bool:
    from edgelite.runtime.tflite_file import parse
    graph = parse(model_bytes, "<converted>").main
    return output_is_probability(graph, graph.outputs[0])


def verify(loaded: LoadedModel, model_bytes: bytes, spec: InputSpec, pixels: np.ndarray, labels, data: str,
           reporter: Reporter) -> Verification:
    """Top-1 of both models (with labels), agreement, and output differences in probability space.

    ``loaded`` is the reference: the user's original float model, also when the .tflite was pruned,
    so the figures include everything compression cost."""
    probabilities = outputs_are_probabilities(model_bytes)
    as_probability = (lambda x: x) if probabilities else softmax
    reference = _float_probabilities(loaded, pixels, spec, as_probability)
    converted, step = _tflite_probabilities(model_bytes, pixels, spec, as_probability, reporter)
    step = step if probabilities else 0.0  # a logit step says nothing about a margin in probability space
    diff = np.abs(reference - converted)
    ref_top, conv_top = reference.argmax(1), converted.argmax(1)
    truth = np.asarray(labels) if labels is not None else None
    return Verification(
        images=len(pixels), data=data,
        float_top1=float((ref_top == truth).mean()) if truth is not None else None,
        tflite_top1=float((conv_top == truth).mean()) if truth is not None else None,
        agreement=float((ref_top == conv_top).mean()), mean_abs_diff=float(diff.mean()),
        max_abs_diff=float(diff.max()), **fidelity(reference, converted), near_ties=near_tie_share(reference, step))
