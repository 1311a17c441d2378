"""The float model judged before int8 is, so a wrong contract stops a conversion instead of passing it.

Verification compares the int8 model with the float model under the same preprocessing and labels: when the
user's contract is wrong (input scale, channel order, label order), both are wrong together and agree. So,
before converting: with labelled images, the float model's own top-1 is measured through the label list the
model will ship with, and a model near chance, or whose classes land wholesale on other labels, stops the
conversion with the likely causes; without labels, the usual input conventions are compared
(``edgelite.runtime.tasks.conventions``) and a clearly better one is named in a warning.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgelite.converters.errors import ConversionError
from edgelite.converters.reporting import Reporter
from edgelite.converters.user_model import LoadedModel
from edgelite.runtime.modelfile.input_spec import InputSpec
from edgelite.runtime.tasks import conventions
from edgelite.runtime.tasks.compare import wilson

ABOVE_CHANCE = 0.1   # of the way from chance to perfect: a float model whose top-1 cannot be above this is broken
COLLAPSED = 0.8      # one class for this share of images whose true classes are spread out
SWAPPED = 0.6        # a class with this share of its images on one other label looks swapped
MIN_CLASS_IMAGES = 5
CONVENTION_IMAGES = 64     # unlabelled: calibration images the conventions are compared on
CONVENTION_LABELLED = 200  # labelled: eval images each convention's top-1 is measured on
BYPASS = "--accept-float-model"


@dataclass(frozen=True)
class Swap:
    folder: str
    label: str        # the label the model's answer carries
    share: float
    images: int


@dataclass(frozen=True)
class FloatJudgement:
    """What the float model scores on the user's labelled images, measured before any int8."""

    top1: float
    images: int
    classes: int
    swaps: tuple[Swap, ...]
    top_share: float
    by_convention: dict[str, float] | None = None  # top-1 under each usual input convention (a subset of images)
    convention: str = ""                           # the one given
    subset: int = 0                                # how many images ``by_convention`` was measured on

    @property
    def chance(self) -> float:
        return 1.0 / self.classes

    @property
    def near_chance(self) -> bool:
        upper = wilson(round(self.top1 * self.images), self.images)[1]
        return upper < self.chance + ABOVE_CHANCE * (1.0 - self.chance) or self.top_share >= COLLAPSED

    @property
    def better_conventions(self) -> tuple[str, ...]:
        """Conventions under which the float model scores clearly higher (95% intervals apart), best first."""
        if not self.by_convention or self.convention not in self.by_convention:
            return ()
        n, mine = self.subset, self.by_convention[self.convention]
        upper = wilson(round(mine * n), n)[1]
        found = {name: top1 for name, top1 in conventions.without_channel_twins(self.by_convention).items()
                 if name != self.convention and wilson(round(top1 * n), n)[0] > upper}
        best = max(found.values(), default=0.0)
        return tuple(sorted((name for name, top1 in found.items() if best - top1 < 0.01), key=lambda k: -found[k]))

    def problem(self) -> str | None:
        better = self.better_conventions
        if better:
            scores = ", ".join(f"{name} {self.by_convention[name]:.1%}" for name in better)  # type: ignore[index]
            return (f"the float model scores {self.by_convention[self.convention]:.1%} top-1 on {self.subset} "  # type: ignore[index]
                    f"labelled images with the input scale given ({self.convention}) but {scores} under "
                    f"{' or '.join(better)}: it was trained on another scale; give --input-range/--mean/--std "
                    f"accordingly, or pass {BYPASS}")
        lead = (f"the float model itself scores {self.top1:.1%} top-1 on {self.images} labelled images (chance "
                f"{self.chance:.1%}{f'; one class for {self.top_share:.0%} of them' if self.top_share >= COLLAPSED else ''})")
        if self.swaps:
            pairs = "; ".join(f"'{s.folder}' images are mostly ({s.share:.0%} of {s.images}) answered with the output "
                              f"the labels call '{s.label}'" for s in self.swaps[:5])
            more = f" (and {len(self.swaps) - 5} more)" if len(self.swaps) > 5 else ""
            return (f"{lead}: the labels look swapped: {pairs}{more}. The device would name them that way: give "
                    f"--labels in the model's output order (check it against the class order it was trained "
                    f"with), or pass {BYPASS} if these classes are truly confused")
        if self.near_chance:
            return (f"{lead}: before any int8 it is fed the wrong input or judged against the wrong labels. Check "
                    "the input scale (--input-range/--mean/--std; `edgelite check-input MODEL IMAGES` compares the "
                    "usual ones), the channel order (RGB or BGR), and the label order (the class folders against "
                    f"--labels); pass {BYPASS} to convert anyway")
        return None

    def to_dict(self) -> dict:
        return {"top1": self.top1, "images": self.images, "classes": self.classes, "chance": self.chance,
                "top_share": self.top_share, "swaps": [s.__dict__ for s in self.swaps],
                "by_convention": self.by_convention, "convention": self.convention, "subset": self.subset}


@dataclass(frozen=True)
class FloatChecks:
    """What the float model was found to do before any int8."""

    labelled: FloatJudgement | None
    conventions: conventions.ConventionCheck | None

    def to_dict(self) -> dict:
        return {"labelled": self.labelled.to_dict() if self.labelled else None,
                "conventions": self.conventions.to_dict() if self.conventions else None}


def judge_labelled(probabilities: np.ndarray, truth: Sequence[int], labels: Sequence[str]) -> FloatJudgement:
    """Top-1 of the float model's answers against the truth (indices into ``labels``, the model's outputs),
    the share of its most common answer, and the classes whose images mostly land on one other label."""
    answers, truth_arr = probabilities.argmax(1), np.asarray(truth)
    swaps = []
    for cls in np.unique(truth_arr):
        mine = answers[truth_arr == cls]
        counts = np.bincount(mine, minlength=probabilities.shape[1])
        other = int(np.argmax(np.where(np.arange(len(counts)) == cls, -1, counts)))
        if len(mine) >= MIN_CLASS_IMAGES and counts[other] / len(mine) >= SWAPPED:
            swaps.append(Swap(_name(labels, int(cls)), _name(labels, other), float(counts[other] / len(mine)),
                              len(mine)))
    spread = np.bincount(truth_arr).max() / len(truth_arr) < 0.5
    top_share = float(np.bincount(answers).max() / len(answers)) if spread else 0.0
    destinations = [s.label for s in swaps]   # several classes on one label is a collapse, not a swap
    swaps = [s for s in swaps if destinations.count(s.label) == 1] if top_share < COLLAPSED else []
    return FloatJudgement(float((answers == truth_arr).mean()), len(truth_arr), probabilities.shape[1],
                          tuple(swaps), top_share)


def _name(labels: Sequence[str], index: int) -> str:
    return labels[index] if index < len(labels) else f"output {index}"


def top1_by_convention(loaded: LoadedModel, pixels: np.ndarray, truth, spec: InputSpec, given: np.ndarray,
                       seed: int) -> tuple[str, dict[str, float], int]:
    """The convention ``spec`` uses and the float model's top-1 under it and under each other usual convention, on
    up to ``CONVENTION_LABELLED`` of the images. ``given``: its probabilities under ``spec``, already computed for
    every image, so only the other conventions are run."""
    from edgelite.converters.verify.cost import float_outputs
    pick = np.random.default_rng(seed).permutation(len(pixels))[:CONVENTION_LABELLED]
    sample, truth_arr = pixels[pick], np.asarray(truth)[pick]
    chosen = conventions.named(spec)
    found = {chosen.name: float((given[pick].argmax(1) == truth_arr).mean())}
    for c in conventions.conventions(spec.channels):
        if c.name == chosen.name:
            continue
        p = conventions.probabilities(float_outputs(loaded, *c.applied(sample, spec))[0], logits=True)
        if p is not None:
            found[c.name] = float((p.argmax(1) == truth_arr).mean())
    return chosen.name, found, len(pick)


def judge(loaded: LoadedModel, outputs: list[np.ndarray] | None, truth, labels, task: str, accept: bool,
          better: str | None, reporter: Reporter, pixels: np.ndarray | None = None,
          spec: InputSpec | None = None, seed: int = 0) -> FloatJudgement | None:
    """The labelled check on the float model's outputs (computed once, reused by verification): raises a
    ConversionError naming the likely causes (``better``: the convention the label-free check preferred),
    or warns with ``accept``."""
    if task != "classify" or outputs is None or truth is None:
        return None
    p = conventions.probabilities(outputs[0], logits=True)  # the classify task's one output
    if p is None:
        return None
    found = judge_labelled(p, truth, labels or [str(i) for i in range(p.shape[1])])
    if pixels is not None and spec is not None and not found.swaps:
        name, by, n = top1_by_convention(loaded, pixels, truth, spec, p, seed)
        found = replace(found, by_convention=by, convention=name, subset=n)
    problem = found.problem()
    if problem and better and not found.swaps and not found.better_conventions:
        problem += f" (the label-free check found its answers more informative under {better})"
    if problem and not accept:
        raise ConversionError(f"{loaded.name}: {problem}")
    if problem:
        reporter.warn(problem)
    return found


def check_conventions(loaded: LoadedModel, pixels: np.ndarray | None, spec: InputSpec, seed: int,
                      reporter: Reporter, classifier: bool) -> conventions.ConventionCheck | None:
    """The label-free check on up to ``CONVENTION_IMAGES`` calibration images; its warning, when it has one.
    ``classifier``: the task is classify, so its output's logits are class scores (a raw model's heads count only
    where they already are probabilities)."""
    if pixels is None:
        return None
    sample = pixels[np.random.default_rng(seed).permutation(len(pixels))[:CONVENTION_IMAGES]]
    found = _compare(loaded, sample, spec, seed, classifier)
    if found is not None and found.warning:
        reporter.warn(f"{loaded.name}: {found.warning}")
    return found


def check_keras_input(model, images, *, input_range=None, mean=None, std=None, seed: int = 0):
    """``edgelite check-input`` on a Keras model: the convention given (or the model's pixel layer's; with
    neither, 0,1 is the nominal one) against the others, on ``images`` (paths)."""
    from edgelite.converters.tf import tensorflow
    from edgelite.converters.user_model import load_model
    from edgelite.converters.verify.contract import resolve_input_spec
    from edgelite.runtime.tasks.preprocess import load_pixels
    tensorflow()
    loaded = load_model(model, None, None)
    try:
        spec = resolve_input_spec(loaded, input_range=input_range, mean=mean, std=std, force=True)
    except ConversionError:
        if input_range is not None or mean is not None or std is not None:
            raise
        spec = resolve_input_spec(loaded, input_range="0,1")
    return _compare(loaded, np.stack([load_pixels(path, spec) for path in images]), spec, seed,
                    loaded.n_classes is not None)


def _compare(loaded: LoadedModel, pixels: np.ndarray, spec: InputSpec, seed: int, classifier: bool):
    from edgelite.converters.images import float_batch
    return conventions.check(lambda x, s: loaded.predict_all(float_batch(x, s)), pixels, spec, seed, classifier)
