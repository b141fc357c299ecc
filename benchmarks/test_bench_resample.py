"""pytest-benchmark suites for pastefile.ext.resample against Pillow's Image.resize.

A 12-megapixel (4000x3000) RGB image shrunk to 800x600 with the same filter,
by Pillow and by the kernel on one and on two threads.  Every run checks its
output against Pillow's, so ``--benchmark-disable`` makes this a quick
correctness pass.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pastefile.ext.resample import resize

SOURCE = (4000, 3000)
TARGET = (800, 600)
FILTERS = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


@pytest.fixture(scope="module")
def photo():
    """Smooth gradients with noise on top: the cost does not depend on content."""
    rng = np.random.default_rng(2024)
    w, h = SOURCE
    y, x = np.mgrid[0 : h // 8, 0 : w // 8].astype(np.float32) * 8
    base = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], axis=-1)
    small = Image.fromarray(base.astype(np.uint8), "RGB")
    big = np.asarray(small.resize(SOURCE, Image.Resampling.BILINEAR), dtype=np.int16)
    noisy = big + rng.integers(-12, 13, big.shape, dtype=np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def expected(photo):
    return {name: photo.resize(TARGET, value).tobytes() for name, value in FILTERS.items()}


def _by_filter():
    return [
        pytest.param(name, marks=pytest.mark.benchmark(group=f"resize-12MP-{name}"), id=name)
        for name in FILTERS
    ]


@pytest.mark.parametrize("name", _by_filter())
def test_pillow_resize(benchmark, photo, expected, name):
    out = benchmark(photo.resize, TARGET, FILTERS[name])
    assert out.tobytes() == expected[name]


@pytest.mark.parametrize("name", _by_filter())
def test_kernel_one_thread(benchmark, photo, expected, name):
    out = benchmark(resize, photo, TARGET, name, threads=1)
    assert out.tobytes() == expected[name]


@pytest.mark.parametrize("name", _by_filter())
def test_kernel_two_threads(benchmark, photo, expected, name):
    out = benchmark(resize, photo, TARGET, name, threads=2)
    assert out.tobytes() == expected[name]
