"""--target edgetpu and gpu: rules, pre-flight, the compiler (a stand-in), and their failures.

Not verified on hardware: the compiler here is tests/fixtures/fake_edgetpu_compiler.py, which
prints the real compiler's log format and writes an Edge-TPU-shaped model.
"""
import json

import numpy as np
import pytest
from click.testing import CliRunner

import edgelite
from edgelite.cli.commands import main
from edgelite.converters.errors import ConversionError
from edgelite.runtime.interpreter.model import Model
from edgelite.runtime.modelfile.tflite_file import read_file

pytestmark = pytest.mark.tensorflow


@pytest.fixture()
def no_compiler_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def test_edgetpu_target_without_a_compiler(tmp_path, digits_keras, digit_folders, no_compiler_on_path):
    train, evaluation = digit_folders
    out = tmp_path / "digits.tflite"
    result = edgelite.convert(digits_keras, output=out, calibration=train, eval_data=evaluation, target="edgetpu",
                              calibration_count=60)
    model = Model(out)
    assert model.inputs[0].dtype == np.uint8 and model.outputs[0].dtype == np.uint8  # Coral's default I/O
    assert model.inputs[0].shape_signature == (1, 32, 32, 3)  # batch fixed at 1
    assert result.compatibility.summary["on_cpu"] == 0
    assert result.compatibility.summary["on_target"] == result.compatibility.summary["ops"]
    assert result.edgetpu.compiled is False and "sudo apt-get install edgetpu-compiler" in result.edgetpu.install
    assert any("edgetpu_compiler not found" in w for w in result.warnings)
    assert abs(result.verification.drop_points) <= 1.0
    record = json.loads(read_file(out)[1].metadata["edgelite"])
    assert record["target"] == "edgetpu" and record["compatibility"]["summary"]["on_cpu"] == 0


def test_edgetpu_target_with_the_stand_in_compiler(tmp_path, digits_keras, digit_folders, fake_compiler, digit_png):
    train, _ = digit_folders
    out = tmp_path / "digits.tflite"
    result = edgelite.convert(digits_keras, output=out, calibration=train, calibration_count=60, target="edgetpu",
                              compiler=str(fake_compiler), verification=False, labels=[str(d) for d in range(10)])
    compiled = tmp_path / "digits_edgetpu.tflite"
    assert result.edgetpu.compiled is True and result.edgetpu.output == str(compiled)
    assert result.edgetpu.version == "16.0.384591198" and result.edgetpu.log["ops_on_cpu"] == 0
    assert {"op": "CONV_2D", "count": 2, "status": "Mapped to Edge TPU", "mapped": True} in result.edgetpu.operators
    assert result.edgetpu.log["on_chip_memory_used"] == "84.25KiB"
    data, model = read_file(compiled)
    assert model.custom_ops == ("edgetpu-custom-op",)
    record = json.loads(model.metadata["edgelite"])
    assert record["edgetpu_compiler"]["version"] == "16.0.384591198" and record["labels"][7] == "7"
    clf = edgelite.load(compiled)  # no Edge TPU here: the CPU twin runs, and says so
    assert clf.path == str(out) and "CPU twin" in clf.delegate.reason
    assert clf.classify(digit_png).top.label == "7"


@pytest.mark.parametrize("mode, message", [
    ("fail", r"the Edge TPU compiler failed \(exit 1\): ERROR: Didn't find op for builtin opcode 'FOO'"),
    ("hang", r"the Edge TPU compiler did not finish in 1 s"),
    ("no-output", r"the Edge TPU compiler wrote no digits_edgetpu\.tflite"),
])
def test_compiler_failures_keep_the_cpu_model(tmp_path, digits_keras, digit_folders, fake_compiler, monkeypatch,
                                              mode, message):
    monkeypatch.setenv("FAKE_EDGETPU_MODE", mode)
    out = tmp_path / "digits.tflite"
    with pytest.raises(ConversionError, match=message):
        edgelite.convert(digits_keras, output=out, calibration=digit_folders[0], calibration_count=30,
                         target="edgetpu", compiler=str(fake_compiler), compiler_timeout=1, verification=False)
    assert Model(out).inputs[0].dtype == np.uint8  # the CPU int8 model is there
    assert not (tmp_path / "digits_edgetpu.tflite").exists()


def test_cli_compiler_failure_is_one_line(tmp_path, digits_keras, digit_folders, fake_compiler, monkeypatch):
    monkeypatch.setenv("FAKE_EDGETPU_MODE", "fail")
    result = CliRunner().invoke(main, ["convert", str(digits_keras), "-o", str(tmp_path / "d.tflite"), "--calibration",
                                       str(digit_folders[0]), "--target", "edgetpu", "--compiler", str(fake_compiler),
                                       "--calibration-count", "30", "--no-verify"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "the CPU int8 model was kept" in result.stderr


@pytest.mark.parametrize("options, message", [
    (dict(quantize="fp16"), r"--quantize fp16 cannot target it \(the Edge TPU runs full-int8 models only"),
    (dict(io="float32"), "--target edgetpu needs uint8 or int8 inputs and outputs: --io float32"),
    (dict(compiler="/no/such/edgetpu_compiler"), "Edge TPU compiler not found or not executable"),
])
def test_edgetpu_rules_are_enforced_not_rewritten(tmp_path, digits_keras, digit_folders, options, message):
    with pytest.raises(ConversionError, match=message):
        edgelite.convert(digits_keras, output=tmp_path / "o.tflite", calibration=digit_folders[0], target="edgetpu",
                         calibration_count=20, verification=False, **options)


def test_check_explains_a_float_model_for_the_edge_tpu():
    from tests.conftest import DIGITS_FLOAT
    result = CliRunner().invoke(main, ["check", str(DIGITS_FLOAT), "--target", "edgetpu", "--json"])
    first = json.loads(result.stdout)["summary"]["first_cpu_op"]
    assert first["index"] == 0 and "is float32" in first["reason"] and "--quantize int8" in first["fix"]


def test_check_converts_a_keras_model_first(digits_keras, digit_folders):
    result = CliRunner().invoke(main, ["check", str(digits_keras), "--target", "edgetpu", "--calibration",
                                       str(digit_folders[0])])
    assert result.exit_code == 0, result.output
    assert "ops on the edgetpu, 0 on the CPU" in result.stdout and "(converted for edgetpu)" in result.stdout


def test_gpu_target(tmp_path, digits_keras, digit_folders):
    result = edgelite.convert(digits_keras, output=tmp_path / "g.tflite", eval_data=digit_folders[1], target="gpu")
    assert result.quantization["mode"] == "fp16" and Model(result.output).inputs[0].dtype == np.float32
    assert "compatible with GPU delegate" in result.compatibility.analyzer
    assert abs(result.verification.drop_points) <= 1.0
    with pytest.raises(ConversionError, match="--target gpu takes fp16 or none"):
        edgelite.convert(digits_keras, output=tmp_path / "g.tflite", target="gpu", quantize="int8")
