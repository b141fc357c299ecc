"""Tests for pastefile.ext.geometry (the Cython crop-resize kernel).

A plain-Python reference written with exact rational arithmetic is compared
with the kernel, and properties that do not depend on any implementation are
checked on their own.
"""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from pastefile.ext import _geometry
from pastefile.ext.geometry import MAX_SIDE, Geometry, crop_resize_geometry


# ---------------------------------------------------------------------------
# Reference implementation
# ---------------------------------------------------------------------------


def round_half_up(x: Fraction) -> int:
    """Nearest integer to a non-negative rational, ties away from zero."""
    return math.floor(x + Fraction(1, 2))


def reference_geometry(src_w: int, src_h: int, w: int, h: int, upscale: bool) -> tuple[int, ...]:
    # A missing side follows the source aspect ratio (at least one pixel).
    if w == 0:
        w = max(1, round_half_up(Fraction(src_w, src_h) * h))
    elif h == 0:
        h = max(1, round_half_up(Fraction(src_h, src_w) * w))

    source_ratio = Fraction(src_w, src_h)
    target_ratio = Fraction(w, h)
    if source_ratio > target_ratio:
        # relatively wider source: full height, crop left and right
        crop_w, crop_h = round_half_up(src_h * target_ratio), src_h
    else:
        crop_w, crop_h = src_w, round_half_up(src_w / target_ratio)
    crop_w = min(max(crop_w, 1), src_w)
    crop_h = min(max(crop_h, 1), src_h)

    left = (src_w - crop_w) // 2
    top = (src_h - crop_h) // 2
    if upscale or (w <= crop_w and h <= crop_h):
        out = (w, h)
    else:
        out = (crop_w, crop_h)
    return (left, top, left + crop_w, top + crop_h, *out)


def effective_target(src_w: int, src_h: int, w: int, h: int) -> tuple[int, int]:
    if w == 0:
        return max(1, round_half_up(Fraction(src_w * h, src_h))), h
    if h == 0:
        return w, max(1, round_half_up(Fraction(src_h * w, src_w)))
    return w, h


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

def side(min_value: int):
    # mix tiny, photo-sized and extreme values
    return st.one_of(
        st.integers(min_value, 16),
        st.integers(min_value, 5000),
        st.integers(min_value, MAX_SIDE),
        st.sampled_from([min_value, 1, 2, 3, MAX_SIDE - 1, MAX_SIDE]).filter(lambda v: v >= min_value),
    )


sources = st.tuples(side(1), side(1))
targets = st.tuples(side(0), side(0)).filter(lambda t: t != (0, 0))


EDGE_CASES = [
    # (src_w, src_h, w, h)
    (1, 1, 1, 1),
    (1, 1, 100, 100),
    (1, 1, 1, 0),
    (1, 1, 0, 1),
    (1, 1, 7, 3),
    (1, 1, MAX_SIDE, 1),
    (1, MAX_SIDE, 1, 1),
    (MAX_SIDE, 1, 1, 1),
    (MAX_SIDE, 1, 0, 1),
    (MAX_SIDE, 1, 1, 0),
    (1, MAX_SIDE, 0, 1),
    (1, MAX_SIDE, 1, 0),
    (MAX_SIDE, MAX_SIDE, MAX_SIDE, MAX_SIDE),
    (MAX_SIDE, MAX_SIDE, 1, MAX_SIDE),
    (MAX_SIDE, MAX_SIDE, MAX_SIDE, 1),
    (MAX_SIDE, 1, MAX_SIDE, MAX_SIDE),
    (1000, 10, 1, 1000),
    (10, 1000, 1000, 1),
    (3, 1000, 0, 1),
    (1000, 3, 1, 0),
    (640, 480, 100, 100),
    (480, 640, 100, 100),
    (640, 480, 1280, 960),
    (640, 480, 2000, 100),
    (640, 480, 100, 2000),
    (640, 480, 0, 240),
    (640, 480, 320, 0),
    (640, 480, 0, 4800),
    (1001, 1000, 0, 10),
    (100, 50, 3, 1),
    (100, 100, 2, 1),
    (99, 100, 1, 1),
    (2, 3, 1, 1),
    (3, 2, 1, 1),
    (5, 5, 2, 3),
]


# ---------------------------------------------------------------------------
# Kernel versus reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("upscale", [False, True])
@pytest.mark.parametrize("src_w,src_h,w,h", EDGE_CASES)
def test_edge_cases_match_reference(src_w, src_h, w, h, upscale):
    expected = reference_geometry(src_w, src_h, w, h, upscale)
    assert tuple(crop_resize_geometry(src_w, src_h, w, h, upscale)) == expected
    assert _geometry.crop_resize_geometry(src_w, src_h, w, h, upscale) == expected


@settings(max_examples=2000, deadline=None)
@given(sources, targets, st.booleans())
@example((100, 100), (0, 1), False)
@example((1, 1), (MAX_SIDE, MAX_SIDE), True)
def test_random_inputs_match_reference(src, target, upscale):
    (src_w, src_h), (w, h) = src, target
    expected = reference_geometry(src_w, src_h, w, h, upscale)
    assert tuple(crop_resize_geometry(src_w, src_h, w, h, upscale=upscale)) == expected
    assert _geometry.crop_resize_geometry(src_w, src_h, w, h, upscale) == expected


@settings(max_examples=500, deadline=None)
@given(sources, targets, st.booleans())
def test_none_side_equals_zero_side(src, target, upscale):
    (src_w, src_h), (w, h) = src, target
    g = crop_resize_geometry(src_w, src_h, w or None, h or None, upscale)
    assert g == crop_resize_geometry(src_w, src_h, w, h, upscale)


# ---------------------------------------------------------------------------
# Properties independent of the reference
# ---------------------------------------------------------------------------


def check_properties(src_w: int, src_h: int, w: int, h: int, upscale: bool, g: Geometry) -> None:
    ew, eh = effective_target(src_w, src_h, w, h)
    cw, ch = g.right - g.left, g.bottom - g.top

    # the box is a non-empty region inside the source
    assert 0 <= g.left < g.right <= src_w
    assert 0 <= g.top < g.bottom <= src_h
    # centred: the margins on opposite sides differ by at most one pixel
    assert 0 <= (src_w - g.right) - g.left <= 1
    assert 0 <= (src_h - g.bottom) - g.top <= 1
    # largest such box: it spans the source in at least one direction
    assert cw == src_w or ch == src_h

    # the box has the target's aspect ratio up to rounding of one side:
    # |cw/ch - ew/eh| stays within half a pixel of the rounded side (one
    # pixel when that side was clamped to a single pixel)
    mismatch = abs(cw * eh - ch * ew)
    if cw > 1 and ch > 1:
        assert 2 * mismatch <= max(ew, eh)
    else:
        assert mismatch <= max(ew, eh)

    # output size
    assert g.out_w >= 1 and g.out_h >= 1
    if upscale:
        assert (g.out_w, g.out_h) == (ew, eh)
    else:
        assert g.out_w <= cw and g.out_h <= ch
        assert g.out_w <= ew and g.out_h <= eh  # nor larger than what was asked for
        if ew <= cw and eh <= ch:
            assert (g.out_w, g.out_h) == (ew, eh)  # a fitting target is honoured
        else:
            assert (g.out_w, g.out_h) == (cw, ch)  # never enlarged: the box as is

    assert g.box == (g.left, g.top, g.right, g.bottom)
    assert g.size == (g.out_w, g.out_h)


@settings(max_examples=1000, deadline=None)
@given(sources, targets, st.booleans())
def test_properties_random(src, target, upscale):
    (src_w, src_h), (w, h) = src, target
    g = crop_resize_geometry(src_w, src_h, w, h, upscale)
    assert isinstance(g, Geometry)
    assert all(type(v) is int for v in g)
    check_properties(src_w, src_h, w, h, upscale, g)


@pytest.mark.parametrize("upscale", [False, True])
@pytest.mark.parametrize("src_w,src_h,w,h", EDGE_CASES)
def test_properties_edge_cases(src_w, src_h, w, h, upscale):
    check_properties(src_w, src_h, w, h, upscale, crop_resize_geometry(src_w, src_h, w, h, upscale))


@settings(max_examples=1000, deadline=None)
@given(sources, targets, st.booleans())
def test_transposing_the_input_transposes_the_result(src, target, upscale):
    (src_w, src_h), (w, h) = src, target
    g = crop_resize_geometry(src_w, src_h, w, h, upscale)
    t = crop_resize_geometry(src_h, src_w, h, w, upscale)
    assert (t.top, t.left, t.bottom, t.right, t.out_h, t.out_w) == tuple(g)


@settings(max_examples=1000, deadline=None)
@given(sources, side(1), st.booleans(), st.booleans())
def test_one_side_given_keeps_the_source_aspect(src, given_side, width_given, upscale):
    """With one side 0 the crop is at most rounding: less than one output
    pixel's worth of the source is cut away along either axis."""
    src_w, src_h = src
    w, h = (given_side, 0) if width_given else (0, given_side)
    g = crop_resize_geometry(src_w, src_h, w, h, upscale)
    ew, eh = effective_target(src_w, src_h, w, h)
    # skip the degenerate case where the derived side is below half a pixel
    # and had to be clamped to 1 (no integer size keeps the ratio then)
    if width_given:
        assume(2 * src_h * w >= src_w)
        derived = eh
    else:
        assume(2 * src_w * h >= src_h)
        derived = ew
    cw, ch = g.right - g.left, g.bottom - g.top
    assert (src_w - cw) * derived <= src_w
    assert (src_h - ch) * derived <= src_h


@pytest.mark.parametrize("src_w,src_h", [(1, 1), (640, 480), (480, 640), (1, 5000), (5000, 1), (MAX_SIDE, 3)])
@pytest.mark.parametrize("upscale", [False, True])
def test_target_equal_to_source_is_identity(src_w, src_h, upscale):
    g = crop_resize_geometry(src_w, src_h, src_w, src_h, upscale)
    assert g == Geometry(0, 0, src_w, src_h, src_w, src_h)
    assert crop_resize_geometry(src_w, src_h, src_w, 0, upscale) == g
    assert crop_resize_geometry(src_w, src_h, 0, src_h, upscale) == g


def test_known_values():
    # landscape to square thumbnail: crop the middle square
    assert crop_resize_geometry(640, 480, 100, 100) == Geometry(80, 0, 560, 480, 100, 100)
    # portrait to square
    assert crop_resize_geometry(480, 640, 100, 100) == Geometry(0, 80, 480, 560, 100, 100)
    # only a height: keep the ratio, no crop
    assert crop_resize_geometry(640, 480, 0, 240) == Geometry(0, 0, 640, 480, 320, 240)
    assert crop_resize_geometry(640, 480, 320, None) == Geometry(0, 0, 640, 480, 320, 240)
    # bigger than the source: the box itself, unless upscaling is asked for
    assert crop_resize_geometry(640, 480, 1280, 960) == Geometry(0, 0, 640, 480, 640, 480)
    assert crop_resize_geometry(640, 480, 1280, 960, upscale=True) == Geometry(0, 0, 640, 480, 1280, 960)
    # target wider than the source is tall enough for: full width, crop top and bottom
    assert crop_resize_geometry(100, 100, 2000, 100) == Geometry(0, 47, 100, 52, 100, 5)
    assert crop_resize_geometry(100, 100, 2000, 100, True) == Geometry(0, 47, 100, 52, 2000, 100)
    # 1x1 source
    assert crop_resize_geometry(1, 1, 50, 20) == Geometry(0, 0, 1, 1, 1, 1)
    assert crop_resize_geometry(1, 1, 50, 20, upscale=True) == Geometry(0, 0, 1, 1, 50, 20)


def test_upscale_is_truthiness():
    assert crop_resize_geometry(10, 10, 20, 20, upscale=1) == crop_resize_geometry(10, 10, 20, 20, upscale=True)
    assert crop_resize_geometry(10, 10, 20, 20, upscale=0) == crop_resize_geometry(10, 10, 20, 20)
    assert crop_resize_geometry(10, 10, 20, 20, upscale=None) == Geometry(0, 0, 10, 10, 10, 10)


# ---------------------------------------------------------------------------
# Invalid input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        (0, 10, 5, 5),
        (10, 0, 5, 5),
        (-1, 10, 5, 5),
        (10, -1, 5, 5),
        (10, 10, -1, 5),
        (10, 10, 5, -1),
        (10, 10, 0, 0),
        (10, 10, None, None),
        (10, 10, 0, None),
        (None, 10, 5, 5),
        (10, None, 5, 5),
        (MAX_SIDE + 1, 10, 5, 5),
        (10, MAX_SIDE + 1, 5, 5),
        (10, 10, MAX_SIDE + 1, 5),
        (10, 10, 5, MAX_SIDE + 1),
        (1 << 40, 1 << 40, 1 << 40, 1 << 40),
        (1 << 70, 10, 5, 5),
        (10, 10, -(1 << 70), 5),
    ],
)
def test_invalid_values_raise_value_error(args):
    with pytest.raises(ValueError):
        crop_resize_geometry(*args)


@pytest.mark.parametrize(
    "args",
    [
        (10.0, 10, 5, 5),
        (10, 10.5, 5, 5),
        (10, 10, 5.0, 5),
        (10, 10, 5, "5"),
        ("10", 10, 5, 5),
        (True, 10, 5, 5),
        (10, 10, True, 5),
        (10, 10, 5, False),
        (10, 10, [5], 5),
        (10, 10, 5, b"5"),
    ],
)
def test_invalid_types_raise_type_error(args):
    with pytest.raises(TypeError):
        crop_resize_geometry(*args)


def test_missing_arguments_raise_type_error():
    with pytest.raises(TypeError):
        crop_resize_geometry(10, 10, 5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        crop_resize_geometry()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "args",
    [(0, 10, 5, 5, False), (10, 0, 5, 5, False), (-3, 10, 5, 5, False), (10, 10, 0, 0, True), (10, 10, -1, 5, True)],
)
def test_raw_kernel_rejects_invalid_values(args):
    with pytest.raises(ValueError, match="invalid geometry"):
        _geometry.crop_resize_geometry(*args)


def test_raw_kernel_rejects_non_integers():
    # (floats are truncated by Cython's int64 conversion in the raw kernel;
    # the public wrapper refuses them, see test_invalid_types_raise_type_error)
    with pytest.raises(TypeError):
        _geometry.crop_resize_geometry("10", 10, 5, 5)
    with pytest.raises(OverflowError):
        _geometry.crop_resize_geometry(1 << 70, 10, 5, 5)
