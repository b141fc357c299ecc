"""Crop-resize geometry (cropresize2 semantics) from the Cython kernel."""
from __future__ import annotations

from typing import NamedTuple

from pastefile.ext._geometry import crop_resize_geometry as _geometry

__all__ = ["MAX_SIDE", "Geometry", "check_side", "crop_resize_geometry"]

# Dimensions beyond this are refused before they reach C (int64 products stay
# exact); the one limit for every kernel taking a width or height.
MAX_SIDE = 1 << 20


class Geometry(NamedTuple):
    left: int
    top: int
    right: int
    bottom: int
    out_w: int
    out_h: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)

    @property
    def size(self) -> tuple[int, int]:
        return (self.out_w, self.out_h)


def check_side(name: str, value, minimum: int = 1) -> int:
    """A width or height for a kernel: an int from ``minimum`` to MAX_SIDE."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not minimum <= value <= MAX_SIDE:
        raise ValueError(f"{name} must be between {minimum} and {MAX_SIDE}, got {value}")
    return value


def crop_resize_geometry(src_w: int, src_h: int, w: int | None, h: int | None, upscale: bool = False) -> Geometry:
    """Crop box in source pixels and the output size for a (w, h) request.

    The box is the largest centred region with the target's aspect ratio; a
    side of 0 or None follows the source aspect ratio.  Without ``upscale``
    the output never exceeds the box.
    """
    src_w, src_h, w, h = (0 if v is None else v for v in (src_w, src_h, w, h))  # None reads as 0
    src_w = check_side("src_w", src_w)
    src_h = check_side("src_h", src_h)
    w = check_side("w", w, 0)
    h = check_side("h", h, 0)
    if w == 0 and h == 0:
        raise ValueError("give a width or a height")
    return Geometry(*_geometry(src_w, src_h, w, h, bool(upscale)))
