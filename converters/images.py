"""Image folders for calibration and evaluation, read through the runtime's own preprocessing.

Calibration and verification decode, resize and normalize with ``edgelite.runtime``, the
code the device runs, so the ranges the quantizer sees are the ones the device produces.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from edgelite.converters.errors import ConversionError
from edgelite.converters.reporting import Reporter
from edgelite.runtime.errors import InputError
from edgelite.runtime.modelfile.files import IMAGE_EXTENSIONS
from edgelite.runtime.modelfile.metadata import InputSpec
from edgelite.runtime.tasks.preprocess import load_pixels


@dataclass
class ImageSet:
    """Image files and, when they sit in class subfolders, their class indices."""

    root: str
    paths: list[pathlib.Path]
    labels: list[int] | None
    class_names: list[str] | None

    def subset(self, indices) -> ImageSet:
        return ImageSet(self.root, [self.paths[i] for i in indices],
                        [self.labels[i] for i in indices] if self.labels is not None else None, self.class_names)

    def __len__(self) -> int:
        return len(self.paths)


def scan(folder, what: str) -> ImageSet:
    """Every image below ``folder``; class folders (two or more subfolders, nothing loose) give labels, sorted by
    name. One subfolder is no label set: a folder of unlabelled images is often kept in one."""
    root = pathlib.Path(folder)
    if not root.exists():
        raise ConversionError(f"{root}: {what} folder does not exist")
    if not root.is_dir():
        raise ConversionError(f"{root}: {what} must be a folder of images")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not paths:
        raise ConversionError(f"{root}: no images found in the {what} folder "
                              f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
    top = {p.relative_to(root).parts[0] for p in paths if len(p.relative_to(root).parts) > 1}
    loose = [p for p in paths if len(p.relative_to(root).parts) == 1]
    if len(top) > 1 and not loose:
        names = sorted(top)
        return ImageSet(str(root), paths, [names.index(p.relative_to(root).parts[0]) for p in paths], names)
    return ImageSet(str(root), paths, None, None)


def sample(images: ImageSet, count: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """A seeded sample of ``count`` images, and the rest (for held-out checks)."""
    order = np.random.default_rng(seed).permutation(len(images))
    return images.subset(order[:count]), images.subset(order[count:])


def load(images: ImageSet, spec: InputSpec, reporter: Reporter, label: str) -> tuple[np.ndarray, list[int] | None]:
    """uint8 pixels [n, H, W, C] of every readable image; unreadable ones are skipped with a warning."""
    kept, labels = [], []
    with reporter.progress(label, len(images)) as advance:
        for i, path in enumerate(images.paths):
            try:
                kept.append(load_pixels(path, spec))
                if images.labels is not None:
                    labels.append(images.labels[i])
            except InputError as exc:
                reporter.warn(f"skipped {exc}")
            advance(1)
    if not kept:
        raise ConversionError(f"{images.root}: none of the {len(images)} images could be read as images")
    return np.stack(kept), (labels if images.labels is not None else None)


def float_batch(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 pixels [n, H, W, C] normalized as the float model takes them, by the runtime's Normalizer."""
    from edgelite.runtime.tasks.preprocess import InputQuantization, Normalizer
    norm = Normalizer(spec, InputQuantization(np.dtype(np.float32)))
    out = np.empty(pixels.shape, np.float32)
    for i, p in enumerate(pixels):
        norm(p, out[i])
    return out
