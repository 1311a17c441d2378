"""Pruning on real digit scans, for Keras 3 (edgelite's masks) and tf_keras (tfmot)."""
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import edgelite
from edgelite.converters.errors import ConversionError
from edgelite.converters.pruning import magnitude as pruning
from edgelite.converters.reporting import Reporter
from edgelite.runtime.modelfile.sparsity import weight_sparsity
from edgelite.runtime.modelfile.tflite_file import read_file
from tests.conftest import ROOT

pytestmark = pytest.mark.tensorflow


def test_polynomial_decay_schedule():
    s = pruning.PolynomialDecay(0.8, end_step=100, frequency=10)
    assert s.sparsity_at(0) == 0.0 and s.sparsity_at(100) == pytest.approx(0.8) and s.sparsity_at(500) == 0.8
    assert s.sparsity_at(50) == pytest.approx(0.8 - 0.8 * 0.5 ** 3)
    assert s.updates_at(0) and s.updates_at(30) and not s.updates_at(31) and not s.updates_at(101)
    with pytest.raises(ConversionError, match=r"prune sparsity must be in \[0, 1\), got 1.0"):
        pruning.PolynomialDecay(1.0, end_step=10)


def test_masks():
    w = np.arange(1, 17, dtype=np.float32).reshape(2, 8) * np.array([1, -1] * 4, dtype=np.float32)
    mask = pruning.magnitude_mask(w, 0.25)
    assert mask.sum() == 12 and (mask.reshape(-1)[:4] == 0).all()  # the four smallest |w|
    kernel = np.random.default_rng(0).normal(size=(3, 3, 8, 4)).astype(np.float32)
    m = pruning.m_by_n_mask(kernel)
    groups = np.moveaxis(m, 2, -1).reshape(3, 3, 4, 2, 4)
    assert (groups.sum(-1) == 2).all()  # two of every four along the input channels
    kept = np.abs(np.moveaxis(kernel * m, 2, -1)).reshape(3, 3, 4, 2, 4)
    dropped = np.abs(np.moveaxis(kernel * (1 - m), 2, -1)).reshape(3, 3, 4, 2, 4)
    assert (np.sort(kept, -1)[..., 2] >= dropped.max(-1)).all()


@pytest.mark.parametrize("sparsity, budget", [(0.5, 1.5), (0.8, 3.0)])
def test_pruning_goals_on_real_digits(tmp_path, digits_keras, digit_folders, sparsity, budget):
    """The issue's goals: 50% + int8 within 1.5 points, 80% within 3, after at most 3 epochs."""
    train, evaluation = digit_folders
    result = edgelite.convert(digits_keras, output=tmp_path / "p.tflite", calibration=train, eval_data=evaluation,
                              prune=sparsity, train_data=train, epochs=3, max_accuracy_drop=budget)
    v = result.verification
    assert v.drop_points <= budget, v  # against the original dense float model
    assert result.weight_sparsity["overall"] == pytest.approx(sparsity, abs=0.01)
    assert result.pruning.tflite_sparsity_of_pruned_layers == pytest.approx(sparsity, abs=0.01)
    record = json.loads(read_file(result.output)[1].metadata["edgelite"])
    assert record["pruning"]["target_sparsity"] == sparsity and record["pruning"]["library"] == "edgelite (Keras 3)"
    assert record["weight_sparsity"]["overall"] == pytest.approx(sparsity, abs=0.01)


def test_pruned_int8_compresses_under_gzip(tmp_path, digits_keras, digit_folders):
    """Goal: gzip of the 75%-pruned int8 model <= 0.6x the dense int8 model's."""
    train, _ = digit_folders
    common = dict(calibration=train, calibration_count=100, verification=False)
    dense = edgelite.convert(digits_keras, output=tmp_path / "dense.tflite", **common)
    pruned = edgelite.convert(digits_keras, output=tmp_path / "pruned.tflite", prune=0.75, train_data=train,
                              epochs=1, **common)
    ratio = len(gzip.compress(open(pruned.output, "rb").read())) / len(gzip.compress(open(dense.output, "rb").read()))
    assert ratio <= 0.6, ratio


def test_two_of_four_structure_survives_into_the_file(tmp_path, digits_keras, digit_folders):
    train, _ = digit_folders
    result = edgelite.convert(digits_keras, output=tmp_path / "s.tflite", calibration=train, calibration_count=50,
                              prune=0.5, prune_structure="2:4", train_data=train, epochs=1, verification=False)
    data, model = read_file(result.output)
    dense_layer = next(layer for layer in weight_sparsity(model, data)["layers"] if layer["shape"] == [64, 1152])
    tensor = next(t for t in model.main.tensors if t.name == dense_layer["tensor"])
    start, length = model.buffer_spans[tensor.buffer]
    weights = np.frombuffer(data, np.int8, length, start).reshape(64, 1152 // 4, 4)
    assert ((weights == 0).sum(-1) >= 2).all()


def test_xnnpack_policy_prunes_only_1x1_convolutions_and_says_what_blocks(tmp_path, digit_folders):
    import keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255.0),
                              keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                              keras.layers.Conv2D(16, 1, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")])
    train, _ = digit_folders
    result = edgelite.convert(model, output=tmp_path / "x.tflite", quantize="none", calibration=train,
                              calibration_count=20, prune=0.75, prune_policy="xnnpack", train_data=train, epochs=1,
                              verification=False)
    layers = result.pruning.keras_sparsity["layers"]
    assert len(layers) == 1 and layers[0]["sparsity"] == pytest.approx(0.75, abs=0.01)
    assert result.pruning.xnnpack_sparse_kernels == {"eligible": True, "blocked_by": []}
    flat = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255.0), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(ConversionError, match=r"no prunable layers: the model has no 1x1 convolutions"):
        edgelite.convert(flat, output=tmp_path / "y.tflite", calibration=train, prune=0.5, prune_policy="xnnpack")


def test_one_shot_pruning_warns(tmp_path, digits_keras, digit_folders):
    train, evaluation = digit_folders
    result = edgelite.convert(digits_keras, output=tmp_path / "o.tflite", calibration=train, calibration_count=50,
                              eval_data=evaluation, prune=0.3, max_accuracy_drop=100)
    assert any("one shot" in w for w in result.warnings)
    assert result.pruning.fine_tune["epochs"] == 0 and result.weight_sparsity["overall"] == pytest.approx(0.3, abs=0.01)


def test_tf_keras_models_are_pruned_with_tfmot(tmp_path, digit_folders):
    import tf_keras
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.layers.Rescaling(1 / 255.0, input_shape=(32, 32, 3)),
                                 tf_keras.layers.Conv2D(8, 3, activation="relu"), tf_keras.layers.Flatten(),
                                 tf_keras.layers.Dense(10, activation="softmax")])
    train, _ = digit_folders
    result = edgelite.convert(model, output=tmp_path / "t.tflite", calibration=train, calibration_count=50,
                              prune=0.6, train_data=train, epochs=2, verification=False)
    assert result.pruning.library == "tfmot"
    assert result.pruning.keras_sparsity["overall"] == pytest.approx(0.6, abs=0.02)
    assert result.weight_sparsity["overall"] == pytest.approx(0.6, abs=0.02)


def test_sparse_encoding_kept_for_float_and_refused_for_int8_under_xnnpack(tmp_path, digits_keras, digit_folders):
    train, _ = digit_folders
    common = dict(calibration=train, calibration_count=30, prune=0.8, train_data=train, epochs=1, verification=False)
    dense_f32 = edgelite.convert(digits_keras, output=tmp_path / "f.tflite", quantize="none", **common)
    sparse_f32 = edgelite.convert(digits_keras, output=tmp_path / "fs.tflite", quantize="none", sparse_encoding=True,
                                  **common)
    assert sparse_f32.pruning.sparse_encoding["kept"] is True
    assert sparse_f32.output_size_bytes < 0.6 * dense_f32.output_size_bytes
    assert edgelite.load(sparse_f32.output).classify(next(train.rglob("*.png"))).top is not None
    int8 = edgelite.convert(digits_keras, output=tmp_path / "i.tflite", sparse_encoding=True, **common)
    encoding = int8.pruning.sparse_encoding
    assert encoding["kept"] is False and "xnnpack" in encoding["reason"].lower()
    assert any("kept the dense encoding" in w for w in int8.warnings)


@pytest.mark.parametrize("options, message", [
    (dict(prune=1.0), r"--prune must be a sparsity in \[0, 1\), got 1.0"),
    (dict(prune=-0.1), r"--prune must be a sparsity in \[0, 1\), got -0.1"),
    (dict(prune=0.6, prune_structure="2:4"), "2:4 pruning zeroes exactly half"),
    (dict(prune=0.5, train_data="{missing}"), "train-data folder does not exist"),
    (dict(prune=0.5, train_data="{three_classes}"), "3 class folders for a model with 10 outputs"),
])
def test_bad_pruning_input(tmp_path, digits_keras, digit_folders, options, message):
    import shutil
    train, _ = digit_folders
    one = tmp_path / "one"
    shutil.copytree(train / "1", one / "1")
    three = tmp_path / "three"
    for c in "123":
        shutil.copytree(train / c, three / c)
    paths = {"train": train, "missing": tmp_path / "missing", "one_class": one, "three_classes": three}
    options = {k: (paths[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v) for k, v in options.items()}
    with pytest.raises(ConversionError, match=message):
        edgelite.convert(digits_keras, output=tmp_path / "o.tflite", calibration=train, **options)
    assert not (tmp_path / "o.tflite").exists()


def test_ctrl_c_during_fine_tuning_leaves_nothing(tmp_path, digits_keras, digit_folders):
    class Interrupting(Reporter):
        def progress(self, label, total):
            import contextlib

            @contextlib.contextmanager
            def bar():
                def update(n=1):
                    if label.startswith("fine-tuning"):
                        raise KeyboardInterrupt
                yield update
            return bar()

    out = tmp_path / "model.tflite"
    out.write_bytes(b"previous good model")
    train, _ = digit_folders
    with pytest.raises(KeyboardInterrupt):
        edgelite.convert(digits_keras, output=out, calibration=train, prune=0.5, train_data=train,
                         reporter=Interrupting())
    assert out.read_bytes() == b"previous good model" and sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


def test_pruning_a_tf_keras_model_leaves_the_process_keras_as_it_was(tmp_path, digit_folders):
    """tfmot sets TF_USE_LEGACY_KERAS=1 for the whole process when imported, which turns every later
    ``tf.keras`` (a user's model code, mtcnn's networks) into tf_keras; pruning must not leak that."""
    train, _ = digit_folders
    code = f"""
import os, tf_keras
import edgelite
model = tf_keras.Sequential([tf_keras.layers.Rescaling(1 / 255.0, input_shape=(32, 32, 3)),
                             tf_keras.layers.Conv2D(4, 3), tf_keras.layers.Flatten(), tf_keras.layers.Dense(10)])
edgelite.convert(model, output={str(tmp_path / 't.tflite')!r}, calibration={str(train)!r}, calibration_count=10,
                 prune=0.5, train_data={str(train)!r}, epochs=1, verification=False)
import tensorflow as tf
print(os.environ.get("TF_USE_LEGACY_KERAS"), getattr(tf.keras, "version", lambda: "2 (tf_keras)")()[0])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-2:] == ["None", "3"]


def test_mirrored_strategy_on_two_cpu_devices(tmp_path, digits_keras, digit_folders):
    """MirroredStrategy over two logical CPU devices, in a fresh process (devices are fixed at TF start)."""
    train, _ = digit_folders
    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import edgelite
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
r = edgelite.convert({str(digits_keras)!r}, output={str(tmp_path / 'm.tflite')!r}, calibration={str(train)!r},
                     calibration_count=30, prune=0.5, train_data={str(train)!r}, epochs=1, strategy=strategy,
                     verification=False)
print(r.pruning.fine_tune["strategy"], strategy.num_replicas_in_sync, round(r.weight_sparsity["overall"], 2))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-3:] == ["MirroredStrategy", "2", "0.5"]


def test_pruned_model_carries_each_metadata_buffer_once(tmp_path, digits_keras, digit_folders):
    """Seen before: after pruning, min_runtime_version appeared twice. Pruning, uint8 I/O (so MediaPipe's
    standard metadata is written too) and sparse encoding all rewrite the flatbuffer."""
    from edgelite.runtime.modelfile.tflite_file import schema_module
    train, _ = digit_folders
    result = edgelite.convert(digits_keras, output=tmp_path / "p.tflite", calibration=train, calibration_count=40,
                              prune=0.5, io="uint8", sparse_encoding=True, verification=False)
    schema = schema_module()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(open(result.output, "rb").read(), 0))
    names = [m.name.decode() if isinstance(m.name, bytes) else m.name for m in model.metadata]
    assert len(names) == len(set(names)) and {"min_runtime_version", "edgelite"} <= set(names), names
