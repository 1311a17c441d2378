"""What a task object is loaded with, typed and checked once, as MediaPipe Tasks' ``*Options`` are: how the model
runs (delegate, threads, backend, fallback, trust: ``Model``'s) and how images are fed to it and named (fast
decoding, labels, mean, std, resize, color). ``edgelite.load`` and every task take these as keywords too; a
keyword that is none of them is an ``InputError`` naming the ones there are, rather than ignored."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgelite.runtime.errors import InputError

RUN_FIELDS = ("delegate", "threads", "backend", "fallback", "trust")
SPEC_FIELDS = ("mean", "std", "resize", "color")


@dataclass(frozen=True)
class TaskOptions:
    """A task's options; the defaults are the model's own (its record) and the backend's."""

    delegate: str = "auto"
    threads: int | None = None
    backend: str | None = None
    fallback: bool = False
    trust: bool | None = None
    fast: bool = True
    labels: str | os.PathLike | Sequence[str] | None = None
    mean: float | Sequence[float] | None = None
    std: float | Sequence[float] | None = None
    resize: str | None = None
    color: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.delegate, str) or not self.delegate:
            raise InputError(f"delegate must be a name such as auto, cpu, xnnpack or edgetpu, not {self.delegate!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise InputError(f"threads must be a whole number of at least 1, not {self.threads!r}")
        if self.backend is not None and not isinstance(self.backend, str):
            raise InputError(f"backend must be a name (ai_edge_litert, tflite_runtime, tensorflow), not "
                             f"{self.backend!r}")

    @classmethod
    def of(cls, options: TaskOptions | None = None, **given: Any) -> TaskOptions:
        """``options`` (default: the defaults) with ``given`` keywords on top; an unknown keyword is refused."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InputError(f"unknown option{'s' * (len(unknown) > 1)} {', '.join(unknown)}; the options are "
                             f"{', '.join(known)}")
        return dataclasses.replace(options or cls(), **given)

    def run_options(self) -> dict[str, Any]:
        """What ``Model`` takes."""
        return {name: getattr(self, name) for name in RUN_FIELDS}

    def spec_overrides(self) -> dict[str, Any]:
        """What replaces the record's preprocessing (None: the record's own)."""
        return {name: getattr(self, name) for name in SPEC_FIELDS}


__all__ = ["TaskOptions"]
