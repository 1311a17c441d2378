"""edgelite.converters: Keras model -> pruned, int8-quantized, verified .tflite (workstation side).

Imports TensorFlow (lazily, with one message saying how to install it); builds on
edgelite.runtime for preprocessing so calibration and the device feed images identically.
"""
from .pipeline import TARGETS, ConversionResult, ConvertOptions, convert

__all__ = ["TARGETS", "ConversionResult", "ConvertOptions", "convert"]
