"""Tests for pastefile.core.metadata: lossless metadata removal.

exiftool is the reference reader: what it still finds after ``strip`` is what
any reader finds.  It is a required tool (Debian: libimage-exiftool-perl):
the tests fail, never skip, without it.  Pixels are compared decoded
(``Image.tobytes()``), and the image data segments byte for byte.
"""
from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, PngImagePlugin

from pastefile.core import metadata
from pastefile.core.metadata import strip
from pastefile.ext.metastrip import fourcc, jpeg_segments, png_chunks, riff_chunks

XMP_GPS = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/"'
    b' xmlns:aux="http://ns.adobe.com/exif/1.0/aux/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    b' exif:GPSLatitude="52,31.2N" exif:GPSLongitude="13,24.0E" aux:SerialNumber="AUX777"'
    b' xmp:CreatorTool="Darkroom 2"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
XMP_PLAIN = XMP_GPS.replace(b' exif:GPSLatitude="52,31.2N" exif:GPSLongitude="13,24.0E" aux:SerialNumber="AUX777"', b"")
SECRETS = (b"SN-BODY-4711", b"SN-LENS-0815", b"Owner Alice", b"Artist Bob")
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
# exiftool groups that describe the container, not metadata someone wrote
STRUCTURE = ("SourceFile", "ExifTool:", "System:", "File:", "Composite:", "JFIF:", "ICC", "MPF0:", "MPImage",
             "PNG-pHYs:")
PNG_STRUCTURE = {"ImageWidth", "ImageHeight", "BitDepth", "ColorType", "Compression", "Filter", "Interlace",
                 "ProfileName"}
RIFF_STRUCTURE = {"WebP_Flags", "ImageWidth", "ImageHeight", "AlphaPreprocessing", "AlphaFiltering",
                  "AlphaCompression", "VP8Version", "HorizontalScale", "VerticalScale"}


# ---------------------------------------------------------------------------
# Sample files
# ---------------------------------------------------------------------------


def camera_exif(serial: bytes = SECRETS[0], orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS R6"  # Model
    exif[0x0112] = orientation
    exif[0x013B] = SECRETS[3].decode()  # Artist
    exif[0x0131] = "Firmware 1.8"  # Software
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2024:05:01 12:00:00"
    sub[0xA430] = SECRETS[2].decode()  # CameraOwnerName
    sub[0xA431] = serial.decode()  # BodySerialNumber
    sub[0xA435] = SECRETS[1].decode()  # LensSerialNumber
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.5)
    gps[3], gps[4] = "E", (13.0, 24.0, 1.25)
    gps[5], gps[6] = 0, 34.0
    return exif


def picture(mode: str = "RGB", size: tuple[int, int] = (96, 64)) -> Image.Image:
    image = Image.linear_gradient("L").resize(size)
    if mode == "L":
        return image
    bands = [image, image.rotate(90).resize(size), Image.new("L", size, 90)]
    if mode == "RGBA":
        bands.append(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    return Image.merge(mode, bands)


def save(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def jpeg_sample(**params) -> bytes:
    return save(picture(), "JPEG", exif=camera_exif(), xmp=XMP_GPS, icc_profile=ICC, comment=b"holiday",
                quality=90, **params)


def png_sample() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP_GPS.decode("utf-8"), zip=True)
    info.add_text("Comment", "holiday")
    info.add(b"tIME", b"\x07\xe8\x05\x01\x0c\x00\x00")
    return save(picture("RGBA"), "PNG", exif=camera_exif(), pnginfo=info, icc_profile=ICC, dpi=(300, 300))


def webp_sample(lossless: bool) -> bytes:
    return save(picture("RGBA"), "WEBP", exif=camera_exif(), xmp=XMP_GPS, icc_profile=ICC, lossless=lossless,
                quality=80)


def mpo_sample() -> bytes:
    second = picture(size=(48, 32)).rotate(180)
    second.encoderinfo = {"exif": camera_exif(b"SN-SECOND-42", orientation=1)}
    return save(picture(), "MPO", save_all=True, append_images=[second], exif=camera_exif(), comment=b"pair")


SAMPLES = {
    "jpeg": jpeg_sample,
    "png": png_sample,
    "webp-lossless": lambda: webp_sample(True),
    "webp-lossy": lambda: webp_sample(False),
}


# ---------------------------------------------------------------------------
# exiftool as the reference reader
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def exiftool() -> str:
    path = shutil.which("exiftool")
    assert path, "exiftool is required (Debian package libimage-exiftool-perl): make deps installs it"
    return path


def read_tags(exiftool: str, data: bytes, tmp_path, name: str = "file", extra: tuple[str, ...] = ()) -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    done = subprocess.run([exiftool, "-j", "-G1", "-a", *extra, str(path)],
                          capture_output=True, check=True, timeout=60)
    return json.loads(done.stdout)[0]


def validation_warnings(exiftool: str, data: bytes, tmp_path) -> set[str]:
    """exiftool's structural complaints (tags a writer left out are not ours to add)."""
    path = tmp_path / "validate"
    path.write_bytes(data)
    done = subprocess.run([exiftool, "-validate", "-warning", "-error", "-a", "-s", str(path)],
                          capture_output=True, check=True, timeout=60, text=True)
    return {line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
            if line.startswith(("Warning", "Error")) and "Missing required" not in line}


def written_metadata(tags: dict) -> dict:
    """The tags that are not the container's own structure."""
    found = {}
    for key, value in tags.items():
        if key.startswith(STRUCTURE):
            continue
        group, _, name = key.partition(":")
        if (group == "PNG" and name in PNG_STRUCTURE) or (group == "RIFF" and name in RIFF_STRUCTURE):
            continue
        found[key] = value
    return found


def pixels(data: bytes) -> list[tuple[str, tuple[int, int], bytes]]:
    image = Image.open(io.BytesIO(data))
    frames = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        frames.append((image.mode, image.size, image.tobytes()))
    return frames


def location_left(tags: dict) -> list[str]:
    words = ("GPS", "Serial", "Owner", "Artist")
    return [key for key in tags if any(word in key for word in words)]


# ---------------------------------------------------------------------------
# The levels, read back by exiftool
# ---------------------------------------------------------------------------


def test_exiftool_sees_the_samples_metadata(exiftool, tmp_path):
    for name, make in SAMPLES.items():
        tags = read_tags(exiftool, make(), tmp_path)
        assert "GPS:GPSLatitude" in tags and "ExifIFD:SerialNumber" in tags, name
        assert "XMP-exif:GPSLatitude" in tags and "XMP-aux:SerialNumber" in tags, name


@pytest.mark.parametrize("name", list(SAMPLES))
def test_location_removes_position_and_identity(exiftool, tmp_path, name):
    data = SAMPLES[name]()
    before = read_tags(exiftool, data, tmp_path)
    out = strip(data, "location")
    assert out is not None
    tags = read_tags(exiftool, out, tmp_path)
    assert location_left(tags) == []
    assert not any(key.startswith("XMP") for key in tags)  # the packet named GPS: dropped whole
    assert tags["IFD0:Make"] == "Canon" and tags["IFD0:Model"] == "EOS R6"
    assert tags["IFD0:Orientation"] == "Rotate 90 CW"
    assert tags["IFD0:Software"] == "Firmware 1.8"
    assert tags["ExifIFD:DateTimeOriginal"] == "2024:05:01 12:00:00"
    assert tags.get("ICC_Profile:ProfileDescription") == before["ICC_Profile:ProfileDescription"]
    if name == "jpeg":
        assert tags["File:Comment"] == "holiday"
    if name == "png":
        assert tags["PNG:Comment"] == "holiday"
    for secret in SECRETS:
        assert secret not in out  # zeroed, not only unlinked
    latitude = [struct.pack(order + "6I", 52, 1, 31, 1, 25, 2) for order in "<>"]
    assert any(value in data for value in latitude) and not any(value in out for value in latitude)
    assert pixels(out) == pixels(data)
    assert validation_warnings(exiftool, out, tmp_path) <= validation_warnings(exiftool, data, tmp_path)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_all_keeps_orientation_and_colour_only(exiftool, tmp_path, name):
    data = SAMPLES[name]()
    before = read_tags(exiftool, data, tmp_path)
    out = strip(data, "all")
    assert out is not None
    tags = read_tags(exiftool, out, tmp_path)
    assert written_metadata(tags) == {"IFD0:Orientation": "Rotate 90 CW"}
    assert tags.get("ICC_Profile:ProfileDescription") == before["ICC_Profile:ProfileDescription"]
    for secret in (*SECRETS, b"holiday", b"Darkroom"):
        assert secret not in out
    assert pixels(out) == pixels(data)
    assert validation_warnings(exiftool, out, tmp_path) <= validation_warnings(exiftool, data, tmp_path)
    assert strip(out, "all") is None and strip(out, "location") is None  # idempotent


EXIFTOOL_WRITES = [
    "-GPSLatitude=52.5", "-GPSLatitudeRef=N", "-GPSLongitude=13.4", "-GPSLongitudeRef=E", "-GPSAltitude=40",
    "-Make=Nikon", "-Model=Z6", "-SerialNumber=XYZ123", "-LensSerialNumber=LENS55", "-OwnerName=Carol",
    "-Artist=Bob", "-Orientation#=8", "-Copyright=Me", "-IPTC:City=Berlin", "-XMP-photoshop:City=Berlin",
    "-XMP-exif:GPSLatitude=52.5",
]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_files_written_by_exiftool(exiftool, tmp_path, fmt):
    """Another writer's layout: GPS IFD after the Exif IFD, a thumbnail in IFD1, IPTC."""
    (tmp_path / "thumb.jpg").write_bytes(save(picture(size=(32, 24)), "JPEG"))
    path = tmp_path / ("photo." + fmt.lower())
    path.write_bytes(save(picture(), fmt))
    subprocess.run([exiftool, "-q", "-q", "-overwrite_original", *EXIFTOOL_WRITES,
                    f"-ThumbnailImage<={tmp_path / 'thumb.jpg'}", str(path)], check=True, timeout=60)
    data = path.read_bytes()
    before = read_tags(exiftool, data, tmp_path)
    assert "GPS:GPSLatitude" in before and "XMP-photoshop:City" in before

    out = strip(data, "location")
    tags = read_tags(exiftool, out, tmp_path)
    assert location_left(tags) == [] and not [key for key in tags if "City" in key]
    for key in ("IFD0:Make", "IFD0:Model", "IFD0:Orientation", "IFD0:Copyright", "IFD1:ThumbnailImage"):
        assert tags[key] == before[key], key
    assert b"XYZ123" not in out and b"LENS55" not in out and b"Carol" not in out
    assert pixels(out) == pixels(data)
    assert validation_warnings(exiftool, out, tmp_path) <= validation_warnings(exiftool, data, tmp_path)

    out = strip(data, "all")
    assert written_metadata(read_tags(exiftool, out, tmp_path)) == {"IFD0:Orientation": "Rotate 270 CW"}
    assert pixels(out) == pixels(data)


def rendering_variants() -> dict[str, bytes]:
    exif = camera_exif()
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "holiday")
    frames = [picture("RGBA").rotate(angle) for angle in (0, 90, 180)]
    return {
        "jpeg-progressive": save(picture(), "JPEG", exif=exif, progressive=True, comment=b"x"),
        "jpeg-cmyk-adobe": save(picture().convert("CMYK"), "JPEG", exif=exif, comment=b"x"),
        "jpeg-grey-restart": save(picture("L"), "JPEG", exif=exif, restart_marker_blocks=2),
        "png-palette-trns": save(picture().convert("P"), "PNG", transparency=3, pnginfo=info, exif=exif),
        "png-16bit": save(picture("L").convert("I;16"), "PNG", pnginfo=info, exif=exif),
        "apng": save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50, exif=exif,
                     pnginfo=info),
        "webp-animated": save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50,
                              exif=exif, xmp=XMP_GPS, lossless=True),
    }


@pytest.mark.parametrize("name", list(rendering_variants()))
@pytest.mark.parametrize("level", ["location", "all"])
def test_rendering_survives(name, level):
    data = rendering_variants()[name]
    out = strip(data, level)
    assert out is not None and b"SN-BODY-4711" not in out
    assert pixels(out) == pixels(data)
    before, after = Image.open(io.BytesIO(data)), Image.open(io.BytesIO(out))
    assert (after.format, after.info.get("transparency"), after.info.get("duration")) == (
        before.format, before.info.get("transparency"), before.info.get("duration"))
    if name == "jpeg-cmyk-adobe":
        assert b"Adobe" in out and after.info.get("adobe_transform") == before.info.get("adobe_transform")


def test_location_keeps_an_xmp_packet_without_location(exiftool, tmp_path):
    data = save(picture(), "JPEG", exif=camera_exif(), xmp=XMP_PLAIN)
    tags = read_tags(exiftool, strip(data, "location"), tmp_path)
    assert tags["XMP-xmp:CreatorTool"] == "Darkroom 2"
    assert location_left(tags) == []


def test_none_level_and_unknown_level():
    data = jpeg_sample()
    assert strip(data, "none") is None
    with pytest.raises(ValueError):
        strip(data, "everything")


def test_nothing_to_remove_returns_none():
    plain = {
        "jpeg": save(picture(), "JPEG"),
        "png": save(picture("RGBA"), "PNG"),
        "png-palette": save(picture().convert("P"), "PNG", transparency=3),
        "webp": save(picture("RGBA"), "WEBP", lossless=True),
        "webp-lossy": save(picture(), "WEBP"),
        "webp-icc": save(picture("RGBA"), "WEBP", icc_profile=ICC),
        "jpeg-icc": save(picture(), "JPEG", icc_profile=ICC),
    }
    for name, data in plain.items():
        for level in ("location", "all"):
            assert strip(data, level) is None, (name, level)
    # EXIF without a position or identity: nothing for "location"
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Canon", 3
    for fmt in ("JPEG", "PNG", "WEBP"):
        assert strip(save(picture(), fmt, exif=exif), "location") is None, fmt


def test_not_an_image_returns_none():
    for data in (b"", b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBP", b"RIFF\x04\0\0\0AVI ",
                 b"GIF89a" + bytes(20), save(picture(), "GIF"), save(picture(), "BMP"), b"plain text"):
        for level in ("location", "all"):
            assert strip(data, level) is None


def test_buffer_types():
    data = jpeg_sample()
    out = strip(data, "location")
    assert strip(bytearray(data), "location") == out
    assert strip(memoryview(data), "location") == out
    assert strip(memoryview(b"".join(bytes((b, 0)) for b in data))[::2], "location") == out
    assert isinstance(out, bytes)


# ---------------------------------------------------------------------------
# Containers stay valid
# ---------------------------------------------------------------------------


def test_image_data_is_copied_byte_for_byte():
    for make in SAMPLES.values():
        data = make()
        for level in ("location", "all"):
            out = strip(data, level)
            if data[:2] == b"\xff\xd8":
                # from the first scan on, identical
                scan = jpeg_segments(data).segments[-1][1]
                new_scan = jpeg_segments(out).segments[-1][1]
                assert out[new_scan:] == data[scan:]
            elif data[:4] == b"\x89PNG":
                old = [data[o : o + n] for k, o, n in png_chunks(data).segments if k == fourcc(b"IDAT")]
                new = [out[o : o + n] for k, o, n in png_chunks(out).segments if k == fourcc(b"IDAT")]
                assert old == new
            else:
                image = {fourcc(b"VP8 "), fourcc(b"VP8L"), fourcc(b"ALPH")}
                old = [data[o : o + n] for k, o, n in riff_chunks(data).segments if k in image]
                new = [out[o : o + n] for k, o, n in riff_chunks(out).segments if k in image]
                assert old == new and old


def test_png_crcs_and_chunk_order():
    data = png_sample()
    for level in ("location", "all"):
        out = strip(data, level)
        walk = png_chunks(out)
        assert walk.status == 0 and walk.end == len(out)
        kinds = []
        for kind, offset, length in walk.segments:
            body = out[offset + 4 : offset + length - 4]
            assert zlib.crc32(body) == struct.unpack(">I", out[offset + length - 4 : offset + length])[0]
            kinds.append(kind.to_bytes(4, "big"))
        assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"iCCP" in kinds and b"pHYs" in kinds
        assert b"eXIf" in kinds
        assert (b"tEXt" in kinds) == (level == "location")
        assert b"tIME" in kinds if level == "location" else b"tIME" not in kinds
        assert b"iTXt" not in kinds and b"zTXt" not in kinds


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_riff_size_and_flags(lossless):
    data = webp_sample(lossless)
    assert data[20] & 0x0C == 0x0C  # EXIF and XMP flags set
    for level in ("location", "all"):
        out = strip(data, level)
        assert struct.unpack("<I", out[4:8])[0] == len(out) - 8
        walk = riff_chunks(out)
        assert walk.status == 0 and walk.end == len(out)
        kinds = [kind.to_bytes(4, "big") for kind, _, _ in walk.segments]
        assert b"XMP " not in kinds and b"EXIF" in kinds and b"ICCP" in kinds
        flags = out[20]
        assert flags & 0x04 == 0 and flags & 0x08 and flags & 0x20  # XMP off, EXIF and ICC on
        assert flags & ~0x0C == data[20] & ~0x0C


def test_all_without_orientation_drops_exif_and_flag():
    exif = camera_exif()
    del exif[0x0112]
    data = save(picture("RGBA"), "WEBP", exif=exif, lossless=True)
    out = strip(data, "all")
    assert fourcc(b"EXIF") not in [k for k, _, _ in riff_chunks(out).segments]
    assert out[20] & 0x08 == 0
    jpeg = strip(save(picture(), "JPEG", exif=exif), "all")
    assert b"Exif\0\0" not in jpeg


# ---------------------------------------------------------------------------
# MPO
# ---------------------------------------------------------------------------


def extract_second(exiftool: str, data: bytes, tmp_path) -> bytes:
    path = tmp_path / "pair.mpo"
    path.write_bytes(data)
    return subprocess.run([exiftool, "-b", "-MPImage2", str(path)], capture_output=True, check=True).stdout


@pytest.mark.parametrize("level", ["location", "all"])
def test_mpo_both_images_stripped_and_still_open(exiftool, tmp_path, level):
    data = mpo_sample()
    second = read_tags(exiftool, extract_second(exiftool, data, tmp_path), tmp_path)
    assert "GPS:GPSLatitude" in second and second["ExifIFD:SerialNumber"] == "SN-SECOND-42"
    out = strip(data, level)
    image = Image.open(io.BytesIO(out))
    assert image.format == "MPO" and image.n_frames == 2
    assert pixels(out) == pixels(data)
    tags = read_tags(exiftool, out, tmp_path)
    assert location_left(tags) == []
    assert b"SN-SECOND-42" not in out and b"SN-BODY-4711" not in out
    extracted = extract_second(exiftool, out, tmp_path)
    assert extracted[:2] == b"\xff\xd8"
    second = read_tags(exiftool, extracted, tmp_path)
    assert location_left(second) == []
    assert pixels(extracted) == pixels(extract_second(exiftool, data, tmp_path))
    if level == "all":
        assert len(out) < len(data) and b"pair" not in out  # the comment after the MPF segment went


def hand_made_mpo(after_mpf: bytes) -> bytes:
    """Two JPEGs, the first with EXIF, an MPF segment, then ``after_mpf`` (MP offsets right)."""
    first = save(picture(), "JPEG", exif=camera_exif())
    second = save(picture(size=(40, 30)), "JPEG", exif=camera_exif(b"SN-SECOND-42"))
    cut = sum(length for _, _, length in jpeg_segments(first).segments[:3])  # SOI, APP0, APP1
    mpf_size = 8 + 8 + 2 + 3 * 12 + 4 + 32
    first_size = len(first) + mpf_size + len(after_mpf)
    header = cut + 8  # where the MP header will start

    def entries(size1: int, size2: int, offset2: int) -> bytes:
        return struct.pack(">IIIHH", 0x030000, size1, 0, 0, 0) + struct.pack(">IIIHH", 0, size2, offset2, 0, 0)

    ifd = struct.pack(">H", 3) + struct.pack(">HHI4s", 0xB000, 7, 4, b"0100")
    ifd += struct.pack(">HHII", 0xB001, 4, 1, 2)  # NumberOfImages
    ifd += struct.pack(">HHII", 0xB002, 7, 32, 8 + 2 + 36 + 4) + struct.pack(">I", 0)
    body = b"MPF\0MM\0*" + struct.pack(">I", 8) + ifd + entries(first_size, len(second), first_size - header)
    mpf = b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body
    assert len(mpf) == mpf_size
    return first[:cut] + mpf + after_mpf + first[cut:] + second


def test_mpo_offsets_follow_bytes_removed_after_the_mpf_segment(exiftool, tmp_path):
    xmp = b"\xff\xe1" + struct.pack(">H", 2 + 29 + len(XMP_GPS)) + b"http://ns.adobe.com/xap/1.0/\0" + XMP_GPS
    data = hand_made_mpo(after_mpf=xmp + b"\xff\xfe\x00\x06note")
    assert Image.open(io.BytesIO(data)).n_frames == 2
    for level in ("location", "all"):
        out = strip(data, level)
        assert len(out) < len(data) - len(xmp) + 1
        assert pixels(out) == pixels(data)
        tags = read_tags(exiftool, out, tmp_path)
        assert location_left(tags) == []
        start = tags["MPImage2:MPImageStart"]
        assert tags["MPImage1:MPImageLength"] == start  # the first image ends where the second starts
        assert out[start : start + 2] == b"\xff\xd8"
        assert tags["MPImage2:MPImageLength"] == len(out) - start
        second = read_tags(exiftool, extract_second(exiftool, out, tmp_path), tmp_path)
        assert location_left(second) == [] and b"SN-SECOND-42" not in out


@pytest.mark.filterwarnings("ignore:Image appears to be a malformed MPO file")
def test_mpo_with_bad_offsets_is_stripped_as_one_jpeg():
    data = bytearray(hand_made_mpo(b""))
    at = data.index(b"MPF\0") + 4
    struct.pack_into(">I", data, at + 8 + 2 + 36 + 4 + 16 + 8, 0xFFFFFF00)  # second image far away
    out = strip(bytes(data), "location")
    assert out is not None and b"SN-BODY-4711" not in out
    assert Image.open(io.BytesIO(out)).tobytes() == Image.open(io.BytesIO(bytes(data))).tobytes()
    # an entry for an image not stored in the file (size and offset 0) is left alone
    struct.pack_into(">II", data, at + 8 + 2 + 36 + 4 + 16 + 4, 0, 0)
    out = strip(bytes(data), "all")
    assert out is not None and b"SN-BODY-4711" not in out
    entries = out.index(b"MPF\0") + 4 + 8 + 2 + 36 + 4
    assert struct.unpack_from(">II", out, entries + 16 + 4) == (0, 0)
    old_size = struct.unpack_from(">I", data, at + 8 + 2 + 36 + 4 + 4)[0]
    assert struct.unpack_from(">I", out, entries + 4)[0] == old_size - (len(data) - len(out))


# ---------------------------------------------------------------------------
# Other carriers of location
# ---------------------------------------------------------------------------


def app13(resources: bytes) -> bytes:
    body = b"Photoshop 3.0\0" + resources
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def irb(resource: int, data: bytes) -> bytes:
    return b"8BIM" + struct.pack(">H", resource) + b"\0\0" + struct.pack(">I", len(data)) + data + b"\0" * (
        len(data) & 1)


def iptc(dataset: int, value: bytes) -> bytes:
    return bytes((0x1C, 2, dataset)) + struct.pack(">H", len(value)) + value


def test_photoshop_iptc_with_a_place_goes_at_location(exiftool, tmp_path):
    base = save(picture(), "JPEG")
    cut = 20
    harmless = app13(irb(0x0404, iptc(5, b"Title") + iptc(116, b"(c) me") + b"\0\0"))
    placed = app13(irb(0x0404, iptc(5, b"Title") + iptc(90, b"Berlin")))
    embedded_xmp = app13(irb(0x0424, XMP_PLAIN))
    assert strip(base[:cut] + harmless + base[cut:], "location") is None
    assert strip(base[:cut] + harmless + base[cut:], "all") == base
    for segment in (placed, embedded_xmp, app13(b"8BIM\x04\x04")):
        out = strip(base[:cut] + segment + base[cut:], "location")
        assert out == base
    tags = read_tags(exiftool, base[:cut] + placed + base[cut:], tmp_path)
    assert tags["IPTC:City"] == "Berlin"


def test_extended_xmp_goes_with_its_packet():
    base = save(picture(), "JPEG")
    main = b"http://ns.adobe.com/xap/1.0/\0" + XMP_GPS
    extension = b"http://ns.adobe.com/xmp/extension/\0" + b"0" * 32 + struct.pack(">II", 5, 0) + b"<x/> "
    segments = b"".join(b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p for p in (main, extension))
    assert strip(base[:20] + segments + base[20:], "location") == base
    plain = b"\xff\xe1" + struct.pack(">H", len(extension) + 2) + extension
    assert strip(base[:20] + plain + base[20:], "location") is None


def test_65535_app_segments():
    base = save(picture(), "JPEG")
    data = base[:20] + b"\xff\xe5\x00\x04ab" * 65535 + base[20:]
    assert strip(data, "location") is None
    assert strip(data, "all") == base


def test_png_raw_profile_text_goes_at_location():
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", "\nexif\n      10\n45786966000049492a00")
    info.add_text("Title", "kept")
    data = save(picture(), "PNG", pnginfo=info)
    out = strip(data, "location")
    assert b"Raw profile" not in out and b"kept" in out


def test_compressed_xmp_is_read_within_bounds():
    base = save(picture(), "PNG")
    cut = 33  # after IHDR

    def itxt(text: bytes, cut: int = 0) -> bytes:
        data = b"XML:com.adobe.xmp\0\x01\x00\0\0" + zlib.compress(text, 9)[: -cut or None]
        return struct.pack(">I", len(data)) + b"iTXt" + data + struct.pack(">I", zlib.crc32(b"iTXt" + data))

    plain = base[:cut] + itxt(XMP_PLAIN) + base[cut:]
    assert strip(plain, "location") is None
    assert strip(base[:cut] + itxt(XMP_GPS) + base[cut:], "location") == base
    # inflating to 64 MiB: not read through, dropped as unknown
    bomb = base[:cut] + itxt(b" " * (64 << 20)) + base[cut:]
    assert strip(bomb, "location") == base
    # a stream cut short is not read as far as it goes: dropped as unknown
    assert strip(base[:cut] + itxt(XMP_PLAIN, cut=8) + base[cut:], "location") == base


def test_unreadable_exif_is_dropped_at_location_and_kept_nowhere():
    base = save(picture(), "JPEG")
    broken = b"Exif\0\0II*\0" + struct.pack("<I", 4000) + b"GPS somewhere"
    data = base[:20] + b"\xff\xe1" + struct.pack(">H", len(broken) + 2) + broken + base[20:]
    assert strip(data, "location") == base
    assert strip(data, "all") == base


# ---------------------------------------------------------------------------
# Malformed input never raises
# ---------------------------------------------------------------------------


def fuzz_corpus() -> list[bytes]:
    return [jpeg_sample(), png_sample(), webp_sample(False), mpo_sample(), hand_made_mpo(b"\xff\xfe\0\4ab")]


CORPUS = fuzz_corpus()


def test_every_truncation(tmp_path):
    for data in CORPUS:
        header_end = 4000
        for cut in range(0, min(len(data), header_end), 7):
            for level in ("location", "all"):
                out = metadata._strip(memoryview(data[:cut]), level)
                assert out is None or isinstance(out, bytes)


def test_truncated_scan_still_loses_its_location():
    data = jpeg_sample()[:-200]
    out = strip(data, "location")
    assert out is not None and all(secret not in out for secret in SECRETS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(range(len(CORPUS))),
    edits=st.lists(
        st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete"]), st.integers(0, 2**31),
                  st.binary(min_size=1, max_size=8)),
        min_size=1, max_size=6),
    level=st.sampled_from(["location", "all"]),
)
def test_mutated_files_never_raise(sample, edits, level):
    data = bytearray(CORPUS[sample])
    for action, where, blob in edits:
        # most edits land in the header, where the walks and parsers are
        at = where % max(1, min(len(data), 1500 if where & 1 else len(data)))
        if action == "flip" and data:
            data[at] ^= 1 << (blob[0] % 8)
        elif action == "set" and data:
            data[at] = blob[0]
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = blob
        elif action == "delete":
            del data[at : at + len(blob)]
    out = metadata._strip(memoryview(bytes(data)), level)  # no safety net: any exception fails
    assert out is None or isinstance(out, bytes)
