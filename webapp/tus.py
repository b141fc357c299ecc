"""The tus 1.0.0 protocol's request headers, read the same way by the PATCH
view and by the channel that appends a PATCH body while it arrives."""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from pastefile.core import InvalidRequest, PasteFileError
from pastefile.core.urls import TUS

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration,concatenation"
CHECKSUM_ALGORITHMS = "sha1,md5,sha256"
OFFSET_TYPE = "application/offset+octet-stream"

Header = Callable[[str], "str | None"]


class PreconditionFailed(PasteFileError):
    status = 412
    title = "Precondition failed"


class UnsupportedMedia(PasteFileError):
    status = 415
    title = "Unsupported media type"


def check_version(header: Header) -> None:
    """Every tus request but OPTIONS names the version it speaks."""
    if header("Tus-Resumable") != VERSION:
        raise PreconditionFailed(f"this server speaks tus {VERSION} (send Tus-Resumable: {VERSION})")


def int_header(header: Header, name: str) -> int | None:
    value = header(name)
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 19:
        raise InvalidRequest(f"{name} must be a non-negative integer")
    return int(value)


def checksum(header: Header) -> tuple[str, bytes] | None:
    value = header("Upload-Checksum")
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS.split(","):
        raise InvalidRequest(f"Upload-Checksum algorithm {algorithm!r} is not one of {CHECKSUM_ALGORITHMS}")
    try:
        return algorithm, base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise InvalidRequest("Upload-Checksum must be 'algorithm base64digest'") from None


def is_offset_body(content_type: str | None) -> bool:
    return (content_type or "").partition(";")[0].strip().lower() == OFFSET_TYPE


def patch_arguments(header: Header) -> tuple[int, int | None, tuple[str, bytes] | None]:
    """(Upload-Offset, Upload-Length, checksum) of a PATCH, or the error its
    headers earn (412, 415, 400)."""
    check_version(header)
    if not is_offset_body(header("Content-Type")):
        raise UnsupportedMedia(f"a PATCH body must be {OFFSET_TYPE}")
    offset = int_header(header, "Upload-Offset")
    if offset is None:
        raise InvalidRequest("Upload-Offset is missing")
    return offset, int_header(header, "Upload-Length"), checksum(header)


def tus_upload_id(path: str) -> str | None:
    """The id in ``/files/{id}``, else None."""
    if not path.startswith(TUS):
        return None
    rest = path[len(TUS):]
    return rest if rest and "/" not in rest else None
