"""Recovery when int8 costs too much, and what happens when it cannot recover.

The model is built to break under per-tensor int8: one huge weight in a dense kernel sets
the quantization step so coarse that every other weight rounds to zero. QuantizationDebugger
must find that layer, and keeping it in float must bring the predictions back.
"""
import json

import pytest
from click.testing import CliRunner

import edgelite
from edgelite.cli.commands import main
from edgelite.runtime.modelfile.tflite_file import read_file

pytestmark = pytest.mark.tensorflow


def test_ladder_climbs_to_the_first_rung_within_budget(tmp_path, fragile_model, digit_folders):
    """Per-tensor weights (as asked) are wrecked by the outlier; more calibration cannot fix a weight; keeping the
    worst layer in float can (float32 I/O was asked for). Every rung before the one kept was over budget."""
    result = edgelite.convert(fragile_model, output=tmp_path / "r.tflite", calibration=digit_folders[0],
                              per_tensor=True, calibration_count=100, max_accuracy_drop=1.0, io="float32")
    ladder = result.recovery
    names = [r.name for r in ladder.rungs]
    assert names[0] == "int8-per-tensor" and "int8" not in names  # per-channel would rewrite --per-tensor
    assert ladder.chosen == "float-fallback" and names[-1] == "float-fallback", names
    assert all(not r.within_budget and r.drop_points > 1.0 for r in ladder.rungs[:-1])
    kept = ladder.rungs[-1]
    assert kept.within_budget and kept.float_layers and kept.size_bytes > 0 and kept.median_ms > 0
    assert result.within_budget and abs(result.verification.drop_points) <= 1.0
    assert result.quantization["io"] == "float32" and result.quantization["float_layers"] == list(kept.float_layers)
    record = json.loads(read_file(result.output)[1].metadata["edgelite"])
    assert [r["name"] for r in record["recovery"]["rungs"]] == names and record["recovery"]["chosen"] == "float-fallback"
    assert any("kept rung float-fallback" in w for w in result.warnings)


def test_without_io_a_cpu_target_may_end_on_a_float_io_rung_and_says_so(tmp_path, fragile_model, digit_folders):
    """No --io: the ladder starts at int8 I/O and, when no full-integer rung holds, moves on to float-I/O rungs;
    the result, the record and the table say the I/O changed and how to forbid it."""
    result = edgelite.convert(fragile_model, output=tmp_path / "r.tflite", calibration=digit_folders[0],
                              per_tensor=True, calibration_count=100)
    names = [r.name for r in result.recovery.rungs]
    assert result.within_budget and result.quantization["io"] == "float32", names
    assert names[:2] == ["int8-per-tensor", "int8-more-calibration"] and result.recovery.chosen == "float-fallback"
    note = "I/O became float32: no full-integer rung held; pass --io int8 to forbid"
    assert result.recovery.io_note == note
    record = json.loads(read_file(result.output)[1].metadata["edgelite"])
    assert record["recovery"]["io_note"] == note
    from edgelite.cli.report import convert_text
    assert note in convert_text(result, 1.0) and "verdict: within budget" in convert_text(result, 1.0)


def test_io_given_keeps_the_io_type_and_leaves_float_rungs_out(tmp_path, fragile_model, digit_folders):
    result = edgelite.convert(fragile_model, output=tmp_path / "r.tflite", calibration=digit_folders[0],
                              per_tensor=True, calibration_count=100, io="int8")
    assert not result.within_budget and result.quantization["io"] == "int8" and result.recovery.io_note is None
    assert [r.name for r in result.recovery.rungs] == ["int8-per-tensor", "int8-more-calibration"]
    not_tried = {n["name"]: n["why"] for n in result.recovery.not_tried}
    assert set(not_tried) == {"float-fallback", "int16x8", "dynamic", "fp16", "qat"}
    assert all("--io int8 was given (give --io float32, leave --io out, or name it in --ladder)" in why
               for name, why in not_tried.items() if name != "qat")
    assert not_tried["qat"].startswith("needs --train-data DIR")


def test_naming_rungs_in_ladder_allows_them_and_no_recover_stops_at_the_first(tmp_path, fragile_model, digit_folders):
    named = edgelite.convert(fragile_model, output=tmp_path / "n.tflite", calibration=digit_folders[0],
                             per_tensor=True, calibration_count=100, ladder="fp16")
    assert [r.name for r in named.recovery.rungs] == ["int8-per-tensor", "fp16"] and named.recovery.chosen == "fp16"
    assert named.within_budget and named.quantization["mode"] == "fp16" and named.quantization["io"] == "float32"
    stopped = edgelite.convert(fragile_model, output=tmp_path / "s.tflite", calibration=digit_folders[0],
                               per_tensor=True, calibration_count=100, recover=False)
    assert [r.name for r in stopped.recovery.rungs] == ["int8-per-tensor"] and stopped.recovery.skipped == "--no-recover"


def test_edge_tpu_keeps_only_full_int8_rungs_and_the_model_under_an_over_budget_name(tmp_path, fragile_model,
                                                                                      digit_folders):
    out = tmp_path / "model.tflite"
    result = edgelite.convert(fragile_model, output=out, calibration=digit_folders[0], per_tensor=True,
                              calibration_count=100, target="edgetpu")
    assert not result.within_budget and result.verification.drop_points > 1.0
    assert {r.mode for r in result.recovery.rungs} == {"int8"}
    not_tried = {n["name"]: n["why"] for n in result.recovery.not_tried}
    assert not_tried["float-fallback"] == "the edgetpu target runs no float ops"
    assert not_tried["fp16"] == "the edgetpu target does not run fp16"
    assert result.output.endswith("model.over-budget.tflite") and not out.exists()
    record = json.loads(read_file(result.output)[1].metadata["edgelite"])
    assert record["verification"]["drop_points"] > 1.0


def test_cli_exits_1_over_budget(tmp_path, fragile_model, digit_folders):
    path = tmp_path / "fragile.keras"
    fragile_model.save(path)
    result = CliRunner().invoke(main, ["convert", str(path), "-o", str(tmp_path / "m.tflite"), "--calibration",
                                       str(digit_folders[0]), "--per-tensor", "--target", "edgetpu",
                                       "--calibration-count", "100"])
    assert result.exit_code == 1
    assert "is over the budget of 1.00; the model was kept as" in result.stderr
    assert "m.over-budget.tflite" in result.stderr and "verified on 280" in result.stdout
    table = result.stdout[result.stdout.index("ladder: kept"):]
    assert "int8-per-tensor" in table and "int8-more-calibration" in table and "agreement (95% CI)" in table
    assert "not tried: float-fallback: the edgetpu target runs no float ops" in table
