"""Running a model on this machine: the TFLite backend, delegates and accelerators (Edge TPU, GPU),
the sandboxed first load, per-target rules and pre-flight, what `doctor` finds, and profiling.
"""
