"""The QAT rung's learned activation ranges, put where TFLite's int8 reads them: the calibrated model's min/max.

TensorFlow's converter takes activation ranges from calibration (min/max over the representative images) or,
in a graph holding FakeQuant ops, from those ops alone: it then skips calibration, and every tensor needs one.
Neither takes learned ranges for some tensors and calibration for the rest. So the rung calibrates as every
int8 rung does (QuantizationDebugger keeps the calibrated model), replaces the min/max of each tensor whose
calibrated range is one the fine-tune learned, and quantizes that with TensorFlow's quantizer (mlir_quantize),
as the other int8 rungs do.

Tensors are matched by value, not by name (TFLite fuses and renames ops): a calibrated tensor's min and max are
the float model's min and max over the representative images, and the fine-tune's hooks record the same
tensors' min and max in Keras over the same images. A tensor that matches no learned range, or two of them
equally, keeps its calibrated range; so does the output of an op whose int8 range TFLite fixes (tanh, logistic,
softmax: the quantizer overrides whatever range it is given).
"""
from __future__ import annotations

import numpy as np

from edgelite.converters.quantize.modes import QuantizeOptions

TOLERANCE = 1e-3   # of the range's width: TFLite's float kernels and Keras's agree far closer than this


def nearest(low: float, high: float, observed: dict, tolerance: float = TOLERANCE):
    """The key whose observed (min, max) is (low, high) within ``tolerance`` of the width; None when none is, or
    when tensors with different ranges are (which one TFLite's tensor is would be a guess). Keys with the same
    range (a max pooling after a ReLU) are the same tensor to TFLite, which gives them one scale: the first."""
    width = max(high - low, 1e-12)
    close = [key for key, (lo, hi) in observed.items() if max(abs(lo - low), abs(hi - high)) <= tolerance * width]
    if not close or len({observed[k] for k in close}) > 1:
        return None
    return close[0]


def with_ranges(calibrated: bytes, observed: dict, learned: dict) -> tuple[bytes, int]:
    """The calibrated model with each matched tensor's min/max set to its learned range; and how many were set."""
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    observed = {k: (min(lo, 0.0), max(hi, 0.0)) for k, (lo, hi) in observed.items() if k in learned}
    count = 0
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            q = tensor.quantization
            if q is None or q.min is None or q.max is None or len(q.min) != 1 or len(q.max) != 1:
                continue
            key = nearest(min(float(q.min[0]), 0.0), max(float(q.max[0]), 0.0), observed)
            if key is None:
                continue
            q.min = np.array([learned[key][0]], np.float32)
            q.max = np.array([learned[key][1]], np.float32)
            count += 1
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), count


def convert(session, options: QuantizeOptions, learned: dict, observed: dict) -> tuple[bytes, int]:
    """The fine-tuned model as full int8 with the learned ranges: (model bytes, tensors given a learned range).

    ``session``: a recovery.Calibrated of the fine-tuned model; ``observed``: each hooked tensor's (min, max) in
    Keras over the same images, with the fine-tuned weights."""
    from edgelite.converters.quantize.modes import converter_call
    debugger = session.debugger
    with converter_call(session.loaded.name):
        debugger.calibrated_model, count = with_ranges(debugger.calibrated_model, observed, learned)
    return session.quantized(options), count
