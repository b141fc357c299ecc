"""Perceptual image hashes (64-bit DCT pHash and dHash) from the Cython kernels.

The thumbnail behind each hash is the image's luminance resampled with
Lanczos by ``pastefile.ext._resample`` (32x32 for pHash, 9x8 for dHash), the
same thumbnail imagehash makes with ``convert("L").resize(...)`` on Pillow
13 or later, so ``phash(image)`` equals ``int(str(imagehash.phash(image)), 16)``
unless two DCT coefficients tie at the median within floating-point noise
(the DCT here is exact integer arithmetic).  Hashes are stable across Pillow
releases: the pass order is fixed, not taken from the installed Pillow.

``fast=True`` reads one source row in ``row_step(height, size)`` (at least
eight sampled rows per thumbnail row), a fraction of the memory traffic for
big images; the hash can differ from the full one in a few bits.
"""
from __future__ import annotations

from PIL import Image

# resample first: it sets the OpenMP wait policy before the kernels load
from pastefile.ext.resample import check_threads  # isort: skip
from pastefile.ext import _phash  # isort: skip

__all__ = ["dhash", "hamming_distance", "phash", "row_step"]

_DIRECT_MODES = ("L", "LA", "RGB", "RGBA")
_MASK64 = (1 << 64) - 1


def row_step(height: int, thumbnail_height: int) -> int:
    """Rows skipped per row read by ``fast=True``: eight read rows or more per output row."""
    return max(1, height // (8 * thumbnail_height))


def _prepare(image, fast, threads) -> tuple[Image.Image, int, int]:
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL.Image.Image, not {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise ValueError("the image is empty")
    if not isinstance(fast, bool):
        raise TypeError("fast must be True or False")
    threads = check_threads(threads)
    if image.mode not in _DIRECT_MODES:
        # palette, 1-bit, CMYK, 16/32-bit...: Pillow's own grey conversion, as imagehash
        image = image.convert("L")
    return image, threads, 1


def phash(image: Image.Image, *, fast: bool = False, threads: int | None = None) -> int:
    """64-bit DCT perceptual hash (imagehash's ``phash`` with hash_size=8)."""
    image, threads, step = _prepare(image, fast, threads)
    if fast:
        step = row_step(image.height, _phash.PHASH_SIZE)
    return _phash.phash(image, row_step=step, threads=threads)


def dhash(image: Image.Image, *, fast: bool = False, threads: int | None = None) -> int:
    """64-bit difference hash (imagehash's ``dhash`` with hash_size=8)."""
    image, threads, step = _prepare(image, fast, threads)
    if fast:
        step = row_step(image.height, _phash.DHASH_HEIGHT)
    return _phash.dhash(image, row_step=step, threads=threads)


def hamming_distance(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    for name, value in (("a", a), ("b", b)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if not 0 <= value <= _MASK64:
            raise ValueError(f"{name} must be an unsigned 64-bit value")
    return (a ^ b).bit_count()
