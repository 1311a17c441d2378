"""The record as a typed value: golden JSON, old records, and hostile ones.

The record travels inside model files, so the runtime reads it as untrusted input: each hostile
case below is one ModelError naming the field, never a traceback or a silently wrong spec.
"""
import json
import math

import pytest

from edgelite.runtime.errors import ModelError
from edgelite.runtime.modelfile.input_spec import InputSpec
from edgelite.runtime.modelfile.record import SCHEMA_VERSION, OutputInfo, Record, parse_json
from tests.conftest import ROOT

RECORDS = ROOT / "tests" / "fixtures" / "records"


def golden_record() -> Record:
    return Record(
        input=InputSpec(32, 32, 3, "rgb", "letterbox", (127.5,), (127.5,), 114),
        task="object-detection", labels=("face",),
        outputs=(OutputInfo("boxes", (1, 896, 16), "float32", "boxes"),
                 OutputInfo("scores", (1, 896, 1), "float32", "scores")),
        decoder={"ssd_anchors": {"num_layers": 4, "strides": [8, 16, 16, 16], "input_size_height": 128,
                                 "input_size_width": 128, "aspect_ratios": [1.0], "fixed_anchor_size": True},
                 "tensors_to_detections": {"num_boxes": 896, "num_coords": 16, "num_keypoints": 6,
                                           "keypoint_coord_offset": 4}},
        target="xnnpack", quantization={"mode": "int8", "io": "uint8", "per_channel": True, "float_layers": []},
        provenance={"source": "detector.keras", "edgelite": "0.1.0"})


def test_record_matches_the_golden_json():
    golden = json.loads((RECORDS / "v2_detector.json").read_text())
    assert golden_record().to_dict() == golden
    assert Record.from_dict(golden) == golden_record()
    assert json.loads(golden_record().to_json()) == golden


def test_schema_1_records_still_load():
    old = json.loads((RECORDS / "v1_digits.json").read_text())
    record = Record.from_dict(old)
    assert record.schema_version == 1 and record.task == "image-classification" and record.outputs == ()
    assert record.input.height == 32 and record.labels == tuple(str(d) for d in range(10))
    assert record.output in ("probabilities", "logits") and SCHEMA_VERSION == 2


def _good() -> dict:
    return golden_record().to_dict()


@pytest.mark.parametrize("change, fragment", [
    (lambda r: r.update(input=[32, 32]), "field 'input' is a list, not a JSON object"),
    (lambda r: r.update(input=None, labels="cat"), "field 'labels' is not a list of strings"),
    (lambda r: r["input"].update(height=32.0), "field 'input.height' is 32.0, not a whole number"),
    (lambda r: r["input"].update(height=True), "field 'input.height' is True"),
    (lambda r: r["input"].update(mean=[1.0, 2.0, math.nan]), "field 'input.mean'"),
    (lambda r: r["input"].update(std=[0.0]), "field 'input' is invalid (std must not be 0)"),
    (lambda r: r["input"].update(width=10 ** 9), "field 'input.width'"),
    (lambda r: r.update(task="telepathy"), "field 'task' is 'telepathy', not one of"),
    (lambda r: r.update(schema_version=99), "field 'schema_version' is 99; this edgelite reads 1 to 2"),
    (lambda r: r.update(outputs=[{"name": "x"}]), "field 'outputs[0]' is not an object with a name"),
    (lambda r: r["outputs"][0].update(role="magic"), "field 'outputs[0].role' is 'magic'"),
    (lambda r: r.update(labels=["x" * 1000]), "field 'labels' has more than"),
    (lambda r: r.update(decoder=[1]), "field 'decoder' is a list, not a JSON object"),
    (lambda r: r.update(verification="all good"), "field 'verification' is a str, not a JSON object"),
])
def test_hostile_fields_are_one_line_naming_the_field(change, fragment):
    record = _good()
    change(record)
    with pytest.raises(ModelError) as caught:
        Record.from_dict(record, "m.tflite")
    message = str(caught.value)
    assert message.startswith("m.tflite: the embedded edgelite record") and fragment in message, message
    assert "\n" not in message


@pytest.mark.parametrize("raw, fragment", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"input": {"height": NaN}}', "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b" " * (2 << 20), r"bytes \(at most"),
])
def test_hostile_json_is_refused(raw, fragment):
    with pytest.raises(ModelError, match=fragment):
        Record.from_json(raw, "m.tflite")


def test_deep_decoder_nesting_is_refused():
    record = _good()
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    record["decoder"] = deep
    with pytest.raises(ModelError, match="nested more than 32 levels"):
        Record.from_dict(parse_json(json.dumps(record).encode(), "m.tflite"), "m.tflite")
