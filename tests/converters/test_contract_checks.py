"""A wrong contract is caught before a model ships: a scale that contradicts the model's own pixel layer, a float
model near chance on the user's labelled images, labels in another order than the outputs, a scale the float
model's own answers disagree with, and TensorFlow-only ops on every converter path. Each case on the real digit
scans, with the right contract beside it raising no alarm."""
import numpy as np
import pytest

import edgelite
from edgelite.converters.errors import ConversionError
from tests.converters.conftest import train_digits

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def minus_one_digits(digit_folders, tmp_path_factory):
    """The digits CNN with no Rescaling layer, trained on pixels its script scaled to [-1, 1]."""
    path = tmp_path_factory.mktemp("m11") / "digits_m11.keras"
    train_digits(digit_folders, rescaling=False, scale="-1,1").save(path)
    return path


@pytest.mark.parametrize("given", [dict(input_range="0,1"), dict(input_range="-1,1"),
                                   dict(mean=(127.5,), std=(127.5,))])
def test_a_scale_that_contradicts_the_rescaling_layer_is_refused(tmp_path, digits_keras, digit_folders, given):
    with pytest.raises(ConversionError, match=r"its first layer rescaling\S* \(Rescaling\) maps pixels 0\.\.255 to "
                                              r"0\.\.1, so it expects raw 0\.\.255 pixels: .*--force-input-scale"):
        edgelite.convert(digits_keras, output=tmp_path / "m.tflite", calibration=digit_folders[0], **given)
    assert not list(tmp_path.iterdir())


def test_the_scale_the_layer_takes_is_accepted(tmp_path, digits_keras, digit_folders):
    result = edgelite.convert(digits_keras, output=tmp_path / "m.tflite", calibration=digit_folders[0],
                              calibration_count=50, input_range="0,255", verification=False)
    assert result.input_spec.std == (1.0,) * 3


def test_forced_wrong_scale_is_stopped_naming_the_scale_the_float_model_scores_on(tmp_path, digits_keras,
                                                                                   digit_folders):
    train, evaluation = digit_folders
    with pytest.raises(ConversionError) as caught:
        edgelite.convert(digits_keras, output=tmp_path / "m.tflite", calibration=train, eval_data=evaluation,
                         calibration_count=50, input_range="0,1", force_input_scale=True)
    message = str(caught.value)
    assert "with the input scale given (0,1) but 0,255 " in message and "under 0,255: it was trained" in message
    assert "--accept-float-model" in message and "\n" not in message and not list(tmp_path.iterdir())


def test_a_float_model_near_chance_stops_with_the_likely_causes(tmp_path, digit_folders):
    import keras
    keras.utils.set_random_seed(1)
    untrained = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255.0),
                                  keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
                                  keras.layers.Dense(10, activation="softmax")])
    train, evaluation = digit_folders
    with pytest.raises(ConversionError) as caught:
        edgelite.convert(untrained, output=tmp_path / "m.tflite", calibration=train, eval_data=evaluation,
                         calibration_count=50)
    message = str(caught.value)
    assert "the float model itself scores" in message and "chance 10.0%" in message
    for cause in ("input scale", "check-input", "channel order", "label order", "--accept-float-model"):
        assert cause in message
    assert "\n" not in message and not list(tmp_path.iterdir())


def test_a_training_scale_not_given_is_caught_with_labels_and_named_without(tmp_path, minus_one_digits,
                                                                             digit_folders):
    train, evaluation = digit_folders
    with pytest.raises(ConversionError, match=r"with the input scale given \(0,255\) but -1,1 9\d\.\d%.* under -1,1"):
        edgelite.convert(minus_one_digits, output=tmp_path / "m.tflite", calibration=train, eval_data=evaluation,
                         calibration_count=50, input_range="0,255")
    unlabelled = edgelite.convert(minus_one_digits, output=tmp_path / "u.tflite", calibration=train,
                                  calibration_count=50, input_range="0,255", max_accuracy_drop=100)
    warned = [w for w in unlabelled.warnings if "wrong input scale" in w]
    assert len(warned) == 1 and "resamples" in warned[0]
    conventions = unlabelled.float_checks.conventions
    assert "-1,1" in (conventions.better, *conventions.alike), conventions.to_dict()


def test_a_scale_that_is_none_of_the_usual_ones_is_compared_too(tmp_path, minus_one_digits, digit_folders):
    train, evaluation = digit_folders
    with pytest.raises(ConversionError, match=r"with the input scale given \(mean \[0\.0, 0\.0, 0\.0\] std "
                                              r"\[100\.0, 100\.0, 100\.0\]\) but -1,1 9\d\.\d%"):
        edgelite.convert(minus_one_digits, output=tmp_path / "m.tflite", calibration=train, eval_data=evaluation,
                         calibration_count=50, mean=(0.0,), std=(100.0,))


def test_the_right_contract_raises_no_alarm(tmp_path, minus_one_digits, digit_folders, converted):
    train, evaluation = digit_folders
    right = edgelite.convert(minus_one_digits, output=tmp_path / "r.tflite", calibration=train, eval_data=evaluation,
                             calibration_count=50, input_range="-1,1")
    for result in (right, converted):
        checks = result.float_checks
        assert checks.labelled.top1 > 0.9 and not checks.labelled.swaps
        assert checks.conventions.better is None, checks.conventions.to_dict()
        assert not [w for w in result.warnings if "wrong input scale" in w or "float model" in w]


def test_labels_in_another_order_than_the_outputs_are_refused(tmp_path, digits_keras, digit_folders):
    """The class folders are graded through the label list the model ships with: a reversed file makes the 7s
    answer 'the output the labels call 2', and conversion stops saying so."""
    train, evaluation = digit_folders
    reversed_labels = tmp_path / "labels.txt"
    reversed_labels.write_text("\n".join(str(d) for d in reversed(range(10))) + "\n")
    with pytest.raises(ConversionError, match=r"the labels look swapped: '9' images are mostly \(\d+% of \d+\) "
                                              r"answered with the output the labels call '0'.*'7' images .* call '2'"):
        edgelite.convert(digits_keras, output=tmp_path / "m.tflite", calibration=train,
                         eval_data=evaluation, labels=reversed_labels, calibration_count=50)
    assert not (tmp_path / "m.tflite").exists()
    right = tmp_path / "right.txt"
    right.write_text("\n".join(str(d) for d in range(10)) + "\n")
    result = edgelite.convert(digits_keras, output=tmp_path / "ok.tflite", calibration=train, eval_data=evaluation,
                              labels=right, calibration_count=50)
    assert result.float_checks.labelled.top1 > 0.9 and result.labels == tuple(str(d) for d in range(10))


def test_folders_named_for_no_label_are_said_and_half_named_ones_refused(tmp_path, digits_keras, digit_folders):
    train, evaluation = digit_folders
    words = tmp_path / "words.txt"
    words.write_text("\n".join(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]))
    result = edgelite.convert(digits_keras, output=tmp_path / "w.tflite", calibration=train, eval_data=evaluation,
                              labels=words, calibration_count=50)
    assert any("no class folder is named for a label" in w and "not checked" in w for w in result.warnings)
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("\n".join(["0", "1", "2", "3", "4", "five", "6", "7", "8", "9"]))
    with pytest.raises(ConversionError, match=r"class folder\(s\) 5 are not among the labels"):
        edgelite.convert(digits_keras, output=tmp_path / "x.tflite", calibration=train, eval_data=evaluation,
                         labels=mixed, calibration_count=50)


def test_accept_float_model_turns_the_stop_into_a_warning(tmp_path, digits_keras, digit_folders):
    train, evaluation = digit_folders
    result = edgelite.convert(digits_keras, output=tmp_path / "m.tflite", calibration=train, eval_data=evaluation,
                              calibration_count=50, input_range="0,1", force_input_scale=True,
                              accept_float_model=True, max_accuracy_drop=100)
    assert any("the float model scores" in w and "under 0,255" in w for w in result.warnings)
    assert result.float_checks.labelled.top1 < 0.3 and result.within_budget


def _with_matrix_inverse():
    import keras
    import tensorflow as tf
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Lambda(lambda t: tf.linalg.inv(t[..., :8, :8, 0] + 8.0 * tf.eye(8))[..., None] + t)(x)
    return keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x)))


@pytest.mark.parametrize("options", [
    dict(),                                   # the default int8 path: QuantizationDebugger's calibration
    dict(io="uint8"),                         # the converter proper
    dict(quantize="dynamic"), dict(quantize="none"), dict(quantize="fp16"), dict(quantize="int16x8"),
    dict(target="edgetpu"), dict(ladder=("int8-per-tensor", "float-fallback")),
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_a_tensorflow_only_op_is_one_line_on_every_converter_path(tmp_path, digit_folders, options):
    with pytest.raises(ConversionError) as caught:
        edgelite.convert(_with_matrix_inverse(), output=tmp_path / "m.tflite", calibration=digit_folders[0],
                         calibration_count=12, **options)
    message = str(caught.value)
    assert "MatrixInverse" in message and "--allow-flex" in message and "\n" not in message, message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize("rung", ["float-fallback", "qat", "int8-per-tensor"])
def test_a_tensorflow_only_op_is_one_line_inside_the_ladders_rungs(rung):
    """The rungs convert through the same boundary when called on their own: the shared calibration that
    float-fallback and the int8 variants re-quantize, and QAT's fine-tuned conversion (the ladder is never
    reached with such a model, since the first conversion stops it: these are the rungs' own calls)."""
    from edgelite.converters.ladder import climb, qat
    from edgelite.converters.ladder.float_layers import Calibrated
    from edgelite.converters.quantize.modes import QuantizeOptions
    from edgelite.converters.user_model import load_model
    loaded = load_model(_with_matrix_inverse())
    batch = np.random.default_rng(0).uniform(0, 255, (12, 8, 8, 3)).astype(np.float32)
    options = QuantizeOptions(per_tensor=rung == "int8-per-tensor")
    with pytest.raises(ConversionError) as caught:
        if rung == "qat":
            climb.qat_model(loaded, options, batch, batch, qat.QatOptions(epochs=1, augmented_copies=0), seed=0)
        else:
            Calibrated(loaded, options, batch).quantized(options)
    message = str(caught.value)
    assert "MatrixInverse" in message and "\n" not in message, message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_cli_contract_errors_are_one_line_exit_1(tmp_path, digits_keras, digit_folders):
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    result = CliRunner().invoke(main, ["convert", str(digits_keras), "-o", str(tmp_path / "m.tflite"),
                                       "--calibration", str(digit_folders[0]), "--input-range", "0,1"])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--force-input-scale" in lines[0], result.output


def test_labelled_judgement_names_each_swapped_class():
    from edgelite.converters.verify.float_model import judge_labelled
    truth = np.repeat(np.arange(3), 10)
    answers = np.array([1] * 10 + [0] * 10 + [2] * 10)
    found = judge_labelled(np.eye(3)[answers], truth, ["cat", "dog", "bird"])
    assert [(s.folder, s.label) for s in found.swaps] == [("cat", "dog"), ("dog", "cat")]
    assert "'cat' images are mostly (100% of 10) answered with the output the labels call 'dog'" in found.problem()
    good = judge_labelled(np.eye(3)[truth], truth, ["cat", "dog", "bird"])
    assert good.problem() is None and good.top1 == 1.0
