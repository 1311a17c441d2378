"""The ladder's quantization-aware fine-tuning rung: what it trains on, what it leaves behind, what it reports.

The slow test on a real CNN is in test_ladder_real.py; here the plumbing, on the fragile model of
test_recovery.py (its per-tensor outlier is a weight that no fine-tune moves, so the rung is measured
and reported, not assumed to help).
"""
import json
import sys

import numpy as np
import pytest

import edgelite
from edgelite.runtime.modelfile.tflite_file import read_file

pytestmark = pytest.mark.tensorflow


def test_qat_trains_on_train_data_minus_verification_images_and_restores_the_model(tmp_path, fragile_model,
                                                                                    digit_folders):
    before = [w.copy() for w in fragile_model.get_weights()]
    train = digit_folders[0]
    result = edgelite.convert(fragile_model, output=tmp_path / "q.tflite", calibration=train, train_data=train,
                              per_tensor=True, calibration_count=100, ladder="qat")
    names = [r.name for r in result.recovery.rungs]
    assert names == ["int8-per-tensor", "qat"], names
    rung = result.recovery.rungs[1]
    assert rung.error is None and rung.mode == "int8" and rung.per_channel is False
    held_out = 280  # 20% of the 1,400 calibration images, never trained on
    tuned = rung.fine_tune
    assert tuned["images"] == 1400 - held_out and tuned["kernels"] == 1 and tuned["epochs"] > 0
    assert np.isfinite(tuned["loss_before"]) and np.isfinite(tuned["loss_after"])
    assert any(f"{held_out} of the 1400 --train-data images are verification images" in w for w in result.warnings)
    for a, b in zip(before, fragile_model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the user's model is untouched
    record = json.loads(read_file(result.output if result.within_budget else
                                  str(tmp_path / "q.over-budget.tflite"))[1].metadata["edgelite"])
    assert record["recovery"]["rungs"][1]["fine_tune"]["images"] == 1400 - held_out


def test_without_train_data_the_qat_rung_says_what_it_needs(tmp_path, fragile_model, digit_folders):
    result = edgelite.convert(fragile_model, output=tmp_path / "n.tflite", calibration=digit_folders[0],
                              per_tensor=True, calibration_count=100, ladder="qat")
    assert [r.name for r in result.recovery.rungs] == ["int8-per-tensor"]
    assert {n["name"]: n["why"] for n in result.recovery.not_tried}["qat"].startswith("needs --train-data DIR")


def test_qat_fine_tunes_a_tf_keras_model_with_a_separable_convolution_and_puts_everything_back():
    import tf_keras as k

    from edgelite.converters.ladder import qat
    from edgelite.converters.user_model import load_model
    model = k.Sequential([k.Input((16, 16, 3)), k.layers.Conv2D(4, 3, activation="relu"),
                          k.layers.SeparableConv2D(4, 3), k.layers.BatchNormalization(), k.layers.ReLU(),
                          k.layers.GlobalAveragePooling2D(), k.layers.Dense(3)])
    x = np.random.default_rng(0).uniform(-1, 1, (40, 16, 16, 3)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    with qat.fine_tuned(load_model(model), x, qat.QatOptions(epochs=2), 0) as report:
        changed = any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert report.loss_after <= report.loss_before and 0 <= report.kept_epoch <= 2
    assert changed == (report.kept_epoch > 0)  # the best epoch's weights, or the float ones when none beat them
    assert report.kernels == 4  # conv, depthwise + pointwise, dense
    # conv (relu), inside the separable, relu, pooled, the dense output; the separable's and batch norm's linear
    # outputs fuse forward (into the batch norm, the ReLU) as TFLite fuses them
    assert report.activations == 5
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert all("call" not in layer.__dict__ for layer in model.layers)


def test_the_simulated_error_names_where_int8_error_comes_from_and_leaves_the_model_as_it_was():
    """benchmarks/qat_simulation.py (benchmark code, outside the package) on a small model."""
    import importlib.util

    import keras

    from edgelite.converters.user_model import load_model
    from tests.conftest import ROOT
    spec = importlib.util.spec_from_file_location("qat_simulation", ROOT / "benchmarks" / "qat_simulation.py")
    qat = importlib.util.module_from_spec(spec)
    sys.modules["qat_simulation"] = qat  # its dataclasses look their module up there
    spec.loader.exec_module(qat)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="c"),
                              keras.layers.SeparableConv2D(4, 3, name="s"), keras.layers.ReLU(name="r"),
                              keras.layers.GlobalAveragePooling2D(name="g"), keras.layers.Dense(3, name="d")])
    x = np.random.default_rng(0).uniform(-1, 1, (24, 16, 16, 3)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    error = qat.simulated_error(load_model(model), x, worst=3)
    assert all(np.isfinite(v) and 0 < v < 1 for v in (error.both, error.weights, error.activations))
    assert len(error.worst_activations) == 3
    assert {name for name, _ in error.worst_activations} <= {"c", "s (mid)", "r", "g", "d"}
    shares = [share for _, share in error.worst_activations]
    assert shares == sorted(shares, reverse=True) and shares[0] <= error.activations * 1.5
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert all("call" not in layer.__dict__ for layer in model.layers)


def test_the_int8_model_takes_the_learned_activation_ranges():
    """learned_ranges puts the given ranges where TFLite's int8 reads them: each matched tensor's scale is the
    learned range's width over 255 (here half the observed range, so calibration alone could not give it)."""
    import keras

    from edgelite.converters.ladder import float_layers as recovery
    from edgelite.converters.ladder import learned_ranges, qat
    from edgelite.converters.quantize.modes import QuantizeOptions
    from edgelite.converters.tf import tensorflow
    from edgelite.converters.user_model import load_model
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Conv2D(4, 3), keras.layers.LeakyReLU(), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3)])
    x = np.random.default_rng(0).uniform(-1, 1, (24, 16, 16, 3)).astype(np.float32)
    loaded = load_model(model)
    observed = qat.observed_ranges(loaded, x)
    # relu; the linear convolution (TFLite stores it: a leaky ReLU does not fuse into it); leaky relu; pooled; the
    # dense output (the model's)
    assert len(observed) == 5
    wanted = {k: (lo / 2, hi / 2) for k, (lo, hi) in observed.items()}
    options = QuantizeOptions(io="float32")
    model_bytes, count = learned_ranges.convert(recovery.Calibrated(loaded, options, x), options, wanted, observed)
    assert count >= 5
    interpreter = tensorflow().lite.Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    scales = [d["quantization"][0] for d in interpreter.get_tensor_details() if d["dtype"] == np.int8]
    for low, high in wanted.values():
        width = (max(high, 0.0) - min(low, 0.0)) / 255
        assert any(abs(s - width) <= 1e-6 * width for s in scales), (low, high)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[:1])
    interpreter.invoke()  # the model with the learned ranges runs


def test_a_range_matches_by_value_and_an_ambiguous_one_matches_nothing():
    from edgelite.converters.ladder.learned_ranges import nearest
    observed = {"a": (0.0, 6.0), "b": (-1.0, 1.0), "c": (-1.0, 1.0005)}
    assert nearest(0.0, 6.0000001, observed) == "a"
    assert nearest(0.0, 5.0, observed) is None            # no tensor had this range
    assert nearest(-1.0, 1.00025, observed) is None       # b or c: which one would be a guess, so neither


def test_augmented_views_are_the_images_mirrored_and_shifted_by_at_most_a_sixteenth():
    from edgelite.converters.ladder.qat import augmented
    pixels = np.random.default_rng(0).uniform(-1, 1, (6, 32, 32, 3)).astype(np.float32)
    views = augmented(pixels, 3, seed=0)
    assert len(views) == 3 and all(v.shape == pixels.shape and v.dtype == pixels.dtype for v in views)
    padded = np.pad(pixels, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")   # 32 // 16 = 2 pixels each way
    moves = set()
    for view in views:
        for i, image in enumerate(view):
            found = [(flip, top, left) for flip in (False, True) for top in range(5) for left in range(5)
                     if np.array_equal(image, (lambda c: c[:, ::-1] if flip else c)(padded[i, top:top + 32,
                                                                                          left:left + 32]))]
            assert found, i
            moves.add(found[0])
    assert len(moves) > 3   # the views differ from one another
    assert all(np.array_equal(a, b) for a, b in zip(views, augmented(pixels, 3, seed=0)))   # the seed fixes them


def test_frozen_weights_learn_only_the_ranges_and_the_pull_draws_weights_back_to_the_float_ones():
    import keras

    from edgelite.converters.ladder import qat
    from edgelite.converters.user_model import load_model
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    x = np.random.default_rng(0).uniform(-1, 1, (40, 16, 16, 3)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    options = qat.QatOptions(epochs=2, learn_weights=False, augmented_copies=0)
    with qat.fine_tuned(load_model(model), x, options, 0) as report:
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert report.learned and report.loss_after <= report.loss_before
    # the pull's gradient: 2 * anchor * (w - w0) / |w0|^2 added to the loss's, per tensor; none without an anchor
    import tensorflow as tf
    w = tf.Variable([3.0, 4.0])
    pull = qat._pull(tf, [w], 0.5)
    w.assign([4.0, 4.0])
    (g,) = pull([tf.constant([1.0, 1.0])])
    np.testing.assert_allclose(g.numpy(), [1.0 + 2 * 0.5 * 1.0 / 25.0, 1.0], rtol=1e-6)
    assert qat._pull(tf, [w], 0.0)([None]) == [None]
