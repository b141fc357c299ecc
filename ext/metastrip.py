"""Container walks for lossless metadata removal (JPEG, PNG, RIFF/WebP).

Each function lists the segments of a container's header and says where and
how the walk stopped, as a ``Walk``.  Only the byte loop lives here; which
segments to keep, drop or rewrite is ``pastefile.core.metadata``'s policy.

- ``jpeg_segments``: SOI .. first SOS (or EOI); ``kind`` is the marker code,
  ``offset`` the 0xFF right before it (fill bytes lie between segments),
  ``length`` 2 for standalone markers, else 2 + the length field.
- ``png_chunks``: chunks after the signature up to IEND; ``kind`` is the type
  read big-endian (see ``fourcc``), ``length`` 12 + the data length.
- ``riff_chunks``: chunks after the 12-byte RIFF header, to the declared end;
  ``length`` 8 + size + the pad byte of an odd size when present.

``end`` is the offset after the last listed segment, or where the next one
would have started when the walk stopped early (``status`` other than
``WALK_DONE``).  No walk ever raises on the bytes it is given.
"""
from __future__ import annotations

from typing import NamedTuple

from pastefile.ext import _metastrip

__all__ = [
    "WALK_DONE",
    "WALK_MALFORMED",
    "WALK_NOT_CONTAINER",
    "WALK_TRUNCATED",
    "Walk",
    "fourcc",
    "jpeg_segments",
    "png_chunks",
    "riff_chunks",
]

WALK_DONE: int = _metastrip.WALK_DONE  # SOS/EOI, IEND, or the RIFF's declared end
WALK_TRUNCATED: int = _metastrip.WALK_TRUNCATED  # the bytes end inside a segment
WALK_MALFORMED: int = _metastrip.WALK_MALFORMED  # no segment where one must start
WALK_NOT_CONTAINER: int = _metastrip.WALK_NOT_CONTAINER  # no signature


class Walk(NamedTuple):
    segments: list[tuple[int, int, int]]  # (kind, offset, length)
    end: int
    status: int


def fourcc(code: bytes | str) -> int:
    """A 4-character chunk type as the ``kind`` the PNG and RIFF walks report."""
    if isinstance(code, str):
        code = code.encode("latin-1")
    if not isinstance(code, bytes) or len(code) != 4:
        raise ValueError("a FourCC is exactly 4 bytes")
    return int.from_bytes(code, "big")


def _bytes_view(buf) -> memoryview:
    try:
        view = memoryview(buf)
    except TypeError:
        raise TypeError(f"buf must be a bytes-like object, not {type(buf).__name__}") from None
    if not view.c_contiguous:
        raise ValueError("buf must be C-contiguous")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def jpeg_segments(buf: bytes | bytearray | memoryview) -> Walk:
    """JPEG marker segments from SOI up to and including the first SOS (or EOI)."""
    return Walk(*_metastrip.jpeg_segments(_bytes_view(buf)))


def png_chunks(buf: bytes | bytearray | memoryview) -> Walk:
    """PNG chunks after the signature, up to and including IEND."""
    return Walk(*_metastrip.png_chunks(_bytes_view(buf)))


def riff_chunks(buf: bytes | bytearray | memoryview) -> Walk:
    """RIFF chunks (WebP) after the 12-byte header, up to the declared end."""
    return Walk(*_metastrip.riff_chunks(_bytes_view(buf)))
