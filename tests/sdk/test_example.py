"""`edgelite example digits`: the Quickstart's starting point, shipped in the wheel (docs/quickstart.md runs the
whole walk, training included, in the workstation suite)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgelite.cli.commands import main
from tests.conftest import HAS_TENSORFLOW, cleanly
from tests.skips import elsewhere


def test_the_image_folders_are_the_real_scans_split_by_digit(tmp_path, digits):
    result = CliRunner().invoke(main, ["example", "digits", str(tmp_path / "work"), "--no-model", "--json"])
    assert result.exit_code == 0 and cleanly(result), result.output
    info = json.loads(result.stdout)
    assert info["train_images"] + info["eval_images"] == 1797 and info["model"] is None
    assert info["eval_images"] == 360 and "CC BY 4.0" in info["data"]
    images, labels = digits  # scikit-learn's own copy, as the tests read it: the shipped scans are the same
    scans = sorted((tmp_path / "work").rglob("*.png"))
    assert len(scans) == 1797 and {p.parent.name for p in scans} == {str(d) for d in range(10)}
    for path in scans[::97]:
        index = int(path.stem)
        assert labels[index] == int(path.parent.name)
        assert np.array_equal(np.asarray(Image.open(path)), images[index])


def test_a_folder_in_use_is_refused_and_left_as_it_was(tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["example", "digits", str(tmp_path / "work"), "--no-model"])
    assert result.exit_code == 1 and cleanly(result)
    assert "exists and is not an empty folder; name a new one (nothing was written)" in result.output
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["notes.txt"]


def test_without_tensorflow_the_model_step_says_what_to_install_and_writes_nothing(tmp_path):
    if HAS_TENSORFLOW:
        pytest.skip(elsewhere("litert", "without TensorFlow: the workstation suite trains the model (docs/quickstart.md)"))
    result = CliRunner().invoke(main, ["example", "digits", str(tmp_path / "work")])
    assert result.exit_code == 1 and cleanly(result)
    assert result.output.strip().splitlines()[-1].startswith("error: converting needs TensorFlow")
    assert "[convert]'" in result.output and not (tmp_path / "work").exists()
