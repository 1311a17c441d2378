"""Pre-flight: which ops of a .tflite each target runs, and which fall back to the CPU.

The Edge TPU rules are data, in one place, transcribed from Coral's documentation (the
"Supported operations" table of https://coral.ai/docs/edgetpu/models-intro/, with its
general requirements: full 8-bit quantization, static shapes, tensors whose dimensions
beyond the 3 innermost are 1). The Edge TPU compiler maps ops from the start of the graph
until the first op it cannot map; that op and everything after it run on the CPU. The
compiler itself is the final word; this table predicts it without the compiler.
GPU compatibility comes from TFLite's own model analyzer (ai-edge-litert or TensorFlow).
For XNNPACK the interpreter is asked directly how many partitions it delegated.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from edgelite.runtime.errors import BackendUnavailableError
from edgelite.runtime.interpreter.backend import INSTALL_LITERT
from edgelite.runtime.modelfile.tflite_file import ModelFile, op_names

EDGETPU_SOURCE = "https://coral.ai/docs/edgetpu/models-intro/#supported-operations"

# TFLite builtin op name -> known limitation on the Edge TPU ("" when none is documented).
EDGETPU_OPS = {
    "ADD": "", "AVERAGE_POOL_2D": "no fused activation function",
    "CONCATENATION": "no fused activation; a constant input must be all zeros and the only other input",
    "CONV_2D": "same dilation in x and y", "DEPTHWISE_CONV_2D": "same dilation in x and y",
    "EXPAND_DIMS": "", "FULLY_CONNECTED": "default weights format only; one-dimensional output",
    "L2_NORMALIZATION": "", "LOGISTIC": "", "UNIDIRECTIONAL_SEQUENCE_LSTM": "unidirectional only",
    "MAXIMUM": "", "MAX_POOL_2D": "no fused activation function",
    "MEAN": "no reduction over the batch; a z-reduction needs z a multiple of 4", "MINIMUM": "", "MUL": "",
    "PACK": "not along the batch dimension", "PAD": "not along the batch dimension",
    "PRELU": "alpha one-dimensional (Keras PReLU with shared_axes=[1, 2])", "QUANTIZE": "",
    "REDUCE_MAX": "not over the batch dimension", "REDUCE_MIN": "not over the batch dimension",
    "RELU": "", "RELU6": "", "RELU_N1_TO_1": "", "RESHAPE": "large reshapes may not be mapped",
    "RESIZE_BILINEAR": "3-D input/output; may stay on the CPU to avoid precision loss",
    "RESIZE_NEAREST_NEIGHBOR": "3-D input/output; may stay on the CPU to avoid precision loss",
    "RSQRT": "", "SLICE": "", "SOFTMAX": "1-D input, at most 16,000 elements", "SPACE_TO_DEPTH": "",
    "SPLIT": "not along the batch dimension", "SQUARED_DIFFERENCE": "", "SQUEEZE": "", "STRIDED_SLICE": "",
    "SUB": "", "SUM": "no reduction over the batch", "TANH": "", "TRANSPOSE": "", "TRANSPOSE_CONV": "",
}

# Standard fixes for ops the Edge TPU does not run.
EDGETPU_FIXES = {
    "HARD_SWISH": "use ReLU6 (e.g. MobileNetV3's minimalistic variant) or keep it after the cut point",
    "LEAKY_RELU": "use ReLU, or PReLU with shared_axes=[1, 2]",
    "GELU": "use ReLU or ReLU6",
    "DEQUANTIZE": "a float section: convert with full int8 (--quantize int8) and int8/uint8 I/O",
    "SHAPE": "a dynamic batch: convert for the Edge TPU (--target edgetpu fixes batch 1)",
    "ARG_MAX": "take the argmax on the CPU after the model (postprocessing does it)",
    "BATCH_MATMUL": "use Dense/Conv2D layers",
    "EXP": "move it after the last layer the Edge TPU should run (a cut point)",
    "DIV": "multiply by a constant reciprocal instead",
    "CUMSUM": "compute it on the CPU after the model",
}
CUT_POINT = "place it at the end of the model (a cut point) so everything before it runs on the Edge TPU"
QUANTIZED = {"int8", "uint8"}


@dataclass(frozen=True)
class Placement:
    index: int
    op: str
    where: str        # "edgetpu", "gpu", "xnnpack" or "cpu"
    reason: str = ""
    fix: str = ""

    def to_dict(self) -> dict:
        return {"index": self.index, "op": self.op, "where": self.where, "reason": self.reason, "fix": self.fix}


FIX_FLOAT = "convert with full int8 (--quantize int8, --io uint8 or int8)"
FIX_DYNAMIC = "convert with --target edgetpu, which fixes batch 1 and static shapes"
FIX_RANK = "reshape so at most the 3 innermost dimensions are larger than 1"


def _edgetpu_problem(model: ModelFile, op, name: str) -> tuple[str, str]:
    """Why one op cannot run on the Edge TPU and the fix, or ("", "") if the table says it can."""
    if name not in EDGETPU_OPS:
        return "not in the Edge TPU's supported operations", EDGETPU_FIXES.get(name, CUT_POINT)
    graph = model.main
    for idx in op.inputs + op.outputs:
        if idx < 0:
            continue
        t = graph.tensors[idx]
        constant = bool(model.buffer_sizes[t.buffer])
        if t.dtype not in QUANTIZED and not (t.dtype == "int32" and constant):  # int32: biases, shapes
            return f"tensor {t.name!r} is {t.dtype}; the Edge TPU needs 8-bit quantized tensors", FIX_FLOAT
        if constant:  # weights: 4-D conv filters are fine; the shape rules are for activations
            continue
        if t.shape_signature and any(d < 0 for d in t.shape_signature):
            return f"tensor {t.name!r} has a dynamic shape {list(t.shape_signature)}", FIX_DYNAMIC
        if sum(1 for d in t.shape[:-3] if d > 1):
            return f"tensor {t.name!r} {list(t.shape)} has more than 3 dimensions larger than 1", FIX_RANK
    return "", ""


def edgetpu_placement(model: ModelFile) -> list[Placement]:
    """Coral's rule: ops map in order until the first unsupported one; the rest stay on the CPU."""
    names = op_names(model)
    out, cut = [], None
    for i, (op, name) in enumerate(zip(model.main.operators, names)):
        if name == "edgetpu-custom-op":
            out.append(Placement(i, name, "edgetpu", "already compiled for the Edge TPU"))
            continue
        if cut is not None:
            out.append(Placement(i, name, "cpu", f"after the first unmapped op (#{cut})"))
            continue
        problem, fix = _edgetpu_problem(model, op, name)
        if problem:
            cut = i
            out.append(Placement(i, name, "cpu", problem, fix))
        else:
            out.append(Placement(i, name, "edgetpu", EDGETPU_OPS[name]))
    return out


_GPU_WARNING = re.compile(r"Op#(\d+).*GPU COMPATIBILITY WARNING: (.*)")


def analyzer_text(data: bytes) -> str | None:
    """TFLite's model analyzer report with GPU compatibility, from whichever package ships it."""
    for module in ("ai_edge_litert._pywrap_analyzer_wrapper", "tensorflow.lite.python._pywrap_analyzer_wrapper"):
        try:
            import importlib
            wrapper = importlib.import_module(module)
        except ImportError:
            continue
        return wrapper.ModelAnalyzer(data, False, True)
    return None


def gpu_placement(model: ModelFile, data: bytes) -> tuple[list[Placement], str]:
    """Per op: the analyzer's GPU warnings; ops it flags fall back to the CPU."""
    text = analyzer_text(data)
    if text is None:
        raise BackendUnavailableError(f"the GPU check needs TFLite's model analyzer (ai-edge-litert or TensorFlow; "
                                      f"tflite-runtime has none): {INSTALL_LITERT}")
    flagged: dict[int, str] = {}
    lines = text.splitlines()
    for n, line in enumerate(lines):
        match = _GPU_WARNING.search(line)
        if match:
            flagged[int(match.group(1))] = match.group(2).strip()
        elif "GPU COMPATIBILITY WARNING" in line and n and lines[n - 1].strip().startswith("Op#"):
            flagged[int(lines[n - 1].split("#")[1].split()[0])] = line.split("WARNING:", 1)[-1].strip()
    verdict = next((ln.strip() for ln in lines if "compatible with GPU delegate" in ln or "GPU delegate compatibility"
                    in ln), "")
    placement = [Placement(i, name, "cpu" if i in flagged else "gpu", flagged.get(i, ""))
                 for i, name in enumerate(op_names(model))]
    return placement, verdict


def summarize(placement: list[Placement], target: str) -> dict:
    on_target = [p for p in placement if p.where != "cpu"]
    first_cpu = next((p for p in placement if p.where == "cpu"), None)
    return {"target": target, "ops": len(placement), "on_target": len(on_target),
            "on_cpu": len(placement) - len(on_target),
            "first_cpu_op": first_cpu.to_dict() if first_cpu else None}


# Ops XNNPACK's TFLite delegate takes (its README's "Supported operators"); the interpreter's
# execution plan then says how many partitions it really delegated.
XNNPACK_OPS = {
    "ABS", "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CEIL", "CONCATENATION", "CONV_2D", "DEPTH_TO_SPACE",
    "DEPTHWISE_CONV_2D", "DEQUANTIZE", "DIV", "ELU", "FLOOR", "FULLY_CONNECTED", "GELU", "HARD_SWISH", "LEAKY_RELU",
    "LOGISTIC", "MAX_POOL_2D", "MAXIMUM", "MEAN", "MINIMUM", "MUL", "NEG", "PAD", "PRELU", "QUANTIZE", "RELU",
    "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "ROUND", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH",
    "SPLIT", "SQRT", "SQUARE", "SQUARED_DIFFERENCE", "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE",
    "TRANSPOSE_CONV",
}


def xnnpack_placement(model: ModelFile) -> list[Placement]:
    return [Placement(i, name, "xnnpack" if name in XNNPACK_OPS else "cpu",
                      "" if name in XNNPACK_OPS else "not among XNNPACK's supported operators")
            for i, name in enumerate(op_names(model))]


def _edgetpu(model: ModelFile, data: bytes, backend) -> tuple[list[Placement], dict]:
    return edgetpu_placement(model), {"source": EDGETPU_SOURCE}


def _gpu(model: ModelFile, data: bytes, backend) -> tuple[list[Placement], dict]:
    placement, verdict = gpu_placement(model, data)
    return placement, {"source": "TFLite model analyzer (gpu_compatibility=True)", "analyzer": verdict}


def _xnnpack(model: ModelFile, data: bytes, backend) -> tuple[list[Placement], dict]:
    from edgelite.runtime.interpreter.model import Model
    loaded = Model(data, delegate="xnnpack", backend=backend, fallback=True)
    partitions = sum(op.get("op_name") == "DELEGATE" for op in loaded._interpreter._get_ops_details())
    return xnnpack_placement(model), {
        "source": "XNNPACK delegate's supported operators; partitions measured by the interpreter",
        "measured": {"delegate": loaded.delegate.actual, "partitions": partitions}}


PLACEMENTS = {"edgetpu_placement": _edgetpu, "gpu_placement": _gpu, "xnnpack_placement": _xnnpack}


@dataclass(frozen=True)
class Compatibility:
    """Where each op of a model is predicted to run on a target, and where that rule comes from."""

    target: str
    placement: tuple[Placement, ...]
    source: str
    analyzer: str | None = None       # the GPU model analyzer's verdict
    measured: dict | None = None      # XNNPACK: what the interpreter really delegated

    @property
    def summary(self) -> dict:
        return summarize(list(self.placement), self.target)

    def warning(self) -> str | None:
        """One line when ops fall back to the CPU, naming the first and its fix."""
        first = self.summary["first_cpu_op"]
        if not first:
            return None
        s = self.summary
        return (f"{s['on_cpu']} of {s['ops']} ops will run on the CPU, not the {self.target}: first {first['op']} "
                f"(#{first['index']}): {first['reason']}" + (f"; fix: {first['fix']}" if first["fix"] else ""))

    def to_dict(self) -> dict:
        extra = {k: v for k, v in (("analyzer", self.analyzer), ("measured", self.measured)) if v is not None}
        return {"target": self.target, "source": self.source, **extra, "summary": self.summary,
                "ops": [p.to_dict() for p in self.placement]}


def preflight(model: ModelFile, data: bytes, target_name: str, backend=None) -> Compatibility:
    """The predicted placement of every op on ``target_name`` (its entry in the Target registry says how)."""
    from edgelite.runtime.interpreter.targets import target
    placement, about = PLACEMENTS[target(target_name).placement](model, data, backend)
    return Compatibility(target_name, tuple(placement), **about)


def check_model(path, target_name: str, backend=None) -> dict:
    """`edgelite check`: the placement table and summary of a .tflite file for one target."""
    from edgelite.runtime.errors import InputError
    from edgelite.runtime.interpreter.targets import TARGETS
    from edgelite.runtime.modelfile.tflite_file import read_file
    if target_name not in TARGETS:
        raise InputError(f"target {target_name!r} is not one of {', '.join(TARGETS)}")
    data, model = read_file(path)
    return {"model": model.path, **preflight(model, data, target_name, backend).to_dict()}
