"""The digits example: 1,797 real 8x8 handwritten digit scans as labelled image folders, and a small CNN trained
on them, for ``edgelite example digits DIR`` and the Quickstart.

The scans are the UCI "Optical Recognition of Handwritten Digits" test set as scikit-learn ships it
(``sklearn.datasets.load_digits``; Alpaydin and Kaynak, CC BY 4.0), stored here as 8-bit pixels (``digits.npz``)
so the example needs neither scikit-learn nor a download.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

DATA = pathlib.Path(__file__).with_name("digits.npz")
SOURCE = "UCI Optical Recognition of Handwritten Digits (as scikit-learn ships it), CC BY 4.0"
EVAL_SHARE = 0.2   # of the scans, held out in eval/ for verification only
SIZE = 32          # the CNN's input: the scans upscaled to 32x32 RGB by edgelite's own preprocessing


@dataclass(frozen=True)
class Written:
    """What ``write`` made: the folders, how many scans each holds, and the model (None if not trained)."""

    train: pathlib.Path
    eval: pathlib.Path
    train_images: int
    eval_images: int
    model: pathlib.Path | None = None
    model_top1: float | None = None   # the float model's top-1 on eval/, measured here


def scans() -> tuple[np.ndarray, np.ndarray]:
    """The scans (N, 8, 8) uint8 and their digits."""
    with np.load(DATA) as data:
        return data["images"], data["labels"].astype(int)


def write_folders(root: pathlib.Path, seed: int = 0) -> Written:
    """The scans as PNGs in root/train/<digit>/ and root/eval/<digit>/ (a fixed, seeded split)."""
    from PIL import Image
    images, labels = scans()
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(len(images) * (1 - EVAL_SHARE))
    for rank, index in enumerate(order):
        folder = root / ("train" if rank < cut else "eval") / str(labels[index])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index], "L").save(folder / f"{index:04d}.png")
    return Written(root / "train", root / "eval", cut, len(images) - cut)


def folder_pixels(folder: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """A labelled folder's images as the device will see them (edgelite's preprocessing) and their digits."""
    from edgelite.runtime.modelfile.input_spec import InputSpec
    from edgelite.runtime.tasks.preprocess import load_pixels
    paths = sorted(folder.rglob("*.png"))
    x = np.stack([load_pixels(p, InputSpec(SIZE, SIZE, 3)) for p in paths]).astype("float32")
    return x, np.array([int(p.parent.name) for p in paths])


def train(written: Written, path: pathlib.Path, epochs: int, seed: int = 0) -> Written:
    """A small CNN trained on train/ (pixels 0..255 in; its first layer rescales them), saved as ``path`` and
    measured on eval/. Needs TensorFlow (the convert extra)."""
    import keras
    keras.utils.set_random_seed(seed)
    x, y = folder_pixels(written.train)
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(), keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")], name="digits")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    model.save(path)
    x_eval, y_eval = folder_pixels(written.eval)
    top1 = float((model.predict(x_eval, verbose=0).argmax(1) == y_eval).mean())
    return Written(written.train, written.eval, written.train_images, written.eval_images, path, top1)


__all__ = ["Written", "scans", "train", "write_folders"]
