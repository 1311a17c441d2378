"""Quantization: TFLiteConverter set up for each mode, the calibration images, and the int8 input step.
"""
