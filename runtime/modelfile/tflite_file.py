"""Reads and validates a .tflite flatbuffer before any interpreter sees it.

The native interpreters trust the flatbuffer: an offset that points past the end of the
file, an operator naming tensor 10**6, or a shape of 2**40 elements crashes or hangs the
host process instead of raising. Python's flatbuffers package has no verifier, so this
module walks every table the interpreter will read, checks each offset, length and index
against the file, and raises ``ModelError`` naming the file and the first fault found.
It also gives the runtime what it needs without an interpreter: tensors, quantization,
operator codes and our named metadata buffer.
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from typing import NoReturn

from edgelite.runtime.errors import ModelError
from edgelite.runtime.modelfile.builtin_ops import BUILTIN_OPS
from edgelite.runtime.modelfile.semantics import (
    CONTROL_FLOW,
    DETECTION_POSTPROCESS,
    DimensionMetadata,
    Sparsity,
    check_call_graph,
    check_detection_options,
    check_optional_inputs,
    check_sparsity,
)

FILE_IDENTIFIER = b"TFL3"
MAX_RANK = 16
# The interpreter allocates non-constant tensors itself; refuse shapes that would ask for
# more than this, rather than hang or be killed by the OOM killer (a fuzzed batch dimension of
# 9,830,401 did exactly that). Generous for edge image models; raise with the variables.
MAX_TENSOR_BYTES = int(os.environ.get("EDGELITE_MAX_TENSOR_BYTES", 1 << 30))
MAX_ACTIVATION_BYTES = int(os.environ.get("EDGELITE_MAX_ACTIVATION_BYTES", 4 << 30))

# TensorType code -> (name, bytes per element or 0 when not fixed)
TENSOR_TYPES = {
    0: ("float32", 4), 1: ("float16", 2), 2: ("int32", 4), 3: ("uint8", 1), 4: ("int64", 8),
    5: ("string", 0), 6: ("bool", 1), 7: ("int16", 2), 8: ("complex64", 8), 9: ("int8", 1),
    10: ("float64", 8), 11: ("complex128", 16), 12: ("uint64", 8), 13: ("resource", 0),
    14: ("variant", 0), 15: ("uint32", 4), 16: ("uint16", 2), 17: ("int4", 0), 18: ("bfloat16", 2),
    19: ("int2", 0), 20: ("uint4", 0), 21: ("float8_e4m3fn", 1), 22: ("float8_e5m2", 1),
}

# BuiltinOperator codes the runtime reasons about.
OP_DEQUANTIZE, OP_LOGISTIC, OP_RESHAPE, OP_SOFTMAX, OP_QUANTIZE = 6, 14, 22, 25, 114
OP_CONV_2D, OP_DEPTHWISE_CONV_2D, OP_FULLY_CONNECTED = 3, 4, 9


@dataclass(frozen=True)
class TensorDesc:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    dtype: str
    buffer: int
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int
    sparse: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * TENSOR_TYPES_BY_NAME.get(self.dtype, 0)


TENSOR_TYPES_BY_NAME = {name: size for name, size in TENSOR_TYPES.values()}


@dataclass(frozen=True)
class OperatorDesc:
    opcode_index: int
    builtin_code: int
    custom_code: str | None
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraph_refs: tuple[int, ...] = ()   # the subgraphs a control-flow op runs
    custom_options: bytes = b""


@dataclass(frozen=True)
class SubgraphDesc:
    name: str
    tensors: tuple[TensorDesc, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[OperatorDesc, ...]

    def producer(self, tensor_index: int) -> OperatorDesc | None:
        """The operator that writes ``tensor_index``, if any."""
        for op in self.operators:
            if tensor_index in op.outputs:
                return op
        return None


@dataclass(frozen=True)
class ModelFile:
    """What a validated .tflite file holds, read without an interpreter."""

    path: str
    size: int
    version: int
    description: str
    subgraphs: tuple[SubgraphDesc, ...]
    buffer_sizes: tuple[int, ...]
    metadata: dict  # name -> bytes of its buffer
    buffer_spans: tuple[tuple[int, int], ...] = ()  # (start, length) of each buffer's bytes in the file

    @property
    def main(self) -> SubgraphDesc:
        return self.subgraphs[0]

    @property
    def custom_ops(self) -> tuple[str, ...]:
        return tuple(sorted({op.custom_code for sg in self.subgraphs for op in sg.operators if op.custom_code}))


@dataclass(frozen=True)
class ReadModel:
    """A model file already read and validated by ``read_file``, handed to ``Model`` so that nothing reads it
    twice (``loading.load`` looks inside before choosing the task object). Trusted no more than its path."""

    data: bytes
    file: ModelFile


class _Reader:
    """Bounds-checked little-endian reads from the file's bytes."""

    def __init__(self, data: bytes, path: str):
        self.data = data
        self.n = len(data)
        self.path = path

    def fail(self, what: str) -> NoReturn:
        raise ModelError(f"{self.path}: not a valid TFLite model ({what})")

    def unpack(self, fmt: str, pos: int, what: str):
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > self.n:
            self.fail(f"{what} lies outside the file")
        return struct.unpack_from(fmt, self.data, pos)


class _Table:
    """One flatbuffer table whose vtable and inline area were checked to lie inside the file."""

    def __init__(self, reader: _Reader, pos: int, what: str):
        self.r, self.pos, self.what = reader, pos, what
        (soffset,) = reader.unpack("<i", pos, f"{what} table")
        self.vt = pos - soffset
        vt_size, self.obj_size = reader.unpack("<HH", self.vt, f"{what} vtable")
        if vt_size < 4 or vt_size % 2 or self.vt + vt_size > reader.n or pos + self.obj_size > reader.n:
            reader.fail(f"{what} vtable is malformed")
        self.nfields = (vt_size - 4) // 2

    def _slot(self, field: int, size: int) -> int:
        """Absolute position of ``field`` or 0 if absent; checks it fits inside the table."""
        if field >= self.nfields:
            return 0
        (off,) = self.r.unpack("<H", self.vt + 4 + 2 * field, f"{self.what} vtable")
        if off == 0:
            return 0
        if off + size > self.obj_size:
            self.r.fail(f"{self.what} field {field} overruns its table")
        return self.pos + off

    def scalar(self, field: int, fmt: str, default=0):
        slot = self._slot(field, struct.calcsize(fmt))
        return self.r.unpack(fmt, slot, f"{self.what} field {field}")[0] if slot else default

    def _target(self, field: int) -> int:
        slot = self._slot(field, 4)
        if not slot:
            return 0
        (rel,) = self.r.unpack("<I", slot, f"{self.what} field {field}")
        target = slot + rel
        if rel == 0 or target >= self.r.n:
            self.r.fail(f"{self.what} field {field} points outside the file")
        return target

    def table(self, field: int, what: str) -> _Table | None:
        target = self._target(field)
        return _Table(self.r, target, what) if target else None

    def _vector(self, field: int, elem_size: int) -> tuple[int, int]:
        target = self._target(field)
        if not target:
            return 0, 0
        (length,) = self.r.unpack("<I", target, f"{self.what} vector {field}")
        if target + 4 + length * elem_size > self.r.n:
            self.r.fail(f"{self.what} vector {field} ({length} items) runs past the end of the file")
        return target + 4, length

    def numbers(self, field: int, code: str) -> tuple:
        start, length = self._vector(field, struct.calcsize(code))
        return struct.unpack_from(f"<{length}{code}", self.r.data, start) if length else ()

    def string(self, field: int) -> str:
        """A string field; the interpreters decode names as strict UTF-8, so invalid bytes are a fault here."""
        start, length = self._vector(field, 1)
        try:
            return bytes(self.r.data[start:start + length]).decode("utf-8") if length else ""
        except UnicodeDecodeError:
            self.r.fail(f"{self.what} field {field} is not UTF-8 text")

    def byte_span(self, field: int) -> tuple[int, int]:
        return self._vector(field, 1)

    def tables(self, field: int, what: str) -> list[_Table]:
        start, length = self._vector(field, 4)
        out = []
        for i in range(length):
            elem = start + 4 * i
            (rel,) = self.r.unpack("<I", elem, what)
            if rel == 0 or elem + rel >= self.r.n:
                self.r.fail(f"{what} {i} points outside the file")
            out.append(_Table(self.r, elem + rel, f"{what} {i}"))
        return out


def _check_index(reader: _Reader, value: int, limit: int, what: str, allow_none: bool = False):
    if allow_none and value == -1:
        return
    if not 0 <= value < limit:
        reader.fail(f"{what} refers to index {value} of {limit}")


ZERO_POINT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-2**31, 2**31 - 1),
                    "int4": (-8, 7)}


def _check_quantization(reader: _Reader, index: int, dtype: str, shape: tuple, scales: tuple, zeros: tuple,
                        qdim: int):
    """Kernels index scales and zero points per channel and trust their range (XNNPACK crashed on
    an int8 zero point of -48000), so both are checked against the tensor."""
    if not scales and not zeros:
        return
    if zeros and len(zeros) != len(scales):
        reader.fail(f"tensor {index} has {len(scales)} scales but {len(zeros)} zero points")
    if any(not (math.isfinite(x) and x > 0) for x in scales):
        reader.fail(f"tensor {index} has a quantization scale that is not a positive number")
    low, high = ZERO_POINT_RANGE.get(dtype, (-2**63, 2**63 - 1))
    if any(not low <= z <= high for z in zeros):
        reader.fail(f"tensor {index} has a zero point outside the {dtype} range")
    if len(scales) > 1 and not (0 <= qdim < len(shape) and shape[qdim] == len(scales)):
        reader.fail(f"tensor {index} has {len(scales)} per-channel scales for dimension {qdim} of {list(shape)}")


def _read_tensor(reader: _Reader, t: _Table, index: int, n_buffers: int, sizes: tuple) -> TensorDesc:
    shape = t.numbers(0, "i")
    type_code = t.scalar(1, "<b")
    buffer = t.scalar(2, "<I")
    if type_code not in TENSOR_TYPES:
        reader.fail(f"tensor {index} has unknown type {type_code}")
    if len(shape) > MAX_RANK or any(d < 0 for d in shape):
        reader.fail(f"tensor {index} has an impossible shape {list(shape)}")
    _check_index(reader, buffer, n_buffers, f"tensor {index} buffer")
    dtype, itemsize = TENSOR_TYPES[type_code]
    nbytes = math.prod(shape) * itemsize
    if nbytes > MAX_TENSOR_BYTES:
        reader.fail(f"tensor {index} would need {nbytes} bytes (limit EDGELITE_MAX_TENSOR_BYTES)")
    sparsity = t.table(6, f"tensor {index} sparsity")
    sparse = sparsity is not None
    if sparsity is not None:
        check_sparsity(str(index), tuple(shape), itemsize, sizes[buffer], _read_sparsity(sparsity, index), reader.fail)
    if itemsize and not sparse and sizes[buffer] and sizes[buffer] != nbytes:
        reader.fail(f"tensor {index} holds {sizes[buffer]} bytes but its shape needs {nbytes}")
    q = t.table(4, f"tensor {index} quantization")
    scales, zeros, qdim = ((), (), 0)
    if q is not None:
        scales, zeros, qdim = q.numbers(2, "f"), q.numbers(3, "q"), q.scalar(6, "<i")
        q.numbers(0, "f"), q.numbers(1, "f")  # min/max: bounds only
        if q.scalar(4, "<B"):
            q.table(5, f"tensor {index} quantization details")
        _check_quantization(reader, index, dtype, shape, scales, zeros, qdim)
    signature = t.numbers(7, "i") or None
    if signature and (len(signature) != len(shape) or any(g != -1 and g != d for g, d in zip(signature, shape))):
        reader.fail(f"tensor {index} shape {list(shape)} contradicts its signature {list(signature)}")
    return TensorDesc(index, t.string(3), tuple(shape), signature, dtype, buffer,
                      tuple(scales), tuple(zeros), qdim, sparse)


def _read_operator(reader: _Reader, op: _Table, i: int, opcodes: list, n_tensors: int) -> OperatorDesc:
    opcode_index = op.scalar(0, "<I")
    _check_index(reader, opcode_index, len(opcodes), f"operator {i} opcode")
    inputs, outputs = op.numbers(1, "i"), op.numbers(2, "i")
    for idx in inputs + op.numbers(8, "i"):
        _check_index(reader, idx, n_tensors, f"operator {i} tensor", allow_none=True)
    for idx in outputs:
        _check_index(reader, idx, n_tensors, f"operator {i} output")
    builtin_code = opcodes[opcode_index][0]
    check_optional_inputs(i, builtin_code, tuple(inputs), reader.fail)
    for type_field, value_field in ((3, 4), (11, 12)):
        if op.scalar(type_field, "<B") and op.table(value_field, f"operator {i} options") is None:
            reader.fail(f"operator {i} names options it does not have")
    start, length = op.byte_span(5)
    large_offset, large_size = op.scalar(9, "<Q"), op.scalar(10, "<Q")
    if large_offset and large_offset + large_size > reader.n:
        reader.fail(f"operator {i} custom options lie outside the file")
    if large_offset:
        start, length = large_offset, large_size
    builtin, custom = opcodes[opcode_index]
    refs = _subgraph_refs(reader, op, i, builtin) if builtin in CONTROL_FLOW else ()
    return OperatorDesc(opcode_index, builtin, custom, tuple(inputs), tuple(outputs), refs,
                        bytes(reader.data[start:start + length]) if custom == DETECTION_POSTPROCESS else b"")


def _subgraph_refs(reader: _Reader, op: _Table, i: int, builtin: int) -> tuple[int, ...]:
    """IF (then, else), WHILE (cond, body), CALL_ONCE (init): the subgraph indices in their options."""
    options = op.table(4, f"operator {i} options")
    if options is None:
        reader.fail(f"operator {i} ({CONTROL_FLOW[builtin]}) has no options naming its subgraphs")
    fields = (0,) if CONTROL_FLOW[builtin] == "CALL_ONCE" else (0, 1)
    return tuple(options.scalar(f, "<i") for f in fields)


def _read_sparsity(sp: _Table, index: int) -> Sparsity:
    dims = []
    for dim in sp.tables(2, f"tensor {index} dim_metadata"):
        dims.append(DimensionMetadata(dim.scalar(0, "<b") == 0, dim.scalar(1, "<i"),
                                      _index_vector(dim, 2, 3, index), _index_vector(dim, 4, 5, index)))
    return Sparsity(tuple(sp.numbers(0, "i")), tuple(sp.numbers(1, "i")), tuple(dims))


def _index_vector(dim: _Table, type_field: int, value_field: int, index: int) -> tuple[int, ...] | None:
    """A union of Int32Vector (1), Uint16Vector (2) or Uint8Vector (3); None when absent."""
    kind = dim.scalar(type_field, "<B")
    table = dim.table(value_field, f"tensor {index} sparse index vector")
    if not kind or table is None:
        return None
    codes = {1: "i", 2: "H", 3: "B"}
    if kind not in codes:
        dim.r.fail(f"tensor {index} sparse index vector has unknown type {kind}")
    return tuple(table.numbers(0, codes[kind]))


def _read_subgraph(reader: _Reader, sg: _Table, s: int, opcodes: list, sizes: tuple) -> SubgraphDesc:
    tensors = tuple(_read_tensor(reader, t, i, len(sizes), sizes)
                    for i, t in enumerate(sg.tables(0, f"subgraph {s} tensor")))
    inputs, outputs = sg.numbers(1, "i"), sg.numbers(2, "i")
    for idx in inputs + outputs:
        _check_index(reader, idx, len(tensors), f"subgraph {s} input/output")
    activations = sum(t.nbytes for t in tensors if not sizes[t.buffer])
    if activations > MAX_ACTIVATION_BYTES:
        reader.fail(f"subgraph {s} would need {activations} bytes of activations "
                    "(limit EDGELITE_MAX_ACTIVATION_BYTES)")
    operators = tuple(_read_operator(reader, op, i, opcodes, len(tensors))
                      for i, op in enumerate(sg.tables(3, f"subgraph {s} operator")))
    return SubgraphDesc(sg.string(4), tensors, tuple(inputs), tuple(outputs), operators)


def _read_buffers(reader: _Reader, model: _Table) -> tuple[list[tuple[int, int]], tuple[int, ...]]:
    spans = []
    for i, buf in enumerate(model.tables(4, "buffer")):
        start, length = buf.byte_span(0)
        offset, size = buf.scalar(1, "<Q"), buf.scalar(2, "<Q")
        if offset > 1:  # models over 2 GB keep weights after the flatbuffer
            if offset + size > reader.n:
                reader.fail(f"buffer {i} lies outside the file")
            start, length = offset, size
        spans.append((start, length))
    return spans, tuple(length for _, length in spans)


def _read_opcodes(model: _Table) -> list[tuple[int, str | None]]:
    codes = []
    for oc in model.tables(1, "operator code"):
        builtin = max(oc.scalar(0, "<b"), oc.scalar(3, "<i"))
        codes.append((builtin, oc.string(1) or None))
    return codes


def _check_signatures(reader: _Reader, model: _Table, subgraphs: tuple[SubgraphDesc, ...]):
    for i, sig in enumerate(model.tables(7, "signature")):
        sg = sig.scalar(4, "<I")
        _check_index(reader, sg, len(subgraphs), f"signature {i} subgraph")
        for field in (0, 1):
            for tm in sig.tables(field, f"signature {i} tensor map"):
                tm.string(0)
                _check_index(reader, tm.scalar(1, "<I"), len(subgraphs[sg].tensors), f"signature {i} tensor")
        sig.string(2)


def parse(data: bytes, path: str = "<bytes>") -> ModelFile:
    """Validates ``data`` as a TFLite flatbuffer and describes it; raises ModelError if unsound."""
    reader = _Reader(data, path)
    if reader.n < 8:
        reader.fail(f"only {reader.n} bytes")
    if bytes(data[4:8]) != FILE_IDENTIFIER:
        reader.fail("no TFL3 file identifier")
    (root,) = reader.unpack("<I", 0, "root offset")
    model = _Table(reader, root, "model")
    spans, sizes = _read_buffers(reader, model)
    opcodes = _read_opcodes(model)
    subgraphs = tuple(_read_subgraph(reader, sg, s, opcodes, sizes)
                      for s, sg in enumerate(model.tables(2, "subgraph")))
    if not subgraphs:
        reader.fail("no subgraphs")
    for idx in model.numbers(5, "i"):
        _check_index(reader, idx, len(sizes), "metadata buffer")
    _check_signatures(reader, model, subgraphs)
    check_call_graph([[t for op in sg.operators for t in op.subgraph_refs] for sg in subgraphs], reader.fail)
    for sg in subgraphs:
        for i, op in enumerate(sg.operators):
            if op.custom_code == DETECTION_POSTPROCESS:
                shapes = [sg.tensors[t].shape for t in op.inputs if t >= 0]
                check_detection_options(i, op.custom_options, shapes, reader.fail)
    metadata = {}
    for m in model.tables(6, "metadata"):
        buffer = m.scalar(1, "<I")
        _check_index(reader, buffer, len(sizes), "metadata")
        start, length = spans[buffer]
        metadata[m.string(0)] = bytes(data[start:start + length])
    return ModelFile(path, reader.n, model.scalar(0, "<I"), model.string(3), subgraphs, sizes, metadata,
                     tuple(spans))


SCHEMA_MODULES = ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated")


def schema_module():
    """The generated TFLite schema (object API) from whichever package ships it; None where none
    does (tflite-runtime). Validation above never needs it; op names and writing records do."""
    import importlib
    for name in SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def op_name(builtin_code: int, custom_code: str | None = None) -> str:
    """An operator's name: its custom code, else the builtin name from the table (no schema module needed)."""
    return custom_code or BUILTIN_OPS.get(builtin_code, f"BUILTIN_{builtin_code}")


def op_names(model: ModelFile) -> list[str]:
    """The main subgraph's operators by name, in execution order (custom ops by their code)."""
    return [op_name(op.builtin_code, op.custom_code) for op in model.main.operators]


def read_file(path) -> tuple[bytes, ModelFile]:
    """Reads ``path`` with errors that name it, then validates it."""
    from edgelite.runtime.modelfile.files import (
        DEFAULT_MODEL_LIMIT,
        MODEL_LIMIT_ENV,
        describe,
        limit_from_env,
        read_regular,
    )
    name = describe(path)
    def head(first: bytes) -> None:
        if len(first) >= 8 and first[4:8] != FILE_IDENTIFIER:
            raise ModelError(f"{name}: not a valid TFLite model (no TFL3 file identifier)")
    data = read_regular(path, "a .tflite model", limit_from_env(MODEL_LIMIT_ENV, DEFAULT_MODEL_LIMIT), ModelError,
                        head)
    if not data:
        raise ModelError(f"{name}: empty file (0 bytes), not a TFLite model")
    return data, parse(data, name)
