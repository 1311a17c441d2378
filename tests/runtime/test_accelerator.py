"""LiteRT's CompiledModel behind the interpreter interface.

The GPU is not verified on hardware (none here). The adapter's plumbing is exercised for
real with LiteRT's CPU accelerator as the stand-in, checked against the interpreter.
"""
import numpy as np
import pytest

from edgelite.runtime.errors import DelegateError
from edgelite.runtime.interpreter.backend import find_backend
from edgelite.runtime.interpreter.model import Model
from edgelite.runtime.modelfile.tflite_file import read_file
from tests.conftest import DIGITS_INT8, MODELS
from tests.skips import elsewhere

accel = pytest.importorskip("edgelite.runtime.interpreter.accelerator")
pytestmark = pytest.mark.skipif(not accel.available(find_backend()), reason=elsewhere(
    "litert", f"the {find_backend().name} backend has no accelerator API"))


@pytest.mark.parametrize("path", [DIGITS_INT8, MODELS / "two_inputs.tflite"])
def test_cpu_accelerator_matches_the_interpreter(path):
    data, file = read_file(path)
    engine = accel.AcceleratedInterpreter(data, file, "cpu")
    model = Model(path, delegate="cpu")
    rng = np.random.default_rng(0)
    details = engine.get_input_details()
    assert [d["index"] for d in details] == [i.index for i in model.inputs]
    arrays = [rng.integers(0, 256, tuple(d["shape"])).astype(d["dtype"]) for d in details]
    for d, a in zip(details, arrays):
        engine.set_tensor(d["index"], a)
    engine.invoke()
    out = engine.get_output_details()[0]
    np.testing.assert_allclose(engine.get_tensor(out["index"]).astype(float), model.run(*arrays)[0].astype(float),
                               atol=2)
    assert out["quantization"] == (model.outputs[0].scale, model.outputs[0].zero_point)


def test_gpu_request_explains_the_missing_gpu_and_falls_back():
    """On these GPU-less machines LiteRT's WebGPU accelerator finds no adapter."""
    with pytest.raises(DelegateError, match="LiteRT GPU accelerator unavailable"):
        Model(DIGITS_INT8, delegate="gpu")
    model = Model(DIGITS_INT8, delegate="gpu", fallback=True)
    assert model.delegate.actual == "xnnpack" and "GPU accelerator unavailable" in model.delegate.reason
