"""edgelite: ship Keras vision models to edge devices as one self-describing .tflite file.

The top-level names are resolved lazily so that ``import edgelite`` (and importing
``edgelite.runtime`` through it) never loads TensorFlow; only the converters do.

    import edgelite
    edgelite.convert("model.keras", output="model.tflite", calibration="images/")
    clf = edgelite.load("model.tflite")          # no TensorFlow needed
    clf.classify("cat.jpg", top_k=5)
    for r in edgelite.stream(clf, "/dev/video0"): ...   # live video, newest frame first
    edgelite.profile("model.tflite", runs=200).to_json()
"""
from __future__ import annotations

import importlib

_LAZY = {
    "__version__": "edgelite.runtime.version",
    "convert": "edgelite.converters",
    "ConversionResult": "edgelite.converters",
    "load": "edgelite.runtime",
    "profile": "edgelite.runtime",
    "stream": "edgelite.runtime",
    "Stream": "edgelite.runtime",
    "RunningMode": "edgelite.runtime",
    "TaskResult": "edgelite.runtime",
    "TaskOptions": "edgelite.runtime",
    "Classifier": "edgelite.runtime",
    "Detector": "edgelite.runtime",
    "Embedder": "edgelite.runtime",
    "RawModel": "edgelite.runtime",
    "Model": "edgelite.runtime",
    "InputSpec": "edgelite.runtime",
    "EdgeliteError": "edgelite.errors",
    "ModelError": "edgelite.errors",
    "InputError": "edgelite.errors",
    "DelegateError": "edgelite.errors",
    "BackendUnavailableError": "edgelite.errors",
    "ConversionError": "edgelite.errors",
    "RemoteError": "edgelite.errors",
    "DeviceUnreachableError": "edgelite.errors",
    "ClusterError": "edgelite.errors",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgelite' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    """The public names only (not this module's own imports)."""
    return sorted(_LAZY)
