"""Parsing request parameters into clear 400 errors.

Integers are plain ASCII decimals of a bounded length: Python's ``int()``
would also take ``1_000``, full-width or Arabic-Indic digits and numbers of
thousands of digits, none of which a link or a form ever means.
"""
from __future__ import annotations

import re

from pastefile.core import InvalidRequest

_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
# every value must fit a signed 64-bit database integer
INT_MAX = (1 << 63) - 1
MAX_TEXT = 64  # the longest choice (fit, format) worth reading
MAX_SIGNATURE = 128


def _shown(raw) -> str:
    return repr(str(raw)[:40])


def int_param(params, name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    text = str(raw).strip()
    if not _INTEGER.fullmatch(text):
        raise InvalidRequest(f"{name} must be an integer, got {_shown(raw)}")
    value = int(text)
    if abs(value) > INT_MAX:
        raise InvalidRequest(f"{name} must be an integer between {-INT_MAX} and {INT_MAX}")
    return value


def size_params(params) -> tuple[int | None, int | None]:
    return int_param(params, "w"), int_param(params, "h")


def choice_param(params, name: str) -> str | None:
    """A short keyword (``fit``, ``format``); the core checks the choices."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_TEXT or not raw.isascii() or not raw.isprintable():
        raise InvalidRequest(f"{name} must be a short keyword, got {_shown(raw)}")
    return raw


def signature_param(params) -> str | None:
    """``sig``: a signature is ASCII hex, so anything else can never match.

    It is passed on as an empty string, which the core refuses (403) when
    links must be signed and ignores otherwise, as it would a wrong one.
    """
    raw = params.get("sig")
    if raw is None:
        return None
    if len(raw) > MAX_SIGNATURE or not raw.isascii() or not raw.isalnum():
        return ""
    return raw
