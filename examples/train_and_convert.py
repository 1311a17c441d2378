"""Train a small digit classifier on real scans and convert it with edgelite.

    .venv/bin/python examples/train_and_convert.py [--out out/] [--epochs 8]

Uses scikit-learn's 1,797 real 8x8 digit scans (no download): writes them as PNG image
folders (train/ and eval/, one subfolder per class), trains a small CNN on 32x32 RGB
inputs made by edgelite.runtime's own preprocessing (the code the device runs), saves it
as a Keras 3 .keras file, then converts it to a full-int8 .tflite calibrated on train/ and
verified on eval/, and prints what conversion cost. The .tflite carries its preprocessing
record, so `edgelite predict out/digits_int8.tflite out/eval/3/*.png` needs no flags.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def write_image_folders(root: pathlib.Path, eval_fraction: float = 0.2, seed: int = 0):
    """The digit scans as PNG files in root/train/<digit>/ and root/eval/<digit>/."""
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(len(images) * (1 - eval_fraction))
    for rank, index in enumerate(order):
        folder = root / ("train" if rank < cut else "eval") / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index], "L").save(folder / f"{index}.png")
    return root / "train", root / "eval"


def load_folder(folder: pathlib.Path, spec):
    """Pixels as the device will see them, and labels from the class folder names."""
    from edgelite.runtime.preprocess import load_pixels
    paths = sorted(folder.rglob("*.png"))
    x = np.stack([load_pixels(p, spec) for p in paths]).astype("float32")
    y = np.array([int(p.parent.name) for p in paths])
    return x, y


def build_model():
    import keras
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1.0 / 255),          # the model takes 0..255 pixels; edgelite detects this
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"))
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()

    import keras

    import edgelite
    from edgelite.runtime.metadata import InputSpec

    args.out.mkdir(parents=True, exist_ok=True)
    train_dir, eval_dir = write_image_folders(args.out)
    keras.utils.set_random_seed(0)
    x, y = load_folder(train_dir, InputSpec(32, 32, 3))
    model = build_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=args.epochs, batch_size=32, verbose=0)
    keras_path = args.out / "digits.keras"
    model.save(keras_path)
    print(f"trained {keras_path} on {len(x)} real digit scans")

    result = edgelite.convert(keras_path, output=args.out / "digits_int8.tflite", calibration=train_dir,
                              eval_data=eval_dir)
    v = result.verification
    print(f"wrote {result.output}: {result.output_size_bytes} bytes "
          f"({result.output_size_bytes / result.input_size_bytes:.2f}x of the .keras file)")
    print(f"top-1 on {v.images} held-out scans: float {100 * v.float_top1:.2f}%, int8 {100 * v.tflite_top1:.2f}% "
          f"(drop {v.drop_points:.2f} points), agreement {100 * v.agreement:.2f}%")
    return 0 if result.within_budget else 1


if __name__ == "__main__":
    sys.exit(main())
