"""Two models over the same images: do they decide alike, and how far apart are their outputs?

What people run before replacing a model in the field (``edgelite predict NEW.tflite DIR --compare
OLD.tflite``): the candidate against a reference (the last release, or the float model), image by image.
Each image gives a ``Pair`` (whether the task's decision agrees, why not, and each output's signal and
noise power against the reference's), small enough to come back from a Ray worker; ``summarize`` adds
them up into a ``Comparison``: agreement with its Wilson interval, every output's SNR and cosine, and the
images where the two differ. Sums, not stacked outputs, so an archive of any size fits in memory.

Agreement is the task's own decision: the same top-1 class; the same detections (each matched one to one
by label and IoU); embeddings within a cosine; a raw model's outputs within an SNR. Needs no TensorFlow.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edgelite.runtime.errors import InputError
from edgelite.runtime.tasks.detection import iou
from edgelite.runtime.tasks.preprocess import describe
from edgelite.runtime.tasks.task import Embedder

AGREE_IOU = 0.5          # a detection matches the reference's with the same label and at least this IoU
AGREE_COSINE = 0.98      # two embeddings of an image agree at or above this cosine similarity
AGREE_SNR_DB = 20.0      # a raw model's image agrees when its worst output is at least this (convert's default budget)
Z95 = 1.96               # the Wilson interval's normal quantile (95%)


def snr_db(signal: float, noise: float) -> float:
    """Signal over noise power in dB: inf for identical outputs, -inf for a reference of zeros."""
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) for no observations."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Pair:
    """One image through both models: whether they decide alike, why not, and per output (in the reference's
    order) the sums that make its SNR and its cosine."""

    source: str
    agree: bool
    why: str
    signal: tuple[float, ...]    # sum of the reference output's squares
    noise: tuple[float, ...]     # sum of the squared differences
    cosine: tuple[float, ...]    # cosine similarity of the two outputs (1.0 when both are zero)
    elements: tuple[int, ...]


@dataclass(frozen=True)
class OutputDiff:
    name: str
    snr_db: float
    cosine: float

    def to_dict(self) -> dict:
        return {"name": self.name, "snr_db": _finite(self.snr_db), "cosine": self.cosine}


@dataclass(frozen=True)
class Comparison:
    """The candidate against the reference over every image that both could run."""

    model: str
    reference: str
    task: str
    images: int
    agreeing: int
    outputs: tuple[OutputDiff, ...]
    differ: tuple[tuple[str, str], ...]     # (source, why) of each image where the decisions differ

    @property
    def agreement(self) -> float | None:
        return self.agreeing / self.images if self.images else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.agreeing, self.images)

    def to_dict(self) -> dict:
        return {"model": self.model, "reference": self.reference, "task": self.task, "images": self.images,
                "agreement": self.agreement, "agreement_interval": list(self.interval),
                "outputs": [o.to_dict() for o in self.outputs],
                "differ": [{"source": s, "why": w} for s, w in self.differ]}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def check_comparable(candidate, reference) -> None:
    """The two task objects run the same task and have outputs of the same shapes, in the same order."""
    if candidate.task != reference.task:
        raise InputError(f"{reference.path}: runs as {reference.task}, and {candidate.path} as {candidate.task}; "
                         "give --task to compare them as one task")
    mine = [tuple(o.shape) for o in candidate.model.outputs]
    theirs = [tuple(o.shape) for o in reference.model.outputs]
    if mine != theirs:
        raise InputError(f"{reference.path}: its outputs {theirs} are not {candidate.path}'s {mine}: "
                         "the two cannot be compared output by output")


def pair(candidate, reference, image, options: dict) -> Pair:
    """Runs ``image`` through both task objects (each preprocessing it as its own record says)."""
    decided, outputs = [], []
    for task in (candidate, reference):
        size, tensor = task.prepare(image)
        raw = task.model.run(tensor)
        outputs.append(task.dequantized(raw))
        decided.append(task.finish(raw, size, **options))
    signal, noise, cosine = [], [], []
    for mine, ref in zip(*outputs):
        a, b = ref.astype(np.float64).ravel(), mine.astype(np.float64).ravel()
        signal.append(float(a @ a))
        noise.append(float((a - b) @ (a - b)))
        norms = float(np.linalg.norm(a) * np.linalg.norm(b))
        cosine.append(float(a @ b) / norms if norms > 0 else 1.0)
    names = [o.name for o in reference.model.outputs]
    agree, why = _decided_alike(candidate.task, decided[0], decided[1], zip(names, signal, noise))
    return Pair(describe(image), agree, why, tuple(signal), tuple(noise), tuple(cosine),
                tuple(o.size for o in outputs[1]))


def _decided_alike(task: str, mine: dict, ref: dict, powers) -> tuple[bool, str]:
    """Whether the task's decisions agree, and why not; ``powers``: (name, signal, noise) of every output, which a
    raw model, having no decision, is judged on."""
    if task == "classify":
        a, b = mine["classes"][0], ref["classes"][0]
        same = a.id == b.id
        return same, "" if same else f"top-1 {a.label or a.id} against {b.label or b.id}"
    if task == "detect":
        return _same_detections(mine["detections"], ref["detections"])
    if task == "embed":
        cos = Embedder.cosine(mine["embedding"], ref["embedding"])
        return cos >= AGREE_COSINE, "" if cos >= AGREE_COSINE else f"embedding cosine {cos:.3f}"
    worst, name = min((snr_db(signal, noise), name) for name, signal, noise in powers)
    return worst >= AGREE_SNR_DB, "" if worst >= AGREE_SNR_DB else f"{name} at {worst:.1f} dB"


def _same_detections(mine, ref) -> tuple[bool, str]:
    """One-to-one matching, best IoU first, within a label."""
    if len(mine) != len(ref):
        return False, f"{len(mine)} detection(s) against {len(ref)}"
    free = list(range(len(ref)))
    for d in sorted(mine, key=lambda d: -d.score):
        same_label = [j for j in free if ref[j].label_id == d.label_id]
        overlaps = iou(np.asarray(d.box), np.asarray([ref[j].box for j in same_label]).reshape(-1, 4))
        best = (float(overlaps.max()), same_label[int(overlaps.argmax())]) if same_label else (0.0, -1)
        if best[0] < AGREE_IOU:
            return False, f"a detection at {tuple(round(v) for v in d.box)} has no match (best IoU {best[0]:.2f})"
        free.remove(best[1])
    return True, ""


def summarize(candidate, reference, pairs: Iterable[Pair]) -> Comparison:
    """Adds up the pairs of every image both models ran."""
    names = [o.name for o in reference.model.outputs]
    signal, noise, cosine = np.zeros(len(names)), np.zeros(len(names)), np.zeros(len(names))
    images, agreeing, differ = 0, 0, []
    for p in pairs:
        images += 1
        agreeing += p.agree
        if not p.agree:
            differ.append((p.source, p.why))
        signal += p.signal
        noise += p.noise
        cosine += p.cosine
    outputs = tuple(OutputDiff(n, snr_db(s, e), c / images if images else 1.0)
                    for n, s, e, c in zip(names, signal, noise, cosine))
    return Comparison(candidate.path, reference.path, candidate.task, images, agreeing, outputs, tuple(differ))


__all__ = ["AGREE_COSINE", "AGREE_IOU", "AGREE_SNR_DB", "Comparison", "OutputDiff", "Pair", "check_comparable",
           "pair", "summarize", "snr_db", "wilson"]
