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

from edgelite.converters.errors import ConversionError
from edgelite.converters.tf import tensorflow
from edgelite.runtime.modelfile.metadata import InputSpec

# Pruning MTCNN's ONet to half its weights on LFW faces, fitting its outputs at 1e-3 lost ground against one-shot
# pruning (box head SNR against the original model) and at 1e-4 gained: a network's own outputs are fitted gently.
LEARNING_RATES = {"labels": 1e-3, "outputs": 1e-4}


@dataclass(frozen=True)
class FineTune:
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float | None = None   # None: LEARNING_RATES by what the fine-tune fits
    augment: bool = False
    strategy: Any = None   # None, "mirrored", "multiworker" or a tf.distribute.Strategy


@dataclass(frozen=True)
class TrainSet:
    """--train-data as decoded pixels [n, H, W, C] uint8, with class indices when it has class folders."""

    pixels: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    root: str = "train-data"


@dataclass(frozen=True)
class Objective:
    """What a fine-tune fits: labels (a classifier with class folders) or the float model's own outputs.

    Distillation needs no labels and weighs every output alike (each output's mean squared error divided
    by its variance), so detectors, embedders and several heads fine-tune as classifiers do."""

    targets: Any            # labels [n], or one array per output
    loss: Any
    loss_weights: Any = None
    distilled: bool = False

    def learning_rate(self, tune: FineTune) -> float:
        if tune.learning_rate is not None:
            return tune.learning_rate
        return LEARNING_RATES["outputs" if self.distilled else "labels"]


def labelled(train: TrainSet, n_classes: int | None) -> bool:
    """Labels are used for a classifier whose class folders match its outputs; a mismatch is an error."""
    if train.class_names is None or n_classes is None:
        return False
    if len(train.class_names) != n_classes:
        raise ConversionError(f"{train.root}: {len(train.class_names)} class folders for a model with {n_classes} "
                              "outputs")
    return True


def teacher_outputs(loaded, x: np.ndarray, size: int = 32) -> tuple[list[np.ndarray], list[float]]:
    """The float model's outputs on ``x`` (normalized as it takes them), and each output's variance."""
    chunks = [loaded.predict_all(x[i:i + size]) for i in range(0, len(x), size)]
    targets = [np.concatenate([c[k] for c in chunks]).astype(np.float32) for k in range(len(chunks[0]))]
    return targets, [max(float(t.var()), 1e-12) for t in targets]


def objective(loaded, train: TrainSet, spec: InputSpec) -> Objective:
    if labelled(train, loaded.n_classes):
        return Objective(train.labels, loss_for(loaded.model))
    from edgelite.converters.images import float_batch
    targets, variances = teacher_outputs(loaded, float_batch(train.pixels, spec))
    single = len(targets) == 1
    return Objective(targets[0] if single else tuple(targets), "mse" if single else ["mse"] * len(targets),
                     None if single else [1.0 / v for v in variances], distilled=True)


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's and TensorFlow's global generators, as Keras's own helper does, so a fine-tune
    with the same --seed gives the same model whatever ran before it in the process."""
    import keras
    keras.utils.set_random_seed(seed)


def resolve_strategy(strategy):
    tf = tensorflow()
    if strategy is None or not isinstance(strategy, str):
        return strategy
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def dataset(pixels: np.ndarray, labels, spec: InputSpec, tune: FineTune, seed: int):
    """A shuffled, batched tf.data pipeline: augment on 0..255 pixels, then the model's normalization.
    ``labels`` are class indices, or the float model's outputs (then nothing is augmented: the targets
    belong to the images as they are)."""
    tf = tensorflow()
    import keras
    mean = tf.constant(np.asarray(spec.mean, np.float32))
    std = tf.constant(np.asarray(spec.std, np.float32))
    ds = tf.data.Dataset.from_tensor_slices((pixels, labels)).shuffle(len(pixels), seed=seed)
    ds = ds.batch(tune.batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))
    if tune.augment and isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
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
