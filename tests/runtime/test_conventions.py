"""The label-free input check on a float .tflite, with no TensorFlow: the example digits model (a Rescaling layer
inside: it takes 0..255) on real digit scans, given the right scale and a wrong one; and the criterion itself."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgelite.cli.commands import main
from edgelite.runtime.errors import InputError
from edgelite.runtime.tasks.conventions import check_file, information, probabilities
from tests.conftest import DIGITS_FLOAT, DIGITS_INT8, MODELS


@pytest.fixture(scope="module")
def scans(tmp_path_factory, heldout_digits):
    from PIL import Image
    folder = tmp_path_factory.mktemp("scans")
    images, _ = heldout_digits
    for i, image in enumerate(images[:40]):
        Image.fromarray(image, "L").save(folder / f"{i:02d}.png")
    return folder


def test_information_is_high_only_for_confident_and_varied_answers():
    varied = np.eye(4)[np.arange(40) % 4]
    assert information(varied) == pytest.approx(1.0, abs=1e-6)
    assert information(np.eye(4)[np.zeros(40, int)]) == pytest.approx(0.0, abs=1e-6)  # one class for all
    assert information(np.full((40, 4), 0.25)) == pytest.approx(0.0, abs=1e-6)        # a guess for all
    assert probabilities(np.zeros((5, 2))) is None  # a yes/no head is left alone
    boxes = np.random.default_rng(0).uniform(-1, 1, (20, 4))
    assert probabilities(boxes) is None  # a box head is no class scores...
    assert probabilities(boxes, logits=True) is not None  # ...unless the task says it is a classifier's logits


def test_the_right_scale_raises_nothing_and_a_wrong_one_is_named(scans):
    images = sorted(scans.iterdir())
    right = check_file(DIGITS_FLOAT, images)
    assert right.chosen == "0,255" and right.better is None and right.warning is None
    wrong = check_file(DIGITS_FLOAT, images, mean=(0.0,), std=(255.0,))
    assert wrong.chosen == "0,1" and wrong.better == "0,255" and wrong.sure >= 0.95
    assert "under 0,1" in wrong.warning and "under 0,255" in wrong.warning


def test_cli_check_input_text_json_and_an_int8_model(scans):
    runner = CliRunner()
    result = runner.invoke(main, ["check-input", str(DIGITS_FLOAT), str(scans), "--input-range", "0,1"])
    assert result.exit_code == 0, result.output
    assert "0,1  (given)" in result.output and "wrong input scale" in result.output
    as_json = runner.invoke(main, ["check-input", str(DIGITS_FLOAT), str(scans), "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["better"] is None
    int8 = runner.invoke(main, ["check-input", str(DIGITS_INT8), str(scans)])
    lines = [line for line in int8.output.splitlines() if line.strip()]
    assert int8.exit_code == 1 and len(lines) == 1 and "needs a float-input model" in lines[0], int8.output
    with pytest.raises(InputError):
        check_file(DIGITS_INT8, sorted(scans.iterdir()))


@pytest.mark.parametrize("model, images, message", [
    (MODELS / "ssd_postprocess.tflite", "all", "no output scores three or more classes"),  # a detector's scores
    (DIGITS_FLOAT, "three", "3 image(s) given: the convention check compares answers over at least 8"),
])
def test_cli_check_input_says_in_one_line_where_it_does_not_apply(scans, model, images, message):
    paths = [str(p) for p in sorted(scans.iterdir())]
    result = CliRunner().invoke(main, ["check-input", str(model), *(paths if images == "all" else paths[:3])])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output

