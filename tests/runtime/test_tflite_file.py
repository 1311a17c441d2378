"""The flatbuffer validator: sound files parse, damaged ones raise ModelError and nothing else."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgelite.runtime.errors import ModelError
from edgelite.runtime.modelfile.tflite_file import parse, read_file
from tests.conftest import DIGITS_INT8, MODELS

GOOD = DIGITS_INT8.read_bytes()


def test_parses_tensors_and_quantization():
    _, model = read_file(DIGITS_INT8)
    graph = model.main
    (inp,) = [graph.tensors[i] for i in graph.inputs]
    assert inp.shape == (1, 32, 32, 3) and inp.dtype == "uint8"
    assert inp.scales == (1.0,) and inp.zero_points == (0,)
    assert "edgelite" in model.metadata and "min_runtime_version" in model.metadata
    assert model.size == len(GOOD)


@pytest.mark.parametrize("name", ["gray_float", "logits_int8", "two_inputs", "vector_input"])
def test_fixture_models_parse(name):
    _, model = read_file(MODELS / f"{name}.tflite")
    assert model.main.operators


@pytest.mark.parametrize("cut", [0, 7, 8, 100, len(GOOD) // 2, len(GOOD) - 1])
def test_truncated_files_are_refused(cut):
    with pytest.raises(ModelError, match=r"m\.tflite: not a valid TFLite model"):
        parse(GOOD[:cut], "m.tflite")


def test_wrong_identifier():
    with pytest.raises(ModelError, match="no TFL3 file identifier"):
        parse(b"\x10\x00\x00\x00ABCD" + GOOD[8:], "x.tflite")


def test_read_file_errors_name_the_path(tmp_path):
    with pytest.raises(ModelError, match=r"missing\.tflite: no such file"):
        read_file(tmp_path / "missing.tflite")
    with pytest.raises(ModelError, match="is a directory"):
        read_file(tmp_path)
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty\.tflite: empty file"):
        read_file(empty)


def test_out_of_range_operator_index_is_caught():
    """Rewrite a tensor index inside an operator's inputs vector to a huge value."""
    _, model = read_file(DIGITS_INT8)
    op = model.main.operators[1]
    data = bytearray(GOOD)
    needle = b"".join(int(i).to_bytes(4, "little", signed=True) for i in op.inputs)
    pos = data.find(needle)
    assert pos > 0
    data[pos:pos + 4] = (10 ** 6).to_bytes(4, "little")
    with pytest.raises(ModelError, match="refers to index 1000000"):
        parse(bytes(data), "m.tflite")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutations_parse_or_raise_model_error(edits):
    data = bytearray(GOOD)
    for pos, value in edits:
        data[pos] = value
    try:
        parse(bytes(data), "m.tflite")
    except ModelError:
        pass
