"""edgelite.converters: Keras model -> pruned, int8-quantized, verified .tflite (workstation side).

Imports TensorFlow (lazily, with one message saying how to install it); builds on
edgelite.runtime for preprocessing so calibration and the device feed images identically.
Names resolve lazily, so the CLI can read ``edgelite.converters.options`` (choices, defaults)
without loading the pipeline.
"""
from __future__ import annotations

import importlib
import os

# TensorFlow's oneDNN kernels crashed the process (SIGSEGV in Conv2DBackpropFilter) fine-tuning fer's
# mini-XCEPTION on an AVX-512/AMX machine here; the Eigen kernels did not, and give the same float
# reference on every CPU. A user who set the variable keeps their choice.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

_LAZY = {"convert": "pipeline", "ConversionResult": "pipeline", "TARGETS": "pipeline",
         "ConvertOptions": "options", "DEFAULTS": "options"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgelite.converters' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
