"""Preprocessing: decoding rules, resize modes, fused normalization, the fast JPEG path."""
import io

import numpy as np
import pytest
from PIL import Image

from edgelite.runtime.errors import InputError
from edgelite.runtime.modelfile.metadata import InputSpec
from edgelite.runtime.tasks.preprocess import InputQuantization, Normalizer, Preprocessor, load_pixels

RGB32 = InputSpec(32, 32, 3)
GRAY32 = InputSpec(32, 32, 1, "grayscale")


def _png(image: Image.Image, **save) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def test_real_photos_decode_to_the_spec_shape(photos):
    for path in photos:
        pixels = load_pixels(path, InputSpec(48, 64, 3, resize="center-crop"))
        assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8
        assert pixels.std() > 5, path  # a real photo, not a blank


def test_exif_orientation_is_applied(photos):
    photo = Image.open(photos[0]).convert("RGB")  # 640x427 landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rotated = load_pixels(_png(photo, format="JPEG", exif=exif.tobytes(), quality=95),
                          InputSpec(64, 32, 3), fast=False)
    upright = load_pixels(photo.transpose(Image.Transpose.ROTATE_270), InputSpec(64, 32, 3))
    assert np.abs(rotated.astype(int) - upright.astype(int)).mean() < 6


@pytest.mark.parametrize("mode", ["RGBA", "CMYK", "P", "LA", "1", "I;16", "I", "F", "L"])
def test_every_common_mode_maps_to_rgb_and_gray(photos, mode):
    photo = Image.open(photos[1]).convert("RGB").resize((40, 30))
    if mode in ("I;16", "I", "F"):
        gray = np.asarray(photo.convert("L"), dtype=np.float64)
        image = Image.fromarray((gray * 257).astype(np.uint16)) if mode != "F" else \
            Image.fromarray(gray.astype(np.float32), "F")
        image = image.convert("I") if mode == "I" else image
    else:
        image = photo.convert(mode)
    rgb = load_pixels(image, RGB32)
    gray = load_pixels(image, GRAY32)
    assert rgb.shape == (32, 32, 3) and gray.shape == (32, 32, 1)
    if mode in ("I;16", "I", "F"):  # 16-bit scaled down, not clipped to white
        expected = load_pixels(photo.convert("L"), GRAY32)
        assert np.abs(gray.astype(int) - expected.astype(int)).max() <= 1


def test_palette_with_transparency_converts_without_warning(recwarn):
    image = Image.new("P", (20, 20))
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.info["transparency"] = 0
    assert load_pixels(image, RGB32).shape == (32, 32, 3)
    assert not [w for w in recwarn if "Palette" in str(w.message)]


def test_resize_modes_differ_as_they_should():
    wide = np.zeros((20, 80, 3), np.uint8)
    wide[:, 30:50] = 255  # a white bar in the middle
    stretch = load_pixels(wide, InputSpec(20, 20, 3, resize="stretch"))
    crop = load_pixels(wide, InputSpec(20, 20, 3, resize="center-crop"))
    letter = load_pixels(wide, InputSpec(20, 20, 3, resize="letterbox", pad_value=7))
    assert crop[:, 2:18].min() == 255  # the crop is the middle 20x20: mostly white
    assert stretch[:, 0].max() == 0 and stretch[:, 10].min() > 200
    assert (letter[0] == 7).all() and (letter[-1] == 7).all()  # padded top and bottom


def test_bgr_order_reverses_channels():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 200
    assert load_pixels(image, InputSpec(4, 4, 3, color="bgr"))[0, 0].tolist() == [0, 0, 200]


@pytest.mark.parametrize("dtype, scale, zero, mean, std, mode", [
    (np.float32, 0.0, 0, (0.0,), (255.0,), "float-table"),
    (np.float32, 0.0, 0, (127.5, 127.5, 127.5), (127.5, 127.5, 127.5), "float-table"),
    (np.float32, 0.0, 0, (123.7, 116.3, 103.5), (58.4, 57.1, 57.4), "arith"),
    (np.float16, 0.0, 0, (0.0,), (255.0,), "arith"),
    (np.uint8, 1.0, 0, (0.0,), (1.0,), "copy"),
    (np.uint8, 1 / 255, 0, (0.0,), (255.0,), "copy"),
    (np.int8, 1 / 255, -128, (0.0,), (255.0,), "xor"),
    (np.int8, 1 / 127.5, 0, (127.5,), (127.5,), "table"),
    (np.uint8, 0.0235, 5, (123.7, 116.3, 103.5), (58.4, 57.1, 57.4), "table"),
])
def test_fused_normalization_matches_the_formula(dtype, scale, zero, mean, std, mode):
    spec = InputSpec(8, 8, 3, mean=mean, std=std)
    norm = Normalizer(spec, InputQuantization(np.dtype(dtype), scale, zero))
    assert norm.mode == mode
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    out = norm(pixels, np.empty((8, 8, 3), dtype))
    real = (pixels - np.array(mean)) / np.array(std)
    if scale:
        info = np.iinfo(dtype)
        expected = np.clip(np.rint(real / scale + zero), info.min, info.max)
        assert np.abs(out.astype(int) - expected).max() <= 1
    else:
        tolerance = 1e-5 if dtype == np.float32 else 2e-3
        np.testing.assert_allclose(out, real, rtol=tolerance, atol=tolerance)


def test_the_float_table_gives_the_arithmetics_values_bit_for_bit():
    """The table holds what ``pixel * gain + offset`` gives in float32 for each of the 256 pixel values."""
    norm = Normalizer(InputSpec(8, 8, 3, mean=(127.5,), std=(127.5,)), InputQuantization(np.dtype(np.float32)))
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, 2)
    out = norm(pixels, np.empty((16, 16, 3), np.float32))
    expected = np.multiply(pixels, norm.gain, dtype=np.float32) + norm.offset
    assert norm.mode == "float-table" and np.array_equal(out, expected)


def test_batch_and_out_buffer(photos):
    pre = Preprocessor(RGB32, InputQuantization(np.dtype(np.float32)))
    batch = pre.batch(photos[:3])
    assert batch.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(batch[1:2], pre(photos[1]))


def test_fast_jpeg_path_stays_close_to_full_decode(jpeg_photos):
    """Reduced-scale decode changes pixels only slightly (the agreement on top-1 is in benchmarks)."""
    spec = InputSpec(224, 224, 3, resize="center-crop")
    big = [p for p in jpeg_photos if Image.open(p).width >= 4 * 224 or Image.open(p).height >= 4 * 224]
    assert big, "needs a real JPEG of at least 896 pixels on a side"
    for path in big:
        fast, exact = load_pixels(path, spec, fast=True), load_pixels(path, spec, fast=False)
        assert np.abs(fast.astype(float) - exact.astype(float)).mean() < 2.0, path


def test_fast_path_is_really_taken(jpeg_photos):
    retina = next(p for p in jpeg_photos if p.name == "retina.jpg")
    image = Image.open(retina)
    from edgelite.runtime.tasks.preprocess import _draft
    _draft(image, InputSpec(224, 224, 3))
    assert image.size[0] < Image.open(retina).size[0]


@pytest.mark.parametrize("data, message", [
    (b"", "not an image pillow can read"),
    (b"this is plain text, not a picture", "not an image pillow can read"),
])
def test_non_images_are_input_errors(tmp_path, data, message):
    path = tmp_path / "notes.jpg"
    path.write_bytes(data)
    with pytest.raises(InputError, match=rf"notes\.jpg: {message}"):
        load_pixels(path, RGB32)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_truncated_images_are_input_errors(tmp_path, photos, fmt):
    data = _png(Image.open(photos[0]).convert("RGB"), format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=rf"cut\.{fmt.lower()}: "):
        load_pixels(path, RGB32, fast=False)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (400, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(InputError, match=r"bomb\.png: .*decompression-bomb limit"):
        load_pixels(path, RGB32)


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_pixels(tmp_path / "nope.png", RGB32)
    with pytest.raises(InputError, match="is a directory"):
        load_pixels(tmp_path, RGB32)


def test_arrays_must_be_uint8_images():
    with pytest.raises(InputError, match="must be uint8 pixels"):
        load_pixels(np.zeros((4, 4, 3), np.float32), RGB32)
    with pytest.raises(InputError, match="is not an image"):
        load_pixels(np.zeros((4, 4, 5), np.uint8), RGB32)


@pytest.mark.parametrize("spec, shape, dtype, scale, zero", [
    (InputSpec(128, 128, resize="letterbox", mean=(127.5,) * 3, std=(127.5,) * 3), (96, 128), np.float32, 0.0, 0),
    (InputSpec(128, 128, resize="letterbox", pad_value=7, color="bgr"), (128, 96), np.int8, 1 / 255, -128),
    (InputSpec(24, 24, resize="stretch"), (24, 24), np.uint8, 1.0, 0),
    (InputSpec(40, 40, resize="letterbox", mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4)), (22, 40),
     np.float32, 0.0, 0),
    (InputSpec(32, 32, resize="letterbox"), (31, 32), np.float32, 0.0, 0),
])
def test_a_frame_already_sized_for_the_input_skips_pillow_and_gives_its_tensor_exactly(spec, shape, dtype, scale,
                                                                                         zero, photos):
    """The video decoder scales frames to the letterbox's inner size (or the input size): numpy places them
    directly, with the same values pillow's path gives, padding included."""
    from PIL import Image
    pre = Preprocessor(spec, InputQuantization(np.dtype(dtype), scale, zero))
    frame = np.asarray(Image.open(photos[0]).convert("RGB").resize(shape[::-1]))
    assert pre.placement(frame) is not None
    np.testing.assert_array_equal(pre(frame), pre(Image.fromarray(frame)))
    assert pre.placement(np.asarray(Image.fromarray(frame).resize((shape[1] + 8, shape[0] + 8)))) is None
