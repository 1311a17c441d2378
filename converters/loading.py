"""Loads the user's model (Keras 3, tf_keras, .keras, .h5, SavedModel) and checks it is an image model.

Keras 3 is TensorFlow's default Keras; tf_keras (Keras 2) is what older projects and tfmot
use. Each file format is tried with the loader that can read it, and errors say which
formats are supported rather than echoing a deserialization traceback.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgelite.runtime.errors import ConversionError

from .tf import quiet, tensorflow


@dataclass
class LoadedModel:
    """A model ready to convert: the object, its flavour, and where it came from."""

    model: Any                # keras.Model, tf_keras.Model, or a SavedModel's trackable
    flavor: str               # "keras3", "tf_keras" or "saved_model"
    name: str                 # file name or the model's own name
    sha256: str | None        # of the source file (or the directory's files), when there is one
    input_shape: tuple[int, int, int]  # height, width, channels
    n_classes: int
    saved_model_dir: str | None = None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The float model's outputs for a batch, in inference mode."""
        if self.flavor == "saved_model":
            fn = self.model.signatures["serving_default"]
            (out,) = fn(tensorflow().constant(batch)).values()
            return np.asarray(out)
        return np.asarray(self.model(batch, training=False))


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
    for name in files:
        with open(name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:240] + ("..." if len(text) > 240 else "")


def _load_keras3(path: str):
    import keras
    return keras.models.load_model(path, compile=False)


def _load_tf_keras(path: str):
    import tf_keras
    return tf_keras.models.load_model(path, compile=False)


def _load_file(path: str) -> tuple[Any, str]:
    """A .keras or .h5 file: Keras 3 first (it reads both), then tf_keras for legacy .h5."""
    attempts: list[tuple[str, Callable[[str], Any]]] = [("keras3", _load_keras3)]
    if path.endswith(".h5"):
        attempts.append(("tf_keras", _load_tf_keras))
    errors = []
    for flavor, loader in attempts:
        try:
            with quiet():
                return loader(path), flavor
        except Exception as exc:  # noqa: BLE001 - loaders raise anything from ValueError to OSError
            errors.append(f"{flavor}: {_first_line(exc)}")
    raise ConversionError(f"{path}: cannot load the Keras model ({'; '.join(errors)})")


def _load_saved_model(path: str) -> tuple[Any, str]:
    tf = tensorflow()
    try:
        with quiet():
            return _load_tf_keras(path), "tf_keras"
    except Exception:  # noqa: BLE001 - not a Keras 2 SavedModel; load the raw graph instead
        pass
    try:
        with quiet():
            loaded = tf.saved_model.load(path)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"{path}: cannot load the SavedModel ({_first_line(exc)})") from None
    if "serving_default" not in getattr(loaded, "signatures", {}):
        raise ConversionError(f"{path}: the SavedModel has no 'serving_default' signature to convert")
    return loaded, "saved_model"


def _io_shapes(model, flavor: str) -> tuple[list, list]:
    if flavor == "saved_model":
        fn = model.signatures["serving_default"]
        inputs = [spec.shape.as_list() for spec in fn.structured_input_signature[1].values()]
        outputs = [spec.shape.as_list() for spec in fn.structured_outputs.values()]
        return inputs, outputs
    inputs = [list(t.shape) for t in model.inputs]
    outputs = [list(t.shape) for t in model.outputs]
    return inputs, outputs


def _check_image_model(name: str, inputs: list, outputs: list) -> tuple[tuple[int, int, int], int]:
    if len(inputs) != 1:
        raise ConversionError(f"{name}: the model has {len(inputs)} inputs; edgelite converts image "
                              "classifiers with one image input [batch, height, width, channels]")
    shape = inputs[0]
    if len(shape) != 4 or any(d is None for d in shape[1:]) or shape[3] not in (1, 3):
        raise ConversionError(f"{name}: input shape {shape} is not an image; edgelite converts models whose one "
                              "input is [batch, height, width, 1 or 3 channels] with a fixed size")
    if len(outputs) != 1 or len(outputs[0]) != 2 or outputs[0][1] is None:
        raise ConversionError(f"{name}: outputs {outputs} are not one [batch, classes] score vector")
    return (int(shape[1]), int(shape[2]), int(shape[3])), int(outputs[0][1])


def load_model(source) -> LoadedModel:
    """A path (.keras, .h5, SavedModel directory) or a live keras / tf_keras model."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ConversionError(f"{path}: no such file or directory")
        if os.path.isdir(path):
            if not os.path.exists(os.path.join(path, "saved_model.pb")):
                raise ConversionError(f"{path}: a directory but not a SavedModel (no saved_model.pb)")
            model, flavor = _load_saved_model(path)
        elif path.endswith((".keras", ".h5", ".hdf5")):
            model, flavor = _load_file(path)
        else:
            raise ConversionError(f"{path}: not a model edgelite converts; give a Keras 3 .keras file, a legacy "
                                  ".h5 file or a SavedModel directory")
        name, sha = os.path.basename(path.rstrip("/")), sha256_of(path)
        saved_dir = path if flavor == "saved_model" else None
    else:
        model, flavor, name, sha, saved_dir = source, _flavor_of(source), getattr(source, "name", "model"), None, None
    (height, width, channels), n_classes = _check_image_model(name, *_io_shapes(model, flavor))
    return LoadedModel(model, flavor, name, sha, (height, width, channels), n_classes, saved_dir)


def _flavor_of(model) -> str:
    module = type(model).__module__
    if module.startswith("tf_keras") or "tf_keras" in str(type(model).__mro__):
        return "tf_keras"
    if module.startswith("keras"):
        return "keras3"
    raise ConversionError(f"cannot convert a {type(model).__name__}; give a keras.Model, a tf_keras model or a path")
