"""The record a converted model carries, built from the steps' results, and the embedding step.

The record is the runtime's ``Record`` value (one schema for both sides); this module only
fills it in. The standard TFLite metadata goes in after it, because MediaPipe's writer appends
its label file to the model.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass

from edgelite.converters.options import ConvertOptions
from edgelite.converters.output import standard_metadata
from edgelite.converters.tf import tensorflow
from edgelite.converters.user_model import LoadedModel
from edgelite.converters.verify.cost import RECORD_TASKS
from edgelite.runtime.modelfile.input_spec import InputSpec
from edgelite.runtime.modelfile.metadata import embed_record
from edgelite.runtime.modelfile.record import OutputInfo, Record
from edgelite.runtime.modelfile.tflite_file import ModelFile, parse
from edgelite.runtime.tasks.decoders import yolo_split
from edgelite.runtime.tasks.postprocess import output_is_probability
from edgelite.runtime.version import __version__


@dataclass(frozen=True)
class Embedded:
    """The final model bytes, the record inside them, and what the standard metadata step did."""

    model_bytes: bytes
    record: Record
    weight_sparsity: dict
    standard_metadata: dict | None


def outputs_of(model: ModelFile, task: str, decoder: dict | None = None) -> tuple[OutputInfo, ...]:
    """Every output tensor by name, shape and dtype, with its role: a classifier's scores, an embedder's vector,
    a detector's boxes (the decoder's num_coords wide) and scores."""
    graph = model.main
    role = "embedding" if task == "embed" else "raw"
    if task == "detect" and decoder is not None:
        coords = decoder.get("tensors_to_detections", {}).get("num_coords", 4)
        split = yolo_split([tuple(graph.tensors[i].shape) for i in graph.outputs]) if "yolo" in decoder else None
        boxes = [split[0] == n if split else graph.tensors[i].shape[-1:] == (coords,)
                 for n, i in enumerate(graph.outputs)]
        return tuple(OutputInfo(graph.tensors[i].name, tuple(graph.tensors[i].shape), graph.tensors[i].dtype,
                                "boxes" if box else "scores") for i, box in zip(graph.outputs, boxes))
    if task == "classify":
        role = "probabilities" if output_is_probability(graph, graph.outputs[0]) else "logits"
    return tuple(OutputInfo(graph.tensors[i].name, tuple(graph.tensors[i].shape), graph.tensors[i].dtype, role)
                 for i in graph.outputs)


def provenance(loaded: LoadedModel, o: ConvertOptions) -> dict:
    """Where the model came from and what made it (``keras_flavor`` is "torch" for a PyTorch model)."""
    made_by = {"tensorflow": tensorflow().__version__}
    if loaded.flavor == "torch":
        import litert_torch
        import torch
        made_by = {"torch": torch.__version__, "litert_torch": litert_torch.__version__,
                   **({"yolo_head": loaded.yolo.to_dict()} if loaded.yolo is not None else {})}
    return {"source": loaded.name, "source_sha256": loaded.sha256, "keras_flavor": loaded.flavor,
            "edgelite": __version__, **made_by, "options": o.settings(),
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def build(model: ModelFile, spec: InputSpec, labels: tuple[str, ...] | None, reports: dict, task: str) -> Record:
    """The record: how to feed the model, its task, what it outputs, and the reports of every step."""
    outputs = outputs_of(model, task, reports.get("decoder"))
    kind = outputs[0].role if task == "classify" else None
    return Record(input=spec, task=RECORD_TASKS[task], labels=labels, output=kind, outputs=outputs, **reports)


def embed(model_bytes: bytes, name: str, spec: InputSpec, labels, reports: dict, sparsity: dict, task: str,
          standard: bool) -> Embedded:
    """Embeds the record (with the weight sparsity measured in the file), then the standard metadata."""
    model = parse(model_bytes, name)
    record = build(model, spec, labels, {**reports, "weight_sparsity": {"overall": sparsity["overall"],
                                                                        "weights": sparsity["weights"]}}, task)
    data = embed_record(model_bytes, record.to_dict())
    written = None
    if standard:
        graph = parse(data, name).main
        data, written = standard_metadata.add(data, spec, labels, graph.tensors[graph.inputs[0]].dtype)
    return Embedded(data, record, sparsity, written)
