"""The CLI: exact exit codes, one-line errors, JSON shapes, help text."""
import json

import pytest
from click.testing import CliRunner
from PIL import Image

from edgelite.cli.commands import main
from tests.conftest import DIGITS_INT8, MODELS, cleanly, default_cpu_delegate


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert cleanly(result)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_every_command_has_help_with_an_example():
    for name, command in main.commands.items():
        result = run(name, "--help")
        assert result.exit_code == 0
        assert command.help and "Example:" in result.output and f"edgelite {name}" in result.output, name


def test_predict_real_digits(digit_png):
    result = run("predict", DIGITS_INT8, digit_png, "--top-k", "2")
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert line.startswith(f"{digit_png}: 7 (") and f"[{default_cpu_delegate()}, " in line


def test_predict_json(digit_png):
    result = run("predict", DIGITS_INT8, digit_png, "--json", "-k", "1")
    data = json.loads(result.stdout)
    assert data["delegate"]["actual"] == default_cpu_delegate()
    (item,) = data["results"]
    assert item["classes"][0]["label"] == "7" and item["source"] == str(digit_png)


def test_predict_goes_on_past_a_bad_image_and_exits_1(digit_png, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = run("predict", DIGITS_INT8, bad, digit_png)
    assert result.exit_code == 1
    assert "7 (" in result.stdout
    assert result.stderr.strip() == f"error: {bad}: image data is truncated or corrupt (Truncated File Read)"


def test_profile_json_has_the_documented_fields():
    result = run("profile", DIGITS_INT8, "--runs", "20", "--warmup", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("backend", "delegate", "latency_ms", "first_invoke_ms", "load_ms", "stages_ms", "peak_rss_bytes",
                "model_size_bytes"):
        assert key in data, key
    assert set(data["latency_ms"]) >= {"min", "median", "mean", "p90", "p99", "std"}
    assert data["latency_ms"]["n"] == 20


def test_profile_comparison_table(digit_png):
    result = run("profile", DIGITS_INT8, MODELS / "logits_int8.tflite", "--threads", "1,2", "--runs", "5",
                 "--image", digit_png)
    assert result.exit_code == 0, result.output
    table = result.stdout
    assert table.count("digits_int8.tflite") >= 4 and "median ms" in table and "resize" in table


def test_inspect_text_and_json():
    text = run("inspect", DIGITS_INT8)
    assert text.exit_code == 0
    assert "input spec (metadata): 32x32x3 rgb" in text.stdout and "labels:   10 (0, 1, 2" in text.stdout
    assert "standard TFLite metadata (TFLITE_METADATA): absent" in text.stdout
    data = json.loads(run("inspect", DIGITS_INT8, "--json").stdout)
    assert data["inputs"][0]["shape"] == [1, 32, 32, 3] and data["ops"]["CONV_2D"] == 2
    assert data["edgelite_record"]["labels"][3] == "3"


def test_inspect_works_on_a_model_the_classifier_cannot_feed():
    result = run("inspect", MODELS / "two_inputs.tflite", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["input_spec_problem"] == "model has 2 inputs"


def test_doctor():
    result = run("doctor", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert any(b["available"] for b in data["backends"])
    edgetpu = next(d for d in data["delegates"] if d["name"] == "edgetpu")
    assert edgetpu["available"] is False
    assert any("apt-get install libedgetpu1-std" in m["install"] for m in data["missing"])
    assert "delegates:" in run("doctor").stdout


@pytest.fixture()
def bad_models(tmp_path):
    good = DIGITS_INT8.read_bytes()
    files = {"empty.tflite": b"", "truncated.tflite": good[: len(good) // 3], "photo.tflite": None}
    for name, data in files.items():
        if data is None:
            Image.new("RGB", (8, 8)).save(tmp_path / name, format="PNG")
        else:
            (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize("command", ["predict", "profile", "inspect"])
@pytest.mark.parametrize("name, message", [
    ("missing.tflite", "no such file"),
    ("", "is a directory"),
    ("empty.tflite", "empty file (0 bytes)"),
    ("truncated.tflite", "not a valid TFLite model"),
    ("photo.tflite", "not a valid TFLite model (no TFL3 file identifier)"),
])
def test_bad_model_files(bad_models, digit_png, command, name, message):
    path = bad_models / name if name else bad_models
    args = [command, path] + ([digit_png] if command == "predict" else [])
    result = run(*args)
    one_line_error(result, str(path), message)


@pytest.mark.parametrize("name, message", [
    ("two_inputs", "has 2 inputs"),
    ("vector_input", "input 'serving_default_keras_tensor_19:0' has shape [1, 10]"),
])
def test_models_predict_cannot_feed(digit_png, name, message):
    result = run("predict", MODELS / f"{name}.tflite", digit_png)
    assert result.exit_code == 1 and message.split("'")[0] in result.stderr and cleanly(result)


def test_image_errors(tmp_path, monkeypatch, digit_png):
    truncated = tmp_path / "half.png"
    data = digit_png.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    result = run("predict", DIGITS_INT8, truncated)
    assert result.exit_code == 1 and str(truncated) in result.stderr
    big = tmp_path / "huge.png"
    Image.new("L", (500, 500)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)
    result = run("predict", DIGITS_INT8, big)
    assert result.exit_code == 1 and "decompression-bomb limit" in result.stderr


def test_absent_delegate_library(monkeypatch, digit_png):
    monkeypatch.setenv("EDGELITE_EDGETPU_LIBRARY", "libedgetpu-absent.so.1")
    one_line_error(run("predict", DIGITS_INT8, digit_png, "--delegate", "edgetpu"),
                   "libedgetpu-absent.so.1", "cannot load delegate library")
    ok = run("predict", DIGITS_INT8, digit_png, "--delegate", "edgetpu", "--fallback", "--json")
    assert ok.exit_code == 0 and "libedgetpu-absent" in json.loads(ok.stdout)["delegate"]["reason"]


@pytest.mark.parametrize("args", [
    ["predict", str(DIGITS_INT8)],                       # no images
    ["profile", str(DIGITS_INT8), "--threads", "0"],
    ["profile", str(DIGITS_INT8), "--threads", "two"],
    ["predict", str(DIGITS_INT8), "x.png", "--top-k", "0"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(args):
    assert run(*args).exit_code == 2


def test_unknown_delegate_is_a_usage_error():
    result = run("profile", DIGITS_INT8, "--delegate", "npu")
    assert result.exit_code == 2 and "unknown delegate 'npu'" in result.stderr


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and "edgelite, version" in result.stdout


@pytest.mark.parametrize("args, fragment", [
    (["predict", DIGITS_INT8, "x.png", "--delegate", "tpu"], "unknown delegate 'tpu'"),
    (["profile", DIGITS_INT8, "--delegate", "edgetpu:usb:x:y:z"], "--delegate"),
    (["predict", DIGITS_INT8, "x.png", "--mean", "1,2"], "has 2 values; give one, or one per channel (3)"),
    (["predict", DIGITS_INT8, "x.png", "--std", "0"], "every value must be > 0"),
    (["predict", DIGITS_INT8, "x.png", "--mean", "nan"], "is not finite"),
    (["profile", DIGITS_INT8, "--threads", "1,zero"], "is not a comma-separated list of whole numbers"),
    (["profile", DIGITS_INT8, "--threads", "0"], "thread counts must be >= 1"),
    (["convert", "m.keras", "-o", "o.tflite", "--prune", "1.5"], "1.5 is not in the range 0.0<=x<1.0"),
    (["convert", "m.keras", "-o", "o.tflite", "--mean", "1,2"], "has 2 values"),
])
def test_malformed_values_are_usage_errors_at_parse_time(args, fragment):
    """Exit 2 (usage), naming the option, before any model or image is opened."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and cleanly(result)


def test_profile_of_a_missing_model_prints_no_table(tmp_path):
    result = run("profile", tmp_path / "nope.tflite")
    assert result.exit_code == 1 and result.stdout == ""
    assert "nope.tflite" in result.stderr


def test_doctor_says_which_cpu_delegate_really_runs():
    """doctor loads probe models with each CPU delegate and reports what the execution plan shows, so under
    tflite-runtime 2.14 (whose XNNPACK takes float ops but not int8 ones) it cannot claim XNNPACK runs int8."""
    data = json.loads(run("doctor", "--json").stdout)
    rows = {d["name"]: d for d in data["delegates"]}
    assert rows["cpu"]["available"] and rows["cpu"]["runs_as"] == {"float32": "cpu", "int8": "cpu"}
    assert rows["xnnpack"]["runs_as"]["int8"] == default_cpu_delegate()
    profiled = json.loads(run("profile", DIGITS_INT8, "--delegate", "xnnpack", "--runs", "2", "--json").stdout)
    assert profiled["delegate"]["actual"] == rows["xnnpack"]["runs_as"]["int8"]  # doctor and profile agree
    if default_cpu_delegate() == "cpu":
        assert "`edgelite profile` says what runs your model" in rows["xnnpack"]["detail"]


def test_predict_jsonl_prints_one_object_per_image_as_it_goes(digit_png, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    result = run("predict", DIGITS_INT8, digit_png, bad, digit_png, "-k", "1", "--jsonl")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [item.get("classes", [{}])[0].get("label") for item in lines] == ["7", None, "7"]
    assert "error" in lines[1] and lines[1]["source"] == str(bad)


def test_the_package_shows_its_public_names_only():
    import edgelite
    names = dir(edgelite)
    assert "annotations" not in names and "importlib" not in names and "_LAZY" not in names
    assert {"load", "convert", "stream", "profile", "TaskResult", "Detector", "EdgeliteError"} <= set(names)
    assert all(hasattr(edgelite, n) for n in names)


def test_long_commands_list_their_options_in_groups_and_lose_none():
    """--help groups a long command's options (SECTIONS), names each option once, and every name in a group is
    one of the command's options (a typo there would drop an option into "Other options" unnoticed)."""
    import re

    import click

    from edgelite.cli.commands import SECTIONS
    for name, groups in SECTIONS.items():
        command = main.commands[name]
        options = {p.name: p for p in command.params if isinstance(p, click.Option)}
        named = [n for _, names in groups for n in names]
        assert set(named) <= set(options) and len(named) == len(set(named)), name
        text = CliRunner().invoke(main, [name, "--help"], terminal_width=200).output
        headings = re.findall(r"^([A-Z][\w ,-]+):$", text, flags=re.M)
        assert headings[:len(groups)] == [title for title, _ in groups], (name, headings)
        for option in options.values():
            flag = max(option.opts, key=len)
            assert len(re.findall(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text.split("\n\n", 2)[-1])) >= 1, (name, flag)
