"""Parsing request parameters into clear 400 errors."""
from __future__ import annotations

from pastefile.core import InvalidRequest


def int_param(params, name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer, got {str(raw)[:40]!r}") from None


def size_params(params) -> tuple[int | None, int | None]:
    return int_param(params, "w"), int_param(params, "h")
