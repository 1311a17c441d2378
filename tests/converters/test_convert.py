"""Conversion on real digit scans: figures, the record, options, formats and bad input."""
import json
import os

import numpy as np
import pytest

import edgelite
from edgelite.converters.errors import ConversionError
from edgelite.runtime.interpreter.model import Model
from edgelite.runtime.modelfile.tflite_file import read_file

pytestmark = pytest.mark.tensorflow


def test_int8_conversion_keeps_accuracy_on_real_digits(converted):
    v = converted.verification
    assert v.data == "eval-data" and v.images == 1797 - 1400
    assert v.float_top1 >= 0.95, v
    assert abs(v.drop_points) <= 1.0, v  # the goal: int8 loses at most one point of top-1
    assert v.agreement >= 0.97 and converted.within_budget


def test_output_carries_the_record_and_runs_without_flags(converted, digit_folders):
    record = json.loads(read_file(converted.output)[1].metadata["edgelite"])
    assert record["input"]["height"] == 32 and record["input"]["std"] == [1.0, 1.0, 1.0]  # Rescaling detected
    assert record["labels"] == [str(i) for i in range(10)]  # the class folder names
    assert record["quantization"] == {"mode": "int8", "io": "int8", "per_channel": True, "float_layers": []}
    assert record["verification"]["drop_points"] == converted.verification.drop_points
    assert record["provenance"]["source"] == "digits.keras" and len(record["provenance"]["source_sha256"]) == 64
    assert record["output"] == "probabilities" and record["target"] == "xnnpack"
    clf = edgelite.load(converted.output)
    _, evaluation = digit_folders
    sample = sorted((evaluation / "4").glob("*.png"))[:5]
    assert [clf.classify(p).top.label for p in sample].count("4") >= 4


def test_int8_model_is_small_and_fully_integer(converted, digits_keras):
    model = Model(converted.output, delegate="cpu")
    assert model.inputs[0].dtype == np.int8 and model.outputs[0].dtype == np.int8
    ops = model.op_counts()
    assert "QUANTIZE" not in ops and "DEQUANTIZE" not in ops  # no stray float conversions
    assert converted.output_size_bytes < 0.35 * os.path.getsize(digits_keras)


@pytest.mark.parametrize("mode, io, dtype", [
    ("fp16", "float32", np.float32), ("dynamic", "float32", np.float32), ("none", "float32", np.float32),
    ("int16x8", "float32", np.float32), ("int8", "uint8", np.uint8), ("int8", "float32", np.float32),
])
def test_quantization_modes_and_io(tmp_path, digits_keras, digit_folders, mode, io, dtype):
    train, evaluation = digit_folders
    result = edgelite.convert(digits_keras, output=tmp_path / "m.tflite", calibration=train, eval_data=evaluation,
                              quantize=mode, io=io, calibration_count=50)
    assert Model(result.output).inputs[0].dtype == dtype
    assert abs(result.verification.drop_points) <= 2.0, (mode, result.verification)
    assert result.quantization["mode"] == mode


def test_per_tensor_weights(tmp_path, digits_keras, digit_folders):
    result = edgelite.convert(digits_keras, output=tmp_path / "pt.tflite", calibration=digit_folders[0],
                              per_tensor=True, calibration_count=50, verification=False)
    graph = read_file(result.output)[1].main
    conv_weights = [t for t in graph.tensors if t.dtype == "int8" and len(t.shape) == 4 and t.shape[0] in (16, 32)]
    assert conv_weights and all(len(t.scales) == 1 for t in conv_weights)


def test_held_out_calibration_images_verify_without_eval_data(tmp_path, digits_keras, digit_folders):
    result = edgelite.convert(digits_keras, output=tmp_path / "h.tflite", calibration=digit_folders[0],
                              calibration_count=100)
    v = result.verification
    assert v.data == "held-out calibration images" and v.images == 280 and v.agreement >= 0.95  # 20% of 1,400


def test_legacy_h5_and_live_models(tmp_path, digits_model, digit_folders):
    h5 = tmp_path / "digits.h5"
    digits_model.save(h5)
    for source in (h5, digits_model):
        result = edgelite.convert(source, output=tmp_path / "x.tflite", calibration=digit_folders[0],
                                  calibration_count=30, verification=False)
        assert Model(result.output).outputs[0].shape == (1, 10)


def test_tf_keras_model_and_saved_model(tmp_path, digit_folders):
    import tf_keras
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.layers.Conv2D(4, 3, input_shape=(32, 32, 3), activation="relu"),
                                 tf_keras.layers.GlobalAveragePooling2D(), tf_keras.layers.Dense(10)])
    result = edgelite.convert(model, output=tmp_path / "k2.tflite", calibration=digit_folders[0],
                              calibration_count=20, input_range="0,1", eval_data=digit_folders[1],
                              max_accuracy_drop=100, accept_float_model=True)  # untrained: near chance, said
    assert any("the float model itself scores" in w for w in result.warnings)
    assert result.input_spec.std == (255.0,) * 3
    saved = tmp_path / "saved"
    model.save(saved)
    result = edgelite.convert(saved, output=tmp_path / "sm.tflite", calibration=digit_folders[0],
                              calibration_count=20, input_range="0,1", verification=False)
    assert edgelite.load(result.output).output_kind == "logits"


def test_missing_input_contract_names_the_option(tmp_path, digit_folders):
    import keras
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ConversionError, match="give --input-range 0,1\\|-1,1\\|0,255 or --mean/--std"):
        edgelite.convert(model, output=tmp_path / "n.tflite", calibration=digit_folders[0])


@pytest.mark.parametrize("kind, message", [
    ("two_inputs", "has 2 inputs"), ("vector", "is not an image"),
])
def test_models_that_are_not_image_classifiers(tmp_path, digit_folders, kind, message):
    import keras
    if kind == "two_inputs":
        a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
        model = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Add()([a, b]))))
    else:
        v = keras.Input((10,))
        model = keras.Model(v, keras.layers.Dense(2)(v))
    with pytest.raises(ConversionError, match=message):
        edgelite.convert(model, output=tmp_path / "x.tflite", calibration=digit_folders[0], input_range="0,1")


def test_bad_files(tmp_path, digit_folders):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ConversionError, match=r"notes\.txt: not a model edgelite converts"):
        edgelite.convert(text, output=tmp_path / "o.tflite")
    corrupt = tmp_path / "broken.keras"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ConversionError, match=r"broken\.keras: cannot load the Keras model"):
        edgelite.convert(corrupt, output=tmp_path / "o.tflite", calibration=digit_folders[0])
    assert not (tmp_path / "o.tflite").exists()


def test_calibration_folder_problems(tmp_path, digits_keras):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConversionError, match=r"empty: no images found in the calibration folder"):
        edgelite.convert(digits_keras, output=tmp_path / "o.tflite", calibration=empty)
    fake = tmp_path / "fake"
    fake.mkdir()
    for i in range(3):
        (fake / f"{i}.jpg").write_text("not an image")
    with pytest.raises(ConversionError, match=r"fake: none of the 3 images could be read"):
        edgelite.convert(digits_keras, output=tmp_path / "o.tflite", calibration=fake)


def test_corrupt_images_are_skipped_with_a_warning(tmp_path, digits_keras, digit_folders):
    import shutil
    folder = tmp_path / "cal"
    shutil.copytree(digit_folders[0] / "3", folder / "3")
    (folder / "3" / "broken.png").write_bytes(b"\x89PNG broken")
    result = edgelite.convert(digits_keras, output=tmp_path / "o.tflite", calibration=folder, calibration_count=500,
                              verification=False, labels=[str(i) for i in range(10)])
    assert any("broken.png" in w for w in result.warnings)


def test_output_path_problems(tmp_path, digits_keras, digit_folders):
    with pytest.raises(ConversionError, match="output folder .*missing does not exist"):
        edgelite.convert(digits_keras, output=tmp_path / "missing" / "o.tflite", calibration=digit_folders[0])

def test_read_only_output_folder(tmp_path, digits_keras, digit_folders, monkeypatch):
    """CI runs as root, who may write anywhere; os.access stands in for a read-only folder."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode))
    with pytest.raises(ConversionError, match="locked is not writable"):
        edgelite.convert(digits_keras, output=locked / "o.tflite", calibration=digit_folders[0])


def test_failed_conversion_keeps_the_good_model(tmp_path, digits_keras, digit_folders):
    out = tmp_path / "model.tflite"
    out.write_bytes(b"the good model")
    with pytest.raises(ConversionError):
        edgelite.convert(digits_keras, output=out, calibration=tmp_path / "nowhere")
    assert out.read_bytes() == b"the good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


def test_label_count_mismatch(tmp_path, digits_keras, digit_folders):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    with pytest.raises(ConversionError, match=r"labels\.txt: 2 labels for a model with 10 outputs"):
        edgelite.convert(digits_keras, output=tmp_path / "o.tflite", calibration=digit_folders[0], labels=labels)


@pytest.mark.parametrize("options, message", [
    (dict(quantize="int4"), "--quantize 'int4' is not one of"),
    (dict(quantize="fp16", io="uint8"), "--io uint8 applies to int8 models only"),
    (dict(target="tpu"), "target 'tpu' is not one of"),
    (dict(calibration_count=0), "--calibration-count must be a whole number >= 1"),
])
def test_bad_options(tmp_path, digits_keras, options, message):
    with pytest.raises(ConversionError, match=message):
        edgelite.convert(digits_keras, output=tmp_path / "o.tflite", **options)


def test_flex_ops_are_refused_by_default_and_allowed_on_request(tmp_path, digit_folders):
    import keras
    import tensorflow as tf
    def model_with(op):
        inp = keras.Input((8, 8, 3))
        x = keras.layers.Lambda(op)(keras.layers.Rescaling(1 / 255.0)(inp))
        return keras.Model(inp, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x)))

    det = model_with(lambda t: tf.linalg.det(t[..., :8, :8, 0])[:, None, None, None] + t)
    with pytest.raises(ConversionError, match=r"ops not in TFLite's builtin set: MatrixDeterminant; .*--allow-flex"):
        edgelite.convert(det, output=tmp_path / "f.tflite", quantize="none", calibration=digit_folders[0])
    result = edgelite.convert(det, output=tmp_path / "f.tflite", quantize="none", allow_flex=True,
                              calibration=digit_folders[0], calibration_count=10)
    assert "FlexMatrixDeterminant" in read_file(result.output)[1].custom_ops
    assert result.verification is None and any("Flex" in w for w in result.warnings)
    with pytest.raises(ConversionError, match="neither builtin nor available as Flex kernels: Erfinv"):
        edgelite.convert(model_with(lambda t: tf.math.erfinv(t * 0.9)), output=tmp_path / "e.tflite",
                         quantize="none", allow_flex=True, calibration=digit_folders[0])


def test_standard_metadata_for_mediapipe(tmp_path, digits_keras, digit_folders, digit_png):
    """With MediaPipe's writers available (scripts/envs.sh sets them up), a uint8 model gets the standard
    metadata, keeps our record, and MediaPipe's own ImageClassifier reads it unchanged."""
    from edgelite.converters.output.standard_metadata import configured_python
    python = configured_python()
    if python is None:
        pytest.skip("no MediaPipe metadata environment configured (scripts/setup.sh builds one)")
    train, _ = digit_folders
    result = edgelite.convert(digits_keras, output=tmp_path / "mp.tflite", calibration=train, calibration_count=50,
                              io="uint8", verification=False, labels=[str(d) for d in range(10)])
    assert result.standard_metadata == {"written": True, "by": python}
    data, model = read_file(result.output)
    assert {"TFLITE_METADATA", "edgelite"} <= set(model.metadata)
    assert edgelite.load(result.output).classify(digit_png).top.label == "7"  # our runtime still reads it
    code = f"""
import numpy as np, mediapipe as mp
from PIL import Image
from mediapipe.tasks import python as mpp
from mediapipe.tasks.python import vision
clf = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
    base_options=mpp.BaseOptions(model_asset_path={str(result.output)!r}), max_results=1))
pixels = np.asarray(Image.open({str(digit_png)!r}).convert("RGB").resize((32, 32)))
print(clf.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels)).classifications[0].categories[0].category_name)
"""
    import subprocess
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip().splitlines()[-1] == "7"
    int8 = edgelite.convert(digits_keras, output=tmp_path / "i8.tflite", calibration=train, calibration_count=20,
                            verification=False)
    assert int8.standard_metadata["written"] is False and "--io uint8" in int8.standard_metadata["reason"]
