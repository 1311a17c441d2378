"""Model loading, running, delegates and backends."""
import threading

import numpy as np
import pytest

from edgelite.runtime.errors import BackendUnavailableError, DelegateError, InputError, ModelError
from edgelite.runtime.interpreter import backend as backend_mod
from edgelite.runtime.interpreter.delegates import DelegateRequest
from edgelite.runtime.interpreter.model import Model
from tests.conftest import DIGITS_FLOAT, DIGITS_INT8, MODELS, default_cpu_delegate


def test_loads_and_runs_with_xnnpack_confirmed():
    model = Model(DIGITS_INT8)
    assert model.delegate.requested == "auto" and model.delegate.actual == default_cpu_delegate()
    assert "no Edge TPU ops" in model.delegate.reason
    (out,) = model.run(np.zeros((1, 32, 32, 3), np.uint8))
    assert out.shape == (1, 10) and out.dtype == np.uint8


def test_cpu_delegate_turns_default_delegates_off():
    x = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3)).astype(np.uint8)
    cpu, xnn = Model(DIGITS_INT8, delegate="cpu"), Model(DIGITS_INT8, delegate="xnnpack", threads=2)
    assert cpu.delegate.actual == "cpu" and xnn.delegate.actual == default_cpu_delegate()
    assert np.abs(cpu.run(x)[0].astype(int) - xnn.run(x)[0].astype(int)).max() <= 2


def test_outputs_never_alias_the_interpreter_buffers():
    model = Model(DIGITS_FLOAT)
    rng = np.random.default_rng(1)
    a, b = (rng.random((1, 32, 32, 3)).astype(np.float32) * 255 for _ in range(2))
    first = model.run(a)[0]
    kept = first.copy()
    model.run(b)
    np.testing.assert_array_equal(first, kept)


def test_dynamic_batch_resizes():
    model = Model(DIGITS_FLOAT)
    batch = np.random.default_rng(2).random((4, 32, 32, 3)).astype(np.float32) * 255
    out = model.run(batch)[0]
    assert out.shape == (4, 10)
    np.testing.assert_allclose(out[2], Model(DIGITS_FLOAT).run(batch[2:3])[0][0], rtol=1e-4, atol=1e-5)


def test_wrong_input_is_explained():
    model = Model(DIGITS_INT8)
    with pytest.raises(InputError, match="takes uint8, got float32"):
        model.run(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(InputError, match=r"takes shape \[1, 32, 32, 3\], got \[1, 28, 28, 3\]"):
        model.run(np.zeros((1, 28, 28, 3), np.uint8))
    with pytest.raises(InputError, match="takes 1 input"):
        model.run()


def test_four_threads_share_one_model_and_match_single_threaded():
    model = Model(DIGITS_INT8)
    rng = np.random.default_rng(3)
    inputs = [rng.integers(0, 256, (1, 32, 32, 3)).astype(np.uint8) for _ in range(40)]
    expected = [model.run(x)[0] for x in inputs]
    results, failures = {}, []

    def work(tid):
        try:
            results[tid] = [model.run(x)[0] for x in inputs for _ in range(3)][::3]
        except Exception as exc:  # noqa: BLE001 - a thread's exception is lost unless kept
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures and sorted(results) == [0, 1, 2, 3], failures  # every thread finished, none raised
    for got in results.values():
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("text, kind, device, path", [
    ("auto", "auto", None, None), ("XNNPACK", "xnnpack", None, None), ("edgetpu:usb:0", "edgetpu", "usb:0", None),
    ("edgetpu:pci", "edgetpu", "pci", None), ("external:/opt/lib/d.so", "external", None, "/opt/lib/d.so"),
])
def test_delegate_requests_parse(text, kind, device, path):
    req = DelegateRequest.parse(text)
    assert (req.kind, req.device, req.path) == (kind, device, path)


@pytest.mark.parametrize("text, message", [
    ("npu", "unknown delegate 'npu'"), ("external:", "needs a library path"),
    ("edgetpu:wifi", "is not usb"), ("cpu:1", "takes no ':1' suffix"),
])
def test_bad_delegate_requests(text, message):
    with pytest.raises(DelegateError, match=message):
        DelegateRequest.parse(text)


def test_absent_edgetpu_library_names_the_library(monkeypatch):
    monkeypatch.setenv("EDGELITE_EDGETPU_LIBRARY", "libedgetpu-not-here.so.1")
    with pytest.raises(DelegateError, match=r"delegate edgetpu unavailable: .*libedgetpu-not-here\.so\.1.*apt-get"):
        Model(DIGITS_INT8, delegate="edgetpu")


def test_fallback_records_why(monkeypatch):
    monkeypatch.setenv("EDGELITE_EDGETPU_LIBRARY", "libedgetpu-not-here.so.1")
    model = Model(DIGITS_INT8, delegate="edgetpu:usb:0", fallback=True)
    assert model.delegate.requested == "edgetpu:usb:0"
    assert model.delegate.actual == default_cpu_delegate()
    assert "libedgetpu-not-here.so.1" in model.delegate.reason and "fallback" in model.delegate.reason


def test_gpu_without_a_delegate_library_is_an_error_or_falls_back(monkeypatch, tmp_path):
    """Stand-in: no GPU delegate library exists on these machines (not verified on hardware)."""
    monkeypatch.setenv("EDGELITE_GPU_DELEGATE", str(tmp_path / "libtensorflowlite_gpu_delegate.so"))
    with pytest.raises(DelegateError, match="libtensorflowlite_gpu_delegate.so"):
        Model(DIGITS_INT8, delegate="gpu")
    assert Model(DIGITS_INT8, delegate="gpu", fallback=True).delegate.actual == default_cpu_delegate()


def test_external_library_that_is_not_a_delegate():
    import ctypes.util
    libm = ctypes.util.find_library("m")
    with pytest.raises(DelegateError, match="not a usable TFLite delegate"):
        Model(DIGITS_INT8, delegate=f"external:{libm}")


def test_backend_choice_and_errors(monkeypatch):
    found = backend_mod.find_backend()
    assert found.name in ("ai_edge_litert", "tflite_runtime", "tensorflow") and found.version
    if not isinstance(backend_mod.probe("ai_edge_litert"), str):
        monkeypatch.setenv("EDGELITE_BACKEND", "litert")
        assert backend_mod.find_backend().name == "ai_edge_litert"
    with pytest.raises(BackendUnavailableError, match="unknown backend 'onnx'"):
        backend_mod.find_backend("onnx")


def test_missing_backend_says_what_to_install(monkeypatch):
    monkeypatch.setattr(backend_mod, "probe", lambda name: "No module named x; install: pip install 'edgelite[tflite]'")
    with pytest.raises(BackendUnavailableError, match=r"tflite_runtime is not usable: .*pip install"):
        backend_mod.find_backend("tflite")


@pytest.mark.parametrize("threads", [0, -1, 1.5])
def test_bad_thread_counts(threads):
    with pytest.raises(InputError, match="threads must be a whole number"):
        Model(DIGITS_INT8, threads=threads)


def test_loading_from_bytes_and_bad_sources():
    assert Model(DIGITS_INT8.read_bytes()).path == "<bytes>"
    with pytest.raises(ModelError, match="empty model"):
        Model(b"")
    with pytest.raises(ModelError, match="give a path or bytes"):
        Model(42)


def test_op_counts():
    ops = Model(DIGITS_INT8).op_counts()
    assert ops["CONV_2D"] == 2 and ops["SOFTMAX"] == 1


def test_two_input_model_runs_with_two_arrays():
    model = Model(MODELS / "two_inputs.tflite")
    a = np.ones((1, 8, 8, 3), np.float32)
    np.testing.assert_allclose(model.run(a, a * 2)[0], a * 3)
