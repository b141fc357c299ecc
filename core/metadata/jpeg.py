"""JPEG and MPO (JPEG with more images, APP2 "MPF"): segments rewritten, the scan copied verbatim."""
from __future__ import annotations

import struct

from pastefile.ext.metastrip import WALK_DONE, WALK_NOT_CONTAINER, jpeg_segments

from .common import _EXIF_HEADER, _Output, _Unparsable
from .exif import _rewrite_exif, _Tiff
from .xmp import _photoshop_sensitive, _xmp_sensitive

_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\0"
_XMP_EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\0"
_MPF_HEADER = b"MPF\0"


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _jpeg(view: memoryview, level: str, out: _Output) -> None:
    walk = jpeg_segments(view)
    images = None
    for kind, offset, length in walk.segments:
        if kind == 0xE2 and view[offset + 4 : offset + 8] == _MPF_HEADER:
            try:
                images = _mp_images(view, offset, length)
            except _Unparsable:
                images = None
            break
    if images is None:
        _jpeg_image(view, 0, len(view), level, out)
        return
    mp_header, order, entries = images
    # strip the images in file order; gaps between them are copied verbatim
    placed: dict[int, tuple[int, int]] = {}
    mpf: tuple[int, bytearray] | None = None
    done = 0
    for index, (start, size, _) in sorted(enumerate(entries), key=lambda item: item[1][0]):
        out.copy(done, start)
        new_start = out.size
        found = _jpeg_image(view, start, start + size, level, out, mutable_mpf=start == 0)
        if start == 0:
            mpf = found
        placed[index] = (new_start, out.size - new_start)
        done = start + size
    out.copy(done, len(view))
    if mpf is None:
        return
    segment_start, segment = mpf
    new_header = segment_start + 8
    for index, (_, _, field) in enumerate(entries):
        new_start, new_size = placed[index]
        offset = 0 if new_start == 0 else new_start - new_header
        struct.pack_into(order + "II", segment, field - mp_header + 8 + 4, new_size, offset)


def _mp_images(view: memoryview, offset: int, length: int) -> tuple[int, str, list[tuple[int, int, int]]]:
    """The MP header's file offset, its byte order and (start, size, entry position) per image."""
    header = offset + 8
    t = _Tiff(bytes(view[header : offset + length]))
    count = 0
    entries_at = None
    for _, tag, type_, n, value in t.entries(t.u32(4)):
        if tag == 0xB002 and type_ == 7 and n % 16 == 0:
            count, entries_at = n // 16, value
    if not count or entries_at is None or entries_at + 16 * count > len(t.data):
        raise _Unparsable("no MP entries")
    images = []
    for i in range(count):
        field = entries_at + 16 * i
        size, relative = t.u32(field + 4), t.u32(field + 8)
        if i and not size and not relative:
            continue  # an image not stored in this file: nothing to move
        start = 0 if i == 0 else header + relative
        if (i == 0) != (relative == 0) or size < 4 or start + size > len(view):
            raise _Unparsable("MP entry out of bounds")
        if view[start : start + 2] != b"\xff\xd8":
            raise _Unparsable("MP entry is not a JPEG")
        images.append((start, size, header + field))
    by_start = sorted(images)
    if any(a[0] + a[1] > b[0] for a, b in zip(by_start, by_start[1:])):
        raise _Unparsable("MP images overlap")
    if by_start[0][1] < offset + length:
        raise _Unparsable("the first image ends inside its MPF segment")
    return header, t.order, images


def _jpeg_image(
    view: memoryview, start: int, stop: int, level: str, out: _Output, mutable_mpf: bool = False
) -> tuple[int, bytearray] | None:
    """Copy the JPEG ``view[start:stop]`` into ``out`` without the metadata ``level`` removes.

    With ``mutable_mpf``, its MPF segment is copied as a bytearray returned with
    its position in the output, for the caller to rewrite the MP entries.
    """
    image = view[start:stop]
    walk = jpeg_segments(image)
    if walk.status == WALK_NOT_CONTAINER:
        out.copy(start, stop)
        return None
    payloads = {offset: bytes(image[offset + 4 : offset + length])
                for kind, offset, length in walk.segments if 0xE0 <= kind <= 0xEF or kind == 0xFE}
    drop_xmp = level == "all" or any(
        p.startswith(_XMP_HEADER) and _xmp_sensitive(p) for p in payloads.values())
    extended = b"".join(p for p in payloads.values() if p.startswith(_XMP_EXTENSION_HEADER))
    drop_extended = drop_xmp or _xmp_sensitive(extended)
    mpf = None
    pos = 0
    # a walk that stopped short leaves bytes a decoder skips over to the next
    # marker; the segment right before them is blanked rather than dropped,
    # so they never end up right after SOI, where no reader looks past them
    edge = walk.segments[-1][1] if walk.status != WALK_DONE and walk.segments else -1
    for kind, offset, length in walk.segments:
        out.copy(start + pos, start + offset)  # fill bytes
        pos = offset + length
        payload = payloads.get(offset)
        if payload is None:  # not APPn/COM: tables, frame and scan headers
            out.copy(start + offset, start + pos)
            continue
        if kind == 0xE1 and payload.startswith(_EXIF_HEADER):
            tiff = _rewrite_exif(payload[len(_EXIF_HEADER) :], level)
            if tiff is None:
                out.copy(start + offset, start + pos)
            elif tiff:
                out.add(_jpeg_segment(kind, _EXIF_HEADER + tiff))
            else:
                _drop_segment(out, offset == edge, length)
            continue
        if kind == 0xE2 and payload.startswith(_MPF_HEADER):
            if mutable_mpf and mpf is None:
                mpf = (out.size, bytearray(image[offset:pos]))
                out.add(mpf[1], changed=False)
            else:
                out.copy(start + offset, start + pos)
            continue
        if _jpeg_keeps(kind, payload, level, drop_xmp, drop_extended):
            out.copy(start + offset, start + pos)
        else:
            _drop_segment(out, offset == edge, length)
    out.copy(start + pos, stop)  # from the scan on: verbatim
    return mpf


def _drop_segment(out: _Output, at_edge: bool, length: int) -> None:
    if at_edge:  # an empty comment of the same size keeps the framing
        out.add(b"\xff\xfe" + struct.pack(">H", length - 2) + bytes(length - 4))
    else:
        out.drop()


def _jpeg_keeps(kind: int, payload: bytes, level: str, drop_xmp: bool, drop_extended: bool) -> bool:
    """Whether an APPn/COM segment other than EXIF and MPF stays."""
    if kind == 0xE1 and payload.startswith(_XMP_HEADER):
        return not drop_xmp
    if kind == 0xE1 and payload.startswith(_XMP_EXTENSION_HEADER):
        return not drop_extended
    if kind == 0xED:
        return level != "all" and not _photoshop_sensitive(payload)
    if level == "all":
        return (
            (kind == 0xE0 and payload.startswith(b"JFIF\0"))
            or (kind == 0xE2 and payload.startswith(b"ICC_PROFILE\0"))
            or (kind == 0xEE and payload.startswith(b"Adobe"))
        )
    return True
