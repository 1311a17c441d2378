"""Which input scale a classifier was trained with, judged from its own outputs on unlabelled images.

A model fed the wrong scale or channel order does not fail: it answers, usually the same class for every
image or a near-uniform guess. Verification cannot see that (the float and int8 models are wrong together),
so this check runs the float model on the same images under each usual convention and measures how much its
answers say about the images: the mutual information between image and predicted class,
``H(mean p) - mean H(p)`` (the information-maximization criterion of unsupervised domain adaptation), as a
share of ``log(classes)``. It is high only when answers are both confident and different from image to
image; a collapsed model (one class for all) and a guessing one (near-uniform) both score near 0.

It applies to outputs of three or more classes on images of several classes: a yes/no head (MTCNN ONet's face
probability) shown only faces rightly answers "face" for all, which this criterion cannot tell from a collapse.

How sure: the images are resampled (bootstrap) and the share of resamples in which the better convention
still beats the chosen one is reported. The check is a hint, never a verdict: a model whose images all
belong to one class scores low under every convention, and ``benchmarks/conventions.py`` measures how often
it names the right convention on the real models it was tried on.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edgelite.runtime.modelfile.input_spec import RANGES, InputSpec, range_normalization

IMAGENET = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
RESAMPLES = 200
MIN_GAIN = 0.1        # of log(classes): a smaller lead is not worth a warning
MIN_SURE = 0.95       # share of resamples in which the better convention must lead
MIN_IMAGES = 8
TIED = 0.05           # of log(classes): conventions this close to the best are named with it
MIN_CLASSES = 3       # a two-way output (face / no face) rightly gives one answer for a folder of faces


@dataclass(frozen=True)
class Convention:
    """One way of scaling 0..255 pixels, and the channel order."""

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    bgr: bool = False

    def applied(self, pixels: np.ndarray, base: InputSpec) -> tuple[np.ndarray, InputSpec]:
        """``pixels`` decoded as ``base`` says, in this convention's channel order, and the spec normalizing
        them this convention's way."""
        swap = self.bgr != (base.color == "bgr")
        spec = InputSpec(base.height, base.width, base.channels, base.color, base.resize, self.mean, self.std,
                         base.pad_value, source="override")
        return (np.ascontiguousarray(pixels[..., ::-1]) if swap else pixels), spec


def conventions(channels: int) -> tuple[Convention, ...]:
    """The usual conventions: the three ranges, ImageNet's mean/std, and (colour) each with channels swapped."""
    base = [Convention(name, *range_normalization(name)) for name in RANGES]
    if channels == 3:
        base.append(Convention("imagenet", *IMAGENET))
        base += [Convention(f"{c.name} bgr", c.mean, c.std, bgr=True) for c in list(base)]
    return tuple(base)


def named(spec: InputSpec) -> Convention:
    """The convention ``spec`` uses (its own name when it is none of the usual ones)."""
    for c in conventions(spec.channels):
        if _close(c.mean, spec.mean) and _close(c.std, spec.std) and c.bgr == (spec.color == "bgr"):
            return c
    return Convention(f"mean {list(spec.mean)} std {list(spec.std)}", spec.mean, spec.std, spec.color == "bgr")


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    x, y = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    return bool(np.allclose(x, y, rtol=0.02, atol=0.5))


def probabilities(output: np.ndarray, logits: bool = False) -> np.ndarray | None:
    """[n, classes] probabilities from one output: as they are when rows already sum to 1; softmax of the rows
    when ``logits`` (the output is known to be a classifier's, as a ``classify`` task's is); else None, as for an
    output of fewer than ``MIN_CLASSES`` classes (a yes/no head rightly answers the same for images of one kind,
    which this criterion would take for a collapse). Without ``logits`` a box or landmark head, or a detector's
    scores, is never read as classes."""
    if output.ndim != 2 or output.shape[1] < MIN_CLASSES:
        return None
    x = output.astype(np.float64)
    if x.min() >= 0 and np.allclose(x.sum(1), 1.0, atol=1e-3):
        return x
    if not logits:
        return None
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def information(p: np.ndarray) -> float:
    """Mutual information between image and class, as a share of log(classes): 0 collapsed or guessing, 1 when
    every image gets a certain answer and the answers are spread evenly."""
    eps = 1e-12
    mean = p.mean(0)
    spread = -float(np.sum(mean * np.log(mean + eps)))
    each = -float(np.mean(np.sum(p * np.log(p + eps), 1)))
    return max(0.0, spread - each) / float(np.log(p.shape[1]))


@dataclass(frozen=True)
class Score:
    convention: Convention
    information: float
    top_share: float     # the share of images given the most common class: a collapse shows as 1.0


@dataclass(frozen=True)
class ConventionCheck:
    """Every convention's score, the chosen one's, and the better one if it clearly leads."""

    chosen: str
    scores: tuple[Score, ...]
    better: str | None
    sure: float | None       # share of resamples in which ``better`` led the chosen convention
    images: int
    alike: tuple[str, ...] = ()  # other conventions within ``TIED`` of ``better``: the images cannot tell them apart

    @property
    def warning(self) -> str | None:
        if self.better is None:
            return None
        by = {s.convention.name: s for s in self.scores}
        b, c = by[self.better], by[self.chosen]
        alike = "".join(f", {a} {by[a].information:.2f}" for a in self.alike)
        return (f"the float model answers as if fed the wrong input scale: under {self.chosen} its answers carry "
                f"{c.information:.2f} of the information they could (one class for {c.top_share:.0%} of "
                f"{self.images} images), under {self.better} {b.information:.2f}{alike}; {self.better} led in "
                f"{self.sure:.0%} of {RESAMPLES} resamples. A hint, not a proof: check how the model was trained "
                "(its preprocessing) before you ship it")

    def to_dict(self) -> dict:
        return {"chosen": self.chosen, "better": self.better, "alike": list(self.alike), "sure": self.sure,
                "images": self.images,
                "scores": {s.convention.name: {"information": round(s.information, 4),
                                               "top_share": round(s.top_share, 4)} for s in self.scores}}


def check(run: Callable[[np.ndarray, InputSpec], list[np.ndarray]], pixels: np.ndarray, spec: InputSpec,
          seed: int = 0, logits: bool = False) -> ConventionCheck | None:
    """``run(pixels, spec)`` gives the float model's outputs on uint8 ``pixels`` [n, H, W, C] (decoded as ``spec``
    says) normalized as ``spec`` says; ``logits``: its first output is a classifier's (``probabilities``).
    None when no output is one score per class or there are too few images to say anything."""
    if len(pixels) < MIN_IMAGES:
        return None
    chosen = named(spec)
    candidates = (chosen, *(c for c in conventions(spec.channels) if c.name != chosen.name))
    per: dict[str, list[np.ndarray]] = {}
    for c in candidates:
        found = [p for i, out in enumerate(run(*c.applied(pixels, spec)))
                 if (p := probabilities(out, logits and i == 0)) is not None]
        if not found:
            return None
        per[c.name] = found
    scores = tuple(Score(c, _mean_information(per[c.name]), _top_share(per[c.name][0])) for c in candidates)
    best = max(scores, key=lambda s: s.information)
    if best.convention.name == chosen.name or best.information - scores[0].information < MIN_GAIN:
        return ConventionCheck(chosen.name, scores, None, None, len(pixels))
    sure = _bootstrap(per[best.convention.name], per[chosen.name], seed)
    if sure < MIN_SURE:
        return ConventionCheck(chosen.name, scores, None, sure, len(pixels))
    return ConventionCheck(chosen.name, scores, best.convention.name, sure, len(pixels), _alike(scores, best))


def without_channel_twins(scores: dict[str, float]) -> dict[str, float]:
    """``scores`` by convention name, less each channel-swapped convention that scores exactly as its twin does
    (grey images: the swap changes nothing, so the images cannot tell the orders apart)."""
    return {name: v for name, v in scores.items()
            if not (name.endswith(" bgr") and abs(scores.get(name[:-4], -1.0) - v) < 1e-9)}


def _alike(scores: tuple[Score, ...], best: Score) -> tuple[str, ...]:
    """The other conventions within ``TIED`` of the best (not the chosen one, nor a swap that changes nothing)."""
    info = without_channel_twins({s.convention.name: s.information for s in scores[1:]})
    return tuple(name for name, v in info.items() if name != best.convention.name and best.information - v < TIED)


def _mean_information(outputs: list[np.ndarray]) -> float:
    return float(np.mean([information(p) for p in outputs]))


def _top_share(p: np.ndarray) -> float:
    return float(np.bincount(p.argmax(1), minlength=p.shape[1]).max() / len(p))


def _bootstrap(better: list[np.ndarray], chosen: list[np.ndarray], seed: int) -> float:
    rng = np.random.default_rng(seed)
    n, wins = len(better[0]), 0
    for _ in range(RESAMPLES):
        pick = rng.integers(0, n, n)
        wins += _mean_information([p[pick] for p in better]) > _mean_information([p[pick] for p in chosen])
    return wins / RESAMPLES


def check_file(path, images: Sequence, *, seed: int = 0, **options) -> ConventionCheck | None:
    """The check on a float-input ``.tflite`` (no TensorFlow): its own preprocessing, overridden by ``options``
    (mean, std, color, resize; as ``edgelite.load`` takes them), is the chosen convention. An int8 or uint8
    input is refused: its quantization was calibrated for one scale, so the others would only saturate it."""
    from edgelite.runtime.errors import InputError
    from edgelite.runtime.tasks.loading import load
    from edgelite.runtime.tasks.preprocess import InputQuantization, Normalizer, load_pixels
    model = load(path, **options)   # the task the record says, else the one its outputs say
    info = model.model.inputs[0]
    if info.dtype != np.float32:
        raise InputError(f"{model.path}: its input is {np.dtype(info.dtype).name}: the input quantization fixes the "
                         f"scale it was calibrated for (step {info.scale:.4g}, zero point {info.zero_point}); the "
                         "convention check needs a float-input model (the float model before conversion)")
    pixels = np.stack([load_pixels(image, model.input_spec) for image in images])

    def run(batch: np.ndarray, spec: InputSpec) -> list[np.ndarray]:
        norm, x = Normalizer(spec, InputQuantization(np.dtype(np.float32))), np.empty(info.shape, np.float32)
        rows: list[list[np.ndarray]] = []
        for p in batch:
            norm(p, x[0])
            rows.append(model.dequantized(model.model.run(x)))
        return [np.concatenate([r[i] for r in rows]) for i in range(len(rows[0]))]
    return check(run, pixels, model.input_spec, seed, logits=model.task == "classify")
