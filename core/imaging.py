"""Crop-resize with cropresize2 semantics; Pillow decodes, resamples and encodes.

The geometry comes from the Cython kernel (``pastefile.ext.geometry``).
JPEGs are shrunk while decoding (``Image.draft``), which is several times
faster than decoding at full size and resampling everything.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageOps

from pastefile.ext.geometry import crop_resize_geometry

# Decompression bombs: refuse images above this many pixels.
MAX_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_SAVE_OPTIONS = {
    "JPEG": {"quality": 88, "optimize": True, "progressive": True},
    "PNG": {"optimize": False, "compress_level": 6},
    "WEBP": {"quality": 85, "method": 4},
    "GIF": {},
    "BMP": {},
    "TIFF": {"compression": "tiff_deflate"},
}
_MIME_OF = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp", "TIFF": "image/tiff"}


class ImageError(ValueError):
    """The bytes are not an image Pillow can crop-resize."""


@dataclass(frozen=True)
class ResizedImage:
    data: bytes
    mimetype: str
    width: int
    height: int


def image_size(fileobj: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from the header only, or None if not an image."""
    try:
        with Image.open(fileobj) as img:
            return img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def crop_resize(
    source: BinaryIO,
    width: int | None,
    height: int | None,
    *,
    upscale: bool = False,
    resample: int = Image.Resampling.LANCZOS,
) -> ResizedImage:
    """Crop the proportional middle of ``source`` and resize it to (w, h).

    One side 0/None keeps the aspect ratio; without ``upscale`` the result is
    never larger than the cropped region.  Encodes in the source's format.
    """
    try:
        img = Image.open(source)
        fmt = img.format
        if fmt not in _SAVE_OPTIONS:
            raise ImageError(f"cannot resize {fmt or 'unknown'} images")
        orientation = _orientation(img) if fmt == "JPEG" else 1
        # EXIF orientations 5-8 store the picture rotated by 90 degrees
        logical = (img.height, img.width) if orientation in (5, 6, 7, 8) else img.size
        geometry = crop_resize_geometry(logical[0], logical[1], width, height, upscale)
        if fmt == "JPEG":
            # shrink-on-load: decode at the smallest 1/2^k scale that still
            # leaves the crop box at least as large as the output
            scale = max(
                geometry.out_w / (geometry.right - geometry.left),
                geometry.out_h / (geometry.bottom - geometry.top),
            )
            if scale < 1:
                img.draft("RGB", (int(img.width * scale) + 1, int(img.height * scale) + 1))
        if orientation != 1:
            img = ImageOps.exif_transpose(img)
        if img.size != logical:
            # decoded smaller: the same crop on the reduced frame, same output
            geometry = crop_resize_geometry(img.width, img.height, geometry.out_w, geometry.out_h, True)
        if img.mode == "P":
            img = img.convert("RGBA")
        elif img.mode not in ("RGB", "RGBA", "L", "LA"):
            img = img.convert("RGB")
        if geometry.box != (0, 0, img.width, img.height):
            img = img.crop(geometry.box)
        if img.size != geometry.size:
            img = img.resize(geometry.size, resample)
        if fmt == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        out = io.BytesIO()
        img.save(out, fmt, **_SAVE_OPTIONS[fmt])
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot decode image: {exc}") from exc
    return ResizedImage(out.getvalue(), _MIME_OF[fmt], img.width, img.height)


def _orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - broken EXIF is simply ignored
        return 1
    return value if 1 <= value <= 8 else 1
