"""The images a conversion calibrates and verifies on, and the labels it records.

Without ``--eval-data`` a seeded share of the calibration images is held out and never used to
calibrate, so verification never grades a model on the images it was calibrated with. Labels
come only from ``--labels`` or from the class folders of ``--eval-data`` / ``--train-data``:
calibration images carry no labels and need none.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgelite.converters import images as imgs
from edgelite.converters.errors import ConversionError
from edgelite.converters.options import ConvertOptions
from edgelite.converters.reporting import Reporter
from edgelite.runtime.modelfile.input_spec import InputSpec
from edgelite.runtime.tasks.task import read_labels

HELD_OUT_SHARE = 0.2   # of the calibration images, kept out of calibration to verify on
MIN_HELD_OUT = 10      # fewer cannot say anything: one flip would be 10 points
MAX_HELD_OUT = 1000    # enough for a tight interval; verifying on more only costs time
SMALL_SET_HELD_OUT = 20  # with few images hold out up to half, so one flip is at most 5 points, not 10


@dataclass(frozen=True)
class Data:
    """Decoded uint8 pixels [n, H, W, C] to calibrate and to verify on."""

    calibration: np.ndarray | None
    eval_pixels: np.ndarray | None
    eval_labels: tuple[int, ...] | None
    eval_source: str                      # "eval-data" or "held-out calibration images"
    class_names: tuple[str, ...] | None   # from --eval-data's class folders
    unverified: str | None = None         # why nothing can be verified, when that is so
    eval_paths: frozenset[str] = frozenset()  # resolved, so no later step trains on them
    train: Callable[[], Any] = lambda: None   # the TrainSet (decoded on first call), set by the pipeline
    labels_given: tuple[str, ...] | None = None  # --labels as read, once: the list the model ships with


def held_out_count(n: int) -> int:
    """How many of ``n`` calibration images are held out; 0 when too few for both purposes."""
    held = min(MAX_HELD_OUT, max(MIN_HELD_OUT, round(HELD_OUT_SHARE * n), min(n // 2, SMALL_SET_HELD_OUT)))
    return held if n - held >= 1 else 0


def resolution(data: Data, task: str, budget: float) -> str | None:
    """What the verification images can resolve, said before any work when one flip is coarser than the budget:
    which evidence then decides, and what would resolve it."""
    n = 0 if data.eval_pixels is None else len(data.eval_pixels)
    if not n or task == "raw" or 100.0 / n <= budget:
        return None
    split = f"{n} held out of the calibration images" if data.eval_source != "eval-data" else f"{n} eval images"
    counted = ("only flips of confident decisions count (a flip where the float model's top two are within the "
               "outputs' measured noise is reported apart), and every output's SNR is judged at the lower end of "
               "its interval" if task == "classify" and data.eval_labels is None else
               "every output's SNR is judged at the lower end of its interval")
    finer = (f"give --eval-data with at least {math.ceil(100.0 / budget)} images, or a looser --max-accuracy-drop"
             if budget > 0 else "give a --max-accuracy-drop above 0 (with a budget of 0, any flip is over it)")
    return (f"verifying on {split}: one image is {100.0 / n:.2f} points, coarser than the budget of {budget:.2f}; "
            f"{counted}. For a finer verdict {finer}")


def split(images: imgs.ImageSet, count: int, seed: int) -> tuple[imgs.ImageSet, imgs.ImageSet]:
    """(calibration sample of at most ``count``, held-out images): disjoint, seeded."""
    order = np.random.default_rng(seed).permutation(len(images))
    held = held_out_count(len(images))
    return images.subset(order[held:held + count]), images.subset(order[:held])


def _calibration_split(cal_set: imgs.ImageSet | None, hold_out: bool, o: ConvertOptions):
    """(images to calibrate on, held-out images or None); nothing is held out when eval-data is given."""
    if cal_set is None:
        return None, None
    if hold_out and held_out_count(len(cal_set)):
        return split(cal_set, o.calibration_count, o.seed)
    return imgs.sample(cal_set, o.calibration_count, o.seed)[0], None


def declared_labels(labels) -> tuple[str, ...] | None:
    """The label list given (a file or names), before anything else is known; None when none was given."""
    if isinstance(labels, (str, os.PathLike)):
        return tuple(read_labels(labels))
    return tuple(str(x) for x in labels) if labels is not None else None


def through_labels(images: imgs.ImageSet, declared: Sequence[str] | None, reporter: Reporter) -> imgs.ImageSet:
    """Class folders mapped to the model's outputs through the label list it will ship with, so verification
    grades what the device will say: folder ``digit_7`` is the output the labels call ``digit_7``. Folders
    named for none of the labels keep their sorted order (said: the label order then goes unchecked); some
    named and some not is an error."""
    if declared is None or images.labels is None or images.class_names is None:
        return images
    missing = [n for n in images.class_names if n not in declared]
    if len(missing) == len(images.class_names):
        reporter.warn(f"{images.root}: no class folder is named for a label ({', '.join(images.class_names[:4])}"
                      f"{'...' if len(images.class_names) > 4 else ''} against {', '.join(declared[:4])}"
                      f"{'...' if len(declared) > 4 else ''}): folders are taken as outputs in sorted order, so the "
                      "label file's order is not checked; name the folders as the labels are")
        return images
    if missing:
        raise ConversionError(f"{images.root}: class folder(s) {', '.join(missing[:5])} are not among the labels "
                              f"({len(declared)} given): name each folder for the label of its class")
    index = [declared.index(n) for n in images.class_names]
    return imgs.ImageSet(images.root, images.paths, [index[i] for i in images.labels], list(declared))


def gather(o: ConvertOptions, spec: InputSpec, needs_calibration: bool, reporter: Reporter) -> Data:
    """Calibration pixels, evaluation pixels (eval-data, else held-out calibration images) and their labels,
    the labels as indices of the model's outputs (``through_labels``)."""
    cal_set = imgs.scan(o.calibration, "calibration") if o.calibration is not None else None
    eval_set = imgs.scan(o.eval_data, "eval-data") if o.eval_data is not None else None
    given = declared_labels(o.labels)
    if eval_set is not None:
        eval_set = through_labels(eval_set, given, reporter)
    if cal_set is None and needs_calibration:
        raise ConversionError(f"{o.quantize} quantization is calibrated on images: give --calibration DIR")
    if eval_set is not None and eval_set.labels is None:
        reporter.warn(f"{o.eval_data}: no class subfolders, so top-1 cannot be measured; the drop is measured as "
                      "disagreement with the float model (put each class's images in a subfolder named for it)")
    chosen, held = _calibration_split(cal_set, eval_set is None and o.verification, o)
    calibration = imgs.load(chosen, spec, reporter, "calibration images")[0] if chosen is not None else None
    names = tuple(eval_set.class_names) if eval_set is not None and eval_set.class_names else None
    if eval_set is not None:
        pixels, labels = imgs.load(eval_set, spec, reporter, "eval images")
        return Data(calibration, pixels, tuple(labels) if labels is not None else None, "eval-data", names,
                    eval_paths=_resolved(eval_set), labels_given=given)
    if held is not None and len(held):
        pixels, _ = imgs.load(held, spec, reporter, "held-out images")
        return Data(calibration, pixels, None, "held-out calibration images", names, eval_paths=_resolved(held),
                    labels_given=given)
    why = (f"only {len(cal_set)} calibration images: verification holds out at least {MIN_HELD_OUT} that calibration "
           f"never sees, so give --eval-data DIR or at least {MIN_HELD_OUT + 1} images") if cal_set is not None else \
        "no images to verify on: give --eval-data DIR or --calibration DIR"
    return Data(calibration, None, None, "", names, why, labels_given=given)


def resolve_labels(labels, given: tuple[str, ...] | None, class_names: Sequence[str] | None,
                   n_classes: int | None) -> tuple[str, ...] | None:
    """The labels given (``given``: ``labels``, a file or names, as ``declared_labels`` read it), else the class
    folders; their count must fit the model."""
    found = given
    where = os.fspath(labels) if isinstance(labels, (str, os.PathLike)) else "labels"
    if found is None:
        found, where = (tuple(class_names) if class_names else None), "the class folders"
    if found is not None and n_classes is not None and len(found) != n_classes:
        raise ConversionError(f"{where}: {len(found)} labels for a model with {n_classes} outputs")
    return found


MORE_CALIBRATION = 1000  # the ladder's "more calibration" rung calibrates on up to this many images


def more_calibration(o: ConvertOptions, spec: InputSpec, reporter: Reporter) -> np.ndarray | None:
    """Pixels of every calibration image not held out (up to MORE_CALIBRATION); None when that is no more
    than the first conversion already used."""
    if o.calibration is None:
        return None
    images = imgs.scan(o.calibration, "calibration")
    hold_out = o.eval_data is None and o.verification
    held = held_out_count(len(images)) if hold_out else 0
    available = len(images) - held
    if available <= o.calibration_count:
        return None
    order = np.random.default_rng(o.seed).permutation(len(images))
    chosen = images.subset(order[held:held + MORE_CALIBRATION])
    return imgs.float_batch(imgs.load(chosen, spec, reporter, "more calibration images")[0], spec)


def _resolved(images: imgs.ImageSet) -> frozenset[str]:
    return frozenset(str(p.resolve()) for p in images.paths)


def train_set(o: ConvertOptions, spec: InputSpec, eval_paths: frozenset[str], given: tuple[str, ...] | None,
              reporter: Reporter):
    """Every --train-data image that verification does not grade on (fine-tuning on one would flatter the
    result), with class indices when it has class folders; None without --train-data or when none is left."""
    from edgelite.converters.pruning.training import TrainSet
    if o.train_data is None:
        return None
    found = through_labels(imgs.scan(o.train_data, "train-data"), given, reporter)
    keep = [i for i, p in enumerate(found.paths) if str(p.resolve()) not in eval_paths]
    if len(keep) < len(found):
        reporter.warn(f"{len(found) - len(keep)} of the {len(found)} --train-data images are verification images; "
                      "fine-tuning leaves them out")
    if not keep:
        return None
    pixels, labels = imgs.load(found.subset(keep), spec, reporter, "train images")
    return TrainSet(pixels, np.asarray(labels) if labels is not None else None,
                    tuple(found.class_names) if found.class_names else None, str(o.train_data))
