"""``predict --compare``: two models over the same real images, here and on a Ray cluster.

The figures are checked against what the two models give one by one through ``predict`` (top-1 of each,
the outputs' SNR computed here with numpy), not against the comparison's own arithmetic.
"""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgelite.cli.commands import main
from edgelite.runtime.tasks.compare import _same_detections
from edgelite.runtime.tasks.task import Detection
from tests.conftest import DIGITS_FLOAT, DIGITS_INT8, MODELS, saved_scans


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory, digits):
    """200 of scikit-learn's real digit scans, and one file that is no image."""
    folder = saved_scans(tmp_path_factory.mktemp("digits"), digits[0], 200)
    (folder / "0001x.png").write_bytes(b"not a png at all")
    return folder


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_by_one(model, folder) -> dict:
    out = _invoke("predict", model, folder, "--json", "--top-k", "10")
    return {r["source"]: r for r in json.loads(out.stdout)["results"] if "error" not in r}


def test_agreement_snr_and_the_differing_images_match_predict_on_each_model(digit_folder):
    result = _invoke("predict", DIGITS_INT8, digit_folder, "--compare", DIGITS_FLOAT, "--json")
    assert result.exit_code == 1, result.output                      # the one bad file
    assert result.stderr.count("\n") == 1 and "0001x.png" in result.stderr
    data = json.loads(result.stdout)
    mine, ref = _one_by_one(DIGITS_INT8, digit_folder), _one_by_one(DIGITS_FLOAT, digit_folder)
    assert data["images"] == len(mine) == 200 and data["failed"] == 1
    differ = {s for s in mine if mine[s]["classes"][0]["id"] != ref[s]["classes"][0]["id"]}
    assert {d["source"] for d in data["differ"]} == differ
    assert data["agreement"] == pytest.approx(1 - len(differ) / 200)
    low, high = data["agreement_interval"]
    assert low <= data["agreement"] <= high
    # SNR of every score over all images (top-10 of 10 classes is the whole output, in id order)
    scores = [[np.array([c["score"] for c in sorted(r[s]["classes"], key=lambda c: c["id"])]) for s in sorted(r)]
              for r in (mine, ref)]
    a, b = np.stack(scores[1]).astype(np.float64), np.stack(scores[0]).astype(np.float64)
    expected = 10 * np.log10(np.sum(a ** 2) / np.sum((a - b) ** 2))
    assert abs(data["outputs"][0]["snr_db"] - expected) <= 0.05
    assert 0.99 <= data["outputs"][0]["cosine"] <= 1.0


def test_text_report_and_json_lines(digit_folder):
    text = _invoke("predict", DIGITS_INT8, digit_folder, "--compare", DIGITS_INT8)
    assert text.exit_code == 1
    assert "on 200 image(s)" in text.stdout and "agreement: 100.00%" in text.stdout and "identical" in text.stdout
    lines = [json.loads(line) for line in _invoke("predict", DIGITS_INT8, digit_folder, "--compare", DIGITS_FLOAT,
                                                    "--jsonl").stdout.splitlines()]
    assert len(lines) == 202 and "summary" in lines[-1] and lines[-1]["summary"]["images"] == 200
    assert sum("error" in line for line in lines) == 1
    assert all(set(line) == {"source", "agree", "why"} for line in lines[:-1] if "error" not in line)


def test_models_that_cannot_be_compared_are_one_line(tmp_path, digit_folder):
    one = digit_folder / "0000.png"
    result = _invoke("predict", DIGITS_INT8, one, "--compare", MODELS / "gray_float.tflite")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert "gray_float.tflite: its outputs [(1, 3)] are not" in result.stderr
    missing = _invoke("predict", DIGITS_INT8, one, "--compare", tmp_path / "nope.tflite")
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1 and "nope.tflite" in missing.stderr
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"TFL3" * 64)
    bad = _invoke("predict", DIGITS_INT8, one, "--compare", junk)
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and "junk.tflite" in bad.stderr
    draw = _invoke("predict", DIGITS_INT8, one, "--compare", DIGITS_FLOAT, "--draw", tmp_path / "out")
    assert draw.exit_code == 2 and "--draw" in draw.output


def _box(x: float, label: int = 0, score: float = 0.9) -> Detection:
    return Detection((x, 10.0, x + 50.0, 60.0), score, label, None)


def test_detections_agree_one_to_one_by_label_and_iou():
    assert _same_detections((_box(0), _box(100)), (_box(102), _box(1))) == (True, "")
    moved = _same_detections((_box(0),), (_box(40),))
    assert moved[0] is False and "no match (best IoU 0.11)" in moved[1]
    assert _same_detections((_box(0, label=1),), (_box(0, label=0),))[0] is False
    assert _same_detections((_box(0),), ())[1] == "1 detection(s) against 0"


def test_compare_on_ray_gives_the_local_figures(ray_cluster, digit_folder):
    args = ["predict", DIGITS_INT8, digit_folder, "--compare", DIGITS_FLOAT, "--json"]
    local, remote = _invoke(*args), _invoke(*args, "--ray", ray_cluster, "--workers", "2")
    assert local.exit_code == remote.exit_code == 1, remote.output
    here, there = json.loads(local.stdout), json.loads(remote.stdout)
    assert there["ray"]["nodes"] == 2
    assert {k: there[k] for k in ("images", "agreement", "differ", "failed")} == \
        {k: here[k] for k in ("images", "agreement", "differ", "failed")}
    assert abs(there["outputs"][0]["snr_db"] - here["outputs"][0]["snr_db"]) <= 1e-6
