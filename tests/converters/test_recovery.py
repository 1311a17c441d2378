"""Recovery when int8 costs too much, and what happens when it cannot recover.

The model is built to break under per-tensor int8: one huge weight in a dense kernel sets
the quantization step so coarse that every other weight rounds to zero. QuantizationDebugger
must find that layer, and keeping it in float must bring the predictions back.
"""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import edgelite
from edgelite.cli import main
from edgelite.runtime.tflite_file import read_file

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
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


def test_recovery_keeps_the_worst_layer_in_float(tmp_path, fragile_model, digit_folders):
    result = edgelite.convert(fragile_model, output=tmp_path / "r.tflite", calibration=digit_folders[0],
                              per_tensor=True, calibration_count=100, max_accuracy_drop=1.0, io="float32")
    rec = result.recovery
    assert rec.attempts and rec.float_layers, rec
    assert result.within_budget and result.verification.drop_points <= 1.0
    assert rec.attempts[-1].drop_points <= 1.0 < rec.all_int8["drop_points"]
    assert rec.attempts[-1].median_ms > 0 and rec.all_int8["median_ms"] > 0
    assert result.quantization["io"] == "float32"
    record = json.loads(read_file(result.output)[1].metadata["edgelite"])
    assert record["quantization"]["float_layers"] == list(rec.float_layers)
    assert any("kept" in w or "recovered" in w for w in result.warnings)


def test_float_fallback_never_changes_the_io_type_the_user_left_at_int8(tmp_path, fragile_model, digit_folders):
    result = edgelite.convert(fragile_model, output=tmp_path / "r.tflite", calibration=digit_folders[0],
                              per_tensor=True, calibration_count=100)
    assert not result.within_budget and result.quantization["io"] == "int8"
    assert "give --io float32 to allow it" in result.recovery.skipped


def test_unrecoverable_model_is_kept_under_an_over_budget_name(tmp_path, fragile_model, digit_folders):
    out = tmp_path / "model.tflite"
    result = edgelite.convert(fragile_model, output=out, calibration=digit_folders[0], per_tensor=True,
                              calibration_count=100, target="edgetpu")
    assert not result.within_budget and result.verification.drop_points > 1.0
    assert result.recovery.skipped == "the edgetpu target runs no float ops"
    assert result.output.endswith("model.over-budget.tflite") and not out.exists()
    record = json.loads(read_file(result.output)[1].metadata["edgelite"])
    assert record["verification"]["drop_points"] > 1.0


def test_cli_exits_1_over_budget(tmp_path, fragile_model, digit_folders):
    path = tmp_path / "fragile.keras"
    fragile_model.save(path)
    result = CliRunner().invoke(main, ["convert", str(path), "-o", str(tmp_path / "m.tflite"), "--calibration",
                                       str(digit_folders[0]), "--per-tensor", "--target", "edgetpu",
                                       "--calibration-count", "100"])
    assert result.exit_code == 1
    assert "is over the budget of 1.00; the model was kept as" in result.stderr
    assert "m.over-budget.tflite" in result.stderr and "verified on 280" in result.stdout
