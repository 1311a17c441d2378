"""Loads the user's model (Keras 3, tf_keras, .keras, .h5, SavedModel; PyTorch through torch_model) and checks it
is an image model.

Keras 3 is TensorFlow's default Keras; tf_keras (Keras 2) is what older projects and tfmot
use. Each file format is tried with the loader that can read it, and errors say which
formats are supported rather than echoing a deserialization traceback.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgelite.converters import torch_model
from edgelite.converters.errors import ConversionError, first_line
from edgelite.converters.onnx_model import YoloSplit
from edgelite.converters.tf import quiet, tensorflow


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to convert: the object, its flavour, where it came from, and its outputs' shapes."""

    model: Any                # keras.Model, tf_keras.Model, a SavedModel's trackable, or a channel-last torch module
    flavor: str               # "keras3", "tf_keras", "saved_model" or "torch"
    name: str                 # file name or the model's own name
    sha256: str | None        # of the source file (or the directory's files), when there is one
    input_shape: tuple[int, int, int]  # height, width, channels
    output_shapes: tuple[tuple[int | None, ...], ...] = ()
    saved_model_dir: str | None = None
    output_names: tuple[str, ...] = ()   # the float model's own names, in its output order
    yolo: YoloSplit | None = None        # a YOLO head split into boxes and scores before quantization (ONNX)

    @property
    def n_classes(self) -> int | None:
        """Classes of a classifier (one [batch, classes] output); None for any other model."""
        if len(self.output_shapes) == 1 and len(self.output_shapes[0]) == 2:
            return self.output_shapes[0][1]
        return None

    def predict_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """The float model's outputs for a batch, in inference mode, in the model's output order."""
        if self.flavor == "torch":
            return torch_model.predict_all(self.model, batch)
        if self.flavor == "saved_model":
            fn = self.model.signatures["serving_default"]
            return [np.asarray(v) for v in fn(tensorflow().constant(batch)).values()]
        return [np.asarray(o) for o in flat_outputs(self.model(batch, training=False))]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The first (for a classifier, the only) output."""
        return self.predict_all(batch)[0]


def flat_outputs(out) -> list:
    """A model call's outputs as a list, in the model's order (one tensor, a list or tuple, or a dict)."""
    return list(out) if isinstance(out, (list, tuple)) else (list(out.values()) if isinstance(out, dict) else [out])


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
    for name in files:
        with open(name, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _load_keras3(path: str, custom_objects: dict | None = None):
    import keras
    return keras.models.load_model(path, compile=False, custom_objects=custom_objects)


def _load_tf_keras(path: str, custom_objects: dict | None = None):
    import tf_keras
    return tf_keras.models.load_model(path, compile=False, custom_objects=custom_objects)


def _load_file(path: str, custom_objects: dict | None = None) -> tuple[Any, str]:
    """A .keras or .h5 file: Keras 3 first (it reads both), then tf_keras for legacy .h5."""
    attempts: list[tuple[str, Callable[..., Any]]] = [("keras3", _load_keras3)]
    if path.endswith(".h5"):
        attempts.append(("tf_keras", _load_tf_keras))
    errors, missing = [], []
    for flavor, loader in attempts:
        try:
            with quiet():
                return loader(path, custom_objects), flavor
        except Exception as exc:  # noqa: BLE001 - loaders raise anything from ValueError to OSError
            missing += [m for m in re.findall(r"(?:Could not locate class|Unknown layer:?) '?(\w+)'?", str(exc))
                        if m not in missing]
            errors.append(f"{flavor}: {first_line(exc)}")
    if missing:
        raise ConversionError(f"{path}: cannot load the Keras model: it uses custom class(es) {', '.join(missing)} "
                              "that this process does not know; register them (keras.saving."
                              "register_keras_serializable) or pass custom_objects= in Python")
    hint = "; a custom class must be registered (keras.saving.register_keras_serializable) or passed as " \
        "custom_objects= in Python" if any("deserializ" in e for e in errors) else ""
    raise ConversionError(f"{path}: cannot load the Keras model ({'; '.join(errors)}){hint}")


def _load_saved_model(path: str) -> tuple[Any, str]:
    tf = tensorflow()
    try:
        with quiet():
            model = _load_tf_keras(path)
        if _has_graph_inputs(model):  # a Keras 2 SavedModel; anything else (Keras 3's export) revives without
            return model, "tf_keras"  # its graph, so it is loaded as the raw serving signature below
    except Exception:  # noqa: BLE001 - not a Keras 2 SavedModel; load the raw graph instead
        pass
    try:
        with quiet():
            loaded = tf.saved_model.load(path)
    except Exception as exc:  # noqa: BLE001
        raise ConversionError(f"{path}: cannot load the SavedModel ({first_line(exc)})") from None
    if "serving_default" not in getattr(loaded, "signatures", {}):
        raise ConversionError(f"{path}: the SavedModel has no 'serving_default' signature to convert")
    return loaded, "saved_model"


def _io_shapes(model, flavor: str) -> tuple[list, list]:
    if flavor == "saved_model":
        fn = model.signatures["serving_default"]
        inputs = [spec.shape.as_list() for spec in fn.structured_input_signature[1].values()]
        outputs = [spec.shape.as_list() for spec in fn.structured_outputs.values()]
        return inputs, outputs
    return [list(t.shape) for t in model.inputs], [list(t.shape) for t in model.outputs]


def _check_image_model(name: str, inputs: list, outputs: list) -> tuple[int, int, int]:
    """One image input [batch, H, W, 1|3] of fixed size; outputs of any number and rank."""
    if len(inputs) != 1:
        raise ConversionError(f"{name}: the model has {len(inputs)} inputs; edgelite converts image models with one "
                              "image input [batch, height, width, channels]")
    shape = inputs[0]
    if len(shape) != 4 or any(d is None for d in shape[1:]) or shape[3] not in (1, 3):
        raise ConversionError(f"{name}: input shape {shape} is not an image; edgelite converts models whose one "
                              "input is [batch, height, width, 1 or 3 channels] with a fixed size")
    if not outputs:
        raise ConversionError(f"{name}: the model has no outputs")
    return int(shape[1]), int(shape[2]), int(shape[3])


def load_model(source, input_shape: tuple[int, int, int] | None = None, custom_objects: dict | None = None
               ) -> LoadedModel:
    """A path (.keras, .h5, SavedModel directory) or a live keras / tf_keras model, subclassed or not.

    A subclassed model records no input shape: give ``input_shape`` (height, width, channels) and
    it is wrapped in a functional model with that input, so its every output converts.
    A PyTorch model (a .pt2 archive, an ONNX file, or an nn.Module with ``input_shape``) is wrapped to take NHWC
    pixels.
    """
    if torch_model.is_torch_model(source):
        return _load_torch(source, input_shape)
    if isinstance(source, (str, os.PathLike)):
        model, flavor, name, sha, saved_dir = _from_path(os.fspath(source), custom_objects)
    else:
        model, flavor, name, sha, saved_dir = source, _flavor_of(source), getattr(source, "name", "model"), None, None
    if flavor != "saved_model" and not _has_graph_inputs(model):
        model = _functional(model, flavor, name, input_shape)
    inputs, outputs = _io_shapes(model, flavor)
    shape = _check_image_model(name, inputs, outputs)
    names = tuple(str(n) for n in getattr(model, "output_names", None) or ()) if flavor != "saved_model" else ()
    return LoadedModel(model, flavor, name, sha, shape, tuple(tuple(o) for o in outputs), saved_dir, names)


def _load_torch(source, input_shape) -> LoadedModel:
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    if path is not None and not os.path.isfile(path):
        raise ConversionError(f"{path}: no such file")
    name = os.path.basename(path) if path else type(source).__name__
    loaded = torch_model.load(source, input_shape, name)
    height, width, channels = loaded.input_shape
    try:
        outputs = torch_model.predict_all(loaded.module, np.zeros((1, height, width, channels), np.float32))
    except Exception as exc:  # noqa: BLE001 - the module's own forward() may raise anything
        raise ConversionError(f"{name}: calling the module on an input of shape {[1, channels, height, width]} "
                              f"failed ({first_line(exc)})") from None
    shapes = tuple((None, *o.shape[1:]) for o in outputs)
    return LoadedModel(loaded.module, "torch", name, sha256_of(path) if path else None, loaded.input_shape, shapes,
                       yolo=loaded.yolo)


def _from_path(path: str, custom_objects: dict | None):
    if not os.path.exists(path):
        raise ConversionError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise ConversionError(f"{path}: a directory but not a SavedModel (no saved_model.pb)")
        model, flavor = _load_saved_model(path)
    elif path.endswith((".keras", ".h5", ".hdf5")):
        model, flavor = _load_file(path, custom_objects)
    else:
        raise ConversionError(f"{path}: not a model edgelite converts; give a Keras 3 .keras file, a legacy .h5 file, "
                              "a SavedModel directory, a torch.export archive (.pt2) or an ONNX file (.onnx)")
    return model, flavor, os.path.basename(path.rstrip("/")), sha256_of(path), \
        (path if flavor == "saved_model" else None)


def _has_graph_inputs(model) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def _functional(model, flavor: str, name: str, input_shape):
    """A subclassed model wrapped as ``Model(Input(shape), model(input))``: convertible, outputs named."""
    if input_shape is None:
        raise ConversionError(f"{name}: a subclassed model records no input shape; give input_shape=(height, width, "
                              "channels) (--input-shape H,W,C)")
    keras_module = _keras_module(flavor)
    inputs = keras_module.Input(tuple(int(d) for d in input_shape))
    try:
        return keras_module.Model(inputs, model(inputs))
    except Exception as exc:  # noqa: BLE001 - the model's own call() may raise anything
        raise ConversionError(f"{name}: calling the model on an input of shape {tuple(input_shape)} failed "
                              f"({first_line(exc)})") from None


def _keras_module(flavor: str):
    if flavor == "tf_keras":
        import tf_keras
        return tf_keras
    import keras
    return keras


def _flavor_of(model) -> str:
    """keras3 or tf_keras, decided by isinstance (a model's module says nothing about what it is)."""
    import keras
    if isinstance(model, keras.Model):
        return "keras3"
    try:
        import tf_keras
    except ImportError:
        tf_keras = None
    if tf_keras is not None and isinstance(model, tf_keras.Model):
        return "tf_keras"
    raise ConversionError(f"cannot convert a {type(model).__name__}; give a keras.Model, a tf_keras model or a path")
