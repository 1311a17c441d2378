"""The int8 input's step: chosen so 8-bit pixels do not sit on rounding ties (converters/quantize/input_step.py)."""
import numpy as np
import pytest

from edgelite.converters.quantize.input_step import InputStep

pytestmark = pytest.mark.tensorflow

PIXELS = np.arange(256, dtype=np.float64)


def normalized(mean, std) -> np.ndarray:
    """Every value a pixel becomes, per channel, in float32 as the runtime's Normalizer computes it."""
    return ((PIXELS[:, None] - np.asarray(mean)) / np.asarray(std)).astype(np.float32).astype(np.float64)


def test_minus_one_to_one_is_stepped_off_the_ties_at_a_quarter_step_of_error():
    values = normalized([127.5], [127.5])          # x = p / 127.5 - 1
    calibrated = InputStep.calibrated(-1.0, 1.0)   # what TFLite's calibration gives: 2/255, every pixel on a tie
    assert abs(calibrated.scale - 2 / 255) < 1e-9
    assert calibrated.error(values) == pytest.approx(0.5 * calibrated.scale, rel=0.01)
    chosen = InputStep.of(values)
    assert chosen != calibrated and chosen.error(values) <= 0.3 * calibrated.scale
    low, high = chosen.bounds
    assert low <= values.min() and high >= values.max()          # nothing clipped that calibration kept
    derived = InputStep.calibrated(low, high)                     # TFLite derives exactly this step from the bounds
    assert derived.zero_point == chosen.zero_point and derived.scale == pytest.approx(chosen.scale, rel=1e-9)


@pytest.mark.parametrize("mean, std", [([0.0], [255.0]), ([128.0], [128.0]), ([0.0], [1.0])])
def test_values_already_on_an_int8_grid_keep_calibrations_step(mean, std):
    values = normalized(mean, std)
    chosen = InputStep.of(values)
    assert chosen == InputStep.calibrated(values.min(), values.max())
    assert chosen.error(values) <= 1e-5 * chosen.scale   # float32 values: exact to float32 rounding


def test_per_channel_normalization_shares_one_step_and_clips_nothing():
    values = normalized([123.68, 116.78, 103.94], [58.4, 57.1, 57.4])   # ImageNet's mean and std
    chosen = InputStep.of(values)
    low, high = chosen.bounds   # within half a step: the extremes round to the end levels, as calibration's own do
    assert low <= values.min() + chosen.scale / 2 and high >= values.max() - chosen.scale / 2
    assert chosen.error(values) <= InputStep.calibrated(values.min(), values.max()).error(values) + 1e-12


def test_the_calibrated_model_carries_the_step_into_the_int8_input():
    """Through QuantizationDebugger's calibrated model, as every int8 rung converts: the input tensor's scale and
    zero point are the chosen step's, for int8 and for float I/O (where TFLite quantizes the input itself)."""
    import keras

    from edgelite.converters.ladder import float_layers as recovery
    from edgelite.converters.quantize.modes import QuantizeOptions
    from edgelite.converters.user_model import load_model
    from edgelite.runtime.interpreter.model import Model
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    pixels = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1))
    x = (pixels / 127.5 - 1).astype(np.float32)
    session = recovery.Calibrated(load_model(model), QuantizeOptions(), x)
    step = session.input_step
    assert step == InputStep.of(x) and step.scale != pytest.approx(2 / 255, rel=1e-4)
    int8_input = Model(session.quantized(QuantizeOptions())).inputs[0]
    assert int8_input.zero_point == step.zero_point and int8_input.scale == pytest.approx(step.scale, rel=1e-6)
    from edgelite.converters.tf import tensorflow
    interpreter = tensorflow().lite.Interpreter(model_content=session.quantized(QuantizeOptions(io="float32")))
    quantize = next(d for d in interpreter.get_tensor_details() if d["dtype"] == np.int8 and d["index"] in
                    {t for op in interpreter._get_ops_details() if op["op_name"] == "QUANTIZE" for t in op["outputs"]})
    assert quantize["quantization"][1] == step.zero_point
    assert quantize["quantization"][0] == pytest.approx(step.scale, rel=1e-6)
