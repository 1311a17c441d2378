"""A validated .tflite model inside an interpreter with its delegate.

``Model`` owns the interpreter: validation before load, delegate attempts with recorded
reasons, tensor details looked up once, and a lock so one instance may be shared between
threads (invoke is serialized; callers prepare inputs outside the lock).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from edgelite.runtime.errors import DelegateError, InputError, ModelError
from edgelite.runtime.interpreter import accelerator as accel
from edgelite.runtime.interpreter import delegates as dl
from edgelite.runtime.interpreter import sandbox
from edgelite.runtime.interpreter.backend import Backend, find_backend
from edgelite.runtime.interpreter.native_log import captured_native_stderr, summarize
from edgelite.runtime.modelfile.tflite_file import ModelFile, ReadModel, parse, read_file


@dataclass(frozen=True)
class TensorInfo:
    """One input or output tensor as the interpreter sees it."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int
    shape_signature: tuple[int, ...]

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    @classmethod
    def from_details(cls, d: dict) -> TensorInfo:
        scale, zero = d.get("quantization", (0.0, 0))
        signature = d.get("shape_signature")
        return cls(d["name"], int(d["index"]), tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]),
                   float(scale), int(zero), tuple(int(x) for x in (signature if signature is not None else d["shape"])))

    def to_dict(self) -> dict:
        return {"name": self.name, "index": self.index, "shape": list(self.shape), "dtype": self.dtype.name,
                "scale": self.scale, "zero_point": self.zero_point, "shape_signature": list(self.shape_signature)}


@dataclass(frozen=True)
class DelegateInfo:
    """What was asked for, what actually runs the model, and why."""

    requested: str
    actual: str
    reason: str
    library: str | None = None

    def to_dict(self) -> dict:
        return {"requested": self.requested, "actual": self.actual, "reason": self.reason, "library": self.library}


def _one_line(exc: BaseException, native: list[str]) -> str:
    text = summarize(native) or " ".join(str(exc).split()) or type(exc).__name__
    return text


class Model:
    """A model file, validated and loaded into an interpreter with a delegate."""

    def __init__(self, source, *, delegate: str = "auto", threads: int | None = None,
                 backend: str | Backend | None = None, fallback: bool = False, trust: bool | None = None):
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise InputError(f"threads must be a whole number >= 1, got {threads!r}")
        started = time.perf_counter()
        self.data, self.file = read_source(source)
        self.path = self.file.path
        t0 = time.perf_counter()
        self.backend = backend if isinstance(backend, Backend) else find_backend(backend)
        self._trusted = trust if trust is not None else (
            isinstance(source, (bytes, bytearray, memoryview)) or sandbox.trusted_by_default())
        if not self._trusted and dl.EDGETPU_CUSTOM_OP not in self.file.custom_ops:
            sandbox.check(self.path, self.data, self.backend.name, sandbox.cpu_budget(self.file))  # first load in a child
        # Importing the backend (first time in a process) and the sandboxed first load are not the model's load:
        # ``start_ms`` holds them, ``load_ms`` the rest (read, validate, interpreter, delegate, tensors).
        self.start_ms = (time.perf_counter() - t0) * 1e3
        self.threads = threads
        request = dl.DelegateRequest.parse(delegate)
        self._interpreter, self.delegate = self._build(request, fallback)
        self._read_io()
        self.load_ms = (time.perf_counter() - started) * 1e3 - self.start_ms
        self._lock = threading.Lock()
        self._set = self._interpreter.set_tensor
        self._get = self._interpreter.get_tensor
        self._invoke = self._interpreter.invoke

    @property
    def size(self) -> int:
        return self.file.size

    # -- loading ---------------------------------------------------------------------------------
    def _build(self, request: dl.DelegateRequest, fallback: bool):
        failures: list[str] = []
        attempts = dl.plan(request, self.file, fallback, accel.available(self.backend))
        built = self._first_working(attempts, failures, request)
        if built:
            return built
        is_edgetpu_model = dl.EDGETPU_CUSTOM_OP in self.file.custom_ops
        twin_allowed = is_edgetpu_model and (fallback or request.kind == "auto")
        twin = dl.cpu_twin(self.path) if twin_allowed else None
        if twin:
            self.data, self.file = read_file(twin)
            if not self._trusted:  # the Edge TPU runs the compiled model; the CPU runs the twin's kernels
                sandbox.check(self.file.path, self.data, self.backend.name, sandbox.cpu_budget(self.file))
            self.path = self.file.path
            built = self._first_working(dl.cpu_attempts(f"fallback: no Edge TPU, ran the CPU twin {twin}"),
                                        failures, request)
            if built:
                return built
        hint = dl.INSTALL_HINTS.get("edgetpu" if is_edgetpu_model else request.kind, "")
        no_twin = f"; no CPU twin {dl.twin_name(self.path)} beside it to fall back to" \
            if twin_allowed and not twin else ""
        raise DelegateError(f"{self.path}: delegate {request} unavailable: " + "; ".join(failures) + no_twin
                            + (f" ({hint})" if hint and not fallback else ""))

    def _first_working(self, attempts, failures: list[str], request):
        for attempt in attempts:
            try:
                interpreter, actual, note = self._try(attempt)
            except DelegateError as exc:
                failures.append(f"{attempt.name}: {exc}")
                continue
            reason = "; ".join([attempt.reason, *failures, *([note] if note else [])])
            return interpreter, DelegateInfo(str(request), actual, reason, attempt.library)
        return None

    def _try(self, attempt: dl.Attempt):
        """Builds one interpreter; model faults raise ModelError, delegate faults DelegateError."""
        if attempt.accelerator:
            return self._try_accelerator(attempt)
        delegate_objs = [dl.load_library_delegate(self.backend, attempt.library, attempt.options)] \
            if attempt.library else []
        failure, stage = None, ""
        with captured_native_stderr() as native:  # native lines are readable once the block exits
            try:
                stage = "build"
                interpreter = self.backend.make_interpreter(
                    self.data, num_threads=self.threads, delegates=delegate_objs,
                    default_delegates=attempt.default_delegates)
                stage = "allocate"
                interpreter.allocate_tensors()
                _allocation_guard(interpreter, self.path)
            except (ValueError, RuntimeError) as exc:
                failure = exc
        if failure is not None:
            detail = _one_line(failure, native)
            if stage == "build" and delegate_objs:
                raise DelegateError(f"{attempt.library} rejected the model: {detail}")
            what = "the interpreter rejected the model" if stage == "build" else "cannot allocate tensors"
            raise ModelError(f"{self.path}: {what}: {detail}")
        return (interpreter, *self._what_ran(interpreter, attempt))

    def _try_accelerator(self, attempt: dl.Attempt):
        assert attempt.accelerator is not None  # noqa: S101 - plan() sets it on accelerator attempts
        engine: accel.AcceleratedInterpreter | None = None
        failure: BaseException = RuntimeError("unknown failure")
        with captured_native_stderr() as native:
            try:
                engine = accel.AcceleratedInterpreter(self.data, self.file, attempt.accelerator)
            except Exception as exc:  # noqa: BLE001 - the native layer raises bare RuntimeErrors
                failure = exc
        if engine is None:
            telling = [ln.split("] ", 1)[-1] for ln in native if "No adapters" in ln or "Failed to initialize" in ln]
            detail = summarize(telling[:1]) or _one_line(failure, native)
            raise DelegateError(f"LiteRT {attempt.accelerator.upper()} accelerator unavailable: {detail}")
        note = "" if engine.fully_accelerated else "not every op is on the accelerator; the rest run on the CPU"
        return engine, attempt.name, note

    @staticmethod
    def _what_ran(interpreter, attempt: dl.Attempt) -> tuple[str, str]:
        """Confirms from the execution plan that a delegate took ops, rather than assuming it."""
        if attempt.name == "cpu":
            return "cpu", ""
        try:
            delegated = sum(op.get("op_name") == "DELEGATE" for op in interpreter._get_ops_details())
        except Exception:  # noqa: BLE001 - private API; absence means we cannot confirm
            return attempt.name, "delegation not confirmed (backend hides the execution plan)"
        if delegated:
            return attempt.name, ""
        if attempt.name == "xnnpack":
            return "cpu", "XNNPACK took no ops of this model, builtin CPU kernels ran"
        return f"{attempt.name} (no ops delegated)", "the delegate accepted no ops; they ran on the CPU"

    # -- running ---------------------------------------------------------------------------------
    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Sets the inputs, invokes, returns copies of the outputs (safe to keep across calls)."""
        if len(arrays) != len(self.inputs):
            raise InputError(f"{self.path}: model takes {len(self.inputs)} input(s), got {len(arrays)}")
        with self._lock:
            for info, array in zip(self.inputs, arrays):
                if array.shape != info.shape or array.dtype != info.dtype:
                    array = self._conform(info, array)
                self._set(info.index, array)
            try:
                self._invoke()
            except (RuntimeError, ValueError) as exc:
                raise ModelError(f"{self.path}: the interpreter failed to run the model: "
                                 f"{' '.join(str(exc).split())[:300]}") from None
            return [self._get(o.index) for o in self.outputs]

    def _conform(self, info: TensorInfo, array: np.ndarray) -> np.ndarray:
        """Resizes a dynamic batch dimension, or explains why the array does not fit."""
        array = np.asarray(array)
        if array.dtype != info.dtype:
            raise InputError(f"{self.path}: input {info.name!r} takes {info.dtype.name}, got {array.dtype.name}")
        if array.shape[1:] == info.shape[1:] and array.ndim == len(info.shape) and info.shape_signature[:1] == (-1,):
            self._resize_batch(array.shape[0])
            return array
        raise InputError(f"{self.path}: input {info.name!r} takes shape {list(info.shape)}, got {list(array.shape)}")

    def _resize_batch(self, batch: int):
        try:
            for info in self.inputs:
                self._interpreter.resize_tensor_input(info.index, [batch, *info.shape[1:]])
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:  # the accelerator path and the interpreters raise both
            raise InputError(f"{self.path}: cannot run a batch of {batch}: {' '.join(str(exc).split())[:200]}") \
                from None
        self._read_io()

    def _read_io(self):
        """Tensor details, looked up once (per shape) rather than on every run."""
        self.inputs = tuple(TensorInfo.from_details(d) for d in self._interpreter.get_input_details())
        self.outputs = tuple(TensorInfo.from_details(d) for d in self._interpreter.get_output_details())

    def op_counts(self) -> dict[str, int]:
        """Operator names and counts of the model graph, read from a delegate-free interpreter."""
        from collections import Counter
        with captured_native_stderr():
            plain = self.backend.make_interpreter(self.data, num_threads=1, delegates=[], default_delegates=False)
        return dict(Counter(op["op_name"] for op in plain._get_ops_details()))


MAX_ALLOCATED_BYTES = int(os.environ.get("EDGELITE_MAX_ALLOCATED_BYTES", 1 << 30))  # edge models use megabytes


def _allocation_guard(interpreter, path: str) -> None:
    """Shapes an op computes at allocation can exceed what the file declares (BROADCAST_TO of a 1-element
    tensor to 28000x28000): the allocated tensors are measured against the same budget as the file's."""
    total = 0
    for detail in interpreter.get_tensor_details():
        shape = detail.get("shape")
        if shape is not None and len(shape):
            total += int(np.prod(shape, dtype=np.int64)) * np.dtype(detail["dtype"]).itemsize
    if total > MAX_ALLOCATED_BYTES:
        raise ModelError(f"{path}: its tensors take {total} bytes once allocated, over the limit of "
                         f"{MAX_ALLOCATED_BYTES} (EDGELITE_MAX_ALLOCATED_BYTES)")


def read_source(source) -> tuple[bytes, ModelFile]:
    """The bytes and validated outline of a path, bytes, or a ReadModel."""
    if isinstance(source, ReadModel):
        return source.data, source.file
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ModelError("<bytes>: empty model (0 bytes)")
        return data, parse(data, "<bytes>")
    if isinstance(source, (str, os.PathLike)):
        return read_file(source)
    raise ModelError(f"cannot load a model from {type(source).__name__}; give a path or bytes")
