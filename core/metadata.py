"""Lossless removal of image metadata: container segments rewritten, pixels untouched.

``strip(data, level)`` returns the rewritten file, or None when there is
nothing to remove, the level is "none", or the bytes are not a JPEG, PNG or
WebP.  The image data (JPEG from the first SOS on, PNG IDAT/fdAT, WebP
VP8/VP8L/ALPH/ANMF) is copied byte for byte: nothing is decoded.  The
container walks are ``pastefile.ext.metastrip``'s; the policy is here.

Levels:

- "location": the GPS position and what identifies the person or the device
  it belongs with.  EXIF (JPEG APP1, PNG eXIf, WebP EXIF) is edited in place,
  same size: the entries GPSInfo, Artist, XPAuthor, CameraOwnerName,
  BodySerialNumber, LensSerialNumber, CameraSerialNumber and MakerNote leave
  their IFDs (the IFD is compacted, later offsets stay valid) and the bytes
  they pointed at, the whole GPS IFD included, are zeroed.  MakerNote goes
  because vendor notes (Canon, Nikon, Sony, ...) carry body serial numbers in
  formats too many to parse.  An XMP packet naming a GPS property, a serial
  number, an owner, an author or a place (city, state, country, location)
  is dropped whole (XMP is not edited; Extended XMP goes with its packet), as
  are Photoshop APP13 blocks with IPTC by-line/place datasets or embedded
  EXIF/XMP copies, PNG "Raw profile type" text chunks holding EXIF, XMP or
  IPTC, and PNG text chunks whose keyword names an author, owner, serial
  number or place (the text of other keywords is not read).  An EXIF block
  whose TIFF structure cannot be walked is dropped whole.  Everything else
  stays: Orientation, dates, Make/Model, Copyright, comments, and the EXIF
  thumbnail (IFD1), which shows the picture as the camera took it, before
  any crop.
- "all": only what rendering needs: EXIF reduced to a minimal block holding
  Orientation (none at all without one), ICC profiles, JFIF APP0, Adobe
  APP14 (colour transform), MPF; PNG critical chunks, tRNS, bKGD, colour
  (iCCP, sRGB, gAMA, cHRM, cICP, mDCv, cLLi, sBIT), pHYs and APNG chunks;
  WebP VP8X (flags updated), ICCP, ANIM/ANMF, ALPH, VP8/VP8L.  XMP goes,
  so an Ultra HDR photo keeps its gain map image but shows as plain SDR.

A PNG whose chunks change size loses its iDOT chunk (Apple's parallel
decoding index, offsets relative to itself); decoders then read IDAT in order.

MPO (phone JPEGs with more images, APP2 "MPF"): every image listed in the
MP index is stripped on its own (secondary images often carry their own EXIF
with GPS) and the MP entries' sizes and offsets are rewritten to where the
images now are.  Bytes the walks do not reach are copied verbatim: data after
the last image (e.g. a motion photo's video, which can hold a location of its
own), and whatever follows a truncated or malformed header.
"""
from __future__ import annotations

import logging
import struct
import zlib

from pastefile.ext.metastrip import WALK_DONE, WALK_NOT_CONTAINER, jpeg_segments, png_chunks, riff_chunks

__all__ = ["LEVELS", "strip"]

log = logging.getLogger(__name__)

LEVELS = ("location", "all", "none")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_HEADER = b"Exif\0\0"
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\0"
_XMP_EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\0"
_MPF_HEADER = b"MPF\0"

# EXIF/TIFF tags removed at "location", in whichever IFD they appear
_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
_ORIENTATION = 0x0112
_LOCATION_TAGS = frozenset({
    _GPS_IFD,
    0x013B,  # Artist
    0x9C9D,  # XPAuthor
    0xA430,  # CameraOwnerName
    0xA431,  # BodySerialNumber
    0xA435,  # LensSerialNumber
    0xC62F,  # CameraSerialNumber (DNG)
    0x927C,  # MakerNote: vendor blobs with serial numbers
})
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_MAX_IFDS = 32

# XMP packets containing any of these are dropped at "location" (also as UTF-16)
_XMP_SENSITIVE = (
    b"GPS", b"SerialNumber", b"OwnerName", b"Artist", b":creator",
    b":City", b":State", b":Country", b":Location", b":Sublocation", b"LocationCreated", b"LocationShown",
)
_XMP_SENSITIVE_ALL = _XMP_SENSITIVE + tuple(p.decode().encode("utf-16-be") for p in _XMP_SENSITIVE) + tuple(
    p.decode().encode("utf-16-le") for p in _XMP_SENSITIVE
)
# IPTC IIM record 2 datasets: by-line, by-line title, city, sub-location, state, country code, country
_IPTC_SENSITIVE = frozenset({80, 85, 90, 92, 95, 100, 101})
# Photoshop image resources: IPTC, EXIF data 1 and 3, XMP
_IRB_IPTC = 0x0404
_IRB_EMBEDDED = frozenset({0x0422, 0x0423, 0x0424})
_XMP_INFLATE_LIMIT = 16 << 20

_PNG_KEEP_ALL = frozenset({
    b"tRNS", b"bKGD", b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"mDCv", b"mDCV", b"cLLi", b"cLLI",
    b"sBIT", b"pHYs", b"acTL", b"fcTL", b"fdAT",
})
_PNG_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_PNG_RAW_PROFILES = (b"exif", b"app1", b"xmp", b"iptc", b"8bim")
# PNG text keywords (lower case) naming a person, a device or a place
_PNG_SENSITIVE_KEYWORDS = (b"author", b"artist", b"owner", b"serial", b"gps", b"location", b"city", b"country")
_WEBP_KEEP_ALL = frozenset({b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP"})
_VP8X_EXIF = 0x08
_VP8X_XMP = 0x04


class _Unparsable(Exception):
    """A metadata block whose structure cannot be walked safely."""


def strip(data: bytes | bytearray | memoryview, level: str = "location") -> bytes | None:
    """The file without the metadata ``level`` removes, or None when nothing changes.

    ``level`` is "location" (GPS and identifying fields), "all" (everything
    rendering does not need) or "none".  Never raises on the bytes: what
    cannot be walked safely is copied verbatim.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if level == "none":
        return None
    view = memoryview(data)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    try:
        return _strip(view, level)
    except Exception:  # a bug must not fail an upload; the file is kept as sent
        log.exception("metadata removal failed; file kept unchanged")
        return None


def _strip(view: memoryview, level: str) -> bytes | None:
    """``strip`` without the safety net (tests call it to see every exception)."""
    out = _Output(view)
    if view[:3] == b"\xff\xd8\xff":
        _jpeg(view, level, out)
    elif view[:8] == _PNG_SIGNATURE:
        _png(view, level, out)
    elif view[:4] == b"RIFF" and view[8:12] == b"WEBP":
        _webp(view, level, out)
    else:
        return None
    return out.result()


class _Output:
    """The rewritten file as pieces: slices of the source and new bytes."""

    def __init__(self, source: memoryview) -> None:
        self.source = source
        self.parts: list[memoryview | bytes | bytearray] = []
        self.size = 0
        self.changed = False

    def copy(self, start: int, stop: int) -> None:
        if stop > start:
            self.parts.append(self.source[start:stop])
            self.size += stop - start

    def add(self, data: bytes | bytearray, changed: bool = True) -> None:
        self.parts.append(data)
        self.size += len(data)
        self.changed = self.changed or changed

    def drop(self) -> None:
        self.changed = True

    def result(self) -> bytes | None:
        return b"".join(self.parts) if self.changed else None


# ---------------------------------------------------------------------------
# EXIF (TIFF structure)
# ---------------------------------------------------------------------------


class _Tiff:
    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data
        if data[:4] == b"II*\0":
            self.order = "<"
        elif data[:4] == b"MM\0*":
            self.order = ">"
        else:
            raise _Unparsable("no TIFF header")

    def u16(self, pos: int) -> int:
        if pos < 0 or pos + 2 > len(self.data):
            raise _Unparsable("read past the end")
        return struct.unpack_from(self.order + "H", self.data, pos)[0]

    def u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > len(self.data):
            raise _Unparsable("read past the end")
        return struct.unpack_from(self.order + "I", self.data, pos)[0]

    def entries(self, ifd: int) -> list[tuple[int, int, int, int, int]]:
        """(position, tag, type, count, value field) of each entry of the IFD at ``ifd``."""
        if ifd < 8:
            raise _Unparsable("IFD inside the header")
        n = self.u16(ifd)
        if ifd + 2 + 12 * n > len(self.data):
            raise _Unparsable("IFD past the end")
        return [
            (pos, self.u16(pos), self.u16(pos + 2), self.u32(pos + 4), self.u32(pos + 8))
            for pos in range(ifd + 2, ifd + 2 + 12 * n, 12)
        ]

    def value_range(self, type_: int, count: int, value: int) -> tuple[int, int] | None:
        """Where an entry's value lives when it does not fit in the entry, clipped to the data."""
        size = _TYPE_SIZES.get(type_, 1) * count
        if size <= 4 or value < 8 or value >= len(self.data):
            return None
        return value, min(len(self.data), value + size)

    def orientation(self) -> int | None:
        for pos, tag, type_, count, _ in self.entries(self.u32(4)):
            if tag == _ORIENTATION and type_ == 3 and count >= 1:
                value = self.u16(pos + 8)  # a SHORT sits at the start of the value field
                return value if 1 <= value <= 8 else None
        return None


def _exif_without_location(tiff: bytes | memoryview) -> bytes | None:
    """The TIFF block with the location tags removed in place, or None if it has none."""
    t = _Tiff(bytes(tiff))
    # (IFD offset, whether it must parse): IFD0 and the Exif IFD hold what
    # "location" removes, so a block where they cannot be read is dropped whole;
    # a broken link further down the IFD chain is only not followed
    pending = [(t.u32(4), True)]
    seen: set[int] = set()
    compact: dict[int, list[int]] = {}  # IFD offset -> positions of entries removed
    zero: list[tuple[int, int]] = []
    while pending and len(seen) < _MAX_IFDS:
        ifd, required = pending.pop()
        if ifd == 0 or ifd in seen:
            continue
        seen.add(ifd)
        try:
            entries = t.entries(ifd)
        except _Unparsable:
            if required:
                raise
            continue
        for pos, tag, type_, count, value in entries:
            if tag in _LOCATION_TAGS:
                compact.setdefault(ifd, []).append(pos)
                if (where := t.value_range(type_, count, value)) is not None:
                    zero.append(where)
                if tag == _GPS_IFD:
                    zero.extend(_gps_ranges(t, value))
            elif tag == _EXIF_IFD:
                pending.append((value, True))
        end = ifd + 2 + 12 * len(entries)
        if end + 4 <= len(t.data):
            pending.append((t.u32(end), False))  # the next IFD (IFD1: thumbnail)
    if not compact:
        return None
    data = bytearray(t.data)
    for start, stop in zero:
        data[start:stop] = bytes(stop - start)
    # compact last, from the original entries, so that the IFDs stay consistent
    # even when a (malformed) value range overlapped one of them
    for ifd, removed in compact.items():
        n = t.u16(ifd)
        kept = b"".join(t.data[p : p + 12] for p in range(ifd + 2, ifd + 2 + 12 * n, 12) if p not in removed)
        end = ifd + 2 + 12 * n
        following = t.data[end : end + 4]
        # the next-IFD link moves up behind the last kept entry; the freed
        # entries at the end become zeros, so no other offset changes
        block = struct.pack(t.order + "H", n - len(removed)) + kept + following + bytes(12 * len(removed))
        data[ifd : ifd + len(block)] = block
    return bytes(data)


def _gps_ranges(t: _Tiff, ifd: int) -> list[tuple[int, int]]:
    """The GPS IFD and the values it points at."""
    try:
        entries = t.entries(ifd)
    except _Unparsable:
        return [] if ifd >= len(t.data) or ifd < 8 else [(ifd, min(len(t.data), ifd + 2))]
    ranges = [(ifd, min(len(t.data), ifd + 2 + 12 * len(entries) + 4))]
    for _, _, type_, count, value in entries:
        if (where := t.value_range(type_, count, value)) is not None:
            ranges.append(where)
    return ranges


def _minimal_exif(orientation: int) -> bytes:
    """A TIFF block with IFD0 holding Orientation only."""
    return b"MM\0*" + struct.pack(">IHHHIHHI", 8, 1, _ORIENTATION, 3, 1, orientation, 0, 0)


def _rewrite_exif(tiff: bytes | memoryview, level: str) -> bytes | None:
    """The new TIFF block for ``level``: None keeps it, b"" drops it."""
    if level == "all":
        try:
            orientation = _Tiff(bytes(tiff)).orientation()
        except _Unparsable:
            orientation = None
        if not orientation:
            return b""
        minimal = _minimal_exif(orientation)
        return None if tiff == minimal else minimal
    try:
        return _exif_without_location(tiff)
    except _Unparsable:
        return b""  # cannot tell what it holds: the whole block goes


# ---------------------------------------------------------------------------
# XMP and IPTC
# ---------------------------------------------------------------------------


def _xmp_sensitive(packet: bytes | memoryview) -> bool:
    packet = bytes(packet)
    return any(pattern in packet for pattern in _XMP_SENSITIVE_ALL)


def _photoshop_sensitive(payload: bytes) -> bool:
    """Whether an APP13 Photoshop block names a person or place, or embeds EXIF/XMP."""
    header = b"Photoshop 3.0\0"
    if not payload.startswith(header):
        return True  # unknown: cannot tell
    pos = len(header)
    while pos < len(payload):
        if pos + 7 > len(payload):
            return True
        resource = int.from_bytes(payload[pos + 4 : pos + 6], "big")
        name = payload[pos + 6]
        pos += 6 + ((name + 2) & ~1)  # Pascal name padded to even
        if pos + 4 > len(payload):
            return True
        size = int.from_bytes(payload[pos : pos + 4], "big")
        pos += 4
        if pos + size > len(payload):
            return True
        if resource in _IRB_EMBEDDED:
            return True
        if resource == _IRB_IPTC and _iptc_sensitive(payload[pos : pos + size]):
            return True
        pos += size + (size & 1)
    return False


def _iptc_sensitive(data: bytes) -> bool:
    pos = 0
    while pos + 5 <= len(data):
        if data[pos] != 0x1C:
            return any(data[pos:])  # zero padding ends the datasets; anything else is unknown
        record, dataset = data[pos + 1], data[pos + 2]
        size = int.from_bytes(data[pos + 3 : pos + 5], "big")
        header = 5
        if size & 0x8000:  # extended dataset: the size's own length
            width = size & 0x7FFF
            if width > 8:
                return True
            size = int.from_bytes(data[pos + 5 : pos + 5 + width], "big")
            header += width
        if record == 2 and dataset in _IPTC_SENSITIVE:
            return True
        pos += header + size
    return False


# ---------------------------------------------------------------------------
# JPEG (and MPO)
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# PNG
# ---------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_text_sensitive(kind: bytes, data: bytes, budget: list[int]) -> bool:
    """Whether a text chunk at "location" must go; ``budget``: bytes left to inflate for this file."""
    keyword, _, rest = data.partition(b"\0")
    if keyword.startswith(b"Raw profile type "):
        return keyword[17:].lower() in _PNG_RAW_PROFILES
    if any(word in keyword.lower() for word in _PNG_SENSITIVE_KEYWORDS):
        return True
    if kind != b"iTXt" or keyword != b"XML:com.adobe.xmp":
        return False
    if len(rest) < 2:
        return True
    compressed = rest[0]
    # language tag and translated keyword, then the text
    parts = rest[2:].split(b"\0", 2)
    if len(parts) < 3:
        return True
    text = parts[2]
    if compressed:
        # inflated within one budget per file, so that chunks built to inflate
        # enormously cost bounded time; past it, the chunk is dropped unread
        inflater = zlib.decompressobj()
        try:
            text = inflater.decompress(text, max(1, budget[0]))
        except zlib.error:
            return True
        budget[0] -= len(text)
        if not inflater.eof:
            return True  # cut short, or past the budget: cannot tell
    return _xmp_sensitive(text)


def _png(view: memoryview, level: str, out: _Output) -> None:
    walk = png_chunks(view)
    plan: list[tuple[int, int, bytes | None]] = []  # (offset, length, replacement: None keeps, b"" drops)
    resized = False
    inflate_budget = [_XMP_INFLATE_LIMIT]
    for code, offset, length in walk.segments:
        kind = code.to_bytes(4, "big")
        replacement: bytes | None = None
        if kind == b"eXIf":
            data = bytes(view[offset + 8 : offset + length - 4])
            prefix = _EXIF_HEADER if data.startswith(_EXIF_HEADER) else b""
            tiff = _rewrite_exif(data[len(prefix) :], level)
            if tiff is not None:
                replacement = _png_chunk(kind, prefix + tiff) if tiff else b""
        elif kind in _PNG_TEXT:
            text = bytes(view[offset + 8 : offset + length - 4])
            if level == "all" or _png_text_sensitive(kind, text, inflate_budget):
                replacement = b""
        elif level == "all" and not (kind[0] < 0x61 or kind in _PNG_KEEP_ALL):  # lower case: ancillary
            replacement = b""
        if replacement is not None and len(replacement) != length:
            resized = True
        plan.append((offset, length, replacement))
    out.copy(0, min(8, len(view)))
    for offset, length, replacement in plan:
        if replacement is None and resized and view[offset + 4 : offset + 8] == b"iDOT":
            # Apple's parallel-decoding index holds offsets relative to itself
            replacement = b""
        if replacement is None:
            out.copy(offset, offset + length)
        elif replacement:
            out.add(replacement)
        else:
            out.drop()
    out.copy(walk.end, len(view))


# ---------------------------------------------------------------------------
# WebP
# ---------------------------------------------------------------------------


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"")


def _webp(view: memoryview, level: str, out: _Output) -> None:
    walk = riff_chunks(view)
    header = bytearray(view[:12])
    out.add(header, changed=False)
    vp8x: bytearray | None = None
    has_exif = has_xmp = False
    for code, offset, length in walk.segments:
        kind = code.to_bytes(4, "big")
        if kind == b"EXIF":
            data = bytes(view[offset + 8 : offset + 8 + int.from_bytes(view[offset + 4 : offset + 8], "little")])
            prefix = _EXIF_HEADER if data.startswith(_EXIF_HEADER) else b""
            tiff = _rewrite_exif(data[len(prefix) :], level)
            if tiff is None:
                out.copy(offset, offset + length)
                has_exif = True
            elif tiff:
                out.add(_riff_chunk(kind, prefix + tiff))
                has_exif = True
            else:
                out.drop()
        elif kind == b"XMP ":
            if level == "all" or _xmp_sensitive(view[offset + 8 : offset + length]):
                out.drop()
            else:
                out.copy(offset, offset + length)
                has_xmp = True
        elif kind == b"VP8X" and vp8x is None and length >= 9:
            vp8x = bytearray(view[offset : offset + length])
            out.add(vp8x, changed=False)
        elif level == "all" and kind not in _WEBP_KEEP_ALL:
            out.drop()
        else:
            out.copy(offset, offset + length)
    walked = out.size
    out.copy(walk.end, len(view))
    if not out.changed:
        return
    # the RIFF size moves by what the walked chunks gained or lost
    declared = int.from_bytes(header[4:8], "little")
    struct.pack_into("<I", header, 4, max(4, min(0xFFFFFFFF, declared + walked - max(walk.end, 12))))
    if vp8x is not None:
        flags = vp8x[8] & ~(_VP8X_EXIF | _VP8X_XMP)
        vp8x[8] = flags | (_VP8X_EXIF if has_exif else 0) | (_VP8X_XMP if has_xmp else 0)
