"""The input contract: how pixels must be scaled for this model, decided once and recorded.

A model whose first layer is ``Rescaling`` or ``Normalization`` says itself what it takes: the layer's
own factors tell whether it expects raw 0..255 pixels (``Rescaling(1/255)``, a ``Normalization`` adapted on
pixels) or values already scaled. An explicit ``input_range``/``mean``/``std`` that feeds such a layer
something else is refused with what the layer does, because verification cannot see it: the float model
and the int8 model are then wrong together and agree perfectly (``force_input_scale`` overrides). Without
such a layer the user says so; if nobody can know, the conversion stops and names the option to give,
rather than guessing and producing a model that is silently fed the wrong scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgelite.converters.errors import ConversionError
from edgelite.converters.user_model import LoadedModel
from edgelite.runtime.modelfile.input_spec import range_normalization
from edgelite.runtime.modelfile.metadata import RANGES, InputSpec

PIXEL_LAYERS = ("Rescaling", "Normalization")
RAW = ((0.0,), (1.0,))          # raw 0..255 pixels: what a pixel layer adapted on pixels expects
LARGEST_PIXEL_SPAN = 16.0       # a layer that turns 0..255 into a span wider than this was not built for pixels
SPAN_TOLERANCE = 0.1            # of 255: how far an explicit scale may sit from the layer's and still agree


@dataclass(frozen=True)
class PixelLayer:
    """A leading Rescaling/Normalization layer and the input it was built for (None: not raw pixels, unknown)."""

    does: str                                             # what it computes, for messages
    expects: tuple[tuple[float, ...], tuple[float, ...]] | None


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


def _factors(layer) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) per channel such that the layer computes x * scale + offset."""
    if type(layer).__name__ == "Rescaling":
        return (np.atleast_1d(np.asarray(layer.scale, np.float64)),
                np.atleast_1d(np.asarray(layer.offset, np.float64)))
    mean = np.ravel(np.asarray(layer.mean, np.float64))
    std = np.sqrt(np.maximum(np.ravel(np.asarray(layer.variance, np.float64)), 1e-12))
    return 1.0 / std, -mean / std


def describe(layer) -> PixelLayer:
    """What a pixel layer computes and the input it expects: raw pixels when 0..255 comes out of it as a span
    a network is trained on (at most ``LARGEST_PIXEL_SPAN``), else unknown (it expects values already scaled)."""
    scale, offset = _factors(layer)
    span = float(np.max(np.abs(scale))) * 255.0
    low, high = float(np.min(offset)), float(np.max(offset + 255.0 * scale))
    does = (f"{layer.name} ({type(layer).__name__}) maps pixels 0..255 to {low:.3g}..{high:.3g}")
    return PixelLayer(does, RAW if span <= LARGEST_PIXEL_SPAN else None)


def leading_pixel_layer(loaded: LoadedModel) -> PixelLayer | None:
    """The Rescaling/Normalization layer the image meets first, if any."""
    layer = _first_effective_layer(loaded.model)
    if layer is None or type(layer).__name__ not in PIXEL_LAYERS:
        return None
    try:
        return describe(layer)
    except (AttributeError, TypeError, ValueError):  # a Normalization never adapted: no factors to read
        return PixelLayer(f"{layer.name} ({type(layer).__name__})", None)


def _explicit(input_range: str | None, mean, std):
    if input_range is not None:
        key = input_range.replace(" ", "").replace("..", ",")
        if key not in RANGES:
            raise ConversionError(f"input range {input_range!r} is not one of {', '.join(RANGES)}")
        if mean is not None or std is not None:
            raise ConversionError("give either an input range or mean/std, not both")
        return range_normalization(key)
    if mean is not None or std is not None:
        return (tuple(mean) if mean is not None else (0.0,)), (tuple(std) if std is not None else (1.0,))
    return None


def pixel_span(mean, std) -> tuple[float, float]:
    """What 0 and 255 become under (pixel - mean) / std, over the channels' extremes."""
    m, s = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    return float(np.min((0.0 - m) / s)), float(np.max((255.0 - m) / s))


def agrees(given, expected) -> bool:
    """Two normalizations feed a layer the same values, to ``SPAN_TOLERANCE`` of the pixel range."""
    (g0, g1), (e0, e1) = pixel_span(*given), pixel_span(*expected)
    tolerance = SPAN_TOLERANCE * abs(e1 - e0)
    return abs(g0 - e0) <= tolerance and abs(g1 - e1) <= tolerance


def _normalization(given, layer: PixelLayer | None, name: str, force: bool):
    if given is not None:
        if layer is not None and layer.expects is not None and not force and not agrees(given, layer.expects):
            low, high = pixel_span(*given)
            raise ConversionError(
                f"{name}: the input scale given feeds the model {low:.3g}..{high:.3g}, but its first layer "
                f"{layer.does}, so it expects raw 0..255 pixels: leave out --input-range/--mean/--std (or give "
                "--input-range 0,255), or pass --force-input-scale if the layer really takes that scale")
        return given
    if layer is not None and layer.expects is not None:
        return layer.expects
    if layer is not None:
        raise ConversionError(f"{name}: its first layer {layer.does}, which is not built for raw pixels; give the "
                              "scale it takes: --input-range 0,1|-1,1|0,255 or --mean/--std")
    raise ConversionError(f"{name}: cannot tell how the model expects pixels scaled (no leading Rescaling or "
                          "Normalization layer); give --input-range 0,1|-1,1|0,255 or --mean/--std")


def resolve_input_spec(loaded: LoadedModel, *, input_range=None, mean=None, std=None, resize="stretch",
                       color=None, force: bool = False) -> InputSpec:
    """The InputSpec to calibrate with, verify with and record in the model."""
    height, width, channels = loaded.input_shape
    m, s = _normalization(_explicit(input_range, mean, std), leading_pixel_layer(loaded), loaded.name, force)
    color = color or ("grayscale" if channels == 1 else "rgb")
    try:
        return InputSpec(height, width, channels, color, resize, m, s, source="metadata")
    except ValueError as exc:
        raise ConversionError(f"{loaded.name}: {exc}") from None
