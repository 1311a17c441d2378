"""Detection, embeddings and raw outputs on the device (no TensorFlow), against the reference implementation.

The detector is MediaPipe's own face detector (face_detection_short_range.tflite from the mediapipe wheel,
a real model with two raw SSD outputs and no metadata), decoded with the options of MediaPipe's own graph
(examples/decoders/face_detection_short_range.json). MediaPipe's legacy FaceDetection solution runs the
same model on the same real photos in its own environment; edgelite must find the same faces, box by box.
"""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
from PIL import Image

import edgelite
from edgelite.runtime.errors import InputError
from edgelite.runtime.tasks import decoders
from edgelite.runtime.tasks import detection as det
from edgelite.runtime.tasks.task import Detector, Embedder, RawModel
from tests.conftest import DIGITS_INT8, ROOT, cleanly

DECODER = ROOT / "examples" / "decoders" / "face_detection_short_range.json"


def mediapipe_python() -> str | None:
    configured = os.environ.get("EDGELITE_METADATA_PYTHON") or (
        (ROOT / ".venv" / "edgelite-metadata-python").read_text().strip()
        if (ROOT / ".venv" / "edgelite-metadata-python").exists() else None)
    return configured if configured and pathlib.Path(configured).exists() else None


@pytest.fixture(scope="module")
def face_model() -> pathlib.Path:
    python = mediapipe_python()
    if python is None:
        pytest.skip("no mediapipe environment (the metadata extra; scripts/setup.sh builds it)")
    where = subprocess.run([python, "-c", "import mediapipe, os; print(os.path.dirname(mediapipe.__file__))"],
                           capture_output=True, text=True, check=True, timeout=120).stdout.strip()
    return pathlib.Path(where) / "modules" / "face_detection" / "face_detection_short_range.tflite"


@pytest.fixture(scope="module")
def photos_with_and_without_faces(tmp_path_factory) -> list[pathlib.Path]:
    import skimage.data
    folder = tmp_path_factory.mktemp("faces")
    images = {"astronaut": skimage.data.astronaut(), "cameraman": skimage.data.camera(),
              "coffee": skimage.data.coffee(), "chelsea": skimage.data.chelsea()}
    for i, face in enumerate(skimage.data.lfw_subset()[:6]):
        images[f"lfw{i}"] = np.asarray(Image.fromarray((face * 255).astype(np.uint8)).resize((160, 160)))
    paths = []
    for name, pixels in images.items():
        paths.append(folder / f"{name}.png")
        Image.fromarray(pixels).convert("RGB").save(paths[-1])
    return paths


REFERENCE = """
import json, sys
import numpy as np, mediapipe as mp
from PIL import Image
out = {}
with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as fd:
    for path in sys.argv[1:]:
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        res = fd.process(img)
        out[path] = [{"box": [d.location_data.relative_bounding_box.xmin * w, d.location_data.relative_bounding_box.ymin * h,
                              (d.location_data.relative_bounding_box.xmin + d.location_data.relative_bounding_box.width) * w,
                              (d.location_data.relative_bounding_box.ymin + d.location_data.relative_bounding_box.height) * h],
                      "score": d.score[0]} for d in (res.detections or [])]
print(json.dumps(out))
"""


def test_faces_match_mediapipes_own_detector_box_by_box(face_model, photos_with_and_without_faces):
    paths = [str(p) for p in photos_with_and_without_faces]
    done = subprocess.run([mediapipe_python(), "-c", REFERENCE, *paths], capture_output=True, text=True,
                          timeout=300, check=True)
    reference = json.loads(done.stdout.strip().splitlines()[-1])
    detector = Detector(face_model, decoder=DECODER)
    found = {p: detector.detect(p).detections for p in paths}
    assert sum(len(v) for v in reference.values()) >= 3  # the photos do hold faces the reference finds
    mismatches = []
    clear = lambda score: abs(score - 0.5) > 0.05  # noqa: E731 - at the 0.5 threshold, resampling decides
    for path in paths:
        theirs = [t for t in reference[path] if clear(t["score"])]
        ours = [o for o in found[path] if clear(o.score)]
        if len(theirs) != len(ours):
            mismatches.append((path, len(theirs), len(ours)))
            continue
        for t in theirs:
            best = max(ours, key=lambda o: det.iou(np.array(t["box"]), np.array([o.box]))[0])
            overlap = det.iou(np.array(t["box"]), np.array([best.box]))[0]
            if overlap < 0.85 or abs(best.score - t["score"]) > 0.05:
                mismatches.append((path, round(float(overlap), 3), best.score, t["score"]))
    assert mismatches == []


def test_load_picks_the_task_and_never_refuses_an_image_model(face_model):
    raw = edgelite.load(face_model)
    assert isinstance(raw, RawModel) and raw.assumed_task == "raw"
    outputs = raw.run(np.zeros((200, 100, 3), np.uint8)).outputs
    assert sorted(v.shape for v in outputs.values()) == [(1, 896, 1), (1, 896, 16)]
    assert isinstance(edgelite.load(face_model, decoder=DECODER), Detector)
    assert type(edgelite.load(DIGITS_INT8)).__name__ == "Classifier"


def test_embedder_vectors_are_unit_length_and_compare_by_cosine(digit_png):
    embedder = edgelite.load(DIGITS_INT8, task="embed")
    assert isinstance(embedder, Embedder)
    a = embedder.embed(digit_png).embedding
    assert abs(np.linalg.norm(a) - 1.0) < 1e-5 and Embedder.cosine(a, a) == pytest.approx(1.0)


@pytest.mark.parametrize("content, fragment", [
    ("not json", "not JSON"),
    ('{"ssd_anchors": {"num_layerz": 4}, "tensors_to_detections": {}}', "ssd_anchors.num_layerz is not one of"),
    ('{"tensors_to_detections": {"num_boxes": 896}}', "needs ssd_anchors and tensors_to_detections"),
    ('{"ssd_anchors": {"strides": "8"}, "tensors_to_detections": {}}', "ssd_anchors.strides must be a list of 1 to 16 whole numbers"),
    ('{"colour": {}}', "unknown section 'colour'"),
])
def test_bad_decoder_files_are_one_line_naming_file_and_key(tmp_path, content, fragment):
    path = tmp_path / "decoder.json"
    path.write_text(content)
    with pytest.raises(InputError) as caught:
        Detector(DIGITS_INT8, decoder=path)
    assert str(caught.value).startswith(str(path)) and fragment in str(caught.value) and "\n" not in str(caught.value)


def test_a_decoder_that_does_not_fit_the_model_says_what_the_model_has(tmp_path, face_model):
    spec = json.loads(DECODER.read_text())
    spec["tensors_to_detections"]["num_coords"] = 18
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(InputError, match=r"num_coords is 18, but the model's outputs are \[\[1, 896, 1.*\]\]"):
        Detector(face_model, decoder=path)


def test_detect_without_a_decoder_says_what_to_give():
    with pytest.raises(InputError, match="detection needs a decoder: give --decoder FILE"):
        Detector(DIGITS_INT8)


def test_yolo_head_decoding_and_nms():
    """A YOLO-style [1, 4 + C, N] head (transposed), centre xywh in input pixels: a stand-in tensor with two
    overlapping boxes of one class and one of another (no trained YOLO model is installable here)."""
    decoder = decoders.parse({"yolo": {"confidence_threshold": 0.3, "iou_threshold": 0.5}}, "yolo")
    rows = np.array([[50, 50, 20, 20, 0.9, 0.1], [52, 51, 20, 20, 0.8, 0.1], [10, 10, 8, 8, 0.05, 0.7],
                     [90, 90, 5, 5, 0.1, 0.2]] + [[0, 0, 1, 1, 0.0, 0.0]] * 6, np.float32)
    found = det.detections([rows.T[None]], decoder, None)
    assert [int(c) for c in found.classes] == [0, 1] and found.scores.tolist() == pytest.approx([0.9, 0.7])
    assert found.boxes[0].tolist() == pytest.approx([40, 40, 60, 60])
    pixels = decoders.parse({"yolo": {"confidence_threshold": 0.3, "normalized": False}}, "yolo")
    found = det.detections([rows.T[None]], pixels, None, input_size=(100, 200))
    assert found.boxes[0].tolist() == pytest.approx([0.4, 0.2, 0.6, 0.3])  # pixels of a 100x200 input, normalized


def test_a_yolo_head_split_in_boxes_and_scores_decodes_as_the_joined_one():
    """The converters split a YOLO head into boxes [1, 4, N] (normalized) and scores [1, C, N] before int8; the
    decoder takes the pair in either order and layout and finds what the joined head gives."""
    decoder = decoders.parse({"yolo": {"confidence_threshold": 0.3, "iou_threshold": 0.5}}, "yolo")
    rows = np.array([[.5, .5, .2, .2, .9, .1], [.52, .51, .2, .2, .8, .1], [.1, .1, .08, .08, .05, .7],
                     [.9, .9, .05, .05, .1, .2]] + [[0, 0, .01, .01, 0, 0]] * 6, np.float32)
    joined = det.detections([rows.T[None]], decoder, None)
    boxes, scores = rows[:, :4].T[None], rows[:, 4:].T[None]
    for outputs in ([boxes, scores], [scores, boxes], [boxes.transpose(0, 2, 1), scores.transpose(0, 2, 1)]):
        decoders.check_fit(decoder, [o.shape for o in outputs], "yolo")
        found = det.detections(outputs, decoder, None)
        assert found.classes.tolist() == joined.classes.tolist() and found.boxes.tolist() == joined.boxes.tolist()
    with pytest.raises(InputError, match="boxes \\[1, 4, N\\] and scores"):
        decoders.check_fit(decoder, [(1, 5, 10), (1, 3, 10)], "yolo")  # no 4-wide output: not a split head


def test_ssd_anchors_match_mediapipes_count_and_first_cells():
    decoder = decoders.parse(json.loads(DECODER.read_text()), "decoder")
    anchors = det.ssd_anchors(decoder)
    assert anchors.shape == (896, 4)  # 16x16x2 + 8x8x6, as MediaPipe's graph says (num_boxes: 896)
    assert decoders.anchor_count(decoder) == 896  # the arithmetic the validator uses before generating any
    assert anchors[0].tolist() == pytest.approx([0.5 / 16, 0.5 / 16, 1.0, 1.0])
    assert anchors[512].tolist() == pytest.approx([0.5 / 8, 0.5 / 8, 1.0, 1.0])


def test_cli_predict_detects_draws_and_prints_json(tmp_path, face_model, photos_with_and_without_faces):
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    astronaut = next(p for p in photos_with_and_without_faces if p.stem == "astronaut")
    result = CliRunner().invoke(main, ["predict", str(face_model), str(astronaut), "--decoder", str(DECODER),
                                       "--draw", str(tmp_path / "drawn"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    (item,) = data["results"]
    assert data["task"] == "detect" and item["task"] == "detect" and set(item["timings_ms"]) == {"preprocess", "invoke", "boxes+nms"}
    (face,) = item["detections"]
    xmin, ymin, xmax, ymax = face["box"]
    assert 150 < xmin < xmax < 300 and 60 < ymin < ymax < 200 and len(face["keypoints"]) == 6  # her face
    drawn = Image.open(tmp_path / "drawn" / "astronaut.png")
    assert drawn.size == (512, 512)
    text = CliRunner().invoke(main, ["predict", str(face_model), str(astronaut)])
    assert text.exit_code == 0 and "regressors: [1, 896, 16]" in text.stdout  # raw outputs by name, no decoder


def test_draw_never_writes_through_a_symlink_in_its_folder(tmp_path, face_model, photos_with_and_without_faces):
    """--draw writes into a folder the user names; a symlink planted there is refused, its target untouched."""
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    astronaut = next(p for p in photos_with_and_without_faces if p.stem == "astronaut")
    victim, drawn = tmp_path / "victim.txt", tmp_path / "drawn"
    victim.write_text("keep me")
    drawn.mkdir()
    (drawn / "astronaut.png").symlink_to(victim)
    result = CliRunner().invoke(main, ["predict", str(face_model), str(astronaut), "--decoder", str(DECODER),
                                       "--draw", str(drawn)])
    assert result.exit_code == 1 and "is a symlink" in result.output and cleanly(result)
    assert victim.read_text() == "keep me" and (drawn / "astronaut.png").is_symlink()


def test_draw_gives_images_with_the_same_name_pictures_of_their_own(tmp_path, face_model,
                                                                     photos_with_and_without_faces):
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    astronaut = next(p for p in photos_with_and_without_faces if p.stem == "astronaut")
    other = tmp_path / "copy" / "astronaut.png"
    other.parent.mkdir()
    Image.open(astronaut).rotate(90).save(other)  # the same name, another picture
    drawn = tmp_path / "drawn"
    result = CliRunner().invoke(main, ["predict", str(face_model), str(astronaut), str(other), str(astronaut),
                                       "--decoder", str(DECODER), "--draw", str(drawn)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in drawn.iterdir()) == ["astronaut-2.png", "astronaut.png"]
    assert Image.open(drawn / "astronaut.png").tobytes() != Image.open(drawn / "astronaut-2.png").tobytes()


def test_draw_with_a_model_that_finds_no_boxes_is_a_usage_error(tmp_path, face_model,
                                                                photos_with_and_without_faces):
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    from tests.conftest import DIGITS_INT8
    astronaut = next(p for p in photos_with_and_without_faces if p.stem == "astronaut")
    for model, runs_as in ((face_model, "runs as raw; give --decoder FILE"), (DIGITS_INT8, "runs as classify")):
        result = CliRunner().invoke(main, ["predict", str(model), str(astronaut), "--draw", str(tmp_path / "d")])
        assert result.exit_code == 2 and runs_as in result.output, result.output
    assert not (tmp_path / "d").exists()


def test_profile_breaks_a_detector_and_a_raw_model_down_by_stage(face_model, photos_with_and_without_faces):
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    astronaut = next(p for p in photos_with_and_without_faces if p.stem == "astronaut")
    common = ["profile", str(face_model), "--image", str(astronaut), "--runs", "5", "--warmup", "1", "--json"]
    detector = CliRunner().invoke(main, [*common, "--decoder", str(DECODER)])
    assert detector.exit_code == 0, detector.output
    stages = json.loads(detector.stdout)["stages_ms"]
    assert list(stages) == ["decode", "resize", "quantize", "invoke", "boxes+nms"]
    assert all(s["n"] == 5 and s["median"] > 0 for s in stages.values())
    raw = CliRunner().invoke(main, common)  # no decoder, no record: every output by name
    assert raw.exit_code == 0, raw.output
    assert list(json.loads(raw.stdout)["stages_ms"]) == ["decode", "resize", "quantize", "invoke", "postprocess"]


def test_run_many_prepares_ahead_and_keeps_order_and_errors(tmp_path, face_model, photos_with_and_without_faces):
    import edgelite
    detector = edgelite.load(face_model, decoder=DECODER)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    images = [*photos_with_and_without_faces[:4], bad, *photos_with_and_without_faces[4:6]]
    outcomes = list(detector.run_many(images, workers=2))
    assert [image for image, _ in outcomes] == images
    for image, result in outcomes:
        if image == bad:
            assert isinstance(result, edgelite.InputError) and "bad.jpg" in str(result)
            continue
        alone = detector.run(image)
        assert [d.box for d in result.detections] == [d.box for d in alone.detections]
        assert set(result.timings_ms) == {"preprocess", "invoke", "boxes+nms"}


def test_nms_ends_on_degenerate_boxes():
    """Zero-area and NaN boxes overlap nothing, not even themselves: NMS once looped on them forever."""
    boxes = np.array([[0.5, 0.5, 0.5, 0.5], [np.nan, 0, 1, 1], [0.1, 0.1, 0.3, 0.3], [0.1, 0.1, 0.3, 0.31]], np.float32)
    found = det.RawDetections(boxes, np.array([0.9, 0.8, 0.7, 0.6], np.float32), np.zeros(4, np.int64),
                              np.zeros((4, 0, 2), np.float32))
    for weighted in (False, True):
        kept = det.suppress(found, 0.3, weighted)
        assert len(kept.scores) == 3  # the two overlapping ones merge; the degenerate ones stand alone


def test_models_that_decode_themselves_report_the_ops_own_detections():
    """Layout 1: a model ending in TFLite's TFLite_Detection_PostProcess (tests/fixtures/build_models.py). The op's
    own outputs, read here straight from the interpreter, are the reference; edgelite must report the same
    boxes in pixels (xmin, ymin, xmax, ymax), classes and scores, and pick the task without being told."""
    import skimage.data

    from edgelite.runtime.interpreter.backend import find_backend
    from tests.conftest import MODELS
    path = MODELS / "ssd_postprocess.tflite"
    photo = Image.fromarray(skimage.data.astronaut())
    detector = edgelite.load(path, mean=(0.0,), std=(1.0,), fast=False)  # the model rescales 0..255 itself
    assert isinstance(detector, Detector) and detector.assumed_task == "detect"
    ours = detector.detect(photo).detections
    interpreter = find_backend().Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    x = np.asarray(photo.resize((64, 64), Image.BILINEAR), np.float32)[None]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    boxes, classes, scores, count = (interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details())
    n = int(count[0])
    assert n == len(ours) > 0
    for i, d in enumerate(ours):
        ymin, xmin, ymax, xmax = boxes[0, i] * 512
        assert d.box == pytest.approx((xmin, ymin, xmax, ymax), abs=1.0)
        assert d.score == pytest.approx(float(scores[0, i]), abs=1e-5) and d.label_id == int(classes[0, i])
