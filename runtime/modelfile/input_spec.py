"""How an image becomes a model's input tensor: size, color order, resize mode, normalization."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

RESIZE_MODES = ("stretch", "center-crop", "letterbox")
COLOR_ORDERS = ("rgb", "bgr", "grayscale")
# Named value ranges -> (mean, std) on 0..255 pixels: model input = (pixel - mean) / std.
RANGES = {"0,1": (0.0, 255.0), "-1,1": (127.5, 127.5), "0,255": (0.0, 1.0)}


def range_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) on 0..255 pixels for an input range named in ``RANGES`` ("0,1", "-1,1", "0,255")."""
    mean, std = RANGES[name]
    return (mean,), (std,)


def _channels_tuple(name: str, value, channels: int) -> tuple[float, ...]:
    values = (value,) if isinstance(value, (int, float)) else tuple(value)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise ValueError(f"{name} has {len(values)} values; give 1 or {channels} (one per channel)")
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the model's input tensor (pixels are 0..255 before normalization).

    ``source`` says where the spec came from: ``metadata`` (the model's record), ``derived``
    (read off the input tensor's quantization), ``assumed`` (a float input with no record:
    0..1 is assumed) or ``override``.
    """

    height: int
    width: int
    channels: int = 3
    color: str = "rgb"
    resize: str = "stretch"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (255.0,)
    pad_value: int = 0
    source: str = "metadata"

    def __post_init__(self):
        if self.height < 1 or self.width < 1:
            raise ValueError(f"input size must be positive, got {self.height}x{self.width}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}")
        if self.color not in COLOR_ORDERS:
            raise ValueError(f"color must be one of {', '.join(COLOR_ORDERS)}, got {self.color!r}")
        if (self.channels == 1) != (self.color == "grayscale"):
            raise ValueError(f"color {self.color!r} does not fit {self.channels} channel(s)")
        object.__setattr__(self, "mean", _channels_tuple("mean", self.mean, self.channels))
        object.__setattr__(self, "std", _channels_tuple("std", self.std, self.channels))
        if any(s == 0 for s in self.std):
            raise ValueError("std must not be 0")

    def to_dict(self) -> dict:
        """JSON-ready: mean and std as lists."""
        return {**dataclasses.asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict, **overrides) -> InputSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes) -> InputSpec:
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        if "channels" in changes and "color" not in changes:
            changes["color"] = "grayscale" if changes["channels"] == 1 else "rgb"
        if ("mean" in changes) != ("std" in changes):
            keep = "std" if "mean" in changes else "mean"
            changes[keep] = getattr(self, keep)[:1] if len(set(getattr(self, keep))) == 1 else getattr(self, keep)
        return dataclasses.replace(self, source="override", **changes)
