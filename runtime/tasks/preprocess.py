"""Turns images into input tensors exactly as the model's spec says (pillow + numpy).

The same code runs on the device and, in the converters, on calibration and evaluation
images, so a model is never fed differently from how it was calibrated. Decoding and
resizing are pillow's; what is ours is the order of steps, the mode rules, the fast JPEG
path (decode at reduced scale with ``Image.draft``) and normalization fused with input
quantization so each pixel is touched once.
"""
from __future__ import annotations

import functools
import io
import os
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edgelite.runtime.errors import InputError
from edgelite.runtime.modelfile.files import DEFAULT_IMAGE_LIMIT, IMAGE_LIMIT_ENV, limit_from_env, read_regular
from edgelite.runtime.modelfile.files import describe as describe_path
from edgelite.runtime.modelfile.metadata import InputSpec

EXIF_ORIENTATION = 0x0112
_RESAMPLE = Image.Resampling.BILINEAR
# Fast mode: pillow first shrinks by an integer factor (box filter) while the image is at
# least this many times the target, then resamples. Measured on the real photos in the
# tests: mean absolute pixel difference under 2/255 against plain bilinear.
FAST_REDUCING_GAP = 1.0


def describe(source) -> str:
    """A name for error messages: the path, or what kind of object was given."""
    if isinstance(source, (str, os.PathLike)):
        return describe_path(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


def open_image(source) -> Image.Image:
    """A lazily decoded pillow image from a path, bytes or an image; errors name the source."""
    if isinstance(source, Image.Image):
        return source
    name = describe(source)
    if isinstance(source, (str, os.PathLike)):
        limit = limit_from_env(IMAGE_LIMIT_ENV, DEFAULT_IMAGE_LIMIT)
        source = io.BytesIO(read_regular(source, "an image", limit, InputError))
    elif isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    else:
        raise InputError(f"{name}: give an image path, bytes, a PIL image or a uint8 array")
    try:
        image = Image.open(source)
    except Image.DecompressionBombError as exc:
        raise InputError(f"{name}: too many pixels for pillow's decompression-bomb limit ({exc})") from None
    except UnidentifiedImageError:
        raise InputError(f"{name}: not an image pillow can read") from None
    except OSError as exc:
        if exc.errno is not None:  # the file system's complaint: permissions, I/O
            raise InputError(f"{name}: cannot read ({exc.strerror})") from None
        raise InputError(f"{name}: image data is truncated or corrupt ({exc})") from None
    _check_pixels(image, name)
    return image


def _check_pixels(image: Image.Image, name: str):
    limit = Image.MAX_IMAGE_PIXELS
    if limit and image.width * image.height > limit:
        raise InputError(f"{name}: {image.width}x{image.height} pixels exceeds pillow's decompression-bomb "
                         f"limit of {limit} pixels")


def _draft(image: Image.Image, spec: InputSpec):
    """Asks the JPEG decoder to decode at 1/2, 1/4 or 1/8 scale while both sides stay at
    least the input's longer side (so any resize mode and EXIF rotation still downsamples)."""
    if image.format == "JPEG":
        side = max(spec.width, spec.height)
        image.draft("L" if spec.channels == 1 else "RGB", (side, side))


def oriented(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (boxes are reported on the turned image)."""
    try:
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not stop classification
        return image
    return ImageOps.exif_transpose(image) if orientation not in (1, None) else image


def _to_mode(image: Image.Image, channels: int, size: tuple[int, int] = (0, 0)) -> Image.Image:
    """Pillow's conversions, plus 16-bit and float images scaled to 8 bits rather than clipped."""
    target = "L" if channels == 1 else "RGB"
    if image.mode == target:
        return image
    if image.mode.startswith("I") or image.mode == "F":
        factor = min(image.width // (2 * size[0]), image.height // (2 * size[1])) if min(size) > 0 else 1
        image = Image.fromarray(_eight_bits(image, max(1, factor)), "L")
        return image.convert(target) if target != "L" else image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert(target)


def _eight_bits(image: Image.Image, factor: int = 1) -> np.ndarray:
    """16-bit, 32-bit and float pixels as uint8, first reduced ``factor`` times in the source depth (a box
    mean over factor x factor blocks, still at least twice the input size): a float64 copy of a
    9400x9400 16-bit scan alone is 700 MB. NaN and infinities in float images become 0 and 255."""
    values = np.asarray(image)
    sixteen = image.mode.startswith("I;16") or (image.mode == "I" and values.max(initial=0) > 255)
    values = _block_mean(values, factor) if factor > 1 else values.astype(np.float32)
    if sixteen:
        values /= 257.0
    values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each factor x factor block (edges cropped), as float32; a view is summed, not copied."""
    h, w = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    blocks = values[:h, :w].reshape(h // factor, factor, w // factor, factor)
    with np.errstate(invalid="ignore", over="ignore"):
        return blocks.sum(axis=(1, 3), dtype=np.float64).astype(np.float32) / (factor * factor)


def center_box(width: int, height: int, aspect: float) -> tuple[float, float, float, float]:
    """The largest centered region of the given aspect ratio (width / height)."""
    if width / height > aspect:
        w = height * aspect
        return ((width - w) / 2, 0.0, (width + w) / 2, float(height))
    h = width / aspect
    return (0.0, (height - h) / 2, float(width), (height + h) / 2)


def letterbox_box(width: int, height: int, spec: InputSpec) -> tuple[int, int, int, int]:
    """Where a width x height image lands in the letterboxed input: (left, top, inner width, inner height). The one
    rule for the resize, for frames the decoder already sized, and for mapping boxes back."""
    scale = min(spec.width / width, spec.height / height)
    inner_w, inner_h = max(1, round(width * scale)), max(1, round(height * scale))
    return (spec.width - inner_w) // 2, (spec.height - inner_h) // 2, inner_w, inner_h


def _resized(image: Image.Image, spec: InputSpec, fast: bool) -> Image.Image:
    size = (spec.width, spec.height)
    if image.size == size:
        return image
    gap = FAST_REDUCING_GAP if fast else None
    if spec.resize == "center-crop":
        box = center_box(image.width, image.height, spec.width / spec.height)
        return image.resize(size, _RESAMPLE, box=box, reducing_gap=gap)
    if spec.resize == "letterbox":
        left, top, inner_w, inner_h = letterbox_box(image.width, image.height, spec)
        fill = spec.pad_value if spec.channels == 1 else (spec.pad_value,) * 3
        canvas = Image.new(image.mode, size, fill)
        canvas.paste(image.resize((inner_w, inner_h), _RESAMPLE, reducing_gap=gap), (left, top))
        return canvas
    return image.resize(size, _RESAMPLE, reducing_gap=gap)


def as_image(source) -> Image.Image:
    """Any image source (path, bytes, PIL image, uint8 array) as a pillow image, EXIF-oriented."""
    return _array_image(source, describe(source)) if isinstance(source, np.ndarray) else oriented(open_image(source))


def _array_image(array: np.ndarray, name: str) -> Image.Image:
    if array.dtype != np.uint8:
        raise InputError(f"{name}: image arrays must be uint8 pixels (got {array.dtype}); "
                         "use run() to feed a ready input tensor")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    modes = {2: "L", 3: "RGB", 4: "RGBA"}
    mode = "L" if array.ndim == 2 else modes.get(array.shape[2] if array.ndim == 3 else 0)
    if mode is None:
        raise InputError(f"{name}: array of shape {list(array.shape)} is not an image "
                         "(expected HxW, HxWx1, HxWx3 or HxWx4)")
    return Image.fromarray(np.ascontiguousarray(array), mode)


def load_pixels(source, spec: InputSpec, fast: bool = True, stages: dict | None = None,
                name: str | None = None) -> np.ndarray:
    """Decoded, oriented, converted and resized pixels: uint8 [height, width, channels].

    With ``stages``, adds the milliseconds spent decoding and resizing (orientation and mode included) to
    its "decode" and "resize" entries: the profiler's breakdown. ``name`` is what errors call the image (default:
    ``describe(source)``; a caller that opened the file itself passes its path)."""
    name = name or describe(source)
    t0 = time.perf_counter()
    image = _array_image(source, name) if isinstance(source, np.ndarray) else open_image(source)
    try:
        if fast:
            _draft(image, spec)
        image.load()
        t1 = time.perf_counter()
        image = _resized(_to_mode(oriented(image), spec.channels, (spec.width, spec.height)), spec, fast)
        pixels = np.asarray(image, dtype=np.uint8)
        if stages is not None:
            stages["decode"] = stages.get("decode", 0.0) + (t1 - t0) * 1e3
            stages["resize"] = stages.get("resize", 0.0) + (time.perf_counter() - t1) * 1e3
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name}: image data is truncated or corrupt ({' '.join(str(exc).split())})") from None
    pixels = pixels.reshape(spec.height, spec.width, spec.channels)
    return pixels[..., ::-1] if spec.color == "bgr" else pixels


@dataclass(frozen=True)
class InputQuantization:
    """The input tensor's dtype and quantization, when it has them."""

    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0


class Normalizer:
    """Maps uint8 pixels to the input tensor in one pass: (pixel - mean) / std, then quantized.

    Precomputes ``input = pixel * gain + offset`` per channel. Float32 inputs whose channels share it read a
    256-entry table of that arithmetic's results (other floats do the arithmetic); quantized inputs use a
    256-entry table per channel
    (pixels are uint8), or a plain copy / byte XOR for the common uint8 0..255 and int8 0..1
    cases. Rounding is half away from zero, as TFLite's own quantize kernel does.
    """

    def __init__(self, spec: InputSpec, quant: InputQuantization):
        self.dtype = np.dtype(quant.dtype)
        mean, std = np.asarray(spec.mean, np.float64), np.asarray(spec.std, np.float64)
        gain, offset = 1.0 / std, -mean / std
        self.quantized = quant.scale != 0.0 and np.issubdtype(self.dtype, np.integer)
        if self.quantized:
            gain, offset = gain / quant.scale, offset / quant.scale + quant.zero_point
            info = np.iinfo(self.dtype)
            self.bounds = (info.min, info.max)
        elif not np.issubdtype(self.dtype, np.floating):
            raise InputError(f"input tensor type {self.dtype.name} without quantization parameters "
                             "cannot be fed from an image")
        self.gain, self.offset = gain.astype(np.float32), offset.astype(np.float32)
        self.mode = self._fast_mode(gain, offset)
        if self.mode == "table":
            self.tables = self._tables(gain, offset)
        elif self.mode == "float-table":  # the arithmetic below, done once for each of the 256 pixel values
            self.tables = (np.arange(256, dtype=np.uint8)[None, :] * self.gain[:1, None]
                           + self.offset[:1, None]).astype(self.dtype)

    def _fast_mode(self, gain: np.ndarray, offset: np.ndarray) -> str:
        if not self.quantized:  # one float32 table when every channel shares it: faster (benchmarks/runtime.py), the same values
            shared = np.ptp(gain) == 0 and np.ptp(offset) == 0 and self.dtype == np.float32
            return "float-table" if shared else "arith"
        if np.allclose(gain, 1.0, atol=1e-4):
            if self.dtype == np.uint8 and np.allclose(offset, 0.0, atol=1e-3):
                return "copy"
            if self.dtype == np.int8 and np.allclose(offset, -128.0, atol=1e-3):
                return "xor"
        return "table"

    def _tables(self, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """[channels or 1, 256] quantized values of every possible pixel value."""
        pixels = np.arange(256, dtype=np.float64)
        real = pixels[None, :] * gain[:, None] + offset[:, None]
        rounded = np.sign(real) * np.floor(np.abs(real) + 0.5)
        tables = np.clip(rounded, *self.bounds).astype(self.dtype)
        return tables[:1] if (tables == tables[:1]).all() else tables

    def __call__(self, pixels: np.ndarray, out: np.ndarray) -> np.ndarray:
        if self.mode == "copy":
            np.copyto(out, pixels)
        elif self.mode == "xor":  # pixel - 128 as int8 is the pixel's top bit flipped
            np.bitwise_xor(pixels, 0x80, out=out.view(np.uint8))
        elif self.mode in ("table", "float-table"):
            if len(self.tables) == 1:
                np.take(self.tables[0], pixels, out=out)
            else:
                for c, table in enumerate(self.tables):
                    out[..., c] = table[pixels[..., c]]
        else:
            np.multiply(pixels, self.gain, out=out, dtype=out.dtype)
            out += self.offset
        return out


class Preprocessor:
    """Image -> input tensor for one model: the spec and its normalizer, built once."""

    def __init__(self, spec: InputSpec, quant: InputQuantization, fast: bool = True):
        self.spec = spec
        self.fast = fast
        self.normalize = Normalizer(spec, quant)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.spec.height, self.spec.width, self.spec.channels)

    @functools.cached_property
    def _band(self) -> np.ndarray:
        """The letterbox's padding as one normalized pixel."""
        return self.normalize(np.full((1, 1, self.spec.channels), self.spec.pad_value, np.uint8),
                              np.empty((1, 1, self.spec.channels), self.normalize.dtype))[0, 0]

    def placement(self, array) -> tuple[int, int] | None:
        """Where an RGB uint8 frame already at the size the resize would give sits in the input, (left, top):
        the letterbox's inner size or the input size itself (what the video decoder scales to). Pillow's path
        would copy it unchanged into the same place, so numpy does it directly; None for anything else."""
        spec = self.spec
        if not (isinstance(array, np.ndarray) and array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
                and spec.channels == 3 and spec.resize in ("letterbox", "stretch")):
            return None
        height, width = array.shape[:2]
        if (width, height) == (spec.width, spec.height):
            return 0, 0
        if spec.resize != "letterbox":
            return None
        left, top, inner_w, inner_h = letterbox_box(width, height, spec)
        return (left, top) if (inner_w, inner_h) == (width, height) else None

    def __call__(self, source, out: np.ndarray | None = None, stages: dict | None = None,
                 name: str | None = None) -> np.ndarray:
        """One image as a [1, H, W, C] tensor (written into ``out`` when given); ``stages`` and ``name`` as for
        load_pixels, plus "quantize" (normalization fused with the input's quantization)."""
        placed = self.placed(source, out, stages)
        if placed is not None:
            return placed
        pixels = load_pixels(source, self.spec, self.fast, stages, name)
        t0 = time.perf_counter()
        if out is None:
            out = np.empty((1, *self.shape), self.normalize.dtype)
        self.normalize(pixels, out.reshape(self.shape))
        if stages is not None:
            stages["quantize"] = stages.get("quantize", 0.0) + (time.perf_counter() - t0) * 1e3
        return out

    def placed(self, array, out: np.ndarray | None = None, stages: dict | None = None) -> np.ndarray | None:
        """The input tensor of a frame ``placement`` places, through numpy alone; None for any other image."""
        at = self.placement(array)
        if at is None:
            return None
        t0 = time.perf_counter()
        if out is None:
            out = np.empty((1, *self.shape), self.normalize.dtype)
        tensor = out.reshape(self.shape)
        height, width = array.shape[:2]
        if (width, height) != (self.spec.width, self.spec.height):  # the letterbox's bands, normalized as pixels
            tensor[:] = self._band
        pixels = array[..., ::-1] if self.spec.color == "bgr" else array
        t1 = time.perf_counter()
        self.normalize(pixels, tensor[at[1]:at[1] + height, at[0]:at[0] + width])
        if stages is not None:  # the placement is the resize stage here (the decoder did the resizing)
            stages["resize"] = stages.get("resize", 0.0) + (t1 - t0) * 1e3
            stages["quantize"] = stages.get("quantize", 0.0) + (time.perf_counter() - t1) * 1e3
        return out

    def batch(self, sources) -> np.ndarray:
        sources = list(sources)
        out = np.empty((len(sources), *self.shape), self.normalize.dtype)
        for i, source in enumerate(sources):
            self(source, out[i:i + 1])
        return out
