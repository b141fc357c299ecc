"""pytest-benchmark suites for pastefile.ext.phash against imagehash and the NumPy reference.

The input is a decoded 12-megapixel JPEG (4000x3000 RGB).  imagehash's
``phash`` (``convert("L")``, Lanczos to 32x32, scipy DCT) is the yardstick
(the report's baseline) when it is installed;
``pastefile.ext.reference.phash`` (the same steps with an integer DCT in
NumPy) always runs.  Every run checks its hash, so
``--benchmark-disable`` makes this a quick correctness pass.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pastefile.ext import reference
from pastefile.ext.phash import dhash, phash, row_step

SIZE = (4000, 3000)


@pytest.fixture(scope="module")
def photo():
    """Smooth shapes plus sensor-like noise, through a JPEG round trip."""
    rng = np.random.default_rng(7)
    w, h = SIZE
    y, x = np.mgrid[0 : h // 8, 0 : w // 8].astype(np.float32) * 8
    planes = [
        128 + 90 * np.sin(x / 410 + 1.3 * b) * np.cos(y / 270 - b) + 30 * np.sin((x + y) / 37)
        for b in range(3)
    ]
    small = Image.fromarray(np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8), "RGB")
    base = np.asarray(small.resize(SIZE, Image.Resampling.BICUBIC), dtype=np.int16)
    noisy = base + rng.integers(-12, 13, base.shape, dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB").save(buf, "JPEG", quality=90)
    buf.seek(0)
    image = Image.open(buf)
    image.load()
    return image


@pytest.fixture(scope="module")
def expected(photo):
    return {
        "phash": reference.phash(photo),
        "phash-fast": reference.phash(photo, row_step(photo.height, 32)),
        "dhash": reference.dhash(photo),
    }


@pytest.mark.benchmark(group="phash-12MP")
def test_reference_imagehash_phash(benchmark, photo, expected):
    import imagehash  # a test extra: missing, the test fails
    value = benchmark(imagehash.phash, photo)
    # same thumbnail, float DCT: equal unless coefficients tie at the median
    assert bin(int(str(value), 16) ^ expected["phash"]).count("1") <= 2


@pytest.mark.benchmark(group="phash-12MP")
def test_numpy_fallback_phash(benchmark, photo, expected):
    assert benchmark(reference.phash, photo) == expected["phash"]


@pytest.mark.benchmark(group="phash-12MP")
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_phash(benchmark, photo, expected, threads):
    assert benchmark(phash, photo, threads=threads) == expected["phash"]


@pytest.mark.benchmark(group="phash-12MP")
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_phash_fast(benchmark, photo, expected, threads):
    assert benchmark(phash, photo, fast=True, threads=threads) == expected["phash-fast"]


@pytest.mark.benchmark(group="dhash-12MP")
def test_reference_imagehash_dhash(benchmark, photo, expected):
    import imagehash  # a test extra: missing, the test fails
    assert int(str(benchmark(imagehash.dhash, photo)), 16) == expected["dhash"]


@pytest.mark.benchmark(group="dhash-12MP")
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_dhash(benchmark, photo, expected, threads):
    assert benchmark(dhash, photo, threads=threads) == expected["dhash"]
