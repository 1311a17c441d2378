"""Pruning as one step of the pipeline: fine-tune with masks (or tfmot), strip, report."""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, replace

from edgelite.converters.errors import ConversionError
from edgelite.converters.pruning import magnitude as pruning
from edgelite.converters.pruning import training
from edgelite.converters.reporting import Reporter
from edgelite.converters.user_model import LoadedModel
from edgelite.runtime.modelfile.metadata import InputSpec


def _schedule(options: pruning.PruneOptions, steps: int) -> pruning.PolynomialDecay:
    """Sparsity reaches its target at 70% of the fine-tune, leaving the rest to recover accuracy."""
    end = max(1, int(0.7 * steps))
    return pruning.PolynomialDecay(options.target, end_step=end, frequency=max(1, end // 10))


def _compile(model, optimizers, tune: training.FineTune, goal: training.Objective | None):
    """Adam at the objective's learning rate and its loss (Keras 3's or tf_keras's ``optimizers`` module)."""
    rate = goal.learning_rate(tune) if goal else training.LEARNING_RATES["labels"]
    model.compile(optimizer=optimizers.Adam(rate), loss=goal.loss if goal else training.loss_for(model),
                  loss_weights=goal.loss_weights if goal else None)
    return model


def _clone_keras3(model, tune: training.FineTune, goal: training.Objective | None):
    import keras
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return _compile(clone, keras.optimizers, tune, goal)


def _prune_keras3(loaded, options, tune, data, goal, steps, strategy, advance):
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = _clone_keras3(loaded.model, tune, goal)
    masks = pruning.KerasMasks(pruning.prunable_layers(model, options.policy), options, _schedule(options, steps))
    if data is None:
        masks.update(masks.schedule.end_step)  # one shot: straight to the target
    else:
        with training.python_warnings_off():
            model.fit(data, epochs=tune.epochs, verbose=0,
                      callbacks=[pruning.keras_callback(masks), training.epoch_callback("keras3", advance)])
    return model


def _prune_tf_keras(loaded, options, tune, data, goal, steps, strategy, advance):
    import tf_keras
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        wrapped = _compile(pruning.tfmot_wrap(loaded.model, options, _schedule(options, steps)), tf_keras.optimizers,
                           tune, goal)
    if data is None:
        raise ConversionError("one-shot pruning (no --train-data) is supported for Keras 3 models; tfmot prunes "
                              "tf_keras models during training, so give --train-data DIR")
    with training.python_warnings_off():
        wrapped.fit(data, epochs=tune.epochs, verbose=0,
                    callbacks=pruning.tfmot_callbacks() + [training.epoch_callback("tf_keras", advance)])
    return pruning.tfmot_strip(wrapped)


@dataclass(frozen=True)
class PruneReport:
    """What pruning did; later steps add what they measured with ``dataclasses.replace``."""

    target_sparsity: float
    structure: str
    policy: str
    library: str
    fine_tune: dict
    keras_sparsity: dict
    xnnpack_sparse_kernels: dict
    method: str = "magnitude"
    pruned_keras_top1: float | None = None
    tflite_sparsity_of_pruned_layers: float | None = None
    sparse_encoding: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def prune(loaded: LoadedModel, options: pruning.PruneOptions, tune: training.FineTune,
          train: training.TrainSet | None, spec: InputSpec, seed: int, reporter: Reporter,
          quantize: str) -> tuple[LoadedModel, PruneReport, list[str] | None]:
    """A pruned copy of the model, the pruning report, and the train-data class names (when labels were used).

    With class folders matching a classifier's outputs the fine-tune fits the labels; otherwise (any other
    model, or images without labels) it fits the float model's own outputs, every head weighed alike."""
    _check_prunable(loaded, options)
    data, goal, class_names, steps = None, None, None, 1
    if train is None:
        reporter.warn("pruning in one shot without --train-data: accuracy will suffer; the verification figures "
                      "show by how much")
    else:
        goal = training.objective(loaded, train, spec)
        if goal.distilled and tune.augment:
            reporter.warn("--augment is off while fine-tuning against the float model's outputs (the targets "
                          "belong to the images as they are)")
        data = training.dataset(train.pixels, goal.targets, spec, tune, seed)
        class_names = None if goal.distilled else list(train.class_names or ())
        steps = tune.epochs * math.ceil(len(train.pixels) / tune.batch_size)
    strategy = training.resolve_strategy(tune.strategy)
    training.seed_everything(seed)
    run = _prune_tf_keras if loaded.flavor == "tf_keras" else _prune_keras3
    with reporter.progress("fine-tuning epochs", tune.epochs if data is not None else 0) as advance:
        model = run(loaded, options, tune, data, goal, steps, strategy, advance)
    report = _report(model, loaded, options, tune if goal is None else replace(tune, learning_rate=goal.learning_rate(
        tune)), strategy, data is not None, quantize, reporter)
    if goal is not None:
        report = replace(report, fine_tune={**report.fine_tune, "fits": "float model's outputs" if goal.distilled
                                            else "labels", "images": len(train.pixels) if train else 0})
    return replace(loaded, model=model), report, class_names


def _check_prunable(loaded: LoadedModel, options: pruning.PruneOptions) -> None:
    if loaded.flavor == "saved_model":
        raise ConversionError(f"{loaded.name}: pruning needs a Keras model (.keras, .h5 or a Keras SavedModel), "
                              "not a bare SavedModel graph")
    if not pruning.prunable_layers(loaded.model, options.policy):
        what = "1x1 convolutions (the XNNPACK policy)" if options.policy == "xnnpack" else "Conv2D/Dense layers"
        raise ConversionError(f"{loaded.name}: no prunable layers: the model has no {what}")


def _report(model, loaded: LoadedModel, options: pruning.PruneOptions, tune: training.FineTune, strategy,
            tuned: bool, quantize: str, reporter: Reporter) -> PruneReport:
    """The report, with warnings for 2:4 groups that zeroed more and for XNNPACK's sparse kernels."""
    sparsity = pruning.keras_sparsity(model, options.policy)
    uneven = pruning.uneven_groups(sparsity, options)
    if uneven:
        reporter.warn("2:4 pruning zeroed more than half of the weights of " + ", ".join(uneven) + ": their input "
                      "channels are not a multiple of 4, so each row's last group is short and still loses two")
    blockers = pruning.xnnpack_sparse_blockers(model, options, quantize)
    if options.policy == "xnnpack" and blockers:
        reporter.warn("XNNPACK's sparse kernels will not speed this model up: " + "; ".join(blockers))
    return PruneReport(
        target_sparsity=options.target, structure=options.structure, policy=options.policy,
        library="tfmot" if loaded.flavor == "tf_keras" else "edgelite (Keras 3)",
        fine_tune={"epochs": tune.epochs if tuned else 0, "augment": tune.augment,
                   "strategy": type(strategy).__name__ if strategy is not None else None,
                   "learning_rate": tune.learning_rate, "batch_size": tune.batch_size},
        keras_sparsity=sparsity, xnnpack_sparse_kernels={"eligible": not blockers, "blocked_by": blockers})
