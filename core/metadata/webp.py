"""WebP (RIFF): EXIF and XMP chunks edited or dropped, VP8X flags and the RIFF size kept right."""
from __future__ import annotations

import struct

from pastefile.ext.metastrip import riff_chunks

from .common import _EXIF_HEADER, _Output
from .exif import _rewrite_exif
from .xmp import _xmp_sensitive

_WEBP_KEEP_ALL = frozenset({b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP"})
_VP8X_EXIF = 0x08
_VP8X_XMP = 0x04


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
