"""EXIF (TIFF structure): the location tags removed in place, or a minimal Orientation-only block."""
from __future__ import annotations

import struct

from .common import _Unparsable

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
