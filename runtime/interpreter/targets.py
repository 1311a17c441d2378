"""Where a model will run: one frozen entry per target, holding every rule that differs by target.

The converters take their defaults and refusals from here, `check` and the pre-flight their
placement function, the CLI its choices. Adding a target is adding an entry. It lives in the
runtime (which never imports the converters) because the runtime's `check` needs it too.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """The rules of one target; ``quantize`` and ``io`` values are the converters' mode names."""

    name: str
    description: str
    default_quantize: str
    allowed_quantize: tuple[str, ...]
    default_int8_io: str           # I/O type of an int8 model unless the user says otherwise
    allowed_int8_io: tuple[str, ...]
    static_batch: bool             # batch fixed at 1, no dynamic shapes
    runs_float_ops: bool           # float fallback layers can run there (a recovery rung)
    placement: str                 # runtime.compatibility function that predicts op placement
    preflight: bool = True         # the converters report the predicted placement after converting
    compiles: bool = False         # a post-write compile step (edgetpu_compiler)
    why_quantize: str = ""         # why other quantize modes are refused
    why_io: str = ""               # why other I/O types are refused

    def check(self, quantize: str, io: str | None) -> str | None:
        """The reason ``quantize``/``io`` cannot target this, or None when they can."""
        if quantize not in self.allowed_quantize:
            return f"--target {self.name} takes {' or '.join(self.allowed_quantize)}: --quantize {quantize} " \
                   f"cannot target it ({self.why_quantize})"
        if io is not None and quantize == "int8" and io not in self.allowed_int8_io:
            return f"--target {self.name} needs {' or '.join(self.allowed_int8_io)} inputs and outputs: --io {io} " \
                   f"cannot target it ({self.why_io})"
        return None

    def io_for(self, quantize: str, io: str | None) -> str:
        """The I/O type: the user's, else this target's default for int8 models, else float32."""
        return io or (self.default_int8_io if quantize == "int8" else "float32")


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("xnnpack", "CPU through XNNPACK (any Linux, Raspberry Pi)", "int8",
           ("int8", "fp16", "dynamic", "none", "int16x8"), "int8", ("int8", "uint8", "float32"),
           static_batch=False, runs_float_ops=True, placement="xnnpack_placement", preflight=False),
    Target("gpu", "a TFLite GPU delegate", "fp16", ("fp16", "none"), "float32", ("float32",),
           static_batch=False, runs_float_ops=True, placement="gpu_placement",
           why_quantize="integer models would run dequantized on the GPU delegate at best; use --quantize fp16"),
    Target("edgetpu", "Coral Edge TPU (compiled by edgetpu_compiler)", "int8", ("int8",), "uint8",
           ("uint8", "int8"), static_batch=True, runs_float_ops=False, placement="edgetpu_placement",
           compiles=True, why_quantize="the Edge TPU runs full-int8 models only; use --quantize int8",
           why_io="use --io uint8, the Coral default, or --io int8"),
)}
TARGET_NAMES = tuple(TARGETS)


def target(name: str) -> Target:
    """The entry for ``name``; a ValueError naming the choices otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"target {name!r} is not one of {', '.join(TARGET_NAMES)}") from None
