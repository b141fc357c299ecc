"""Renditions of images: decode, orient, crop or fit, resample, encode.

One pipeline serves every resize: JPEGs are shrunk while decoding
(``Image.draft``, DCT scaling) when the target allows, EXIF orientation is
applied, the crop box and final size come from the Cython geometry kernel
and the pixels from the Cython resampler (``pastefile.ext.resample``,
byte-identical to Pillow's Lanczos).  Pillow decodes and encodes.

Limits are per call: a source above ``max_pixels`` is refused from its
header, before any pixel is decoded; Pillow's global limit is left alone.

The bytes are untrusted: whatever they make Pillow raise, ``render`` answers
``ImageError`` and ``image_facts`` answers "no facts" (or no pHash), never
another exception.  Renditions carry pixels only: no EXIF, XMP, comment,
DPI or ICC profile (colours are converted to sRGB instead).
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageCms, ImageFile

from pastefile.ext.geometry import crop_resize_geometry
from pastefile.ext.phash import phash as _phash
from pastefile.ext.resample import resize as _kernel_resize

from .mimes import PILLOW_FORMATS

# Bump when the same source and spec would give different bytes (encoder
# options, pipeline changes): renditions are recorded under this version.
# 2: no metadata in renditions (a JPEG's comment, a PNG's ICC profile were
# copied), wide-gamut sources converted to sRGB, MPO sources rendered
ENCODER_VERSION = 2
DEFAULT_MAX_PIXELS = 100_000_000
FITS = ("crop", "inside")
# output formats a rendition may ask for; a source in another format keeps it
FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_DEFAULT_QUALITY = {"JPEG": 88, "WEBP": 85}
# formats decoded as another: an MPO (phone cameras' JPEG followed by a
# second, preview or depth, image) is a JPEG whose first frame is the picture
_DECODED_AS = {"MPO": "JPEG"}
# derived from mimes.PILLOW_FORMATS, the one table of resizable formats
_FORMAT_OF_MIME = PILLOW_FORMATS
_MIME_OF = {fmt: mime for mime, fmt in PILLOW_FORMATS.items()}
_SOURCE_FORMATS = tuple(_MIME_OF)
_KERNEL_MODES = ("L", "LA", "RGB", "RGBA")
# EXIF orientation -> the transposition that shows the picture upright
# (ImageOps.exif_transpose's table, applied without its EXIF rewrite, which
# fails on mistyped tags; renditions drop the EXIF anyway)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _srgb() -> ImageCms.ImageCmsProfile:
    # made per conversion (60 µs): an lcms profile handle is not shared
    # between the threads that render concurrently
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


# XYZ of sRGB's red, green and blue (D50-adapted, as profiles store them)
_SRGB_COLORANTS = tuple(getattr(_srgb().profile, f"{c}_colorant")[0] for c in ("red", "green", "blue"))
# what Pillow is documented to raise for bytes it cannot decode; anything
# else it raises on untrusted bytes is logged before it is answered alike
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)

log = logging.getLogger(__name__)


class ImageError(ValueError):
    """The bytes are not an image this pipeline can render."""


class ImageTooLarge(ImageError):
    """The source has more pixels than the caller allows."""


class UndecodableImage(ImageError):
    """The bytes start like an image but its header, metadata or pixels do
    not decode (truncated, corrupt): the type is supported, the content is
    not."""


@dataclass(frozen=True)
class RenditionSpec:
    """What a rendition should be.  ``width``/``height`` 0 follow the aspect
    ratio; ``fit`` is ``"crop"`` (the centred region of the target's aspect
    ratio, scaled to exactly w x h) or ``"inside"`` (the whole picture within
    w x h); ``format`` None keeps the source's; ``quality`` None is the
    format's default."""

    width: int = 0
    height: int = 0
    fit: str = "crop"
    format: str | None = None
    quality: int | None = None

    def validate(self, max_side: int) -> None:
        for name, value in (("w", self.width), ("h", self.height)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= max_side:
                raise ValueError(f"{name} must be an integer between 0 and {max_side}")
        if not (self.width or self.height):
            raise ValueError("give a width or a height")
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.quality is not None and (
            isinstance(self.quality, bool) or not isinstance(self.quality, int) or not 1 <= self.quality <= 100
        ):
            raise ValueError("quality must be an integer between 1 and 100")

    def normalized(self, source_mimetype: str) -> "RenditionSpec":
        """The same request with every default made explicit, so equal
        requests get equal keys: the output format named, the quality set
        only where the format uses one."""
        fmt = FORMATS[self.format] if self.format else _FORMAT_OF_MIME.get(source_mimetype)
        if fmt is None:
            raise ImageError(f"cannot render {source_mimetype} images")
        quality = (self.quality or _DEFAULT_QUALITY[fmt]) if fmt in _DEFAULT_QUALITY else None
        return RenditionSpec(self.width, self.height, self.fit, fmt.lower(), quality)

    def key(self) -> str:
        """A short stable text for a normalized spec: ``800x600-crop-jpeg-q88``."""
        text = f"{self.width}x{self.height}-{self.fit}-{self.format or 'src'}"
        return f"{text}-q{self.quality}" if self.quality else text


@dataclass(frozen=True)
class ResizedImage:
    data: bytes
    mimetype: str
    width: int
    height: int


@dataclass(frozen=True)
class ImageFacts:
    """What an upload records about an image: displayed size and pHash."""

    width: int
    height: int
    phash: int | None


def image_size(fileobj: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from the header only, or None if not an image."""
    try:
        with Image.open(fileobj) as img:
            return img.size
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - untrusted bytes: any parser failure means "not an image"
        return None


def _open(source: BinaryIO | bytes, max_pixels: int) -> Image.Image:
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    try:
        img = Image.open(source)
    except Image.DecompressionBombError:
        # past twice Pillow's own limit it refuses before telling the size
        raise ImageTooLarge(f"the image has more pixels than the {max_pixels:,} allowed") from None
    if img.width * img.height > max_pixels:
        img.close()
        raise ImageTooLarge(f"the image has {img.width}x{img.height} pixels, more than the {max_pixels:,} allowed")
    return img


def _format(img: Image.Image) -> str | None:
    """The format ``img`` is decoded and rendered as (an MPO is a JPEG)."""
    return _DECODED_AS.get(img.format or "", img.format)


def _inside_size(src_w: int, src_h: int, w: int, h: int, upscale: bool) -> tuple[int, int]:
    """The largest size with the source's aspect ratio within w x h (a 0 side is free)."""
    scales = [s for s in ((w / src_w) if w else None, (h / src_h) if h else None) if s is not None]
    scale = min(scales)
    if not upscale:
        scale = min(scale, 1.0)
    return max(1, round(src_w * scale)), max(1, round(src_h * scale))


def render(
    source: BinaryIO | bytes,
    spec: RenditionSpec,
    *,
    upscale: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threads: int | None = None,
    resampler: str = "kernel",
) -> ResizedImage:
    """Render ``spec`` from an encoded image.

    ``resampler="pillow"`` runs the same pipeline with ``Image.resize`` for
    the resampling step (the yardstick the benchmarks compare against).
    Anything the bytes provoke is an ``ImageError`` (``ImageTooLarge`` for
    too many pixels).
    """
    if resampler not in ("kernel", "pillow"):
        # the caller's mistake, not the image's: kept out of the net below
        raise ValueError(f"resampler must be 'kernel' or 'pillow', got {resampler!r}")
    try:
        img = _open(source, max_pixels)
        # an MPO renders its first frame (the one Pillow opens on) as a JPEG
        src_fmt = _format(img)
        if src_fmt not in _SOURCE_FORMATS:
            raise ImageError(f"cannot resize {img.format or 'unknown'} images")
        # a normalized spec names the source's own format when it was not
        # asked to change it (gif, bmp, tiff included)
        fmt = spec.format.upper() if spec.format else src_fmt
        if fmt not in _SOURCE_FORMATS:
            raise ImageError(f"cannot write {spec.format} images")
        icc_profile = img.info.get("icc_profile")
        orientation, logical = _displayed(img)
        if spec.fit == "crop":
            geometry = crop_resize_geometry(logical[0], logical[1], spec.width or None, spec.height or None, upscale)
            out_size, box = geometry.size, geometry.box
        else:
            out_size = _inside_size(logical[0], logical[1], spec.width, spec.height, upscale)
            box = (0, 0, logical[0], logical[1])
        if src_fmt == "JPEG":
            # shrink-on-load: the smallest 1/2^k decode whose crop box still
            # covers the output; the resampler does the rest exactly
            scale = max(out_size[0] / (box[2] - box[0]), out_size[1] / (box[3] - box[1]))
            if scale < 1:
                target = (int(img.width * scale) + 1, int(img.height * scale) + 1)
                img.draft(img.mode if img.mode in ("L", "RGB") else "RGB", target)
        img = _upright(img, orientation)
        if img.size != logical:
            # decoded smaller: scale the box to the reduced frame
            fx, fy = img.width / logical[0], img.height / logical[1]
            box = (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy)
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode == "1":
            img = img.convert("L")
        elif img.mode in ("L", "RGB") and "transparency" in img.info:
            # a tRNS colour key: resampling blends it into its neighbours,
            # so it becomes an alpha channel (the encoder is not given it)
            img = img.convert("RGBA")
        elif img.mode not in _KERNEL_MODES:
            img = img.convert("RGB")
        whole = tuple(box) == (0, 0, img.width, img.height)
        if out_size != img.size or not whole:
            if resampler == "kernel":
                img = _kernel_resize(img, out_size, "lanczos", box=None if whole else box, threads=threads)
            else:
                img = img.resize(out_size, Image.Resampling.LANCZOS, box=None if whole else box)
        data = _encode(img, fmt, spec.quality, icc_profile)
    except ImageError:
        raise
    except MemoryError:
        raise  # the process is short of memory: not the image's verdict
    except Exception as exc:  # noqa: BLE001
        # Untrusted bytes reach Pillow's parsers, which answer some malformed
        # input with TypeError, struct.error, IndexError... besides OSError:
        # whatever the bytes provoke is this image's 4xx, never a 500.
        if not isinstance(exc, _DECODE_ERRORS):
            log.info("rendering failed on %s: %r", type(exc).__name__, exc)
        raise UndecodableImage(f"cannot decode image: {exc}") from exc
    return ResizedImage(data, _MIME_OF[fmt], img.width, img.height)


def _encode(img: Image.Image, fmt: str, quality: int | None, icc_profile: bytes | None = None) -> bytes:
    img = _pixels_only(img, icc_profile)
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    elif fmt in ("GIF", "BMP") and img.mode == "LA":
        img = img.convert("RGBA" if fmt == "GIF" else "L")
    options: dict = {}
    if fmt == "JPEG":
        options = {"quality": quality or _DEFAULT_QUALITY["JPEG"], "progressive": True}
    elif fmt == "WEBP":
        options = {"quality": quality or _DEFAULT_QUALITY["WEBP"], "method": 4}
    elif fmt == "PNG":
        # level 3 compresses thumbnails about as small as 6 at 2-3x the speed
        options = {"compress_level": 3}
    elif fmt == "TIFF":
        options = {"compression": "tiff_deflate"}
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def _pixels_only(img: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """``img`` with its pixels and nothing else, in sRGB.

    Encoders copy parts of ``info`` (a JPEG's COM comment, a PNG's ICC
    profile, a GIF's comment) and a TIFF written from the file it was opened
    from copies every tag of it, so the encoder gets a plain image with an
    empty ``info``.  The ICC profile goes too (it can name the device), so
    the pixels are converted to sRGB, what browsers assume for an untagged
    image: a Display P3 or Adobe RGB photo is not shown washed out.
    """
    if isinstance(img, ImageFile.ImageFile):
        img = img.copy()  # a plain Image: no tags, no APP segments
    if icc_profile and img.mode in ("RGB", "RGBA"):
        img = _to_srgb(img, icc_profile)
    img.info = {}
    return img


def _to_srgb(img: Image.Image, icc_profile: bytes) -> Image.Image:
    """``img`` converted from ``icc_profile`` to sRGB; as it is when the
    profile is broken or not an RGB one (grey and CMYK: shown as decoded)."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if profile.profile.xcolor_space.strip() != "RGB" or _is_srgb(profile.profile):
            return img
        return ImageCms.profileToProfile(img, profile, _srgb(), outputMode=img.mode)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - an untrusted profile lcms cannot use: keep the decoded colours
        return img


def _is_srgb(profile) -> bool:
    """Whether an RGB profile has sRGB's primaries (most tagged photos): the
    conversion, about 2 ms to set up, would change nothing visible; a tone
    curve other than sRGB's (gamma 2.2) differs by a shade at most."""
    if not profile.is_matrix_shaper:
        return False
    for ours, theirs in zip(_SRGB_COLORANTS, (profile.red_colorant, profile.green_colorant, profile.blue_colorant)):
        if theirs is None or any(abs(a - b) > 0.002 for a, b in zip(ours, theirs[0])):
            return False
    return True


def crop_resize(
    source: BinaryIO | bytes,
    width: int | None,
    height: int | None,
    *,
    upscale: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ResizedImage:
    """Crop-resize: the proportional middle of ``source`` at (w, h)
    in the source's format (one side 0/None keeps the aspect ratio)."""
    return render(source, RenditionSpec(width or 0, height or 0), upscale=upscale, max_pixels=max_pixels)


# pHash thumbnails are 32x32: decoding a JPEG at 1/8 keeps far more than that
_FACTS_DRAFT = (256, 256)


def image_facts(fileobj: BinaryIO, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageFacts | None:
    """Displayed (width, height) and the 64-bit pHash of an image, or None
    when the header does not decode.  Above ``max_pixels`` only the size is
    read (no pHash), so an upload never decodes a bomb; pixels that do not
    decode give facts without a pHash.  Never raises for what the bytes
    hold: the upload is stored either way, with or without facts."""
    try:
        img = Image.open(fileobj)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001
        # untrusted bytes: Pillow's parsers raise more than OSError on
        # malformed headers (struct.error, TypeError, IndexError...); any of
        # them means "no image facts", never a failed upload
        return None
    try:
        orientation, (width, height) = _displayed(img)
        fmt = _format(img)
        if img.width * img.height > max_pixels or fmt not in _SOURCE_FORMATS:
            return ImageFacts(width, height, None)
        try:
            if fmt == "JPEG":
                img.draft("L", _FACTS_DRAFT)
            value = _phash(_upright(img, orientation))
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001
            # truncated or broken pixels (or a parser tripping over them,
            # whatever it raises): stored, but not hashed
            if not isinstance(exc, _DECODE_ERRORS):
                log.info("pHash failed on %s: %r", type(exc).__name__, exc)
            value = None
        return ImageFacts(width, height, value)
    finally:
        img.close()


def oriented(img: Image.Image) -> Image.Image:
    """``img`` as it is displayed: its EXIF orientation applied to the
    pixels (which it decodes), its metadata left as it is."""
    return _upright(img, _displayed(img)[0])


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    method = _UPRIGHT.get(orientation)
    return img if method is None else img.transpose(method)


def _displayed(img: Image.Image) -> tuple[int, tuple[int, int]]:
    """The EXIF orientation and the (width, height) the picture is shown at."""
    orientation = _orientation(img) if _format(img) in ("JPEG", "WEBP", "PNG", "TIFF") else 1
    # orientations 5-8 store the picture turned by 90 degrees
    return orientation, ((img.height, img.width) if orientation in (5, 6, 7, 8) else img.size)


def _orientation(img: Image.Image) -> int:
    """EXIF Orientation (1-8) of an opened image; 1 when absent or broken."""
    if img.format == "PNG" and "exif" not in img.info:
        # Pillow's getexif() decodes a whole PNG to look for an eXIf chunk
        # after the pixels: only one before them counts (as in browsers)
        return 1
    try:
        value = img.getexif().get(0x0112, 1)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - untrusted EXIF: any parser failure means "no orientation"
        return 1
    # a SHORT as the standard says; mistyped (text, several values) is ignored
    return value if type(value) is int and 1 <= value <= 8 else 1
