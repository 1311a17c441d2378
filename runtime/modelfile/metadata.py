"""The edgelite record: how to feed a model, carried inside the .tflite file itself.

A named metadata buffer ``edgelite`` holds UTF-8 JSON. The converters write it; the runtime
reads it so that preprocessing on the device is the one the model was calibrated with.
Models without a record still run: the spec is derived from the input tensor and the caller
may override any part of it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from edgelite.runtime.errors import BackendUnavailableError, ModelError
from edgelite.runtime.interpreter.backend import INSTALL_LITERT
from edgelite.runtime.modelfile.input_spec import RANGES, InputSpec
from edgelite.runtime.modelfile.record import Record, parse_json
from edgelite.runtime.modelfile.tflite_file import ModelFile, TensorDesc, schema_module

RECORD_NAME = "edgelite"
@dataclass(frozen=True)
class Metadata:
    """The parts of the record the runtime acts on, the validated record, and the raw JSON as read."""

    input: InputSpec | None = None
    labels: tuple[str, ...] | None = None
    output: str | None = None  # "probabilities" or "logits"
    record: dict = field(default_factory=dict)
    parsed: Record | None = None


def read_metadata(model: ModelFile) -> Metadata:
    """The model's edgelite record, validated (a ModelError naming the field otherwise), or an empty
    Metadata when it has none."""
    raw = model.metadata.get(RECORD_NAME)
    if raw is None:
        return Metadata()
    data = parse_json(raw, model.path)
    record = Record.from_dict(data, model.path)
    return Metadata(record.input, record.labels, record.output, data, record)


def derive_input_spec(tensor: TensorDesc) -> InputSpec:
    """A spec read off the input tensor when the model carries no record.

    For a quantized input the representable range reveals what the model was calibrated
    on (0..1, -1..1 or 0..255); a float input gives no such hint and 0..1 is assumed.
    """
    if len(tensor.shape) != 4:
        raise ModelError(f"input tensor {tensor.name!r} has shape {list(tensor.shape)}; "
                         "an image classifier takes [batch, height, width, channels]")
    _, height, width, channels = tensor.shape
    if channels not in (1, 3):
        raise ModelError(f"input tensor {tensor.name!r} has {channels} channels; edgelite feeds 1 (grayscale) "
                         "or 3 (RGB) channel images")
    color = "grayscale" if channels == 1 else "rgb"
    mean, std, source = 0.0, 255.0, "assumed"
    if tensor.scales and tensor.dtype in ("uint8", "int8"):
        qmin, qmax = (0, 255) if tensor.dtype == "uint8" else (-128, 127)
        lo = tensor.scales[0] * (qmin - tensor.zero_points[0])
        hi = tensor.scales[0] * (qmax - tensor.zero_points[0])
        for (m, s) in RANGES.values():
            if abs(lo - (0 - m) / s) < 0.02 * (hi - lo) and abs(hi - (255 - m) / s) < 0.02 * (hi - lo):
                mean, std, source = m, s, "derived"
                break
    return InputSpec(height, width, channels, color, "stretch", (mean,), (std,), 0, source)


def _schema():
    """The generated schema module; writing a record cannot do without one."""
    schema = schema_module()
    if schema is None:
        raise BackendUnavailableError(f"writing metadata needs ai-edge-litert or TensorFlow: {INSTALL_LITERT}")
    return schema


class _AlignedBuffer:
    """Packs a buffer's bytes 16-byte aligned, as the TFLite converter does, so weights
    stay aligned for the kernels after the model is rewritten."""

    def __init__(self, buffer):
        self.buffer = buffer

    def Pack(self, builder):  # noqa: N802 - flatbuffers object-API protocol
        import numpy as np
        data = self.buffer.data
        offset = None
        if data is not None and len(data):
            data = np.asarray(data, dtype=np.uint8)
            builder.StartVector(1, len(data), 16)
            builder.head = builder.head - len(data)
            builder.Bytes[builder.head:builder.head + len(data)] = data.tobytes()
            offset = builder.EndVector()
        sch = _schema()
        sch.BufferStart(builder)
        if offset is not None:
            sch.BufferAddData(builder, offset)
        sch.BufferAddOffset(builder, self.buffer.offset)
        sch.BufferAddSize(builder, self.buffer.size)
        return sch.BufferEnd(builder)


def embed_record(model_bytes: bytes, record: dict, name: str = RECORD_NAME) -> bytes:
    """New model bytes with ``record`` stored as JSON in the metadata buffer ``name``.

    Returns bytes rather than writing a file so the caller decides how to write atomically.
    An existing buffer of the same name is replaced.
    """
    sch = _schema()  # first: says what to install where the schema is missing
    import flatbuffers
    import numpy as np

    model = sch.ModelT.InitFromObj(sch.Model.GetRootAsModel(model_bytes, 0))
    payload = np.frombuffer(json.dumps(record, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    for old in [m for m in (model.metadata or []) if _name(m) == name]:
        model.buffers[old.buffer].data = None  # keep indices stable, drop the stale bytes
    model.metadata = [m for m in (model.metadata or []) if _name(m) != name]
    buffer = sch.BufferT()
    buffer.data = payload
    model.buffers.append(buffer)
    entry = sch.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    model.buffers = [_AlignedBuffer(b) for b in model.buffers]
    builder = flatbuffers.Builder(len(model_bytes) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _name(entry) -> str:
    value = entry.name
    return value.decode() if isinstance(value, bytes) else str(value)
