"""Edge TPU plumbing on a machine without an Edge TPU (not verified on hardware).

Stand-ins: an Edge-TPU-shaped model (every op replaced by "edgetpu-custom-op", as the stand-in
compiler writes it), libedgetpu absent, a real plugin library that loads and rejects every
model, and a fake sysfs tree for USB discovery.
"""
import json
import shutil

import pytest

from edgelite.runtime.errors import DelegateError
from edgelite.runtime.interpreter import edgetpu
from edgelite.runtime.interpreter.compatibility import check_model
from edgelite.runtime.interpreter.model import Model
from tests.conftest import DIGITS_INT8, MODELS, default_cpu_delegate


@pytest.fixture()
def compiled_pair(tmp_path):
    """digits.tflite (CPU int8 twin, converted for the Edge TPU) and digits_edgetpu.tflite (what the
    stand-in compiler made of it) side by side; committed, so every backend runs these tests."""
    twin, tpu = tmp_path / "digits.tflite", tmp_path / "digits_edgetpu.tflite"
    shutil.copy(MODELS / "digits_tpu.tflite", twin)
    shutil.copy(MODELS / "digits_tpu_edgetpu.tflite", tpu)
    return twin, tpu


def test_edgetpu_model_without_a_tpu_falls_back_to_its_cpu_twin(compiled_pair, monkeypatch, digit_png):
    monkeypatch.setenv("EDGELITE_EDGETPU_LIBRARY", "libedgetpu-absent.so.1")
    twin, tpu = compiled_pair
    for delegate, fallback in (("auto", False), ("edgetpu", True)):
        model = Model(tpu, delegate=delegate, fallback=fallback)
        assert model.path == str(twin) and model.delegate.actual == default_cpu_delegate()
        assert "libedgetpu-absent.so.1" in model.delegate.reason and f"ran the CPU twin {twin}" in model.delegate.reason
    import edgelite
    assert edgelite.load(tpu).classify(digit_png).top.label == "7"


def test_edgetpu_model_without_tpu_or_twin_is_a_clear_error(compiled_pair, monkeypatch):
    monkeypatch.setenv("EDGELITE_EDGETPU_LIBRARY", "libedgetpu-absent.so.1")
    twin, tpu = compiled_pair
    with pytest.raises(DelegateError, match=r"delegate edgetpu unavailable: .*libedgetpu-absent"):
        Model(tpu, delegate="edgetpu")
    twin.unlink()
    with pytest.raises(DelegateError, match=r"no CPU twin .*digits\.tflite beside it"):
        Model(tpu)


def test_check_recognises_compiled_models(compiled_pair):
    report = check_model(compiled_pair[1], "edgetpu")
    assert report["ops"] == [{"index": 0, "op": "edgetpu-custom-op", "where": "edgetpu",
                              "reason": "already compiled for the Edge TPU", "fix": ""}]


def test_delegate_that_loads_but_rejects_the_model(rejecting_delegate, monkeypatch):
    with pytest.raises(DelegateError, match=r"librejecting_delegate\.so rejected the model"):
        Model(DIGITS_INT8, delegate=f"external:{rejecting_delegate}")
    model = Model(DIGITS_INT8, delegate=f"external:{rejecting_delegate}", fallback=True)
    assert model.delegate.actual == default_cpu_delegate() and "rejected the model" in model.delegate.reason
    monkeypatch.setenv("EDGELITE_EDGETPU_LIBRARY", str(rejecting_delegate))
    with pytest.raises(DelegateError, match="rejected the model"):
        Model(DIGITS_INT8, delegate="edgetpu:usb:0")


def test_device_discovery_against_a_stand_in_sysfs(tmp_path):
    for name, ids in (("1-1", ("18d1", "9302")), ("1-2", ("046d", "c52b")), ("2-1", ("1a6e", "089a"))):
        dev = tmp_path / name
        dev.mkdir()
        (dev / "idVendor").write_text(ids[0])
        (dev / "idProduct").write_text(ids[1])
        (dev / "busnum").write_text("1")
        (dev / "devnum").write_text(name[-1])
    found = edgetpu.usb_accelerators(str(tmp_path))
    assert [d["id"] for d in found] == ["18d1:9302", "1a6e:089a"]
    assert found[0]["node"] == "/dev/bus/usb/001/001" and found[0]["accessible"] is False
    (tmp_path / "apex_0").write_text("")
    assert edgetpu.pcie_accelerators(str(tmp_path / "apex_*"))[0]["accessible"] is True
    assert edgetpu.list_devices("libedgetpu-absent.so.1") == [] and edgetpu.runtime_version("nope.so") is None


def test_doctor_explains_what_is_missing():
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    data = json.loads(CliRunner().invoke(main, ["doctor", "--json"]).stdout)
    assert data["verified_on_hardware"] is False and data["edgetpu"]["found"] is False
    missing = {m["what"]: m["install"] for m in data["missing"]}
    assert "sudo apt-get install libedgetpu1-std" in missing["Edge TPU runtime (libedgetpu.so.1)"]
    assert set(data["gpu"]) >= {"opencl", "vulkan", "delegate_library", "litert_gpu_accelerator"}


def test_preflight_names_ops_and_places_them_the_same_under_every_backend():
    """Op names come from edgelite's own table, so tflite-runtime (no schema module) gives the same placement
    as ai-edge-litert and TensorFlow (this test runs in all three suites)."""
    report = check_model(MODELS / "digits_tpu.tflite", "edgetpu")
    ops = [o["op"] for o in report["ops"]]
    assert ops == ["QUANTIZE", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED",
                   "FULLY_CONNECTED", "SOFTMAX", "QUANTIZE"]
    assert report["summary"]["on_target"] == report["summary"]["ops"] == len(ops) > 0
    mapped = check_model(DIGITS_INT8, "edgetpu")  # dynamic batch: the first op already stops the Edge TPU
    assert mapped["summary"]["on_target"] == 0 and "dynamic shape" in mapped["summary"]["first_cpu_op"]["reason"]


def test_builtin_op_table_matches_the_schema_where_one_is_installed():
    from edgelite.runtime.modelfile.builtin_ops import BUILTIN_OPS
    from edgelite.runtime.modelfile.tflite_file import schema_module
    schema = schema_module()
    if schema is None:  # tflite-runtime: the table is all there is; it must still cover the common ops
        assert {BUILTIN_OPS[c] for c in (0, 3, 4, 9, 17, 22, 25, 114)} == {
            "ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "RESHAPE", "SOFTMAX", "QUANTIZE"}
        return
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    assert {c: n for c, n in names.items() if c in BUILTIN_OPS} == BUILTIN_OPS
