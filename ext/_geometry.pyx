# cython: language_level=3
"""Crop-resize geometry with cropresize2 semantics, in integer arithmetic.

Crop the largest centred box with the target's aspect ratio, then resize it
to the target.  A zero side keeps the source aspect ratio (no crop).  Without
``upscale`` the result is never larger than the crop box.
"""
from libc.stdint cimport int64_t


cdef inline int64_t _round_div(int64_t num, int64_t den) noexcept nogil:
    # round(num / den) for num >= 0, den > 0, halves away from zero
    return (2 * num + den) // (2 * den)


cdef int compute_geometry(int64_t src_w, int64_t src_h, int64_t w, int64_t h,
                          bint upscale, pf_geometry *g) noexcept nogil:
    cdef int64_t cw, ch
    if src_w <= 0 or src_h <= 0 or w < 0 or h < 0 or (w == 0 and h == 0):
        return -1
    if w == 0:
        w = _round_div(src_w * h, src_h)
        if w < 1:
            w = 1
    elif h == 0:
        h = _round_div(src_h * w, src_w)
        if h < 1:
            h = 1
    if src_w * h > w * src_h:
        # source is wider than the target: keep full height, crop the sides
        ch = src_h
        cw = _round_div(src_h * w, h)
    else:
        cw = src_w
        ch = _round_div(src_w * h, w)
    if cw < 1:
        cw = 1
    if ch < 1:
        ch = 1
    if cw > src_w:
        cw = src_w
    if ch > src_h:
        ch = src_h
    g.left = (src_w - cw) // 2
    g.top = (src_h - ch) // 2
    g.right = g.left + cw
    g.bottom = g.top + ch
    if not upscale and (w > cw or h > ch):
        g.out_w = cw
        g.out_h = ch
    else:
        g.out_w = w
        g.out_h = h
    return 0


def crop_resize_geometry(int64_t src_w, int64_t src_h, int64_t w, int64_t h, bint upscale=False):
    """Return ``(left, top, right, bottom, out_w, out_h)``."""
    cdef pf_geometry g
    cdef int rc
    with nogil:
        rc = compute_geometry(src_w, src_h, w, h, upscale, &g)
    if rc != 0:
        raise ValueError(
            f"invalid geometry: source {src_w}x{src_h}, target {w}x{h}"
        )
    return (g.left, g.top, g.right, g.bottom, g.out_w, g.out_h)
