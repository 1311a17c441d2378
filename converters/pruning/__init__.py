"""Pruning as a conversion step: magnitude masks for Keras 3 and tf_keras, the fine-tune that keeps
accuracy, and stripping the masks.
"""
