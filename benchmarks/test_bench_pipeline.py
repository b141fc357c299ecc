"""Decode-to-encode rendition benchmarks: ``pastefile.core.imaging.render``
against the same pipeline with Pillow's resize, naive Pillow and pyvips.

The source is one synthetic 12-megapixel (4000x3000) photo-like picture:
smooth gradients and shapes with per-pixel noise of +-10 levels, made once
per session and written to a temporary directory as a PNG (default
compression, about 23 MB) and as a quality-90 JPEG (about 2.7 MB).  The
noise sets the files' entropy, which is what decoding costs: a JPEG of the
same picture without noise is a quarter of the size and decodes about three
times faster.

* ``pipeline-png-12MP-to-800x600``: PNG in, PNG 800x600 out;
  ``render(..., resampler="pillow")`` (the same pipeline with
  ``Image.resize``) is the baseline.  Target: the kernel >= 1.5x.
* ``pipeline-jpeg-12MP-to-320x240``: JPEG in, JPEG 320x240 out, two
  baselines: naive Pillow (open, ``resize((320, 240))``, save) -- target
  >= 15x -- and pyvips ``thumbnail_buffer(..., crop="centre")`` then
  ``jpegsave_buffer()`` -- target: no slower (>= 1.0x).

pyvips (and Debian's libvips) is a yardstick only: its benchmark fails, not
skips, when it cannot load.  Every round checks the output's format and size;
the PNG renditions must have exactly the pixels of Pillow's Lanczos reduction
of the picture, the thumbnails must match the source at 80x60 (box
averages).  So ``--benchmark-disable`` makes this a quick correctness pass.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pastefile.core.imaging import RenditionSpec, render

SOURCE = (4000, 3000)
PNG_GROUP = "pipeline-png-12MP-to-800x600"
JPEG_GROUP = "pipeline-jpeg-12MP-to-320x240"
PNG_SPEC = RenditionSpec(width=800, height=600, fit="crop", format=None, quality=None)
THUMB = (320, 240)
THUMB_SPEC = RenditionSpec(width=THUMB[0], height=THUMB[1], fit="crop", format=None, quality=None)
# thumbnails are compared with the source at 80x60 (box averages): mean
# absolute difference in levels allowed.  Measured: about 1.3-1.9 for the
# three pipelines; a 4-pixel shift of the 320x240 picture gives about 13.
OVERVIEW = (80, 60)
CLOSE = 3.0


def synthetic_photo(size=SOURCE, seed=12) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0 : h // 8, 0 : w // 8].astype(np.float32) * 8
    planes = [
        128 + 80 * np.sin(x / 530 + 1.7 * b) * np.cos(y / 310 - b) + 25 * np.sin((x - 2 * y) / 61 + b)
        + 40 * (x / w - 0.5)
        for b in range(3)
    ]
    small = Image.fromarray(np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8), "RGB")
    base = np.asarray(small.resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
    noisy = base + rng.integers(-10, 11, base.shape, dtype=np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="session")
def sources(tmp_path_factory):
    """The picture written once per session as PNG and JPEG, with what to check results against:
    {"png": bytes, "jpeg": bytes, "png_800x600": pixels, "jpeg_overview": pixels}."""
    directory = tmp_path_factory.mktemp("pipeline")
    photo = synthetic_photo()
    photo.save(directory / "photo.png", "PNG")
    photo.save(directory / "photo.jpg", "JPEG", quality=90)
    jpeg = (directory / "photo.jpg").read_bytes()
    with Image.open(io.BytesIO(jpeg)) as decoded:
        overview = _overview(decoded)
    return {
        "png": (directory / "photo.png").read_bytes(),
        "jpeg": jpeg,
        # the PNG is lossless and 4:3 crops nothing: both resamplers must give these pixels
        "png_800x600": np.asarray(photo.resize((800, 600), Image.Resampling.LANCZOS), dtype=np.int16),
        "jpeg_overview": overview,
    }


def _overview(img: Image.Image) -> np.ndarray:
    """An 80x60 box average: the picture's layout without JPEG noise or filter detail."""
    return np.asarray(img.resize(OVERVIEW, Image.Resampling.BOX), dtype=np.int16)


def _decoded(data: bytes, fmt: str, size: tuple[int, int]) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert (img.format, img.size, img.mode) == (fmt, size, "RGB")
    img.load()
    return img


def _check_thumb(data: bytes, sources) -> None:
    diff = np.abs(_overview(_decoded(data, "JPEG", THUMB)) - sources["jpeg_overview"]).mean()
    assert diff < CLOSE, f"mean difference {diff:.2f} levels from the source's 80x60 overview"


def _render(data: bytes, spec: RenditionSpec, resampler: str):
    return render(io.BytesIO(data), spec, resampler=resampler)


# -- PNG 12 MP to 800x600 -------------------------------------------------------------


@pytest.mark.benchmark(group=PNG_GROUP)
@pytest.mark.parametrize("resampler", ["pillow", "kernel"], ids=["reference_render_pillow_resize", "render_kernel"])
def test_png_pipeline(benchmark, sources, resampler):
    result = benchmark(_render, sources["png"], PNG_SPEC, resampler)
    assert (result.mimetype, result.width, result.height) == ("image/png", 800, 600)
    pixels = np.asarray(_decoded(result.data, "PNG", (800, 600)), dtype=np.int16)
    assert np.array_equal(pixels, sources["png_800x600"])


# -- JPEG 12 MP to a 320x240 thumbnail ----------------------------------------------------


def pillow_naive_thumbnail(data: bytes) -> bytes:
    img = Image.open(io.BytesIO(data))
    small = img.resize(THUMB)
    out = io.BytesIO()
    small.save(out, "JPEG")
    return out.getvalue()


def pyvips_thumbnail(pyvips, data: bytes) -> bytes:
    return pyvips.Image.thumbnail_buffer(data, THUMB[0], height=THUMB[1], crop="centre").jpegsave_buffer()


@pytest.mark.benchmark(group=JPEG_GROUP)
def test_jpeg_thumbnail_reference_pillow_naive(benchmark, sources):
    _check_thumb(benchmark(pillow_naive_thumbnail, sources["jpeg"]), sources)


@pytest.mark.benchmark(group=JPEG_GROUP)
def test_jpeg_thumbnail_reference_pyvips(benchmark, sources):
    import pyvips  # a missing pyvips or libvips fails here: no skip

    _check_thumb(benchmark(pyvips_thumbnail, pyvips, sources["jpeg"]), sources)


@pytest.mark.benchmark(group=JPEG_GROUP)
def test_jpeg_thumbnail_render_kernel(benchmark, sources):
    result = benchmark(_render, sources["jpeg"], THUMB_SPEC, "kernel")
    assert (result.mimetype, result.width, result.height) == ("image/jpeg", *THUMB)
    _check_thumb(result.data, sources)
