"""Tests for pastefile.ext.metastrip (JPEG, PNG and RIFF container walks).

The reference is ``pastefile.ext.reference``'s plain-Python walks: the kernel
must return exactly the same ``(segments, end, status)`` on every input.
"""
from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pastefile.ext import _metastrip, metastrip, reference
from pastefile.ext.metastrip import (
    WALK_DONE,
    WALK_MALFORMED,
    WALK_NOT_CONTAINER,
    WALK_TRUNCATED,
    fourcc,
    jpeg_segments,
    png_chunks,
    riff_chunks,
)

WALKS = [
    (jpeg_segments, reference.jpeg_segments),
    (png_chunks, reference.png_chunks),
    (riff_chunks, reference.riff_chunks),
]
BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def agree(data: bytes) -> None:
    for kernel, reference in WALKS:
        assert tuple(kernel(data)) == reference(data), kernel.__name__


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def riff(chunks: bytes, size: int | None = None) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunks) if size is None else size) + b"WEBP" + chunks


def riff_chunk(kind: bytes, data: bytes, pad: bool = True) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\0" if pad and len(data) % 2 else b"")


PNG_SIG = b"\x89PNG\r\n\x1a\n"
HEADER = b"\xff\xd8" + segment(0xE0, b"JFIF\0" + bytes(9)) + segment(0xDB, bytes(65))
SCAN = segment(0xDA, bytes(10)) + b"\x12\x34\xff\x00\x56\xff\xd0\x78\xff\xd9"


def pillow_image(fmt: str, **params) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 80, 20)).save(out, fmt, **params)
    return out.getvalue()


# ---------------------------------------------------------------------------
# JPEG
# ---------------------------------------------------------------------------


def test_jpeg_walk_stops_at_sos():
    walk = jpeg_segments(HEADER + SCAN)
    assert [s[0] for s in walk.segments] == [0xD8, 0xE0, 0xDB, 0xDA]
    assert walk.status == WALK_DONE
    assert walk.end == len(HEADER) + 14  # the scan header only; entropy data not walked
    for kind, offset, length in walk.segments:
        assert (HEADER + SCAN)[offset] == 0xFF and (HEADER + SCAN)[offset + 1] == kind
    agree(HEADER + SCAN)


def test_jpeg_segments_tile_a_real_file():
    data = pillow_image("JPEG", exif=Image.Exif(), comment=b"hello")
    walk = jpeg_segments(data)
    assert walk.status == WALK_DONE and walk.segments[-1][0] == 0xDA
    pos = 0
    for _, offset, length in walk.segments:
        assert offset == pos
        pos += length
    assert pos == walk.end
    agree(data)


def test_jpeg_fill_bytes_and_standalone_markers():
    data = b"\xff\xd8\xff\xff\xff" + segment(0xE1, b"x") + b"\xff\x01\xff\xd3\xff\xff" + SCAN
    walk = jpeg_segments(data)
    assert [s[0] for s in walk.segments] == [0xD8, 0xE1, 0x01, 0xD3, 0xDA]
    assert walk.segments[1][1] == 5  # the 0xFF right before the marker code
    assert walk.segments[2] == (0x01, 10, 2)
    assert walk.status == WALK_DONE
    agree(data)


def test_jpeg_eoi_without_scan():
    data = b"\xff\xd8" + segment(0xDB, bytes(65)) + b"\xff\xd9trailing"
    walk = jpeg_segments(data)
    assert walk.segments[-1] == (0xD9, 71, 2) and walk.status == WALK_DONE and walk.end == 73
    agree(data)


@pytest.mark.parametrize("cut", range(0, len(HEADER) + 4))
def test_jpeg_truncated_everywhere(cut):
    data = (HEADER + SCAN)[:cut]
    walk = jpeg_segments(data)
    if cut < 2:
        assert walk == ([], 0, WALK_NOT_CONTAINER)
    else:
        assert walk.status == WALK_TRUNCATED
        assert walk.end <= cut
        assert all(offset + length <= cut for _, offset, length in walk.segments)
    agree(data)


def test_jpeg_marker_at_buffer_edge():
    for tail in (b"\xff", b"\xff\xff", b"\xff\xe1", b"\xff\xe1\x00"):
        walk = jpeg_segments(HEADER + tail)
        assert walk.status == WALK_TRUNCATED and walk.end == len(HEADER), tail
        agree(HEADER + tail)
    # a segment ending exactly at the edge is complete; the next one is missing
    walk = jpeg_segments(HEADER)
    assert walk.status == WALK_TRUNCATED and walk.end == len(HEADER) and len(walk.segments) == 3


def test_jpeg_max_length_segment():
    data = b"\xff\xd8" + segment(0xE1, bytes(65533)) + SCAN
    walk = jpeg_segments(data)
    assert walk.segments[1] == (0xE1, 2, 65537) and walk.status == WALK_DONE
    agree(data)
    assert jpeg_segments(data[: 2 + 65536]).status == WALK_TRUNCATED


def test_jpeg_65535_app_segments():
    data = b"\xff\xd8" + segment(0xE5, b"") * 65535 + SCAN
    walk = jpeg_segments(data)
    assert len(walk.segments) == 65537 and walk.status == WALK_DONE
    assert walk.segments[65535] == (0xE5, 2 + 65534 * 4, 4)
    agree(data)


def test_jpeg_garbage_and_bad_lengths():
    cases = {
        b"\xff\xd8garbage": WALK_MALFORMED,
        b"\xff\xd8\xff\x00": WALK_MALFORMED,
        b"\xff\xd8\xff\xd8": WALK_MALFORMED,
        b"\xff\xd8\xff\xe1\x00\x01": WALK_MALFORMED,
        b"\xff\xd8\xff\xe1\x00\x00xx": WALK_MALFORMED,
        b"\xff\xd8": WALK_TRUNCATED,
    }
    for data, status in cases.items():
        walk = jpeg_segments(data)
        assert walk.status == status and walk.end == 2, data
        agree(data)
    for data in (b"", b"\xff", b"\xd8\xff", b"GIF89a", bytes(100)):
        assert jpeg_segments(data) == ([], 0, WALK_NOT_CONTAINER)
        agree(data)


# ---------------------------------------------------------------------------
# PNG
# ---------------------------------------------------------------------------


def test_png_chunks_of_a_real_file():
    info = __import__("PIL.PngImagePlugin", fromlist=["PngInfo"]).PngInfo()
    info.add_text("Comment", "hi")
    data = pillow_image("PNG", pnginfo=info, exif=Image.Exif())
    walk = png_chunks(data + b"after")
    kinds = [kind.to_bytes(4, "big") for kind, _, _ in walk.segments]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"tEXt" in kinds and b"IDAT" in kinds
    assert walk.status == WALK_DONE and walk.end == len(data)
    pos = 8
    for _, offset, length in walk.segments:
        assert offset == pos
        pos += length
    agree(data + b"after")


@pytest.mark.parametrize("cut", range(0, 60))
def test_png_truncated_everywhere(cut):
    data = (PNG_SIG + chunk(b"IHDR", bytes(13)) + chunk(b"tEXt", b"a\0b") + chunk(b"IEND", b""))[:cut]
    walk = png_chunks(data)
    assert walk.status == (WALK_NOT_CONTAINER if cut < 8 else WALK_TRUNCATED)
    agree(data)


def test_png_bad_chunks():
    assert png_chunks(PNG_SIG + b"\x80\0\0\0IDAT").status == WALK_MALFORMED
    assert png_chunks(PNG_SIG + b"\0\0\0\0ID1T" + bytes(4)).status == WALK_MALFORMED
    assert png_chunks(PNG_SIG + chunk(b"IHDR", b"")) == ([(fourcc(b"IHDR"), 8, 12)], 20, WALK_TRUNCATED)
    assert png_chunks(PNG_SIG) == ([], 8, WALK_TRUNCATED)
    assert png_chunks(b"") == ([], 0, WALK_NOT_CONTAINER)
    for data in (PNG_SIG + b"\x80\0\0\0IDAT", PNG_SIG + b"\0\0\0\0ID1T" + bytes(4), PNG_SIG + bytes(7)):
        agree(data)


# ---------------------------------------------------------------------------
# RIFF / WebP
# ---------------------------------------------------------------------------


def test_riff_chunks_of_a_real_file():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = pillow_image("WEBP", exif=exif, xmp=b"<x/>", lossless=True)
    walk = riff_chunks(data)
    kinds = [kind.to_bytes(4, "big") for kind, _, _ in walk.segments]
    assert kinds[0] == b"VP8X" and b"EXIF" in kinds and b"XMP " in kinds
    assert walk.status == WALK_DONE and walk.end == len(data)
    agree(data)


def test_riff_odd_sizes_and_padding():
    body = riff_chunk(b"VP8X", bytes(10)) + riff_chunk(b"EXIF", b"abc") + riff_chunk(b"XMP ", b"z")
    walk = riff_chunks(riff(body))
    assert walk.segments == [(fourcc(b"VP8X"), 12, 18), (fourcc(b"EXIF"), 30, 12), (fourcc(b"XMP "), 42, 10)]
    assert walk.status == WALK_DONE
    # the last pad byte missing, with the RIFF size agreeing: accepted as written
    unpadded = riff(body[:-1])
    assert riff_chunks(unpadded).segments[-1] == (fourcc(b"XMP "), 42, 9)
    assert riff_chunks(unpadded).status == WALK_DONE
    for data in (riff(body), unpadded, riff(body) + b"trailing"):
        agree(data)


def test_riff_declared_size_against_buffer():
    body = riff_chunk(b"VP8L", bytes(20)) + riff_chunk(b"EXIF", bytes(8))
    longer = riff(body, size=4 + len(body) + 100)  # the file was cut
    walk = riff_chunks(longer)
    assert walk.status == WALK_TRUNCATED and len(walk.segments) == 2 and walk.end == len(longer)
    shorter = riff(body, size=4 + 28 + 4)  # the second chunk crosses the declared end
    walk = riff_chunks(shorter)
    assert walk.status == WALK_MALFORMED and walk.end == 40 and len(walk.segments) == 1
    assert riff_chunks(riff(b"", size=2)) == ([], 12, WALK_MALFORMED)
    assert riff_chunks(b"RIFF\0\0\0") == ([], 0, WALK_NOT_CONTAINER)
    for data in (longer, shorter, riff(b"", size=2), riff(body)[:-3], riff(body)[:25]):
        agree(data)


# ---------------------------------------------------------------------------
# Kernel against reference on random input
# ---------------------------------------------------------------------------


def jpeg_like() -> st.SearchStrategy[bytes]:
    piece = st.one_of(
        st.builds(segment, st.integers(0xC0, 0xFE), st.binary(max_size=40)),
        st.sampled_from([b"\xff", b"\xff\xff", b"\xff\x01", b"\xff\xd0", b"\xff\xd9", b"\xff\x00", b"\x00"]),
        st.binary(max_size=6),
    )
    return st.builds(lambda parts, cut: (b"\xff\xd8" + b"".join(parts))[:cut],
                     st.lists(piece, max_size=12), st.integers(0, 400))


def png_like() -> st.SearchStrategy[bytes]:
    kind = st.sampled_from([b"IHDR", b"IDAT", b"tEXt", b"eXIf", b"IEND", b"ab1c", b"iTXt"])
    piece = st.one_of(st.builds(chunk, kind, st.binary(max_size=30)), st.binary(max_size=10))
    return st.builds(lambda parts, cut: (PNG_SIG + b"".join(parts))[:cut],
                     st.lists(piece, max_size=8), st.integers(0, 300))


def riff_like() -> st.SearchStrategy[bytes]:
    kind = st.sampled_from([b"VP8X", b"VP8L", b"EXIF", b"XMP ", b"ICCP"])
    piece = st.one_of(st.builds(riff_chunk, kind, st.binary(max_size=21), st.booleans()),
                      st.binary(max_size=9))
    return st.builds(
        lambda parts, delta, cut: riff(b"".join(parts), size=max(0, 4 + sum(map(len, parts)) + delta))[:cut],
        st.lists(piece, max_size=8), st.integers(-12, 12), st.integers(0, 300))


@BOUNDED
@given(st.one_of(jpeg_like(), png_like(), riff_like(), st.binary(max_size=64)))
def test_kernel_agrees_with_reference(data):
    agree(data)
    for kernel, _ in WALKS:
        walk = kernel(data)
        assert 0 <= walk.end <= max(len(data), 12)
        for _, offset, length in walk.segments:
            assert 0 <= offset and offset + length <= len(data)


def test_buffer_types_and_validation():
    data = HEADER + SCAN
    expected = jpeg_segments(data)
    assert jpeg_segments(bytearray(data)) == expected
    assert jpeg_segments(memoryview(data)) == expected
    assert _metastrip.jpeg_segments(memoryview(data)) == tuple(expected)
    assert jpeg_segments(memoryview(b"xx" + data)[2:]) == expected
    with pytest.raises(TypeError):
        jpeg_segments("text")
    with pytest.raises(ValueError):
        jpeg_segments(memoryview(data)[::2])
    assert fourcc("IEND") == fourcc(b"IEND") == 0x49454E44
    with pytest.raises(ValueError):
        fourcc(b"abc")
