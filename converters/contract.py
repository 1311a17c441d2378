"""The input contract: how pixels must be scaled for this model, decided once and recorded.

A model whose first layer is ``Rescaling`` or ``Normalization`` takes raw 0..255 pixels.
Otherwise the user says so (``input_range`` or ``mean``/``std``); if nobody can know, the
conversion stops and names the option to give, rather than guessing and producing a model
that is silently fed the wrong scale.
"""
from __future__ import annotations

from edgelite.runtime.errors import ConversionError
from edgelite.runtime.metadata import RANGES, InputSpec

from .loading import LoadedModel

PIXEL_LAYERS = ("Rescaling", "Normalization")


def _first_effective_layer(model):
    """The first layer that acts on the image at inference, looking inside nested models and past
    InputLayer and augmentation layers (Random*), which are identities outside training."""
    for layer in getattr(model, "layers", None) or []:
        kind = type(layer).__name__
        if kind == "InputLayer" or kind.startswith("Random"):
            continue
        if getattr(layer, "layers", None):
            inner = _first_effective_layer(layer)
            if inner is not None:
                return inner
            continue
        return layer
    return None


def leading_pixel_layer(loaded: LoadedModel) -> str | None:
    """The name of a Rescaling/Normalization layer the image meets first, if any."""
    layer = _first_effective_layer(loaded.model)
    kind = type(layer).__name__ if layer is not None else None
    return kind if kind in PIXEL_LAYERS else None


def _normalization(input_range: str | None, mean, std, pixel_layer: str | None, name: str):
    if input_range is not None:
        key = input_range.replace(" ", "").replace("..", ",")
        if key not in RANGES:
            raise ConversionError(f"input range {input_range!r} is not one of {', '.join(RANGES)}")
        if mean is not None or std is not None:
            raise ConversionError("give either an input range or mean/std, not both")
        return RANGES[key]
    if mean is not None or std is not None:
        return (mean if mean is not None else (0.0,)), (std if std is not None else (1.0,))
    if pixel_layer:
        return (0.0,), (1.0,)
    raise ConversionError(f"{name}: cannot tell how the model expects pixels scaled (no leading Rescaling or "
                          "Normalization layer); give --input-range 0,1|-1,1|0,255 or --mean/--std")


def resolve_input_spec(loaded: LoadedModel, *, input_range=None, mean=None, std=None, resize="stretch",
                       color=None) -> InputSpec:
    """The InputSpec to calibrate with, verify with and record in the model."""
    height, width, channels = loaded.input_shape
    m, s = _normalization(input_range, mean, std, leading_pixel_layer(loaded), loaded.name)
    color = color or ("grayscale" if channels == 1 else "rgb")
    try:
        return InputSpec(height, width, channels, color, resize, m, s, source="metadata")
    except ValueError as exc:
        raise ConversionError(f"{loaded.name}: {exc}") from None
