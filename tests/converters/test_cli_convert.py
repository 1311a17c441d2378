"""`edgelite convert` from the command line."""
import json

import pytest
from click.testing import CliRunner

from edgelite.cli import main

pytestmark = pytest.mark.tensorflow


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_convert_json_summary(tmp_path, digits_keras, digit_folders):
    train, evaluation = digit_folders
    out = tmp_path / "d.tflite"
    result = run("convert", digits_keras, "-o", out, "--calibration", train, "--eval-data", evaluation,
                 "--calibration-count", "60", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == str(out) and data["within_budget"] is True
    assert data["input_size_bytes"] > data["output_size_bytes"] > 0
    assert data["verification"]["images"] == 397 and 0 <= data["verification"]["drop_points"] <= 1.0
    assert set(data["seconds"]) == {"convert", "verify", "total"}


def test_convert_text_then_predict_needs_no_flags(tmp_path, digits_keras, digit_folders):
    train, evaluation = digit_folders
    out = tmp_path / "d.tflite"
    result = run("convert", digits_keras, "-o", out, "--calibration", train, "--calibration-count", "60")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out} (") and "verified on 100 held-out calibration images" in result.stdout
    image = sorted((evaluation / "6").glob("*.png"))[0]
    predicted = run("predict", out, image, "-k", "1")
    assert predicted.exit_code == 0 and predicted.stdout.startswith(f"{image}: 6 (")


@pytest.mark.parametrize("args, message", [
    (["notes.txt"], "notes.txt: not a model edgelite converts"),
    (["{model}", "--calibration", "nowhere"], "nowhere: calibration folder does not exist"),
    (["{model}", "--quantize", "fp16", "--io", "uint8"], "--io uint8 applies to int8 models only"),
])
def test_convert_errors_are_one_line(tmp_path, digits_keras, args, message):
    (tmp_path / "notes.txt").write_text("x")
    args = [a.format(model=digits_keras) if a.startswith("{") else (tmp_path / a if a in ("notes.txt", "nowhere")
                                                                      else a) for a in args]
    result = run("convert", *args, "-o", tmp_path / "o.tflite")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr, result.stderr


def test_convert_usage_errors():
    assert run("convert", "m.keras").exit_code == 2                       # no -o
    assert run("convert", "m.keras", "-o", "x", "--quantize", "int4").exit_code == 2
