"""Converter fixtures: a small CNN trained on scikit-learn's real digit scans, image folders, and MTCNN's ONet as
facenet-pytorch ships it with LFW face crops."""
import importlib.util
import os
import pathlib

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="session")
def digit_folders(tmp_path_factory, digits):
    """train/ and eval/ folders of real digit scans (8x8 PNG), one subfolder per class."""
    from PIL import Image
    root = tmp_path_factory.mktemp("digits")
    images, labels = digits
    order = np.random.default_rng(0).permutation(len(images))
    for k, i in enumerate(order):
        split = "train" if k < 1400 else "eval"
        folder = root / split / str(labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i], "L").save(folder / f"{i}.png")
    return root / "train", root / "eval"


def train_digits(digit_folders, rescaling: bool = True, epochs: int = 6, scale: str = "0,1"):
    """The digits CNN; without ``rescaling`` its training script scales pixels to ``scale`` ("0,1" or "-1,1")."""
    import keras

    from edgelite.runtime.modelfile.metadata import InputSpec
    from edgelite.runtime.tasks.preprocess import load_pixels
    keras.utils.set_random_seed(0)
    train, _ = digit_folders
    paths = sorted(train.rglob("*.png"))
    x = np.stack([load_pixels(p, InputSpec(32, 32, 3)) for p in paths]).astype("float32")
    y = np.array([int(p.parent.name) for p in paths])
    layers = [keras.Input((32, 32, 3))]
    if rescaling:
        layers.append(keras.layers.Rescaling(1 / 255.0))
    else:
        x = x / 255.0 if scale == "0,1" else x / 127.5 - 1.0
    layers += [keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
               keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(), keras.layers.Flatten(),
               keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def digits_keras(tmp_path_factory, digit_folders) -> pathlib.Path:
    path = tmp_path_factory.mktemp("model") / "digits.keras"
    train_digits(digit_folders).save(path)
    return path


@pytest.fixture(scope="session")
def digits_model(digits_keras):
    import keras
    return keras.models.load_model(digits_keras)


@pytest.fixture(scope="session")
def converted(tmp_path_factory, digits_keras, digit_folders):
    """The default conversion, shared by the tests that only read its result."""
    import edgelite
    train, evaluation = digit_folders
    out = tmp_path_factory.mktemp("out") / "digits.tflite"
    return edgelite.convert(digits_keras, output=out, calibration=train, eval_data=evaluation)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def fragile_model():
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Flatten()(x)
    dense = keras.layers.Dense(10, activation="softmax")
    model = keras.Model(inp, dense(x))
    kernel = np.random.default_rng(0).normal(0, 0.05, (192, 10)).astype("float32")
    kernel[0, 0] = 200.0  # the outlier: pixel (0, 0, red) is black in nearly every digit scan
    dense.set_weights([kernel, np.zeros(10, "float32")])
    return model


@pytest.fixture(scope="session")
def facenet_onet():
    """facenet-pytorch's ONet with the weights in its wheel (tests/converters/facenet.py)."""
    pytest.importorskip("litert_torch", reason="the torch extra is not installed")
    if importlib.util.find_spec("facenet_pytorch") is None:
        pytest.skip("facenet-pytorch is not installed (scripts/envs.sh installs it with --no-deps)")
    from tests.converters.facenet import load_onet
    return load_onet()


@pytest.fixture(scope="session")
def onet_crops(tmp_path_factory):
    from tests.converters.facenet import lfw_crops
    return lfw_crops(tmp_path_factory.mktemp("onet"))
