"""Which delegate to run a model with, how to load it, and what to try when it fails.

A request (``auto``, ``cpu``, ``xnnpack``, ``gpu``, ``edgetpu[:usb:0|:pci:0]``,
``external:PATH``) becomes an ordered list of attempts. The model loader tries them in order
and records which one ran and why, so a result can always say what really executed.
Delegate libraries are opened with ctypes first: the backends' own ``load_delegate`` reports
a missing library only through a noisy destructor, ctypes gives the loader's own reason.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from dataclasses import dataclass, field

from edgelite.runtime.errors import DelegateError
from edgelite.runtime.modelfile.tflite_file import ModelFile

# Library names by platform, as pycoral's edgetpu.py spells them.
EDGETPU_LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
GPU_LIBRARIES = {"Linux": "libtensorflowlite_gpu_delegate.so",
                 "Darwin": "libtensorflowlite_gpu_delegate.dylib",
                 "Windows": "tensorflowlite_gpu_delegate.dll"}
GPU_LIBRARY_ENV = "EDGELITE_GPU_DELEGATE"
EDGETPU_LIBRARY_ENV = "EDGELITE_EDGETPU_LIBRARY"
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
KINDS = ("auto", "cpu", "xnnpack", "gpu", "edgetpu", "external")

INSTALL_HINTS = {
    "edgetpu": "install the Edge TPU runtime: add the Coral apt repository, then "
               "'sudo apt-get install libedgetpu1-std' (see docs/coral.md)",
    "gpu": f"build or install the TFLite GPU delegate library and set {GPU_LIBRARY_ENV}=/path/to/it",
}


@dataclass(frozen=True)
class DelegateRequest:
    """A parsed ``--delegate`` value."""

    kind: str
    device: str | None = None
    path: str | None = None

    @classmethod
    def parse(cls, text: str) -> DelegateRequest:
        text = (text or "auto").strip()
        kind, _, rest = text.partition(":")
        kind = kind.lower()
        if kind not in KINDS:
            raise DelegateError(f"unknown delegate {text!r}; choose auto, cpu, xnnpack, gpu, "
                                "edgetpu[:usb:0|:pci:0] or external:PATH")
        if kind == "external":
            if not rest:
                raise DelegateError("external delegate needs a library path: external:/path/to/libdelegate.so")
            return cls(kind, path=rest)
        if kind == "edgetpu" and rest:
            bus, _, number = rest.partition(":")
            if bus not in ("usb", "pci") or (number and not number.isdigit()) or rest.endswith(":"):
                raise DelegateError(f"Edge TPU device {rest!r} is not usb, usb:N, pci or pci:N")
            return cls(kind, device=rest)
        if rest:
            raise DelegateError(f"delegate {kind} takes no ':{rest}' suffix")
        return cls(kind)

    def __str__(self) -> str:
        suffix = self.device or self.path
        return f"{self.kind}:{suffix}" if suffix else self.kind


@dataclass(frozen=True)
class Attempt:
    """One way to build an interpreter: a delegate library (or none) and the default delegates on/off."""

    name: str
    reason: str
    library: str | None = None
    options: dict = field(default_factory=dict)
    default_delegates: bool = False
    accelerator: str | None = None  # LiteRT CompiledModel accelerator instead of an interpreter


def library_for(kind: str) -> str:
    """The delegate library name for this platform (environment variables override)."""
    system = platform.system()
    if kind == "edgetpu":
        return os.environ.get(EDGETPU_LIBRARY_ENV) or EDGETPU_LIBRARIES.get(system, EDGETPU_LIBRARIES["Linux"])
    return os.environ.get(GPU_LIBRARY_ENV) or GPU_LIBRARIES.get(system, GPU_LIBRARIES["Linux"])


PLUGIN_SYMBOLS = ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")


def probe_library(library: str) -> str | None:
    """None if the dynamic loader can open ``library``, else its reason."""
    try:
        ctypes.CDLL(library)
    except OSError as exc:
        return str(exc) or f"{library} could not be loaded"
    return None


def _missing_plugin_symbols(library: str) -> list[str]:
    """External-delegate entry points the library lacks (checked before the backend's
    load_delegate, whose destructor otherwise prints a traceback for such a library)."""
    handle = ctypes.CDLL(library)
    return [name for name in PLUGIN_SYMBOLS if not hasattr(handle, name)]


def load_library_delegate(backend, library: str, options: dict):
    """A delegate object from a plugin library; DelegateError naming the library on failure."""
    problem = probe_library(library)
    if problem:
        raise DelegateError(f"cannot load delegate library {library}: {problem}")
    missing = _missing_plugin_symbols(library)
    if missing:
        raise DelegateError(f"{library} loaded but is not a usable TFLite delegate: it does not export "
                            + ", ".join(missing))
    try:
        return backend.load_delegate(library, {k: str(v) for k, v in options.items()} or None)
    except (ValueError, OSError, RuntimeError, AttributeError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise DelegateError(f"{library} loaded but is not a usable TFLite delegate: {detail}") from None


def twin_name(path: str) -> str:
    """``model_edgetpu.tflite`` -> ``model.tflite``: the CPU int8 model the compiler started from."""
    base, ext = os.path.splitext(path)
    return (base[: -len("_edgetpu")] if base.endswith("_edgetpu") else base + "_cpu") + (ext or ".tflite")


def cpu_twin(path: str) -> str | None:
    twin = twin_name(path)
    return twin if path.endswith(f"_edgetpu{os.path.splitext(path)[1]}") and os.path.isfile(twin) else None


def cpu_attempts(why: str) -> list[Attempt]:
    return [Attempt("xnnpack", why, default_delegates=True),
            Attempt("cpu", "XNNPACK could not be applied; builtin CPU kernels")]


def _edgetpu_attempt(request: DelegateRequest, why: str) -> Attempt:
    options = {"device": request.device} if request.device else {}
    return Attempt("edgetpu", why, library_for("edgetpu"), options)


def _gpu_attempts(has_accelerator_api: bool) -> list[Attempt]:
    """A GPU delegate library when one is configured or installed, else LiteRT's GPU accelerator."""
    library = library_for("gpu")
    attempts = []
    if os.environ.get(GPU_LIBRARY_ENV) or not has_accelerator_api or probe_library(library) is None:
        attempts.append(Attempt("gpu", "requested: GPU delegate library", library))
    if has_accelerator_api:
        attempts.append(Attempt("gpu", "requested: LiteRT GPU accelerator", accelerator="gpu"))
    return attempts


def plan(request: DelegateRequest, model: ModelFile, fallback: bool,
         has_accelerator_api: bool = False) -> list[Attempt]:
    """Attempts in order. Explicit requests get their own attempts only, unless ``fallback``
    (auto always falls back)."""
    is_edgetpu_model = EDGETPU_CUSTOM_OP in model.custom_ops
    if request.kind == "auto":
        if is_edgetpu_model:
            return [_edgetpu_attempt(request, "auto: the model is compiled for the Edge TPU")]
        return cpu_attempts("auto: the model has no Edge TPU ops; XNNPACK is the fastest CPU path")
    if request.kind == "cpu":
        return [Attempt("cpu", "requested: builtin CPU kernels, default delegates off")]
    if request.kind == "xnnpack":
        attempts = [Attempt("xnnpack", "requested", default_delegates=True)]
    elif request.kind == "edgetpu":
        attempts = [_edgetpu_attempt(request, "requested")]
    elif request.kind == "gpu":
        attempts = _gpu_attempts(has_accelerator_api)
    else:
        attempts = [Attempt(f"external:{request.path}", "requested", request.path)]
    if fallback and not (is_edgetpu_model and request.kind == "edgetpu"):
        attempts += cpu_attempts("fallback")
    return attempts
