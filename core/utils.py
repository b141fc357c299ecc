"""Small helpers shared by the core and its callers."""
from __future__ import annotations

import re
import unicodedata
import uuid

from .errors import InvalidRequest
from .models import FILENAME_MAX

_UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB")
_EXT_RE = re.compile(r"^[A-Za-z0-9]{1,10}$")
FILEHASH_RE = re.compile(r"^[0-9a-f]{32}(\.[A-Za-z0-9]{1,10})?$")


# an upload's lifetime: seconds, or a number with one of these units
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"([+-]?[0-9]{1,19})([smhdw]?)")


def parse_expiry(raw: object, limit: int) -> int | None:
    """``expires`` as an upload gives it (a form field, a query parameter,
    the CLI): seconds (``3600``) or a duration (``90s``, ``30m``, ``1h``,
    ``7d``, ``2w``), between 1 second and ``limit`` (``max_expiry``).  None
    when absent or empty; InvalidRequest (400) naming the bounds otherwise."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        seconds = raw
    else:
        text = str(raw).strip().lower()
        if not text:
            return None
        match = _DURATION.fullmatch(text)
        if match is None:
            shown = repr(str(raw)[:40])
            raise InvalidRequest(
                f"expires must be a number of seconds or a duration like 30m, 1h, 7d, 2w, got {shown}"
            )
        seconds = int(match.group(1)) * DURATION_UNITS.get(match.group(2), 1)
    if not 1 <= seconds <= limit:
        raise expiry_out_of_bounds(limit)
    return seconds


def expiry_out_of_bounds(limit: int) -> InvalidRequest:
    return InvalidRequest(f"expires must be a number of seconds between 1 and {limit} (or a duration like 1h, 7d)")


def humanize_bytes(num: int, precision: int = 2) -> str:
    """``100 -> '100.00 bytes'``, ``34500 -> '33.00 kB'``, ``34500000 -> '32.00 MB'``.

    The unit is the largest power of 1024 not above the value, and the
    quotient is truncated to an integer before formatting (34500 is 33.00 kB,
    not 33.69 kB).
    """
    if num < 0:
        raise ValueError("size must not be negative")
    if num == 1:
        return "1 byte"
    factor = 0
    while factor + 1 < len(_UNITS) and num >= 1 << (10 * (factor + 1)):
        factor += 1
    return f"{num // (1 << (10 * factor)):.{precision}f} {_UNITS[factor]}"


def clean_filename(name: str | None) -> str:
    """The original name, minus directories and control characters, at most 255 chars."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if name in ("", ".", ".."):
        return "file"
    if len(name) > FILENAME_MAX:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: FILENAME_MAX - len(ext) - 1] + "." + ext
        else:
            name = name[:FILENAME_MAX]
    return name


def extension_of(filename: str) -> str:
    """The lower-cased extension kept in the filehash (uuid4 hex + '.' + extension), or "" if none fits."""
    _, dot, suffix = filename.rpartition(".")
    if dot and _EXT_RE.match(suffix):
        return suffix.lower()
    return ""


def new_filehash(filename: str) -> str:
    ext = extension_of(filename)
    return f"{uuid.uuid4().hex}.{ext}" if ext else uuid.uuid4().hex


def is_filehash(value: str) -> bool:
    return bool(FILEHASH_RE.match(value))
