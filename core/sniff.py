"""Content sniffing with libmagic (python-magic): the client's type is never trusted.

Each thread has its own libmagic handle: python-magic guards a handle with a
lock, and ctypes releases the GIL during the call, so private handles let
sniffs of concurrent uploads run in parallel instead of queueing.

libmagic's text rules are regular expressions run over the whole buffer it is
given (about 0.4 µs a byte here, 2 ms for a 4 KiB head of prose), while
binary formats are settled by fixed-offset tests in microseconds.  So text is
sniffed from a short prefix unless it holds markup, which libmagic must see
in full to tell HTML, SVG and XML (the active types) from plain text.

Binary heads libmagic cannot name (``application/octet-stream``) are not
sniffed again whole unless something shows a larger view can name them:
a container signature at the start whose magic reads past the head (OLE
compound files, RIFF, Ogg, RAR, cabinets, Matroska, ...), or one of the few
signatures libmagic looks for beyond 4 KiB (ISO 9660 and Nero images, HDF5
behind a user block), or for a staged file, a trailer libmagic reads from
the end of a file (a zip with data prepended, a Gentoo XPAK).  Random or
unknown bytes are answered from the head: sniffing them whole took
libmagic about 0.4 ms more for 64 KiB and found nothing more.  A zip head
is always sniffed whole: OOXML is named by members past the head.
"""
from __future__ import annotations

import os
import threading

import magic

HEAD = 4096
TEXT_PREFIX = 1024
ZIP = "application/zip"
UNKNOWN = "application/octet-stream"
# heads whose libmagic rules read past the first 4 KiB (indirect offsets,
# searches, directories elsewhere in the file): an unknown answer from the
# head alone may be named from the whole
CONTAINERS = (
    b"PK\x03\x04", b"PK00PK\x03\x04",  # zip: OOXML, JAR, APK
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE compound file: doc, xls, msi
    b"RIFF", b"RIFX", b"OggS", b"Rar!\x1a\x07", b"MSCF\0\0\0\0", b"ttcf", b"\xffWPC", b"MZ",
    b"\x1a\x45\xdf\xa3",  # EBML: Matroska, WebM
    b"QFI\xfb", b"II*\0", b"MM\0*", b"\x89HDF\r\n\x1a\n",
)
# (offset, signature) libmagic tests at fixed offsets at or past the head
BEYOND_HEAD = (
    (4, b"ftyp"), (257, b"ustar"),  # ISO media, tar: an unknown brand or kind is sniffed whole as before
    (HEAD, b"\x89HDF\r\n\x1a\n"),  # HDF5 with a 4 KiB user block
    (32769, b"CD001"), (37633, b"CD001"), (339969, b"CD001"),  # ISO 9660, raw 2352-byte sectors, Nero
)
# (offset from the end, signature) read by libmagic from a file only: it
# leaves negative offsets alone in a buffer
TRAILERS = (
    (-22, b"PK\x05\x06"),  # a zip's end of central directory, data prepended
    (-16, b"XPAKSTOP"),
)

_local = threading.local()


def _handle() -> magic.Magic:
    handle = getattr(_local, "magic", None)
    if handle is None:
        handle = _local.magic = magic.Magic(mime=True)
    return handle


def _looks_like_text(data: bytes) -> bool:
    """No NUL and no C0 controls but whitespace: libmagic's text candidates."""
    return not data.translate(None, _TEXT_BYTES)


_TEXT_BYTES = bytes([9, 10, 12, 13, 27]) + bytes(range(32, 256))


def sniff(head: bytes, path: str | None = None, data: bytes | None = None) -> str:
    """The mimetype of content starting with ``head`` (its first 4 KiB).

    ``data`` (all of a small upload) or ``path`` (the staged file) lets
    libmagic refine a zip container, or an unknown binary that shows a
    container libmagic reads past the head, from a larger view.
    """
    handle = _handle()
    head = head[:HEAD]
    if (
        len(head) > TEXT_PREFIX
        and b"<" not in head
        and head.lstrip()[:1] not in (b"{", b"[")  # JSON is only JSON as a whole
        and _looks_like_text(head)
    ):
        mimetype = handle.from_buffer(head[:TEXT_PREFIX])
        if mimetype.startswith("text/"):
            return mimetype
    mimetype = handle.from_buffer(head)
    if mimetype == ZIP or (mimetype == UNKNOWN and _may_be_named_whole(head, path, data)):
        if data is not None and len(data) > len(head):
            mimetype = handle.from_buffer(data)
        elif path is not None and data is None:
            mimetype = handle.from_file(path)
    return mimetype


def _may_be_named_whole(head: bytes, path: str | None, data: bytes | None) -> bool:
    """Whether libmagic may name what it calls unknown from its first 4 KiB
    when given all of it: a few fixed-offset reads, not a sniff."""
    if head.startswith(CONTAINERS):
        return True
    if data is not None:
        return len(data) > len(head) and any(data.startswith(sig, offset) for offset, sig in BEYOND_HEAD)
    if path is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if any(os.pread(fd, len(sig), offset) == sig for offset, sig in BEYOND_HEAD):
            return True
        size = os.fstat(fd).st_size
        return any(size >= -offset and os.pread(fd, len(sig), size + offset) == sig for offset, sig in TRAILERS)
    finally:
        os.close(fd)
