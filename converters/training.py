"""Short fine-tuning on the user's labelled images, for pruning.

Images come from class subfolders and are decoded by the runtime's preprocessing, as for
calibration. Augmentation uses Keras's own preprocessing layers in a tf.data pipeline.
A ``tf.distribute`` strategy (MirroredStrategy, MultiWorkerMirroredStrategy) runs the same
fine-tune on TensorFlow's distribution engine.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgelite.runtime.errors import ConversionError
from edgelite.runtime.metadata import InputSpec

from . import images as imgs
from .reporting import Reporter
from .tf import tensorflow


@dataclass(frozen=True)
class FineTune:
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    augment: bool = False
    strategy: Any = None   # None, "mirrored", "multiworker" or a tf.distribute.Strategy


def training_images(folder, spec: InputSpec, n_classes: int, reporter: Reporter):
    """Pixels and labels from class subfolders; the classes must match the model's outputs."""
    found = imgs.scan(folder, "train-data")
    if not found.class_names:
        raise ConversionError(f"{folder}: train-data needs one subfolder per class (images in <class>/)")
    if len(found.class_names) < 2:
        raise ConversionError(f"{folder}: train-data has one class ({found.class_names[0]}); fine-tuning needs "
                              "at least two")
    if len(found.class_names) != n_classes:
        raise ConversionError(f"{folder}: {len(found.class_names)} class folders for a model with {n_classes} "
                              "outputs")
    pixels, labels = imgs.load(found, spec, reporter, "train images")
    return pixels, np.asarray(labels), found.class_names


def resolve_strategy(strategy):
    tf = tensorflow()
    if strategy is None or not isinstance(strategy, str):
        return strategy
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def dataset(pixels: np.ndarray, labels: np.ndarray, spec: InputSpec, tune: FineTune, seed: int):
    """A shuffled, batched tf.data pipeline: augment on 0..255 pixels, then the model's normalization."""
    tf = tensorflow()
    import keras
    mean = tf.constant(np.asarray(spec.mean, np.float32))
    std = tf.constant(np.asarray(spec.std, np.float32))
    ds = tf.data.Dataset.from_tensor_slices((pixels, labels)).shuffle(len(pixels), seed=seed)
    ds = ds.batch(tune.batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
    if tune.augment:
        augment = keras.Sequential([
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.05, seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, seed=seed),
            keras.layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed),
        ])
        ds = ds.map(lambda x, y: (augment(x, training=True), y))
    return ds.map(lambda x, y: ((x - mean) / std, y)).prefetch(2)


def loss_for(model):
    """Sparse categorical cross-entropy on probabilities or logits, as the output layer gives."""
    import keras
    activation = getattr(model.layers[-1], "activation", None)
    from_logits = getattr(activation, "__name__", "") != "softmax"
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


@contextlib.contextmanager
def python_warnings_off():
    """Keras warns about options tf.data already handles; fd 2 stays open for the progress bars."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def epoch_callback(flavor: str, advance):
    """A callback (Keras 3 or tf_keras, whichever trains) that advances the progress bar per epoch."""
    if flavor == "tf_keras":
        import tf_keras as keras_module
    else:
        import keras as keras_module

    class Epochs(keras_module.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            advance(1)
    return Epochs()
