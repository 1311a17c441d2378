"""Magnitude pruning for Keras 3 and tf_keras models, as a pair: prune, then strip.

tfmot prunes only tf_keras (Keras 2) models, so tf_keras models go through tfmot's own
``prune_low_magnitude``/``strip_pruning``. Keras 3, TensorFlow's default Keras, has no
pruning library; for it this module keeps a mask per kernel, raises the masks' sparsity
along tfmot's polynomial-decay schedule during fine-tuning (a callback), re-applies them
after every training step so pruned weights stay exactly zero, and leaves plain Keras
layers behind (nothing to strip). Both paths take the same options and give the same report.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from edgelite.converters.errors import ConversionError
from edgelite.converters.tf import tensorflow

PRUNABLE = ("Conv2D", "Dense", "DepthwiseConv2D")


@dataclass(frozen=True)
class PolynomialDecay:
    """tfmot's schedule: sparsity rises from ``initial`` to ``final`` as (1 - progress)^power decays."""

    final_sparsity: float
    end_step: int
    initial_sparsity: float = 0.0
    begin_step: int = 0
    power: float = 3.0
    frequency: int = 10

    def __post_init__(self):
        if not 0.0 <= self.final_sparsity < 1.0:
            raise ConversionError(f"prune sparsity must be in [0, 1), got {self.final_sparsity}")
        if not 0.0 <= self.initial_sparsity <= self.final_sparsity:
            raise ConversionError(f"initial sparsity must be in [0, {self.final_sparsity}], got {self.initial_sparsity}")
        if self.end_step < self.begin_step or self.frequency < 1:
            raise ConversionError(f"schedule steps must satisfy 0 <= begin ({self.begin_step}) <= end "
                                  f"({self.end_step}) and frequency >= 1 (got {self.frequency})")

    def sparsity_at(self, step: int) -> float:
        if self.end_step == self.begin_step:
            return self.final_sparsity
        progress = min(max(step - self.begin_step, 0) / (self.end_step - self.begin_step), 1.0)
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1.0 - progress) ** self.power

    def updates_at(self, step: int) -> bool:
        return self.begin_step <= step <= self.end_step and (
            (step - self.begin_step) % self.frequency == 0 or step == self.end_step)


@dataclass(frozen=True)
class PruneOptions:
    sparsity: float
    structure: str = "unstructured"
    policy: str = "all"

    @property
    def target(self) -> float:
        return 0.5 if self.structure == "2:4" else self.sparsity


def _kernel_size(layer) -> tuple:
    return tuple(getattr(layer, "kernel_size", ()) or ())


def prunable_layers(model, policy: str) -> list:
    """Layers whose kernels are pruned: conv/dense, or only 1x1 convolutions under the XNNPACK policy."""
    layers = [layer for layer in _all_layers(model) if type(layer).__name__ in PRUNABLE]
    if policy == "xnnpack":
        layers = [layer for layer in layers if type(layer).__name__ == "Conv2D" and _kernel_size(layer) == (1, 1)]
    return layers


def _all_layers(model) -> list:
    out = []
    for layer in getattr(model, "layers", []):
        out.extend(_all_layers(layer) if hasattr(layer, "layers") and layer.layers else [layer])
    return out


# -- masks -----------------------------------------------------------------------------------------
def magnitude_mask(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """Keeps the largest |w|; zeroes the smallest ``sparsity`` fraction (ties broken by position)."""
    k = int(round(sparsity * weights.size))
    mask = np.ones(weights.size, dtype=weights.dtype)
    if k > 0:
        mask[np.argsort(np.abs(weights).reshape(-1), kind="stable")[:k]] = 0
    return mask.reshape(weights.shape)


def m_by_n_mask(weights: np.ndarray, m: int = 2, n: int = 4) -> np.ndarray:
    """In every group of ``n`` consecutive weights along the input-channel axis, zero the ``m`` smallest."""
    axis = weights.ndim - 2  # kernels are [..., in, out]; groups run over "in"
    moved = np.moveaxis(np.abs(weights), axis, -1)
    size = moved.shape[-1]
    padded = np.concatenate([moved, np.full(moved.shape[:-1] + (-size % n,), np.inf)], axis=-1)
    groups = padded.reshape(*padded.shape[:-1], -1, n)
    order = np.argsort(groups, axis=-1, kind="stable")
    mask = np.ones_like(groups)
    np.put_along_axis(mask, order[..., :m], 0.0, axis=-1)
    mask = mask.reshape(padded.shape)[..., :size]
    return np.moveaxis(mask, -1, axis).astype(weights.dtype)


class KerasMasks:
    """Masks for a Keras 3 model's prunable kernels, updated on the schedule and held at zero."""

    def __init__(self, layers: list, options: PruneOptions, schedule: PolynomialDecay):
        self.layers, self.options, self.schedule = layers, options, schedule
        self.masks = [np.ones(tuple(layer.kernel.shape), dtype="float32") for layer in layers]

    def update(self, step: int):
        """New masks from the current weights at this step's scheduled sparsity."""
        sparsity = self.schedule.sparsity_at(step)
        for i, layer in enumerate(self.layers):
            weights = np.asarray(layer.kernel.numpy())
            self.masks[i] = m_by_n_mask(weights) if self.options.structure == "2:4" else \
                magnitude_mask(weights, sparsity)
        self.apply()

    def apply(self):
        for layer, mask in zip(self.layers, self.masks):
            layer.kernel.assign(layer.kernel.numpy() * mask)


def keras_callback(masks: KerasMasks):
    """A Keras 3 callback: updates masks on the schedule, re-zeroes pruned weights after every step."""
    import keras

    class PruneStep(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step = 0

        def on_train_begin(self, logs=None):
            masks.update(self.step)

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if masks.options.structure == "unstructured" and masks.schedule.updates_at(self.step):
                masks.update(self.step)
            else:
                masks.apply()

        def on_train_end(self, logs=None):
            masks.update(max(self.step, masks.schedule.end_step))

    return PruneStep()


# -- tf_keras through tfmot ---------------------------------------------------------------------------
def _tfmot():
    """tfmot, without the side effect of importing it: its compat module sets TF_USE_LEGACY_KERAS=1 for the
    whole process, and TensorFlow's lazy ``tf.keras`` resolves on first use, so every ``tf.keras`` after it
    (the user's code, a package's model such as mtcnn's) would become tf_keras. ``tf.keras`` is resolved
    first under the caller's own setting, and the variable is put back; tfmot keeps tf_keras either way."""
    tf, before = tensorflow(), os.environ.get("TF_USE_LEGACY_KERAS")
    getattr(tf.keras, "version", None)
    try:
        import tensorflow_model_optimization as tfmot
    finally:
        if before is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = before
    return tfmot


def tfmot_wrap(model, options: PruneOptions, schedule: PolynomialDecay):
    """tfmot's prune_low_magnitude on the prunable layers only (same policy as the Keras 3 path)."""
    import tf_keras
    tfmot = _tfmot()
    chosen = {id(layer) for layer in prunable_layers(model, options.policy)}
    kwargs = {"pruning_schedule": tfmot.sparsity.keras.PolynomialDecay(
        schedule.initial_sparsity, options.target, schedule.begin_step, max(schedule.end_step, 1),
        schedule.power, schedule.frequency)}
    if options.structure == "2:4":
        kwargs = {"pruning_schedule": tfmot.sparsity.keras.ConstantSparsity(0.5, 0), "sparsity_m_by_n": (2, 4)}

    def wrap(layer):
        return tfmot.sparsity.keras.prune_low_magnitude(layer, **kwargs) if id(layer) in chosen else layer
    return tf_keras.models.clone_model(model, clone_function=wrap)


def tfmot_strip(model):
    return _tfmot().sparsity.keras.strip_pruning(model)


def tfmot_callbacks() -> list:
    return [_tfmot().sparsity.keras.UpdatePruningStep()]


# -- reports ---------------------------------------------------------------------------------------
def keras_sparsity(model, policy: str) -> dict:
    """Zeros in the pruned layers' kernels of a (stripped) Keras model."""
    layers, zeros, total = [], 0, 0
    for layer in prunable_layers(model, policy):
        w = np.asarray(layer.kernel.numpy() if hasattr(layer.kernel, "numpy") else layer.kernel)
        z = int(np.count_nonzero(w == 0))
        layers.append({"layer": layer.name, "zeros": z, "total": int(w.size), "sparsity": z / w.size})
        zeros, total = zeros + z, total + w.size
    return {"overall": zeros / total if total else 0.0, "layers": layers}


def uneven_groups(sparsity: dict, options: PruneOptions) -> list[str]:
    """Layers whose 2:4 sparsity is not 50%: their input channels are not a multiple of four, so the
    last group of each row is short and two of its fewer than four weights are still zeroed."""
    if options.structure != "2:4":
        return []
    return [f"{layer['layer']} ({100 * layer['sparsity']:.1f}%)" for layer in sparsity["layers"]
            if abs(layer["sparsity"] - 0.5) > 0.01]


def xnnpack_sparse_blockers(model, options: PruneOptions, quantize: str) -> list[str]:
    """Why XNNPACK's sparse kernels would not speed this model up (empty when nothing blocks).

    The rules are XNNPACK's for its sparse inference path: fp32/fp16 only, 1x1 convolutions
    with at least 2/3 zeros, a 3x3 stride-2 convolution on 3 channels first, a spatial mean last.
    """
    blockers = []
    if quantize not in ("none", "fp16"):
        blockers.append(f"{quantize} models: XNNPACK's sparse kernels exist for fp32/fp16 only")
    if options.target < 2 / 3:
        blockers.append(f"sparsity {options.target:.2f} < 2/3: XNNPACK uses sparse kernels from 2/3 zeros")
    convs = [layer for layer in _all_layers(model) if type(layer).__name__ == "Conv2D"]
    if not any(_kernel_size(c) == (1, 1) for c in convs):
        blockers.append("no 1x1 convolutions: the only layers XNNPACK's sparse kernels accelerate")
    first = convs[0] if convs else None
    if first is None or _kernel_size(first) != (3, 3) or tuple(first.strides) != (2, 2) or \
            int(first.kernel.shape[2]) != 3:
        blockers.append("the first convolution is not 3x3 stride 2 on 3 channels (XNNPACK's sparse stem)")
    last_kinds = [type(layer).__name__ for layer in _all_layers(model)][-4:]
    if "GlobalAveragePooling2D" not in last_kinds:
        blockers.append("the network does not end in a spatial mean (GlobalAveragePooling2D)")
    return blockers


def surviving_sparsity(keras: dict, in_file: dict, reporter) -> float:
    """The share of the pruned layers' weights still zero in the .tflite; a warning when conversion undid pruning."""
    before = keras["overall"]
    pruned_weights = sum(layer["total"] for layer in keras["layers"])
    after = min(in_file["overall"] * in_file["weights"] / pruned_weights, 1.0) if pruned_weights else 0.0
    if after < before - 0.01:
        reporter.warn(f"conversion undid pruning: {100 * before:.1f}% zeros in the Keras kernels, "
                      f"{100 * after:.1f}% in the .tflite")
    return after
