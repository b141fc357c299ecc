"""Pillow-compatible resizing from the Cython kernel, on several threads.

``resize(image, size, filter)`` returns the same pixels as
``image.resize(size, filter)`` for 8-bit L, LA, RGB and RGBA images with the
box, bilinear, bicubic and Lanczos filters (the kernel follows Pillow's
fixed-point conventions, premultiplies LA/RGBA like Pillow does, and picks
the pass order of the installed Pillow).  The work runs without the GIL,
split by rows over ``threads`` OpenMP threads.

Every argument is checked here before C sees it.
"""
from __future__ import annotations

import os
from numbers import Real

from PIL import Image

# the package's __init__ has set OMP_WAIT_POLICY before this loads libgomp
# (see pastefile.ext.ensure_openmp_policy)
from pastefile.ext import _resample
from pastefile.ext.geometry import MAX_SIDE, check_side

__all__ = ["FILTERS", "MAX_SIDE", "MAX_THREADS", "MODES", "check_threads", "default_threads", "resize"]

MODES = ("L", "LA", "RGB", "RGBA")
FILTERS = ("box", "bilinear", "bicubic", "lanczos")
MAX_THREADS = 256

# The kernel's filter codes, by name and by Pillow's Resampling value.
_BY_NAME = {name: code for code, name in enumerate(FILTERS)}
_BY_PILLOW = {
    Image.Resampling.BOX: 0,
    Image.Resampling.BILINEAR: 1,
    Image.Resampling.BICUBIC: 2,
    Image.Resampling.LANCZOS: 3,
}


def _pillow_major() -> int:
    try:
        return int(Image.__version__.split(".")[0])
    except (AttributeError, ValueError):
        return 0


# Pillow 13 runs the vertical pass first when the height shrinks much more
# than the width; earlier releases always start with the horizontal pass.
# Following the installed release keeps the bytes identical to its resize().
_ORDER = 0 if _pillow_major() >= 13 else 1


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _filter_code(filter) -> int:
    if isinstance(filter, str):
        code = _BY_NAME.get(filter.lower())
        if code is None:
            raise ValueError(f"filter must be one of {', '.join(FILTERS)}, got {filter!r}")
        return code
    if isinstance(filter, int) and not isinstance(filter, bool):
        try:
            return _BY_PILLOW[Image.Resampling(filter)]
        except (ValueError, KeyError):
            pass
        raise ValueError(
            "filter must be Image.Resampling.BOX, BILINEAR, BICUBIC or LANCZOS, "
            f"got {filter!r}"
        )
    raise TypeError(f"filter must be a name or an Image.Resampling, not {type(filter).__name__}")


def _box(box, width: int, height: int) -> tuple[float, float, float, float]:
    try:
        values = tuple(box)
    except TypeError:
        raise TypeError("box must be a sequence of four numbers") from None
    if len(values) != 4 or any(isinstance(v, bool) or not isinstance(v, Real) for v in values):
        raise TypeError("box must be four numbers (left, top, right, bottom)")
    x0, y0, x1, y1 = (float(v) for v in values)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"box {values} must be non-empty and inside the {width}x{height} image")
    return x0, y0, x1, y1


def check_threads(threads) -> int:
    """A kernel's thread count: None means every CPU available."""
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int, not {type(threads).__name__}")
    if not 1 <= threads <= MAX_THREADS:
        raise ValueError(f"threads must be between 1 and {MAX_THREADS}, got {threads}")
    return threads


def resize(
    image: Image.Image,
    size: tuple[int, int],
    filter: str | int = "bicubic",
    *,
    box: tuple[float, float, float, float] | None = None,
    threads: int | None = None,
) -> Image.Image:
    """``image.resize(size, filter, box)`` computed by the Cython kernel.

    ``filter`` is ``"box"``, ``"bilinear"``, ``"bicubic"`` or ``"lanczos"``
    (or the matching ``Image.Resampling`` member); ``box`` is the source
    region, as in Pillow; ``threads`` defaults to every CPU available.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL.Image.Image, not {type(image).__name__}")
    if image.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {image.mode!r}")
    if image.width < 1 or image.height < 1:
        raise ValueError("the image is empty")
    try:
        width, height = size
    except (TypeError, ValueError):
        raise TypeError("size must be a (width, height) pair") from None
    width = check_side("width", width)
    height = check_side("height", height)
    code = _filter_code(filter)
    threads = check_threads(threads)
    full = (0.0, 0.0, float(image.width), float(image.height))
    region = full if box is None else _box(box, image.width, image.height)
    if (width, height) == image.size and region == full:
        return image.copy()
    return _resample.resize(image, width, height, code, *region, threads=threads, order=_ORDER)
