"""The recovery ladder: when the model asked for is over budget, real alternatives (per-tensor, float
layers, QAT), each converted and verified, the first within budget kept.
"""
