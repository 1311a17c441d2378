"""`edgelite convert` from the command line."""
import json

import pytest
from click.testing import CliRunner

from edgelite.cli.commands import main
from tests.conftest import cleanly

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
    # int8 may score an image better or worse than float depending on the CPU's kernels: bound the size only.
    assert data["verification"]["images"] == 397 and abs(data["verification"]["drop_points"]) <= 1.0
    assert set(data["seconds"]) == {"convert", "verify", "total"}


def test_convert_text_then_predict_needs_no_flags(tmp_path, digits_keras, digit_folders):
    train, evaluation = digit_folders
    out = tmp_path / "d.tflite"
    result = run("convert", digits_keras, "-o", out, "--calibration", train, "--calibration-count", "60")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out} (") and "verified on 280 held-out calibration images" in result.stdout
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


def test_flat_eval_data_warns_that_top1_was_not_measured(tmp_path, digits_keras, digit_folders):
    import shutil
    train, evaluation = digit_folders
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in sorted(evaluation.rglob("*.png"))[:30]:
        shutil.copy(path, flat / f"{path.parent.name}_{path.name}")
    result = run("convert", digits_keras, "-o", tmp_path / "d.tflite", "--calibration", train, "--eval-data", flat,
                 "--calibration-count", "40", "--json")
    assert result.exit_code == 0, result.output
    assert "no class subfolders, so top-1 cannot be measured" in result.stderr
    data = json.loads(result.stdout)
    assert data["verification"]["float_top1"] is None and data["verification"]["images"] == 30


def test_fp16_summary_claims_no_weight_granularity(tmp_path, digits_keras):
    result = run("convert", digits_keras, "-o", tmp_path / "f.tflite", "--quantize", "fp16", "--input-range", "0,255",
                 "--no-verify")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert ": fp16, float32 I/O, target xnnpack" in first and "per-" not in first
    refused = run("convert", digits_keras, "-o", tmp_path / "g.tflite", "--quantize", "fp16", "--per-tensor")
    assert refused.exit_code == 1 and "--per-tensor applies to integer weights" in refused.stderr


def test_2_4_pruning_on_three_input_channels_says_it_zeroed_more(tmp_path, digits_keras, digit_folders):
    train, _ = digit_folders
    result = run("convert", digits_keras, "-o", tmp_path / "p.tflite", "--calibration", train,
                 "--calibration-count", "40", "--prune", "0.5", "--prune-structure", "2:4", "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    layers = json.loads(result.stdout)["pruning"]["keras_sparsity"]["layers"]
    first = layers[0]
    assert first["sparsity"] == pytest.approx(2 / 3, abs=0.01)  # 3 input channels: groups of 3, two zeroed
    assert f"2:4 pruning zeroed more than half of the weights of {first['layer']} (66.7%)" in result.stderr


def test_a_budget_of_zero_is_a_verdict_not_a_crash(tmp_path, digits_keras, digit_folders):
    """--max-accuracy-drop 0 with few images: the resolution line says what a budget of 0 means (was a
    ZeroDivisionError traceback)."""
    train, _ = digit_folders
    few = tmp_path / "few"
    few.mkdir()
    for image in sorted(train.rglob("*.png"))[:30]:
        (few / image.name).write_bytes(image.read_bytes())
    result = run("convert", digits_keras, "-o", tmp_path / "d.tflite", "--calibration", few,
                 "--max-accuracy-drop", "0", "--no-recover")
    assert result.exit_code in (0, 1), result.output
    assert cleanly(result) and "with a budget of 0, any flip is over it" in result.output
