"""Errors of the core API.  Each carries the HTTP status a web front should use."""
from __future__ import annotations


class PasteFileError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(PasteFileError):
    status = 404
    title = "Not found"


class InvalidRequest(PasteFileError):
    status = 400
    title = "Bad request"


class EmptyFile(InvalidRequest):
    pass


class TooLarge(PasteFileError):
    status = 413
    title = "File too large"


class UnsupportedType(PasteFileError):
    status = 415
    title = "Unsupported file type"


class Forbidden(PasteFileError):
    status = 403
    title = "Forbidden"


class Unprocessable(PasteFileError):
    status = 422
    title = "Cannot process this file"


class Busy(PasteFileError):
    status = 503
    title = "Busy"


class Unavailable(PasteFileError):
    """Something the service needs (the database) cannot be reached now; the
    same request may succeed in a few seconds."""

    status = 503
    title = "Service unavailable"


class InsufficientStorage(PasteFileError):
    """The blob store has no room (ENOSPC, EDQUOT); nothing was stored."""

    status = 507
    title = "Insufficient storage"


class Conflict(PasteFileError):
    """The request does not fit the resource's state now (a resumable
    upload's offset is another)."""

    status = 409
    title = "Conflict"


class Gone(PasteFileError):
    status = 410
    title = "Gone"


class Locked(PasteFileError):
    """Another request holds the resource (an upload being appended to)."""

    status = 423
    title = "Locked"


class ChecksumMismatch(PasteFileError):
    """A body does not match the checksum it came with (tus: 460)."""

    status = 460
    title = "Checksum mismatch"
