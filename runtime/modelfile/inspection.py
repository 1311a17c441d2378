"""Everything `edgelite inspect` shows about a model file, as one JSON-ready dict."""
from __future__ import annotations

from collections import Counter

from edgelite.runtime.errors import EdgeliteError, ModelError
from edgelite.runtime.interpreter.model import Model
from edgelite.runtime.modelfile.metadata import RECORD_NAME, derive_input_spec, read_metadata
from edgelite.runtime.modelfile.sparsity import weight_sparsity
from edgelite.runtime.modelfile.tflite_file import ModelFile, op_names, read_file
from edgelite.runtime.tasks.postprocess import output_is_probability

STANDARD_METADATA = "TFLITE_METADATA"


def ops_from_file(model: ModelFile) -> dict[str, int]:
    """Operator counts read from the flatbuffer (used when no interpreter can load the model)."""
    return dict(Counter(op_names(model)))


def _tensor(desc) -> dict:
    return {"name": desc.name, "index": desc.index, "shape": list(desc.shape), "dtype": desc.dtype,
            "scale": desc.scales[0] if len(desc.scales) == 1 else (list(desc.scales) if desc.scales else 0.0),
            "zero_point": desc.zero_points[0] if len(desc.zero_points) == 1 else (list(desc.zero_points) if desc.zero_points else 0),
            "per_channel": len(desc.scales) > 1}


def _interpreter_view(path, backend) -> tuple[dict | None, str, str | None]:
    """Op counts and backend from an interpreter, or why none could load the model."""
    try:
        model = Model(path, delegate="cpu", backend=backend)
        return model.op_counts(), f"{model.backend.name} {model.backend.version}", None
    except EdgeliteError as exc:
        return None, "n/a", str(exc)


def inspect_model(path, backend=None) -> dict:
    """Tensors, ops, metadata and size. Needs only a valid file; an interpreter adds op names
    when one can load the model (an Edge TPU model without its delegate cannot)."""
    data, file = read_file(path)
    graph = file.main
    meta = read_metadata(file)
    spec, problem = meta.input, None
    if spec is None:
        try:
            if len(graph.inputs) != 1:
                raise ModelError(f"model has {len(graph.inputs)} inputs")
            spec = derive_input_spec(graph.tensors[graph.inputs[0]])
        except EdgeliteError as exc:
            problem = str(exc)
    ops, backend_name, load_problem = _interpreter_view(path, backend)
    record = meta.record if RECORD_NAME in file.metadata else None
    return {
        "path": file.path, "size_bytes": file.size, "schema_version": file.version,
        "backend": backend_name, "interpreter_problem": load_problem,
        "inputs": [_tensor(graph.tensors[i]) for i in graph.inputs],
        "outputs": [_tensor(graph.tensors[i]) for i in graph.outputs],
        "ops": ops if ops is not None else ops_from_file(file), "subgraphs": len(file.subgraphs),
        "custom_ops": list(file.custom_ops),
        "input_spec": spec.to_dict() if spec else None, "input_spec_problem": problem,
        "labels": list(meta.labels or []),
        "output_kind": meta.output or ("probabilities" if len(graph.outputs) == 1 and output_is_probability(
            graph, graph.outputs[0]) else "logits"),
        "edgelite_record": record,
        "task": meta.parsed.task if meta.parsed else None,
        "output_roles": {o.name: o.role for o in meta.parsed.outputs} if meta.parsed else {},
        "decoder": meta.parsed.decoder if meta.parsed else None,
        "metadata_buffers": sorted(file.metadata),
        "tflite_metadata": STANDARD_METADATA in file.metadata,
        "weight_sparsity": weight_sparsity(file, data),
    }
