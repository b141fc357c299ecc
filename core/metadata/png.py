"""PNG: eXIf edited, text chunks naming a person, device or place dropped, IDAT copied verbatim."""
from __future__ import annotations

import struct
import zlib

from pastefile.ext.metastrip import png_chunks

from .common import _EXIF_HEADER, _Output
from .exif import _rewrite_exif
from .xmp import _xmp_sensitive

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_XMP_INFLATE_LIMIT = 16 << 20
_PNG_KEEP_ALL = frozenset({
    b"tRNS", b"bKGD", b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"mDCv", b"mDCV", b"cLLi", b"cLLI",
    b"sBIT", b"pHYs", b"acTL", b"fcTL", b"fdAT",
})
_PNG_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_PNG_RAW_PROFILES = (b"exif", b"app1", b"xmp", b"iptc", b"8bim")
# PNG text keywords (lower case) naming a person, a device or a place
_PNG_SENSITIVE_KEYWORDS = (b"author", b"artist", b"owner", b"serial", b"gps", b"location", b"city", b"country")


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
