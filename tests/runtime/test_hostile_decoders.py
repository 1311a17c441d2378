"""Hostile detection decoders, given as files, as dicts and inside a model's record (issue: decoders are input).

Every case an attacker tried against MediaPipe's face detector (a reshape into a billion keypoints, millions of
layers or aspect ratios, a zero stride, an anchor grid that fills memory, nonsense values that used to decode)
must be one line and exit 1, within 20 s and 400 MB, from the CLI, in every backend's suite. The records ride in
a stand-in with the face detector's output layout (tests/fixtures/build_hostile.py, committed as a corpus, so
tflite-runtime, which has no schema module to embed records with, runs the same files).
"""
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import edgelite
from edgelite.runtime.errors import InputError, ModelError
from edgelite.runtime.modelfile.record import Record
from edgelite.runtime.tasks import decoders
from edgelite.runtime.tasks.task import Detector
from tests.conftest import ROOT
from tests.runtime.test_detection import DECODER, face_model  # noqa: F401 - the real detector, as a fixture

CORPUS = ROOT / "tests" / "fixtures" / "models" / "hostile" / "decoder_corpus.zip"
CASES = {  # name -> what the one line must mention (tests/fixtures/build_hostile.py: HOSTILE_DECODERS)
    "billion_keypoints": "num_keypoints", "million_layers": "num_layers", "many_aspect_ratios": "aspect_ratios",
    "zero_stride": "strides", "anchor_bomb": "anchors", "unknown_nms_algorithm": "algorithm",
    "negative_box_offset": "box_coord_offset", "negative_scale": "x_scale",
    "keypoints_past_coords": "past num_coords", "anchors_not_the_models": "num_boxes is 896",
}
PEAK_BYTES = 400 << 20


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("decoders")
    with zipfile.ZipFile(CORPUS) as archive:
        archive.extractall(folder)
    return folder


CLI_WITH_PEAK = textwrap.dedent("""
    import atexit, sys

    def peak():  # VmHWM belongs to this process image alone; ru_maxrss would carry the parent's peak across exec
        with open("/proc/self/status") as status:
            kb = next(line.split()[1] for line in status if line.startswith("VmHWM"))
        with open(sys.argv[1], "w") as out:
            out.write(kb)
    atexit.register(peak)
    from edgelite.cli.commands import main
    main(sys.argv[3:], prog_name="edgelite")
""")


def run_cli(*args) -> tuple[int, str, float, int]:
    """The CLI in a child: exit code, stderr, seconds, and that child's own peak resident memory in bytes."""
    import tempfile
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("r") as peak:
        out = subprocess.run([sys.executable, "-c", CLI_WITH_PEAK, peak.name, "edgelite", *map(str, args)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
        kb = peak.read().strip()
    return out.returncode, out.stderr, time.monotonic() - started, int(kb or 0) * 1024


def assert_one_line(code: int, err: str, seconds: float, source, fragment: str) -> None:
    assert code == 1 and seconds < 20, (code, seconds, err[-400:])
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {source}") and fragment in line, line


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_decoder_file_is_one_line_on_the_real_face_detector(name, corpus, face_model,  # noqa: F811
                                                                         digit_png):
    code, err, seconds, _ = run_cli("predict", face_model, digit_png, "--decoder", corpus / f"{name}.json")
    assert_one_line(code, err, seconds, corpus / f"{name}.json", CASES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_decoder_inside_a_record_is_one_line_with_no_flag_given(name, corpus, digit_png):
    model = corpus / f"{name}.tflite"
    code, err, seconds, _ = run_cli("predict", model, digit_png)
    assert_one_line(code, err, seconds, model, CASES[name])
    assert "decoder" in err


def test_memory_stays_bounded_for_the_worst_cases(corpus, digit_png):
    """Peak resident memory of the whole CLI process for the cases that used to allocate: a billion keypoints,
    the anchor grid, the aspect ratios, as files and inside records."""
    for name in ("billion_keypoints", "anchor_bomb", "many_aspect_ratios"):
        for args in (("predict", corpus / "standin.tflite", digit_png, "--decoder", corpus / f"{name}.json"),
                     ("predict", corpus / f"{name}.tflite", digit_png)):
            code, err, seconds, peak = run_cli(*args)
            assert code == 1 and seconds < 20 and peak < PEAK_BYTES, (name, code, seconds, peak, err[-300:])


def test_a_300_mb_decoder_file_is_refused_before_it_is_read(tmp_path, corpus, digit_png):
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:  # sparse: 300 MB on paper, nothing on disk
        f.truncate(300 << 20)
    code, err, seconds, peak = run_cli("predict", corpus / "standin.tflite", digit_png, "--decoder", huge)
    assert code == 1 and peak < PEAK_BYTES, (code, peak)
    (line,) = err.strip().splitlines()
    assert f"{huge}: {300 << 20} bytes is over the limit of {decoders.MAX_FILE_BYTES}" in line


FUZZ_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import edgelite
    from edgelite.runtime.tasks.task import Detector
    from tests.outcomes import outcome
    folder, names = sys.argv[1], sys.argv[2:]
    image = np.full((64, 48, 3), 90, np.uint8)
    for name in names:
        steps = (lambda: Detector(f"{folder}/standin.tflite", decoder=f"{folder}/{name}.json").run(image),
                 lambda: edgelite.load(f"{folder}/{name}.tflite").run(image))
        print(json.dumps([name, [outcome(step) for step in steps]]), flush=True)
""")


def run_decoder_fuzz(folder, names: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", FUZZ_CHILD, str(folder), *names], capture_output=True, text=True,
                         cwd=ROOT, timeout=20 * len(names) + 60, env={**os.environ, "EDGELITE_TRUST": "1"})
    assert out.returncode == 0, out.stderr[-1000:]  # no signal, no traceback out of the loop
    return dict(json.loads(line) for line in out.stdout.splitlines())


def test_mutated_decoders_as_files_and_inside_records_are_decoded_or_one_line(corpus):
    """The committed decoder family of the structure-aware fuzz suite: 150 mutants of the face decoder."""
    names = sorted(p.stem for p in corpus.glob("fuzz*.json"))
    results = run_decoder_fuzz(corpus, names)
    assert len(results) == len(names) == 150
    bad = {n: r for n, r in results.items() if any(x not in ("ok", "one line") for x in r)}
    assert not bad, dict(list(bad.items())[:5])
    assert sum(r[0] == "one line" for r in results.values()) > len(names) // 2  # the mutations reach the checks
    assert all(r[0] == r[1] for r in results.values())  # a file and a record are judged alike


@pytest.mark.slow
def test_2000_fresh_decoder_mutants(tmp_path):
    pytest.importorskip("ai_edge_litert.schema_py_generated", reason="embedding records needs ai-edge-litert's schema")
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    import build_hostile

    from edgelite.runtime.modelfile.metadata import embed_record
    standin = build_hostile.face_shaped_standin()
    (tmp_path / "standin.tflite").write_bytes(standin)
    names = []
    for seed in range(1000, 3000):
        decoder = build_hostile.decoder_mutant(seed)
        (tmp_path / f"m{seed}.json").write_text(json.dumps(decoder))
        (tmp_path / f"m{seed}.tflite").write_bytes(embed_record(standin, build_hostile.decoder_record(decoder)))
        names.append(f"m{seed}")
    results = run_decoder_fuzz(tmp_path, names)
    bad = {n: r for n, r in results.items() if any(x not in ("ok", "one line") for x in r)}
    assert len(results) == 2000 and not bad, dict(list(bad.items())[:5])


# -- the validator itself ------------------------------------------------------------------------------------
def face_decoder() -> dict:
    return json.loads(DECODER.read_text())


def test_the_face_detectors_own_decoder_passes_and_fits_its_layout(corpus):
    decoder = decoders.parse(face_decoder(), "face")
    decoders.check_fit(decoder, [(1, 896, 16), (1, 896, 1)], "face")
    assert decoders.anchor_count(decoder) == 896
    assert isinstance(Detector(corpus / "standin.tflite", decoder=face_decoder(), trust=True), Detector)


@pytest.mark.parametrize("section, key, value, fragment", [
    ("non_max_suppression", "overlap_type", "MODIFIED_JACCARD", "MediaPipe has but edgelite does not decode"),
    ("tensors_to_detections", "box_format", "XYXY", "MediaPipe has but edgelite does not decode"),
    ("image_to_tensor", "border_mode", "BORDER_REPLICATE", "MediaPipe has but edgelite does not decode"),
    ("non_max_suppression", "max_num_detections", 0, "not in 1..100000 (or -1 for no limit)"),
    ("non_max_suppression", "min_suppression_threshold", 1.5, "not in 0..1"),
    ("ssd_anchors", "anchor_offset_x", -0.5, "not in 0..1"),
    ("ssd_anchors", "strides", [8, 16.5, 16, 16], "holds 16.5"),
    ("tensors_to_detections", "num_classes", 16, "equals num_coords"),
    ("tensors_to_detections", "num_values_per_keypoint", 1, "not in 2..16"),
    ("tensors_to_detections", "sigmoid_score", 1, "must be true or false"),
    ("image_to_tensor", "output_tensor_float_range", {"min": 1, "max": 1e9}, "each within 1e6"),
])
def test_nonsense_is_refused_not_decoded(section, key, value, fragment):
    decoder = face_decoder()
    decoder[section][key] = value
    with pytest.raises(InputError) as caught:
        decoders.parse(decoder, "decoder")
    assert str(caught.value).startswith(f"decoder: {section}.{key}") or fragment in str(caught.value)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_a_dict_decoder_goes_through_the_same_checks(corpus):
    decoder = face_decoder()
    decoder["ssd_anchors"]["strides"] = [0, 16, 16, 16]
    with pytest.raises(InputError, match=r"^decoder: ssd_anchors.strides holds 0"):
        Detector(corpus / "standin.tflite", decoder=decoder, trust=True)


def test_a_record_with_a_hostile_decoder_is_a_model_error_naming_the_field():
    decoder = face_decoder()
    decoder["tensors_to_detections"]["num_keypoints"] = 1_000_000_000
    record = {"schema_version": 2, "task": "object-detection", "decoder": decoder}
    with pytest.raises(ModelError, match=r"^m.tflite: the embedded edgelite record field 'decoder': "
                                         r"tensors_to_detections.num_keypoints is 1000000000, not in 0..2048"):
        Record.from_dict(record, "m.tflite")


def test_max_results_keeps_the_first_candidates_in_anchor_order_as_mediapipe_does(corpus):
    decoder = face_decoder()
    decoder["tensors_to_detections"].update(min_score_thresh=0.0, max_results=3)
    decoder["non_max_suppression"]["min_suppression_threshold"] = 1.0  # keep every box
    found = edgelite.load(corpus / "standin.tflite", decoder=decoder, trust=True).run(
        np.full((128, 128, 3), 200, np.uint8)).detections
    assert len(found) == 3  # every anchor passes a threshold of 0 and nothing is suppressed: exactly the limit
    # which three: the first well-formed candidates in anchor order, not the best-scoring (scores rise along
    # the anchors here, and anchor 1's box is inverted)
    from edgelite.runtime.tasks.detection import RawDetections, _kept
    boxes = np.array([[0, 0, .1, .1], [.5, .5, .4, .4], [0, 0, .2, .2], [0, 0, .3, .3], [0, 0, .4, .4],
                      [0, 0, .5, .5]], np.float32)
    scores = np.linspace(0.5, 1.0, 6).astype(np.float32)
    raw = RawDetections(boxes, scores, np.zeros(6, np.int64), np.zeros((6, 0, 2), np.float32))
    kept = _kept(raw, 0.0, 3)
    np.testing.assert_array_equal(kept.scores, scores[[0, 2, 3]])
    np.testing.assert_array_equal(_kept(raw, 0.75, 3).scores, scores[[3, 4, 5]])  # the threshold before the limit
