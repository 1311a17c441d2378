"""edgelite.converters: Keras model -> pruned, int8-quantized, verified .tflite (workstation side).

Imports TensorFlow (lazily, with one message saying how to install it); builds on
edgelite.runtime for preprocessing so calibration and the device feed images identically.
Names resolve lazily, so the CLI can read ``edgelite.converters.options`` (choices, defaults)
without loading the pipeline.
"""
from __future__ import annotations

import importlib

_LAZY = {"convert": "pipeline", "ConversionResult": "pipeline", "TARGETS": "pipeline",
         "ConvertOptions": "options", "DEFAULTS": "options"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgelite.converters' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
