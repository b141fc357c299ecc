"""Media types: what is accepted by default and how each is served.

The mimetype is always sniffed from the content (libmagic), never taken from
the client.
"""
from __future__ import annotations

import codecs

IMAGE_MIMES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "image/avif",
    "image/heic",
)
AUDIO_MIMES = (
    "audio/mpeg",
    "audio/ogg",
    "audio/flac",
    "audio/x-flac",
    "audio/wav",
    "audio/x-wav",
    "audio/mp4",
    "audio/x-m4a",
    "audio/aac",
    "audio/webm",
    "audio/opus",
)
VIDEO_MIMES = (
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "video/x-matroska",
    "video/x-msvideo",
    "video/mpeg",
)
DOCUMENT_MIMES = (
    "application/pdf",
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/json",
    "application/rtf",
    "text/rtf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/epub+zip",
)
ARCHIVE_MIMES = (
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
    "application/x-bzip2",
    "application/x-xz",
    "application/zstd",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "application/x-rar",
)

DEFAULT_ALLOWED_TYPES = IMAGE_MIMES + AUDIO_MIMES + VIDEO_MIMES + DOCUMENT_MIMES + ARCHIVE_MIMES

# Types a browser would execute or render as a document: never served inline.
ACTIVE_MIMES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-shockwave-flash",
    }
)

# Formats Pillow can decode and re-encode for crop-resize, with Pillow's name
# for each: the one table of image formats (core.imaging derives its own).
PILLOW_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
}
RESIZABLE_MIMES = frozenset(PILLOW_FORMATS)

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "application/pdf": "pdf",
    "text/plain": "txt",
}


def kind_of(mimetype: str) -> str:
    """A paste's ``type`` key: the major type for image, audio, video and text, else ``"binary"``."""
    major = mimetype.partition("/")[0]
    if major in ("image", "audio", "video", "text"):
        return major
    return "binary"


def is_allowed(mimetype: str, allowed: tuple[str, ...]) -> bool:
    if "*" in allowed or mimetype in allowed:
        return True
    major = mimetype.partition("/")[0]
    return f"{major}/*" in allowed


def is_active(mimetype: str) -> bool:
    return mimetype in ACTIVE_MIMES or mimetype.endswith("+xml")


def utf8_charset(head: bytes, complete: bool) -> str | None:
    """``"utf-8"`` when ``head`` (a text file's first bytes, or all of them
    when ``complete``) decodes as UTF-8, else None: libmagic names the type
    but not the encoding, and a charset is only worth sending when true.  A
    multi-byte character cut at the end of an incomplete head is allowed."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return None
    return "utf-8"
