"""Convert options are checked before any work, and without TensorFlow: these run in every suite."""
import os
import subprocess
import sys

import pytest

from edgelite.converters.errors import ConversionError
from edgelite.converters.options import DEFAULTS, ConvertOptions
from tests.conftest import ROOT
from tests.runtime.test_no_tensorflow import BLOCK


@pytest.fixture()
def folders(tmp_path):
    for name in ("cal", "train"):
        (tmp_path / name).mkdir()
    return tmp_path


def options(tmp_path, **changes) -> ConvertOptions:
    return ConvertOptions(output=str(tmp_path / "o.tflite"), **changes)


def test_target_defaults_are_filled_in_from_the_registry(tmp_path):
    assert (options(tmp_path).quantize, options(tmp_path).io) == ("int8", "int8")
    assert (options(tmp_path, target="edgetpu").quantize, options(tmp_path, target="edgetpu").io) == ("int8", "uint8")
    assert (options(tmp_path, target="gpu").quantize, options(tmp_path, target="gpu").io) == ("fp16", "float32")
    assert options(tmp_path, quantize="dynamic").io == "float32"
    assert DEFAULTS["calibration_count"] == 200 and DEFAULTS["max_accuracy_drop"] == 1.0


@pytest.mark.parametrize("changes, message", [
    (dict(calibration="{tmp}/typo"), "typo: calibration folder does not exist"),
    (dict(eval_data="{tmp}/nope"), "nope: eval-data folder does not exist"),
    (dict(prune=1.5), "--prune must be a sparsity in [0, 1), got 1.5"),
    (dict(prune=0.3, prune_structure="2:4"), "2:4 pruning zeroes exactly half the weights"),
    (dict(target="edgetpu", quantize="fp16"), "--quantize fp16 cannot target it"),
    (dict(target="edgetpu", io="float32"), "--io float32 cannot target it"),
    (dict(target="gpu", quantize="int8"), "--target gpu takes fp16 or none"),
    (dict(quantize="fp16", io="uint8"), "--io uint8 applies to int8 models only"),
    (dict(quantize="none", per_tensor=True), "--per-tensor applies to integer weights"),
    (dict(input_range="0,1", mean=(127.5,)), "either --input-range or --mean/--std"),
    (dict(std=(0.0,)), "--std values must be > 0"),
    (dict(epochs=0), "--epochs must be a whole number >= 1"),
    (dict(labels="{tmp}/labels.txt"), "labels.txt: labels file does not exist"),
    (dict(target="tpu"), "--target 'tpu' is not one of xnnpack, gpu, edgetpu"),
    (dict(compiler="/no/such/edgetpu_compiler"), "Edge TPU compiler not found"),
])
def test_each_bad_option_is_one_line_naming_it(folders, changes, message):
    changes = {k: v.format(tmp=folders) if isinstance(v, str) else v for k, v in changes.items()}
    with pytest.raises(ConversionError) as caught:
        options(folders, **changes)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("where, message", [
    ("/dev/null", "is not a regular file"),
    ("{tmp}", "is a directory"),
    ("{tmp}/missing/o.tflite", "output folder"),
    ("{tmp}/link.tflite", "is a symlink"),
])
def test_outputs_that_must_not_be_replaced_are_refused(tmp_path, where, message):
    os.symlink(tmp_path / "elsewhere.tflite", tmp_path / "link.tflite")
    with pytest.raises(ConversionError, match=message):
        ConvertOptions(output=where.format(tmp=tmp_path))
    assert os.path.exists("/dev/null") and not (tmp_path / "elsewhere.tflite").exists()


def test_the_cli_checks_options_before_importing_tensorflow_or_pruning(tmp_path):
    """A typo in --calibration is reported at once, even with TensorFlow unimportable, before any fine-tuning."""
    model = tmp_path / "m.keras"
    model.write_bytes(b"PK")
    (tmp_path / "t").mkdir()
    code = BLOCK + "from edgelite.cli.commands import main\nmain()"
    argv = ["convert", str(model), "-o", str(tmp_path / "o.tflite"), "--prune", "0.5", "--train-data",
            str(tmp_path / "t"), "--calibration", str(tmp_path / "typo")]
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"error: {tmp_path / 'typo'}: calibration folder does not exist"]


def test_converting_a_model_onto_itself_is_refused(tmp_path):
    import edgelite
    model = tmp_path / "m.tflite"
    model.write_bytes(b"precious")
    with pytest.raises(ConversionError, match="is the model being converted"):
        edgelite.convert(str(model), output=str(model))
    assert model.read_bytes() == b"precious"
