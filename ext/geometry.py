"""Crop-resize geometry (cropresize2 semantics) from the Cython kernel."""
from __future__ import annotations

from typing import NamedTuple

from pastefile.ext._geometry import crop_resize_geometry as _geometry

__all__ = ["Geometry", "crop_resize_geometry"]

# Dimensions beyond this are refused before they reach C (int64 products stay exact).
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


def _side(name: str, value, minimum: int) -> int:
    if value is None:
        value = 0
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
    src_w = _side("src_w", src_w, 1)
    src_h = _side("src_h", src_h, 1)
    w = _side("w", w, 0)
    h = _side("h", h, 0)
    if w == 0 and h == 0:
        raise ValueError("give a width or a height")
    return Geometry(*_geometry(src_w, src_h, w, h, bool(upscale)))
