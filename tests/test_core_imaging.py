"""Crop-resize against Pillow's own ImageOps.fit as the reference; untrusted
EXIF, MPO sources, and renditions that carry no metadata."""
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


# -- untrusted EXIF, MPO, metadata-free renditions ------------------------------

import struct  # noqa: E402

from pastefile.core.imaging import (  # noqa: E402
    RenditionSpec,
    UndecodableImage,
    _displayed,
    image_facts,
    oriented,
    render,
)
from pastefile.core.sniff import sniff  # noqa: E402

ASCII, SHORT, RATIONAL, UNDEFINED = 2, 3, 5, 7
# one tag of the wrong type beside Orientation 6: Pillow's exif_transpose
# failed on these rewriting the EXIF (struct.error, TypeError)
MISTYPED = {
    "compression-ascii": (0x0103, ASCII, 4, b"abc\0"),
    "xresolution-undefined": (0x011A, UNDEFINED, 8, b"12345678"),
}
GPS = {1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 36.0)}
SECRET_COMMENT = b"pastefile-secret-comment"
SECRET_XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">pastefile-secret-xmp</x:xmpmeta>'


def raw_exif(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """An EXIF block ("Exif\\0\\0" + little-endian TIFF) whose IFD0 holds
    ``entries`` (tag, type, count, value bytes) exactly as given, so a tag
    can carry a type the standard does not allow."""
    entries = sorted(entries)
    data_offset = 8 + 2 + 12 * len(entries) + 4
    ifd, data = struct.pack("<H", len(entries)), b""
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            ifd += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, kind, count, data_offset + len(data))
            data += value + b"\0" * (len(value) % 2)
    return b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + data


def orientation_entry(value: int) -> tuple[int, int, int, bytes]:
    return (0x0112, SHORT, 1, struct.pack("<H", value))


def with_exif(img: Image.Image, fmt: str, exif: bytes, **opts) -> bytes:
    # PNG (eXIf) and WebP (EXIF chunk) hold the TIFF structure without the JPEG APP1 prefix
    payload = exif if fmt == "JPEG" else exif.removeprefix(b"Exif\0\0")
    return encode(img, fmt, exif=payload, **opts).getvalue()


def upright_reference(img: Image.Image, target) -> Image.Image:
    """``img`` turned as Orientation 6 shows it, then cropped and resized by Pillow."""
    return ImageOps.fit(img.transpose(Image.Transpose.ROTATE_270), target, Image.Resampling.LANCZOS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("bad", sorted(MISTYPED))
def test_mistyped_exif_tag_beside_orientation(fmt, bad):
    img = gradient((80, 40))
    opts = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    data = with_exif(img, fmt, raw_exif([orientation_entry(6), MISTYPED[bad]]), **opts)
    facts = image_facts(io.BytesIO(data))
    assert facts is not None and (facts.width, facts.height) == (40, 80)
    assert facts.phash is not None
    spec = RenditionSpec(20, 20).normalized(f"image/{fmt.lower()}")
    result = render(data, spec)
    out = Image.open(io.BytesIO(result.data))
    assert out.size == (20, 20) and out.format == fmt
    assert mean_abs_diff(out, upright_reference(img, (20, 20))) < 6.0
    # at its own size: turned, not resampled
    whole = render(data, RenditionSpec(40, 80).normalized(f"image/{fmt.lower()}"))
    assert (whole.width, whole.height) == (40, 80)
    reference = img.transpose(Image.Transpose.ROTATE_270)
    assert mean_abs_diff(Image.open(io.BytesIO(whole.data)), reference) < 3.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_turns_as_exif_transpose(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(gradient((30, 20)), "PNG", exif=exif.tobytes()).getvalue()
    ours = oriented(Image.open(io.BytesIO(data)))
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert ours.size == reference.size and ours.tobytes() == reference.tobytes()
    assert _displayed(Image.open(io.BytesIO(data)))[1] == reference.size


@pytest.mark.parametrize(
    "entry",
    [(0x0112, ASCII, 2, b"6\0"), (0x0112, RATIONAL, 1, struct.pack("<II", 6, 1)), orientation_entry(9),
     orientation_entry(0)],
    ids=["ascii", "rational", "nine", "zero"],
)
def test_mistyped_or_unknown_orientation_is_ignored(entry):
    data = with_exif(gradient((60, 30)), "JPEG", raw_exif([entry]))
    facts = image_facts(io.BytesIO(data))
    assert (facts.width, facts.height) == (60, 30) and facts.phash is not None
    assert (render(data, RenditionSpec(30, 0, format="png")).width, 15) == (30, 15)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append((data[pos + 4:pos + 8], data[pos:pos + 12 + length]))
        pos += 12 + length
    return chunks


def test_png_exif_after_the_pixels_is_not_looked_for():
    """Pillow decodes a whole PNG to find an eXIf behind the pixels; the
    displayed size is read from the header alone (as browsers do, only an
    eXIf before IDAT counts)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    chunks = png_chunks(encode(gradient((60, 30)), "PNG", exif=exif.tobytes()).getvalue())
    late = [c for name, c in chunks if name != b"eXIf"]
    late.insert(-1, next(c for name, c in chunks if name == b"eXIf"))  # just before IEND
    data = b"\x89PNG\r\n\x1a\n" + b"".join(late)
    img = Image.open(io.BytesIO(data))
    assert _displayed(img) == (1, (60, 30))
    assert img.tile, "the pixels were decoded to read the orientation"
    facts = image_facts(io.BytesIO(data))
    assert (facts.width, facts.height) == (60, 30)


# -- MPO: phone JPEGs with a second image -----------------------------------------


def mpo(primary: Image.Image, second: Image.Image, **opts) -> bytes:
    out = io.BytesIO()
    primary.save(out, "MPO", save_all=True, append_images=[second], quality=95, **opts)
    return out.getvalue()


def test_mpo_is_a_jpeg_to_the_service():
    data = mpo(gradient((120, 80)), Image.new("RGB", (60, 40), (0, 0, 255)))
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert sniff(data[:4096], None, data) == "image/jpeg"
    assert RenditionSpec(40, 40).normalized("image/jpeg").format == "jpeg"


def test_mpo_facts_are_the_first_frame():
    primary = gradient((120, 80))
    data = mpo(primary, Image.new("RGB", (60, 40), (0, 0, 255)))
    facts = image_facts(io.BytesIO(data))
    assert facts is not None and (facts.width, facts.height) == (120, 80)
    # the same pixels as a plain JPEG hash the same
    assert facts.phash is not None
    assert facts.phash == image_facts(encode(primary, "JPEG", quality=95)).phash


@pytest.mark.parametrize("spec", [RenditionSpec(40, 40), RenditionSpec(60, 0, fit="inside"), RenditionSpec(120, 80)])
def test_mpo_renders_its_first_frame_as_jpeg(spec):
    primary = gradient((120, 80))
    data = mpo(primary, Image.new("RGB", (60, 40), (0, 0, 255)))
    result = render(data, spec.normalized("image/jpeg"))
    out = Image.open(io.BytesIO(result.data))
    assert result.mimetype == "image/jpeg" and out.format == "JPEG"
    assert getattr(out, "n_frames", 1) == 1 and b"MPF\0" not in result.data
    assert mean_abs_diff(out, ImageOps.fit(primary, out.size, Image.Resampling.LANCZOS)) < 4.0
    assert render(data, RenditionSpec(40, 40, format="png")).mimetype == "image/png"


def test_mpo_orientation_applies():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = mpo(gradient((120, 80)), Image.new("RGB", (60, 40)), exif=exif.tobytes())
    facts = image_facts(io.BytesIO(data))
    assert (facts.width, facts.height) == (80, 120)
    result = render(data, RenditionSpec(40, 0).normalized("image/jpeg"))
    assert (result.width, result.height) == (40, 60)


# -- renditions carry no metadata ---------------------------------------------------


def srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def red_green_swapped_profile() -> bytes:
    """sRGB with the red and green colorants exchanged: a pure red pixel
    tagged with it is green once converted to sRGB."""
    data = bytearray(srgb_profile())
    (count,) = struct.unpack(">I", data[128:132])
    entries = {bytes(data[132 + 12 * i:136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, green = entries[b"rXYZ"], entries[b"gXYZ"]
    data[red + 4:red + 12], data[green + 4:green + 12] = data[green + 4:green + 12], data[red + 4:red + 12]
    return bytes(data)


def private_jpeg(size=(90, 60)) -> bytes:
    """A photo carrying everything a rendition must not: a COM comment, EXIF
    with GPS and a camera, XMP, DPI and an ICC profile."""
    exif = Image.Exif()
    exif[0x010F] = "pastefile-camera-maker"
    exif[0x8825] = GPS
    return encode(
        gradient(size), "JPEG", quality=95, exif=exif.tobytes(), comment=SECRET_COMMENT, xmp=SECRET_XMP,
        dpi=(300, 300), icc_profile=srgb_profile(),
    ).getvalue()


def assert_no_metadata(data: bytes, fmt: str) -> None:
    for secret in (b"Exif", SECRET_COMMENT, b"pastefile-secret-xmp", b"pastefile-camera-maker", b"xmpmeta"):
        assert secret not in data, secret
    out = Image.open(io.BytesIO(data))
    assert out.format == fmt
    for key in ("comment", "exif", "xmp", "icc_profile", "dpi", "XML:com.adobe.xmp"):
        assert key not in out.info, key
    assert not out.getexif()
    if fmt == "JPEG":
        assert b"\xff\xfe" not in data  # COM marker (0xFF in the scan is stuffed as FF00)
        assert b"\xff\xe1" not in data and b"\xff\xe2" not in data  # APP1 (EXIF/XMP), APP2 (ICC, MPF)
    elif fmt == "PNG":
        names = {name for name, _ in png_chunks(data)}
        assert not names & {b"eXIf", b"iCCP", b"tEXt", b"zTXt", b"iTXt", b"pHYs"}, names
    elif fmt == "WEBP":
        assert not {b"EXIF", b"XMP ", b"ICCP"} & {data[i:i + 4] for i in range(12, len(data) - 3)}


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("size", [(90, 60), (45, 30), (30, 30)], ids=["own-size", "half", "crop"])
def test_renditions_carry_no_metadata(fmt, size):
    source = private_jpeg()
    assert SECRET_COMMENT in source and b"Exif" in source  # the source really carries them
    result = render(source, RenditionSpec(*size, format=fmt).normalized("image/jpeg"))
    assert (result.width, result.height) == size
    assert_no_metadata(result.data, fmt.upper())


def test_png_rendition_drops_png_metadata():
    exif = Image.Exif()
    exif[0x8825] = GPS
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", SECRET_COMMENT.decode())
    text.add_itxt("XML:com.adobe.xmp", SECRET_XMP.decode())
    source = encode(
        gradient((64, 48), "RGBA"), "PNG", exif=exif.tobytes(), pnginfo=text, icc_profile=srgb_profile(), dpi=(300, 300)
    ).getvalue()
    for size in ((64, 48), (32, 24)):
        result = render(source, RenditionSpec(*size).normalized("image/png"))
        assert_no_metadata(result.data, "PNG")
        assert Image.open(io.BytesIO(result.data)).mode == "RGBA"


def test_tiff_rendition_at_own_size_drops_the_source_tags():
    source = encode(
        gradient((40, 30)), "TIFF", tiffinfo={270: "pastefile-secret-description", 315: "pastefile-secret-artist"}
    ).getvalue()
    result = render(source, RenditionSpec(40, 30).normalized("image/tiff"))
    assert b"pastefile-secret" not in result.data
    assert not {270, 315} & set(Image.open(io.BytesIO(result.data)).tag_v2)


def test_wide_gamut_source_is_converted_to_srgb():
    """The profile is dropped with the rest, so the pixels are converted:
    red under a red/green-swapped profile is shown green."""
    source = encode(Image.new("RGB", (40, 40), (255, 0, 0)), "PNG", icc_profile=red_green_swapped_profile()).getvalue()
    for fmt in ("png", "jpeg", "webp"):
        result = render(source, RenditionSpec(20, 20, format=fmt).normalized("image/png"))
        out = Image.open(io.BytesIO(result.data)).convert("RGB")
        red, green, blue = out.getpixel((10, 10))
        assert green > 200 and red < 60 and blue < 60, (fmt, out.getpixel((10, 10)))
        assert "icc_profile" not in Image.open(io.BytesIO(result.data)).info
    # an sRGB profile (most tagged photos) is dropped without a conversion
    tagged = encode(Image.new("RGB", (40, 40), (255, 0, 0)), "PNG", icc_profile=srgb_profile()).getvalue()
    out = Image.open(io.BytesIO(render(tagged, RenditionSpec(20, 20).normalized("image/png")).data))
    assert out.getpixel((10, 10)) == (255, 0, 0) and "icc_profile" not in out.info


def test_broken_icc_profile_keeps_the_decoded_colours():
    source = encode(Image.new("RGB", (40, 40), (255, 0, 0)), "PNG", icc_profile=b"not a profile" * 20).getvalue()
    result = render(source, RenditionSpec(20, 20).normalized("image/png"))
    out = Image.open(io.BytesIO(result.data))
    assert out.getpixel((10, 10)) == (255, 0, 0) and "icc_profile" not in out.info


def test_colour_key_transparency_becomes_alpha():
    img = gradient((40, 40))
    img.paste((0, 0, 0), (0, 0, 20, 40))
    source = encode(img, "PNG", transparency=(0, 0, 0)).getvalue()
    out = Image.open(io.BytesIO(render(source, RenditionSpec(20, 20).normalized("image/png")).data))
    assert out.mode == "RGBA" and "transparency" not in out.info
    assert out.getpixel((2, 10))[3] == 0 and out.getpixel((17, 10))[3] == 255


# -- the boundaries: whatever the bytes provoke ------------------------------------


@pytest.mark.parametrize(
    "error", [struct.error("unpack requires a buffer"), TypeError("bad operand"), IndexError("x"), KeyError(7)]
)
def test_any_failure_is_an_image_error_or_no_phash(monkeypatch, error):
    def broken(self, method):
        raise error

    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(gradient((60, 40)), "PNG", exif=exif.tobytes()).getvalue()
    monkeypatch.setattr(Image.Image, "transpose", broken)
    with pytest.raises(UndecodableImage):
        render(data, RenditionSpec(20, 20).normalized("image/png"))
    facts = image_facts(io.BytesIO(data))
    assert (facts.width, facts.height, facts.phash) == (40, 60, None)


def test_memory_error_is_not_swallowed(monkeypatch):
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(gradient((60, 40)), "PNG", exif=exif.tobytes()).getvalue()

    def exhausted(self, method):
        raise MemoryError

    monkeypatch.setattr(Image.Image, "transpose", exhausted)
    with pytest.raises(MemoryError):
        render(data, RenditionSpec(20, 20).normalized("image/png"))
    with pytest.raises(MemoryError):
        image_facts(io.BytesIO(data))


def test_unknown_resampler_is_the_callers_error():
    with pytest.raises(ValueError) as info:
        render(encode(gradient((20, 20)), "PNG"), RenditionSpec(10, 10), resampler="nearest")
    assert not isinstance(info.value, ImageError)


def test_facts_of_undecodable_bytes():
    assert image_facts(io.BytesIO(b"not an image")) is None
    truncated = encode(gradient((200, 100)), "PNG").getvalue()[:300]
    facts = image_facts(io.BytesIO(truncated))
    assert facts is None or (facts.width, facts.height, facts.phash) == (200, 100, None)
    # the header promises an image the pixels do not deliver: not a type question
    with pytest.raises(UndecodableImage):
        render(truncated, RenditionSpec(20, 20).normalized("image/png"))
    with pytest.raises(UndecodableImage):
        render(b"GIF89a" + b"\0" * 20, RenditionSpec(20, 20).normalized("image/gif"))
