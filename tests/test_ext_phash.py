"""Tests for pastefile.ext.phash (dHash and DCT pHash from the Cython kernels).

The reference is ``pastefile.ext.reference``: Pillow's ``convert("L")`` and
Lanczos ``resize`` for the thumbnail, NumPy for the integer DCT, the median
and the comparisons.  Hashes must be equal, bit for bit.

The kernels resample in Pillow 13's pass order whatever Pillow is installed;
Pillow before 13 always runs the horizontal pass first.  So the reference
thumbnail here is made of two one-axis Pillow resizes in Pillow 13's order
(:func:`two_pass`), which gives Pillow 13's bytes on every Pillow this
package accepts; that this decomposition is the installed Pillow's own
resize, in its own order, is checked too.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pastefile.ext import _phash, reference
from pastefile.ext.phash import dhash, hamming_distance, phash, row_step

PILLOW_13 = int(Image.__version__.split(".")[0]) >= 13


def vertical_first(size: tuple[int, int], out: tuple[int, int]) -> bool:
    """Pillow 13's pass order: vertical first when the height shrinks by
    more than twice as many pixels as the width."""
    shrink_w, shrink_h = size[0] - out[0], size[1] - out[1]
    return shrink_h > 0 and shrink_h > 2 * shrink_w


def two_pass(image: Image.Image, out: tuple[int, int], resample=Image.Resampling.LANCZOS,
             v_first: bool | None = None) -> Image.Image:
    """``image.resize(out, resample)`` as two one-axis resizes (each rounds to
    8 bits, as Pillow's passes do), in Pillow 13's order unless ``v_first``."""
    (w, h), (tw, th) = image.size, out
    if v_first is None:
        v_first = vertical_first(image.size, out)
    if v_first:
        return image.resize((w, th), resample).resize(out, resample)
    return image.resize((tw, h), resample).resize(out, resample)


def reference_thumbnail(image: Image.Image, out: tuple[int, int], row_step: int = 1) -> np.ndarray:
    """reference.gray_thumbnail, its resize in Pillow 13's pass order."""
    gray = np.asarray(image.convert("L"))
    if row_step > 1:
        count = gray.shape[0] // row_step
        gray = gray[row_step // 2 : row_step // 2 + count * row_step : row_step]
    return np.asarray(two_pass(Image.fromarray(np.ascontiguousarray(gray), "L"), out))


def reference_phash(image: Image.Image, row_step: int = 1) -> int:
    return reference.phash_of_thumbnail(reference_thumbnail(image, (32, 32), row_step))


def reference_dhash(image: Image.Image, row_step: int = 1) -> int:
    return reference.dhash_of_thumbnail(reference_thumbnail(image, (9, 8), row_step))


def random_image(mode: str, size: tuple[int, int], seed: int = 0, smooth: bool = False):
    rng = np.random.default_rng(seed)
    w, h = size
    bands = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    if smooth:
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        fx, fy, phase = rng.uniform(0.5, 4, 3)
        planes = [
            128 + 100 * np.sin(x / max(w, 1) * fx * 3 + phase + b) * np.cos(y / max(h, 1) * fy * 3 - b)
            for b in range(bands)
        ]
        data = np.clip(np.stack(planes, axis=-1) + rng.normal(0, 6, (h, w, bands)), 0, 255)
        data = data.astype(np.uint8)
    else:
        data = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
    return Image.frombytes(mode, size, data.tobytes())


MODES = ("L", "LA", "RGB", "RGBA")
SIZES = [(1, 1), (3, 2), (9, 8), (32, 32), (33, 31), (640, 480), (50, 700), (700, 50), (1, 300)]


# ---------------------------------------------------------------------------
# Thumbnails
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES + [(300, 900), (40, 200), (200, 40)])
def test_two_pass_reference_is_pillows_resize(size):
    """The reference's decomposition, in the installed Pillow's own order,
    is that Pillow's resize; in Pillow 13's order, on Pillow 13, too."""
    image = random_image("L", size, seed=size[0] * 31 + size[1])
    for out in ((32, 32), (9, 8), (38, 20)):
        for resample in (Image.Resampling.LANCZOS, Image.Resampling.BICUBIC):
            installed = vertical_first(size, out) if PILLOW_13 else False
            expected = image.resize(out, resample).tobytes()
            assert two_pass(image, out, resample, v_first=installed).tobytes() == expected
            if PILLOW_13:
                assert two_pass(image, out, resample).tobytes() == expected


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", SIZES)
def test_thumbnail_is_pillows(mode, size):
    image = random_image(mode, size, seed=size[0] * 1000 + size[1])
    gray = image.convert("L")
    for thumb in ((32, 32), (9, 8)):
        expected = two_pass(gray, thumb).tobytes()
        assert _phash.gray_thumbnail(image, *thumb, threads=2) == expected
        assert _phash.gray_thumbnail(image, *thumb, zero_copy=False) == expected


@pytest.mark.parametrize("mode", MODES)
def test_sampled_thumbnail_matches_reference(mode):
    image = random_image(mode, (300, 900), seed=4)
    for step in (2, 3, 7, 11, 900):
        ours = _phash.gray_thumbnail(image, 32, 32, row_step=step, threads=2)
        assert ours == reference_thumbnail(image, (32, 32), step).tobytes()


def test_thumbnail_filters_and_threads_agree():
    image = random_image("RGB", (400, 300), seed=8)
    one = _phash.gray_thumbnail(image, 32, 32, threads=1)
    for threads in (2, 3, 5):
        assert _phash.gray_thumbnail(image, 32, 32, threads=threads) == one
    gray = image.convert("L")
    for code, value in ((0, Image.Resampling.BOX), (2, Image.Resampling.BICUBIC)):
        assert _phash.gray_thumbnail(image, 40, 30, filter=code) == gray.resize((40, 30), value).tobytes()


# ---------------------------------------------------------------------------
# Hashes of thumbnails
# ---------------------------------------------------------------------------


def test_dct_table():
    assert _phash.dct_table() == reference.dct_table()
    table = reference.dct_table()
    assert table[0] == [1 << _phash.DCT_BITS] * 32


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1024, max_size=1024))
def test_phash_of_thumbnail(pixels):
    assert _phash.phash_of_thumbnail(pixels) == reference.phash_of_thumbnail(
        np.frombuffer(pixels, dtype=np.uint8)
    )


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=72, max_size=72))
def test_dhash_of_thumbnail(pixels):
    assert _phash.dhash_of_thumbnail(pixels) == reference.dhash_of_thumbnail(
        np.frombuffer(pixels, dtype=np.uint8)
    )


def test_ties_are_decided_exactly():
    # a flat thumbnail: every AC coefficient is exactly 0, only DC is above the median
    assert _phash.phash_of_thumbnail(bytes([77]) * 1024) == 1 << 63
    assert _phash.dhash_of_thumbnail(bytes([77]) * 72) == 0
    ramp = bytes(range(9)) * 8
    assert _phash.dhash_of_thumbnail(ramp) == (1 << 64) - 1
    with pytest.raises(ValueError):
        _phash.phash_of_thumbnail(bytes(1023))
    with pytest.raises(ValueError):
        _phash.dhash_of_thumbnail(bytes(73))


# ---------------------------------------------------------------------------
# Whole images
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", SIZES)
def test_hashes_match_reference(mode, size):
    for smooth in (False, True):
        image = random_image(mode, size, seed=size[0] + 7 * size[1], smooth=smooth)
        assert phash(image) == reference_phash(image)
        assert dhash(image) == reference_dhash(image)
        assert phash(image, fast=True) == reference_phash(image, row_step(size[1], 32))
        assert dhash(image, fast=True) == reference_dhash(image, row_step(size[1], 8))


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    size=st.tuples(st.integers(1, 200), st.integers(1, 200)),
    seed=st.integers(0, 2**16),
    smooth=st.booleans(),
    threads=st.integers(1, 3),
)
def test_random_images_match_reference(mode, size, seed, smooth, threads):
    image = random_image(mode, size, seed, smooth)
    assert phash(image, threads=threads) == reference_phash(image)
    assert dhash(image, threads=threads) == reference_dhash(image)


def test_other_modes_are_converted_like_imagehash():
    rgb = random_image("RGB", (120, 90), seed=3, smooth=True)
    for mode in ("P", "1", "CMYK", "I", "I;16"):
        image = rgb.convert(mode)
        assert phash(image) == reference_phash(image)
        assert dhash(image) == reference_dhash(image)


def test_matches_imagehash():
    import imagehash  # a test extra: missing, the test fails

    # imagehash resizes with the installed Pillow; 640x480 to 32x32 or 9x8
    # runs the horizontal pass first in every Pillow, as the kernels do
    assert not vertical_first((640, 480), (32, 32)) and not vertical_first((640, 480), (9, 8))
    for seed in range(6):
        image = random_image("RGB", (640, 480), seed=seed, smooth=True)
        assert phash(image) == int(str(imagehash.phash(image)), 16)
        assert dhash(image) == int(str(imagehash.dhash(image)), 16)


def test_similar_images_hash_close():
    image = random_image("RGB", (800, 600), seed=21, smooth=True)
    shrunk = image.resize((400, 300), Image.Resampling.BICUBIC)
    assert hamming_distance(phash(image), phash(shrunk)) <= 6
    assert hamming_distance(phash(image), phash(image, fast=True)) <= 6
    other = random_image("RGB", (800, 600), seed=99, smooth=True)
    assert hamming_distance(phash(image), phash(other)) > 6


def test_row_step():
    assert row_step(3000, 32) == 11
    assert row_step(255, 32) == 1
    assert row_step(1, 8) == 1


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


def test_bad_arguments():
    image = Image.new("RGB", (10, 10))
    with pytest.raises(TypeError):
        phash(b"nope")
    with pytest.raises(ValueError):
        phash(Image.new("RGB", (0, 0)))
    with pytest.raises(TypeError):
        phash(image, fast=1)
    with pytest.raises(ValueError):
        dhash(image, threads=0)
    with pytest.raises(TypeError):
        dhash(image, threads=2.0)
    with pytest.raises(ValueError):
        _phash.gray_thumbnail(image, 0, 5)
    with pytest.raises(ValueError):
        _phash.gray_thumbnail(image, 5, 5, row_step=11)
    with pytest.raises(ValueError):
        _phash.gray_thumbnail(Image.new("P", (4, 4)), 5, 5)
    with pytest.raises(TypeError):
        hamming_distance(1.0, 2)
    with pytest.raises(ValueError):
        hamming_distance(-1, 2)
    with pytest.raises(ValueError):
        hamming_distance(1 << 64, 2)
    assert hamming_distance(0, (1 << 64) - 1) == 64
