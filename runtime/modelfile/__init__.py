"""The .tflite file itself: reading it safely, validating its structure and what native code trusts,
the edgelite record and standard metadata it carries, and what `inspect` shows of it.
"""
