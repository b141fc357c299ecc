"""Crop-resize against Pillow's own ImageOps.fit as the reference."""
from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from pastefile.core.imaging import ImageError, crop_resize, image_size


def gradient(size, mode="RGB") -> Image.Image:
    w, h = size
    img = Image.new("RGB", size)
    img.putdata([(x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x + y) % 256) for y in range(h) for x in range(w)])
    return img.convert(mode)


def encode(img: Image.Image, fmt: str, **opts) -> io.BytesIO:
    out = io.BytesIO()
    img.save(out, fmt, **opts)
    out.seek(0)
    return out


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


@pytest.mark.parametrize(
    "src,target",
    [((400, 300), (100, 100)), ((300, 400), (120, 60)), ((500, 200), (50, 50)), ((256, 256), (64, 32)), ((333, 111), (37, 99))],
)
def test_matches_imageops_fit_png(src, target):
    img = gradient(src)
    result = crop_resize(encode(img, "PNG"), *target)
    out = Image.open(io.BytesIO(result.data))
    reference = ImageOps.fit(img, target, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    assert out.size == target == (result.width, result.height)
    assert result.mimetype == "image/png"
    assert mean_abs_diff(out, reference) < 3.0


def test_jpeg_shrink_on_load_stays_close_to_full_decode():
    img = gradient((1600, 1200))
    data = encode(img, "JPEG", quality=95)
    result = crop_resize(data, 200, 150)
    out = Image.open(io.BytesIO(result.data))
    reference = ImageOps.fit(img, (200, 150), Image.Resampling.LANCZOS)
    assert out.size == (200, 150) and out.format == "JPEG"
    assert mean_abs_diff(out, reference) < 4.0


def test_one_side_keeps_aspect_ratio():
    data = encode(gradient((800, 400)), "PNG")
    assert image_size(io.BytesIO(crop_resize(data, 200, 0).data)) == (200, 100)
    data.seek(0)
    assert image_size(io.BytesIO(crop_resize(data, None, 100).data)) == (200, 100)


def test_no_upscale_unless_asked():
    data = encode(gradient((100, 50)), "PNG")
    assert crop_resize(data, 400, 400).width == 50  # the 50x50 middle, not enlarged
    data.seek(0)
    up = crop_resize(data, 400, 400, upscale=True)
    assert (up.width, up.height) == (400, 400)


def test_exif_orientation_is_applied():
    img = gradient((200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    data = encode(img, "JPEG", exif=exif.tobytes())
    result = crop_resize(data, 50, 0)
    assert (result.width, result.height) == (50, 100)


@pytest.mark.parametrize("mode,fmt", [("RGBA", "PNG"), ("L", "PNG"), ("P", "GIF"), ("RGB", "WEBP"), ("RGB", "BMP")])
def test_modes_and_formats(mode, fmt):
    result = crop_resize(encode(gradient((120, 90), mode), fmt), 30, 30)
    out = Image.open(io.BytesIO(result.data))
    assert out.size == (30, 30) and out.format == fmt


def test_not_an_image():
    with pytest.raises(ImageError):
        crop_resize(io.BytesIO(b"not an image at all"), 10, 10)
    assert image_size(io.BytesIO(b"nope")) is None
