"""Verification: the float model judged first (contract, accuracy), then what compression cost, on
images calibration never saw.
"""
