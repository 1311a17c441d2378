"""The edgelite record as a typed value: what the converters write and the runtime trusts.

The record travels inside a model file, so the runtime treats it as input from a stranger: its
size, nesting, types and numbers are checked here, once, and a bad one is one ModelError naming
the field. Schema 2 adds the task, every output's name, shape, dtype and role, and a detector's
decoder; schema 1 records (image classifiers only) still load.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any, NoReturn

from edgelite.runtime.errors import ModelError
from edgelite.runtime.modelfile.input_spec import InputSpec
from edgelite.runtime.tasks import decoders

SCHEMA_VERSION = 2
TASKS = ("image-classification", "object-detection", "image-embedding", "raw")
ROLES = ("probabilities", "logits", "boxes", "scores", "classes", "count", "keypoints", "embedding", "raw")
MAX_BYTES = 1 << 20        # a record is a few KB; a megabyte is already absurd
MAX_DEPTH = 32
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 256
REPORTS = ("target", "quantization", "verification", "recovery", "pruning", "weight_sparsity", "compatibility",
           "edgetpu_compiler", "provenance")  # written by the converters, shown by inspect, not acted on


@dataclass(frozen=True)
class OutputInfo:
    """One output tensor as the record describes it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    role: str = "raw"

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "role": self.role}


@dataclass(frozen=True)
class Record:
    """Everything a converted model says about itself. Reports are plain JSON objects (or None)."""

    input: InputSpec | None = None
    task: str = "image-classification"
    labels: tuple[str, ...] | None = None
    output: str | None = None              # classifiers: "probabilities" or "logits"
    outputs: tuple[OutputInfo, ...] = ()
    decoder: dict | None = None
    target: str | None = None
    quantization: dict | None = None
    verification: dict | None = None
    recovery: dict | None = None
    pruning: dict | None = None
    weight_sparsity: dict | None = None
    compatibility: dict | None = None
    edgetpu_compiler: dict | None = None
    provenance: dict | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["input"] = self.input.to_dict() if self.input else None
        data["labels"] = list(self.labels) if self.labels is not None else None
        data["outputs"] = [o.to_dict() for o in self.outputs]
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Any, where: str = "record") -> Record:
        """A validated Record; a ModelError naming the field otherwise."""
        check = _Checker(where)
        if not isinstance(data, dict):
            check.fail("", "is not a JSON object")
        return cls(
            input=check.input_spec(data.get("input")),
            task=check.choice("task", data.get("task", "image-classification"), TASKS),
            labels=check.labels(data.get("labels")),
            output=check.optional_choice("output", data.get("output"), ("probabilities", "logits")),
            outputs=check.outputs(data.get("outputs", [])),
            decoder=check.decoder(data.get("decoder")),
            schema_version=check.schema_version(data.get("schema_version", 1)),
            **{name: check.optional_report(name, data.get(name)) for name in REPORTS},
        )  # keys this version does not know are ignored: newer converters may add reports

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Record:
        return cls.from_dict(parse_json(raw, where), where)


def parse_json(raw: bytes, where: str) -> Any:
    """JSON with a size cap; nesting past Python's recursion limit is refused, not a traceback."""
    if len(raw) > MAX_BYTES:
        raise ModelError(f"{where}: the embedded edgelite record is {len(raw)} bytes (at most {MAX_BYTES})")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ModelError(f"{where}: the embedded edgelite record is not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelError(f"{where}: the embedded edgelite record is nested too deeply") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(value: Any, limit: int) -> int:
    if limit < 0:
        return 0
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    return 0


class _Checker:
    """Field checks with one message form: ``<where>: record field <name> <problem>``."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, name: str, problem: str) -> NoReturn:
        field = f" field {name!r}" if name else ""
        raise ModelError(f"{self.where}: the embedded edgelite record{field} {problem}")

    def choice(self, name: str, value: Any, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            self.fail(name, f"is {value!r}, not one of {', '.join(allowed)}")
        return value

    def optional_choice(self, name: str, value: Any, allowed: tuple[str, ...]) -> str | None:
        return None if value is None else self.choice(name, value, allowed)

    def optional_object(self, name: str, value: Any) -> dict | None:
        if value is not None and not isinstance(value, dict):
            self.fail(name, f"is a {type(value).__name__}, not a JSON object")
        if value is not None and _depth(value, MAX_DEPTH) > MAX_DEPTH:
            self.fail(name, f"is nested more than {MAX_DEPTH} levels deep")
        return value

    def decoder(self, value: Any) -> dict | None:
        """A detector's decoder drives array shapes and loops on the device: every field is checked here, by the
        same rules as a ``--decoder`` file (``decoders.parse``)."""
        value = self.optional_object("decoder", value)
        if value is not None:
            decoders.parse(value, f"{self.where}: the embedded edgelite record field 'decoder'", ModelError)
        return value

    def optional_report(self, name: str, value: Any) -> Any:
        if name == "target" and value is not None and not isinstance(value, str):
            self.fail(name, "is not a string")
        return value if name == "target" else self.optional_object(name, value)

    def schema_version(self, value: Any) -> int:
        if type(value) is not int or not 1 <= value <= SCHEMA_VERSION:
            self.fail("schema_version", f"is {value!r}; this edgelite reads 1 to {SCHEMA_VERSION} (a newer "
                      "edgelite may have written it)")
        return value

    def integer(self, name: str, value: Any, low: int, high: int) -> int:
        if type(value) is not int or not low <= value <= high:
            self.fail(name, f"is {value!r}, not a whole number from {low} to {high}")
        return value

    def numbers(self, name: str, value: Any) -> tuple[float, ...]:
        values = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            self.fail(name, f"is {value!r}, not one finite number or one per channel")
        return tuple(float(v) for v in values)

    def input_spec(self, value: Any) -> InputSpec | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail("input", f"is a {type(value).__name__}, not a JSON object")
        spec: dict[str, Any] = {"height": self.integer("input.height", value.get("height"), 1, 16384),
                "width": self.integer("input.width", value.get("width"), 1, 16384),
                "channels": self.integer("input.channels", value.get("channels", 3), 1, 3)}
        for name in ("color", "resize", "source"):
            if name in value and not isinstance(value[name], str):
                self.fail(f"input.{name}", "is not a string")
            if name in value:
                spec[name] = value[name]
        for name in ("mean", "std"):
            if name in value:
                spec[name] = self.numbers(f"input.{name}", value[name])
        if "pad_value" in value:
            spec["pad_value"] = self.integer("input.pad_value", value["pad_value"], 0, 255)
        try:
            return InputSpec(**spec)
        except (TypeError, ValueError) as exc:
            self.fail("input", f"is invalid ({exc})")

    def labels(self, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail("labels", "is not a list of strings")
        if len(value) > MAX_LABELS or any(len(v) > MAX_LABEL_CHARS for v in value):
            self.fail("labels", f"has more than {MAX_LABELS} labels or a label over {MAX_LABEL_CHARS} characters")
        return tuple(value)

    def outputs(self, value: Any) -> tuple[OutputInfo, ...]:
        if not isinstance(value, list) or len(value) > 64:
            self.fail("outputs", "is not a list of at most 64 outputs")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or \
                    not isinstance(item.get("dtype"), str) or not isinstance(item.get("shape"), list):
                self.fail(f"outputs[{i}]", "is not an object with a name, a shape and a dtype")
            shape = tuple(self.integer(f"outputs[{i}].shape", d, -1, 1 << 31) for d in item["shape"])
            out.append(OutputInfo(item["name"], shape, item["dtype"],
                                  self.choice(f"outputs[{i}].role", item.get("role", "raw"), ROLES)))
        return tuple(out)
