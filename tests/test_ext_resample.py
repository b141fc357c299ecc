"""Tests for pastefile.ext.resample (the Cython resampling kernel).

The reference is Pillow's own ``Image.resize``.  The contract is a difference
of at most 1 per channel; for LA and RGBA the colour channels are compared
premultiplied by alpha (as the resampler itself works): where alpha is small,
dividing by it afterwards magnifies a one-step difference in the
premultiplied value up to 255, so the straight values say nothing there.
Re-premultiplying a straight value rounds down by up to one step, so the
premultiplied comparison allows 2.

The kernel reproduces Pillow's arithmetic (weights in double precision from
the same formulas and libm, the same fixed-point rounding and clipping, the
same premultiply/unpremultiply and pass order), so on the usual Pillow
builds the bytes are identical; ``test_identical_bytes`` checks that.
"""
from __future__ import annotations

import io
import os
import signal
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pastefile.ext import _resample
from pastefile.ext.resample import FILTERS, MODES, default_threads, resize

PILLOW_FILTERS = {
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
BANDS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}

# (source size, output size): degenerate shapes, up- and downscaling by large
# and odd factors, one axis only, and shapes where Pillow 13 runs the
# vertical pass first.
SIZES = [
    ((1, 1), (1, 2)),
    ((1, 1), (5, 3)),
    ((1, 9), (1, 4)),
    ((1, 9), (3, 20)),
    ((9, 1), (4, 1)),
    ((9, 1), (20, 3)),
    ((40, 1), (1, 1)),
    ((7, 5), (31, 17)),
    ((300, 200), (3, 2)),
    ((301, 199), (43, 37)),
    ((64, 48), (64, 17)),
    ((64, 48), (19, 48)),
    ((40, 200), (38, 20)),
    ((37, 23), (100, 3)),
    ((23, 37), (3, 100)),
]


def random_image(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    data = rng.integers(0, 256, (h, w, BANDS[mode]), dtype=np.uint8)
    if mode in ("LA", "RGBA"):
        # plenty of fully transparent and fully opaque pixels too
        alpha = data[:, :, -1]
        alpha[rng.random((h, w)) < 0.2] = 0
        alpha[rng.random((h, w)) < 0.2] = 255
    if mode == "L":
        data = data[:, :, 0]
    return Image.frombytes(mode, size, data.tobytes())


def assert_close(ours: Image.Image, expected: Image.Image) -> None:
    assert ours.mode == expected.mode
    assert ours.size == expected.size
    if ours.tobytes() == expected.tobytes():
        return
    a = np.asarray(ours).astype(np.int32)
    b = np.asarray(expected).astype(np.int32)
    if ours.mode in ("LA", "RGBA"):
        assert np.abs(a[..., -1] - b[..., -1]).max() <= 1, "alpha differs by more than 1"
        premul = {"LA": "La", "RGBA": "RGBa"}[ours.mode]
        pa = np.asarray(ours.convert(premul)).astype(np.int32)[..., :-1]
        pb = np.asarray(expected.convert(premul)).astype(np.int32)[..., :-1]
        assert np.abs(pa - pb).max() <= 2, "premultiplied colour differs by more than 2"
    else:
        assert np.abs(a - b).max() <= 1


def pillow(image: Image.Image, size, name: str, box=None) -> Image.Image:
    return image.resize(size, PILLOW_FILTERS[name], box)


# ---------------------------------------------------------------------------
# Against Pillow
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize(("src_size", "dst_size"), SIZES)
def test_matches_pillow(mode, name, src_size, dst_size):
    image = random_image(mode, src_size, seed=zlib.crc32(repr((mode, src_size)).encode()))
    assert_close(resize(image, dst_size, name, threads=2), pillow(image, dst_size, name))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "box", [(3, 4, 50, 40), (0.5, 1.25, 63.5, 47.1), (10, 10, 20, 20), (0, 0, 64, 1), (63, 0, 64, 48)]
)
@pytest.mark.parametrize("dst_size", [(10, 10), (47, 36), (100, 70), (1, 1)])
def test_box_matches_pillow(mode, box, dst_size):
    image = random_image(mode, (64, 48), seed=7)
    for name in ("bilinear", "lanczos"):
        assert_close(resize(image, dst_size, name, box=box), pillow(image, dst_size, name, box))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FILTERS)
def test_identical_bytes(mode, name):
    image = random_image(mode, (211, 97), seed=3)
    for size in ((50, 31), (400, 13), (211, 20), (17, 97)):
        assert resize(image, size, name).tobytes() == pillow(image, size, name).tobytes()


def test_wide_kernels():
    # downscaling by hundreds: windows of hundreds of taps, sums near the limits
    image = random_image("RGBA", (1200, 700), seed=11)
    for size in ((1, 1), (3, 2), (7, 700), (1200, 3)):
        for name in ("bicubic", "lanczos"):
            assert_close(resize(image, size, name), pillow(image, size, name))


def test_extremes_of_the_range():
    # black/white stripes overshoot with bicubic and Lanczos: clipping at 0 and 255
    stripes = np.zeros((60, 90, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    stripes[::3] = 255
    image = Image.fromarray(stripes)
    for size in ((200, 130), (31, 23), (90, 7)):
        for name in FILTERS:
            assert_close(resize(image, size, name), pillow(image, size, name))


def test_transparent_regions():
    # colour behind alpha 0 must not bleed into the visible part
    a = np.zeros((50, 80, 4), dtype=np.uint8)
    a[:, :40] = (255, 0, 0, 255)
    a[:, 40:] = (0, 255, 0, 0)
    a[20:30, 10:70, 3] = 1
    image = Image.fromarray(a, "RGBA")
    for size in ((23, 17), (160, 100), (80, 5)):
        for name in FILTERS:
            ours = resize(image, size, name)
            assert_close(ours, pillow(image, size, name))
            assert ours.tobytes() == pillow(image, size, name).tobytes()


@pytest.mark.parametrize("mode", MODES)
def test_thread_counts_agree(mode):
    image = random_image(mode, (333, 251), seed=5)
    expected = pillow(image, (97, 64), "lanczos")
    for threads in (1, 2, 3, 7):
        assert resize(image, (97, 64), "lanczos", threads=threads).tobytes() == expected.tobytes()


@pytest.mark.parametrize("mode", MODES)
def test_copying_route_agrees(mode):
    # the tobytes/frombytes route used when Pillow's memory layout is unknown
    image = random_image(mode, (120, 90), seed=9)
    for size, order in (((51, 40), 0), ((51, 40), 1), ((119, 11), 0), ((7, 90), 1)):
        direct = _resample.resize(image, *size, 2, 0, 0, 120, 90, threads=2, order=order)
        copied = _resample.resize(
            image, *size, 2, 0, 0, 120, 90, threads=2, order=order, zero_copy=False
        )
        assert direct.tobytes() == copied.tobytes()
        assert direct.mode == copied.mode == mode


@pytest.mark.parametrize("mode", MODES)
def test_plain_c_loops_agree(mode):
    # the loops used where AVX2 is missing (other CPUs, other architectures)
    image = random_image(mode, (150, 77), seed=12)
    sizes = [(61, 40), (300, 9), (150, 20), (11, 77), (1, 1)]
    _resample.use_plain_c(True)
    try:
        plain = [resize(image, size, "lanczos", threads=2).tobytes() for size in sizes]
    finally:
        _resample.use_plain_c(False)
    for size, data in zip(sizes, plain):
        assert data == pillow(image, size, "lanczos").tobytes()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_child_forked_after_threads_ran():
    # libgomp's workers do not survive fork(): the child must not wait for them
    image = random_image("RGB", (400, 300), seed=13)
    expected = resize(image, (90, 70), "bicubic", threads=2).tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded fork"
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # a hang ends the child, not the test run: the default action, not
            # the handler the per-test timeout left in the parent (inherited)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(60)
            out = resize(image, (90, 70), "bicubic", threads=2).tobytes()
            if out == expected and not _resample.threads_usable():
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _resample.threads_usable()


def test_pass_orders_differ_only_in_order():
    # order=1 is Pillow 12's horizontal-first rule, order=0 Pillow 13's
    image = random_image("L", (40, 200), seed=2)
    horizontal_first = image.resize((38, 200), Image.Resampling.BICUBIC).resize(
        (38, 20), Image.Resampling.BICUBIC
    )
    ours = _resample.resize(image, 38, 20, 2, 0, 0, 40, 200, order=1)
    assert ours.tobytes() == horizontal_first.tobytes()


def test_layout_is_read_in_place():
    if int(Image.__version__.split(".")[0]) < 12:
        pytest.skip("the in-place route is checked against Pillow 12's layout")
    for mode in MODES:
        assert _resample.pillow_layout_known(Image.new(mode, (5, 3)))
    assert not _resample.pillow_layout_known(Image.new("I", (5, 3)))


def test_large_image_in_several_blocks():
    # Pillow stores big images in several memory blocks; rows are read one by one
    image = random_image("RGBA", (2100, 2100), seed=4)
    assert_close(resize(image, (300, 301), "bicubic"), pillow(image, (300, 301), "bicubic"))


def test_lazy_and_readonly_images():
    source = random_image("RGB", (64, 40), seed=6)
    buf = io.BytesIO()
    source.save(buf, "PNG")
    buf.seek(0)
    lazy = Image.open(buf)
    assert_close(resize(lazy, (20, 13), "bicubic"), pillow(source, (20, 13), "bicubic"))
    gray = random_image("L", (64, 40), seed=6)
    mapped = Image.frombuffer("L", gray.size, gray.tobytes(), "raw", "L", 0, 1)
    assert_close(resize(mapped, (20, 13), "box"), pillow(gray, (20, 13), "box"))


def test_same_size_is_a_copy():
    image = random_image("RGBA", (30, 20))
    out = resize(image, (30, 20), "lanczos")
    assert out is not image
    assert out.tobytes() == image.tobytes()
    # an explicit full box is the same request
    assert resize(image, (30, 20), box=(0, 0, 30, 20)).tobytes() == image.tobytes()


def test_pillow_filter_values_accepted():
    image = random_image("RGB", (50, 40))
    for name, value in PILLOW_FILTERS.items():
        assert resize(image, (9, 8), value).tobytes() == resize(image, (9, 8), name).tobytes()
    assert resize(image, (9, 8), "LANCZOS").tobytes() == resize(image, (9, 8), "lanczos").tobytes()


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    name=st.sampled_from(FILTERS),
    src=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    dst=st.tuples(st.integers(1, 60), st.integers(1, 60)),
    seed=st.integers(0, 2**16),
    threads=st.integers(1, 4),
    data=st.data(),
)
def test_random_shapes_match_pillow(mode, name, src, dst, seed, threads, data):
    image = random_image(mode, src, seed)
    box = None
    if data.draw(st.booleans()):
        x0 = data.draw(st.integers(0, src[0] - 1))
        y0 = data.draw(st.integers(0, src[1] - 1))
        box = (x0, y0, data.draw(st.integers(x0 + 1, src[0])), data.draw(st.integers(y0 + 1, src[1])))
    assert_close(resize(image, dst, name, box=box, threads=threads), pillow(image, dst, name, box))


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["1", "P", "I", "F", "CMYK", "RGBX", "I;16", "La", "RGBa"])
def test_unsupported_modes(mode):
    with pytest.raises(ValueError, match="mode"):
        resize(Image.new(mode, (4, 4)), (2, 2))


@pytest.mark.parametrize(
    ("size", "error"),
    [
        ((0, 5), ValueError),
        ((5, -1), ValueError),
        ((1 << 21, 5), ValueError),
        ((2.0, 5), TypeError),
        ((True, 5), TypeError),
        ((5,), TypeError),
        (5, TypeError),
        (None, TypeError),
    ],
)
def test_bad_sizes(size, error):
    with pytest.raises(error):
        resize(Image.new("RGB", (4, 4)), size)


@pytest.mark.parametrize(
    ("filter", "error"),
    [
        ("nearest", ValueError),
        ("hamming", ValueError),
        ("", ValueError),
        (Image.Resampling.NEAREST, ValueError),
        (Image.Resampling.HAMMING, ValueError),
        (99, ValueError),
        (True, TypeError),
        (2.0, TypeError),
        (None, TypeError),
    ],
)
def test_bad_filters(filter, error):
    with pytest.raises(error):
        resize(Image.new("RGB", (4, 4)), (2, 2), filter)


@pytest.mark.parametrize(
    ("threads", "error"),
    [(0, ValueError), (-2, ValueError), (10**6, ValueError), (True, TypeError), (1.5, TypeError), ("2", TypeError)],
)
def test_bad_threads(threads, error):
    with pytest.raises(error):
        resize(Image.new("RGB", (4, 4)), (2, 2), threads=threads)


@pytest.mark.parametrize(
    ("box", "error"),
    [
        ((0, 0, 5, 4), ValueError),
        ((-1, 0, 4, 4), ValueError),
        ((2, 0, 2, 4), ValueError),
        ((3, 0, 2, 4), ValueError),
        ((0, 0, 4), TypeError),
        ((0, 0, 4, "4"), TypeError),
        ((0, 0, 4, True), TypeError),
        (5, TypeError),
    ],
)
def test_bad_boxes(box, error):
    with pytest.raises(error):
        resize(Image.new("RGB", (4, 4)), (2, 2), box=box)


def test_bad_images():
    with pytest.raises(TypeError):
        resize(b"not an image", (2, 2))
    with pytest.raises(ValueError):
        resize(Image.new("RGB", (0, 0)), (2, 2))


def test_raw_module_checks_what_c_needs():
    image = Image.new("RGB", (4, 4))
    with pytest.raises(ValueError):
        _resample.resize(image, 0, 2, 2, 0, 0, 4, 4)
    with pytest.raises(ValueError):
        _resample.resize(image, 2, 2, 9, 0, 0, 4, 4)
    with pytest.raises(ValueError):
        _resample.resize(image, 2, 2, 2, 0, 0, 5, 4)
    with pytest.raises(ValueError):
        _resample.resize(image, 2, 2, 2, 0, 0, 4, 4, threads=0)
    with pytest.raises(ValueError):
        _resample.resize(image, 2, 2, 2, 0, 0, 4, 4, order=7)
    with pytest.raises(KeyError):
        _resample.resize(Image.new("P", (4, 4)), 2, 2, 2, 0, 0, 4, 4)


def test_default_threads():
    assert default_threads() >= 1
    assert _resample.kernel_name() in ("avx2", "c")
