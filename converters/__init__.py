"""edgelite.converters: Keras model -> pruned, int8-quantized, verified .tflite (workstation side).

Imports TensorFlow; builds on edgelite.runtime for preprocessing so calibration and the
device feed images identically.
"""
