"""Finds the TFLite interpreter implementation to run models with.

Three packages ship the same Interpreter API: ai-edge-litert (current, numpy 2),
tflite-runtime (older Pi OS / Coral images, numpy<2) and TensorFlow itself. The device
runtime must work with whichever one the device has, so it is chosen at run time:
the first importable in that order, or the one named by ``backend=`` / ``EDGELITE_BACKEND``.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from types import ModuleType

from edgelite.runtime.errors import BackendUnavailableError
from edgelite.runtime.version import install_extra

ENV_VAR = "EDGELITE_BACKEND"

# name -> (interpreter module, distribution to install, how to get it)
# What to install for each backend: the wheel's extra that brings it. tflite-runtime's last wheels are for
# Python 3.11 and older (its extra carries that marker), so it is never suggested on a newer Python.
INSTALL_LITERT = install_extra("litert")
TFLITE_PYTHONS = (3, 12)  # tflite-runtime has wheels below this
INSTALL_TFLITE = install_extra("tflite") if sys.version_info < TFLITE_PYTHONS else \
    f"none: tflite-runtime has no wheel for Python {sys.version_info[0]}.{sys.version_info[1]} (3.11 and older); use {INSTALL_LITERT}"
INSTALL_TENSORFLOW = install_extra("convert")

_CANDIDATES = {
    "ai_edge_litert": ("ai_edge_litert.interpreter", "ai-edge-litert", INSTALL_LITERT),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime", INSTALL_TFLITE),
    "tensorflow": ("tensorflow.lite.python.interpreter", "tensorflow", INSTALL_TENSORFLOW),
}
_ALIASES = {"litert": "ai_edge_litert", "ai-edge-litert": "ai_edge_litert", "tflite": "tflite_runtime",
            "tflite-runtime": "tflite_runtime", "tf": "tensorflow"}


@dataclass(frozen=True)
class Backend:
    """An importable TFLite implementation: its name, version and interpreter module."""

    name: str
    version: str
    module: ModuleType

    @property
    def Interpreter(self):  # noqa: N802 - mirrors the wrapped class name
        return self.module.Interpreter

    def load_delegate(self, library: str, options: dict | None = None):
        return self.module.load_delegate(library, options)

    def make_interpreter(self, model_content: bytes, *, num_threads: int | None,
                         delegates: list, default_delegates: bool):
        """Builds an interpreter; ``default_delegates=False`` keeps XNNPACK off (plain CPU kernels)."""
        kwargs: dict[str, object] = {"model_content": model_content, "experimental_delegates": delegates or None}
        if num_threads is not None:
            kwargs["num_threads"] = num_threads
        if not default_delegates:
            kwargs["experimental_op_resolver_type"] = self.module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        return self.Interpreter(**kwargs)


def canonical_name(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _CANDIDATES:
        raise BackendUnavailableError(
            f"unknown backend {name!r}; choose one of: {', '.join(_CANDIDATES)} (or aliases litert, tflite, tf)")
    return key


def _version_of(name: str, module: ModuleType) -> str:
    top = importlib.import_module(name)
    for obj in (top, module):
        found = getattr(obj, "__version__", None)
        if found:
            return str(found)
    try:
        from importlib.metadata import version
        return version(_CANDIDATES[name][1])
    except Exception:  # noqa: BLE001 - version is informative only
        return "unknown"


@functools.cache
def probe(name: str) -> Backend | str:
    """Imports one backend; returns it, or the reason it cannot be used (cached per process)."""
    module_name, _, install = _CANDIDATES[name]
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - a broken install raises more than ImportError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "_ARRAY_API" in reason or "numpy" in reason.lower():
            reason += " (tflite-runtime needs numpy<2)"
        return f"{reason}; install: {install}"
    return Backend(name, _version_of(name, module), module)


def find_backend(name: str | None = None) -> Backend:
    """The backend to use: ``name``, else $EDGELITE_BACKEND, else the first importable one."""
    requested = name or os.environ.get(ENV_VAR) or None
    if requested:
        key = canonical_name(requested)
        found = probe(key)
        if isinstance(found, str):
            raise BackendUnavailableError(f"backend {key} is not usable: {found}")
        return found
    reasons = []
    for key in _CANDIDATES:
        found = probe(key)
        if not isinstance(found, str):
            return found
        reasons.append(f"{key}: {found}")
    raise BackendUnavailableError(
        f"no TFLite backend is installed; install one: {INSTALL_LITERT} ("
        + "; ".join(reasons) + ")")


def backend_report() -> list[dict]:
    """Every known backend with its version or the reason it is unavailable (for `doctor`).

    TensorFlow is not imported here unless already loaded: importing it takes seconds and
    gigabytes, and a device never needs it.
    """
    rows = []
    for key, (module_name, dist, install) in _CANDIDATES.items():
        if key == "tensorflow" and "tensorflow" not in sys.modules:
            rows.append(_distribution_row(key, dist, install))
            continue
        if key == "tflite_runtime" and sys.version_info >= TFLITE_PYTHONS and importlib.util.find_spec(
                "tflite_runtime") is None:
            rows.append({"name": key, "available": False, "version": None, "optional": True,
                         "detail": f"not for this Python: {INSTALL_TFLITE}"})
            continue
        found = probe(key)
        if isinstance(found, str):
            rows.append({"name": key, "available": False, "version": None, "detail": found})
        else:
            rows.append({"name": key, "available": True, "version": found.version, "detail": module_name})
    return rows


def _distribution_row(key: str, dist: str, install: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return {"name": key, "available": True, "version": version(dist),
                "detail": "installed (not imported: slow to load)"}
    except PackageNotFoundError:  # only TensorFlow is read this way: a device never needs it
        return {"name": key, "available": False, "version": None, "optional": True,
                "detail": f"not installed: workstation only (edgelite convert), not needed on a device ({install})"}
