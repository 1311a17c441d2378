"""The embedded record and the input spec."""
import json

import pytest

from edgelite.runtime.errors import ModelError
from edgelite.runtime.interpreter.model import Model
from edgelite.runtime.modelfile.metadata import InputSpec, derive_input_spec, embed_record, read_metadata
from edgelite.runtime.modelfile.tflite_file import parse, read_file
from tests.conftest import DIGITS_INT8, MODELS, needs_writer


@needs_writer
def test_record_round_trips_and_replaces():
    data = (MODELS / "logits_int8.tflite").read_bytes()
    first = embed_record(data, {"labels": ["a", "b", "c", "d", "e"], "input": {"height": 16, "width": 16}})
    second = embed_record(first, {"labels": ["v", "w", "x", "y", "z"]})
    meta = read_metadata(parse(second, "m"))
    assert meta.labels == ("v", "w", "x", "y", "z")
    assert meta.input is None
    assert list(parse(second, "m").metadata).count("edgelite") == 1
    assert len(second) < len(first) + 100  # the replaced record's bytes were dropped


@needs_writer
def test_rewritten_model_still_runs_identically():
    import numpy as np
    data = (MODELS / "logits_int8.tflite").read_bytes()
    x = np.random.default_rng(0).integers(-128, 128, (1, 16, 16, 3)).astype(np.int8)
    before = Model(data).run(x)[0]
    after = Model(embed_record(data, {"task": "image-classification"})).run(x)[0]
    np.testing.assert_array_equal(before, after)


def test_digits_model_carries_its_spec():
    meta = read_metadata(read_file(DIGITS_INT8)[1])
    assert meta.input == InputSpec(32, 32, 3, "rgb", "stretch", (0.0,), (1.0,))
    assert meta.labels == tuple(str(i) for i in range(10))
    assert meta.output == "probabilities"


@needs_writer
def test_invalid_record_json_is_a_model_error():
    data = embed_record((MODELS / "gray_float.tflite").read_bytes(), {})
    broken = data.replace(b"{}", b"{]")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_metadata(parse(broken, "m.tflite"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(height=0, width=4), "input size must be positive"),
    (dict(height=4, width=4, channels=4), "channels must be 1 or 3"),
    (dict(height=4, width=4, resize="zoom"), "resize must be one of"),
    (dict(height=4, width=4, mean=(1, 2)), "mean has 2 values; give 1 or 3"),
    (dict(height=4, width=4, std=(0,)), "std must not be 0"),
    (dict(height=4, width=4, channels=1, color="rgb"), "does not fit 1 channel"),
])
def test_spec_validation_names_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InputSpec(**kwargs)


def test_spec_replace_keeps_the_other_half_of_normalization():
    spec = InputSpec(8, 8, mean=(127.5,), std=(127.5,))
    assert spec.replace(mean=(0.0,)).std == (127.5, 127.5, 127.5)
    assert spec.replace(resize="letterbox").source == "override"
    assert spec.replace() is spec


def test_derived_spec_from_int8_quantization_range():
    graph = read_file(MODELS / "logits_int8.tflite")[1].main
    spec = derive_input_spec(graph.tensors[graph.inputs[0]])
    assert (spec.height, spec.width, spec.channels) == (16, 16, 3)
    assert spec.source == "derived" and spec.mean == (127.5,) * 3 and spec.std == (127.5,) * 3


def test_float_input_without_record_assumes_unit_range():
    graph = read_file(MODELS / "gray_float.tflite")[1].main
    spec = derive_input_spec(graph.tensors[graph.inputs[0]])
    assert spec.source == "assumed" and spec.channels == 1 and spec.std == (255.0,)


def test_record_is_json_in_the_file():
    raw = read_file(DIGITS_INT8)[1].metadata["edgelite"]
    assert json.loads(raw)["schema_version"] == 1
