"""XMP, IPTC and Photoshop resource blocks: whether they name a person, a device or a place."""
from __future__ import annotations

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
