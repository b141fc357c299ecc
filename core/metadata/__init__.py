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

Modules: ``common`` (the output being built), ``exif`` (TIFF/EXIF editing),
``xmp`` (XMP, IPTC and Photoshop checks), ``jpeg`` (JPEG and MPO), ``png``
and ``webp``; ``strip`` and ``LEVELS`` are the public entry point here.
"""
from __future__ import annotations

import logging

from .common import _Output
from .jpeg import _jpeg
from .png import _PNG_SIGNATURE, _png
from .webp import _webp

__all__ = ["LEVELS", "strip"]

log = logging.getLogger(__name__)

LEVELS = ("location", "all", "none")


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
