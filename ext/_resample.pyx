# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Separable resampling of 8-bit images (L, LA, RGB, RGBA) in fixed point.

The conventions are Pillow's (Resample.c), so results match ``Image.resize``:

* filters box (support 0.5), bilinear (1), bicubic (a = -0.5, support 2) and
  Lanczos (a = 3); when shrinking, the support is scaled by the factor;
* output pixel i is centred on source position ``x0 + (i + 0.5) * scale``;
  its window is rounded to whole pixels and its weights are normalised to a
  sum of one, then turned into integers with PRECISION_BITS fractional bits;
* a horizontal pass over the source rows the vertical pass needs, then a
  vertical pass, each rounding to 8 bits (``clip8``); with ``order=0`` the
  vertical pass goes first when the height shrinks by more than twice as many
  pixels as the width, as Pillow 13 does (``order=1``: never, as before 13);
* LA and RGBA are premultiplied by alpha on the way in (``MULDIV255``) and
  divided back on the way out, like Pillow's ``RGBa``/``La`` round trip.

Integer sums do not depend on the order of the additions, so the threads and
the vectorised loops (ext/src/resample_kernels.h) give exactly Pillow's bytes.

Two more source kinds resample the luminance of RGB(A) or the L band of LA
(Pillow's ``convert("L")``), taken row by row as the first pass reads them:
the perceptual hashes use them for their thumbnails.

Pixels are read in place from Pillow's memory (and the result written in
place into a new image) through the core object's pointer capsule when its
layout is one this module knows (checked field by field against the image);
otherwise they go through one ``tobytes``/``frombytes`` copy.
"""
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from cython.parallel cimport prange, threadid
from libc.math cimport ceil, sin, M_PI
from libc.stdint cimport int16_t, int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from PIL import Image


cdef extern from "resample_kernels.h" nogil:
    void pf_hrow1(const uint8_t *src, uint8_t *dst, const int *bounds, const int32_t *kk,
                  const int16_t *kk16, int ksize, int ks16, int out_size)
    int16_t *pf_split16(const int32_t *kk, int ksize, int out_size, int *ks16)
    void pf_hrow4(const uint8_t *src, uint8_t *dst, const int *bounds, const int32_t *kk4,
                  int ksize, int out_size)
    void pf_vrow(uint8_t **rows, size_t off, const int32_t *k, int n, int width,
                 int32_t *acc, uint8_t *dst)
    const char *pf_kernel_name()
    void pf_luma_row(const uint8_t *src, uint8_t *dst, int x0, int x1)
    void pf_premultiply_rgba(const uint8_t *src, uint8_t *dst, int x0, int x1)
    int pf_force_plain_c


cdef extern from *:
    """
    /* Leading fields of Pillow's ImagingMemoryInstance (libImaging/Imaging.h)
       up to linesize.  Until Pillow 11 the mode is a seven-byte name; from
       Pillow 12 it is an enum.  Both layouts are checked against the image's
       known size, band count and pixel size before any row is touched. */
    typedef struct {
        int mode; int type; int depth; int bands; int xsize; int ysize;
        void *palette; unsigned char **image8; int **image32; char **image;
        char *block; void *blocks; int pixelsize; int linesize;
    } pf_imaging_v12;
    typedef struct {
        char mode[7]; int type; int depth; int bands; int xsize; int ysize;
        void *palette; unsigned char **image8; int **image32; char **image;
        char *block; void *blocks; int pixelsize; int linesize;
    } pf_imaging_v10;

    #if defined(__GNUC__)
    #define PF_RESTRICT __restrict__
    #else
    #define PF_RESTRICT
    #endif
    """
    ctypedef struct pf_imaging_v12:
        int type
        int bands
        int xsize
        int ysize
        unsigned char **image8
        int **image32
        char **image
        int pixelsize
        int linesize
    ctypedef struct pf_imaging_v10:
        char mode[7]
        int type
        int bands
        int xsize
        int ysize
        unsigned char **image8
        int **image32
        char **image
        int pixelsize
        int linesize


cdef enum:
    _HALF = 1 << (PF_PRECISION_BITS - 1)


# libgomp cannot run a parallel region in a child process forked after the
# parent ran one (its worker threads did not survive the fork and the child
# waits for them forever).  Such a child runs everything on its own thread.
cdef int _openmp_used = 0
cdef int _serial_only = 0


def _after_fork_in_child():
    global _serial_only
    if _openmp_used:
        _serial_only = 1


import os as _os

if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_after_fork_in_child)


def threads_usable() -> bool:
    """False in a process forked after its parent ran OpenMP threads here."""
    return not _serial_only


# ---------------------------------------------------------------------------
# Filters and coefficients
# ---------------------------------------------------------------------------


cdef inline double _sinc(double x) noexcept nogil:
    if x == 0.0:
        return 1.0
    x = x * M_PI
    return sin(x) / x


cdef double _filter(int f, double x) noexcept nogil:
    if f == PF_FILTER_BOX:
        if x > -0.5 and x <= 0.5:
            return 1.0
        return 0.0
    if f == PF_FILTER_BILINEAR:
        if x < 0.0:
            x = -x
        if x < 1.0:
            return 1.0 - x
        return 0.0
    if f == PF_FILTER_BICUBIC:
        # Keys' cubic convolution with a = -0.5
        if x < 0.0:
            x = -x
        if x < 1.0:
            return (1.5 * x - 2.5) * x * x + 1
        if x < 2.0:
            return (((x - 5) * x + 8) * x - 4) * -0.5
        return 0.0
    # Lanczos, a = 3: sinc windowed by a stretched sinc
    if -3.0 <= x and x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


cdef inline double _support(int f) noexcept nogil:
    if f == PF_FILTER_BOX:
        return 0.5
    if f == PF_FILTER_BILINEAR:
        return 1.0
    if f == PF_FILTER_BICUBIC:
        return 2.0
    return 3.0


cdef void pf_free_coeffs(pf_coeffs *c) noexcept nogil:
    free(c.bounds)
    free(c.kk)
    free(c.kk4)
    free(c.kk16)
    c.bounds = NULL
    c.kk = NULL
    c.kk4 = NULL
    c.kk16 = NULL


cdef int _expand4(pf_coeffs *c) noexcept nogil:
    """Fill kk4: every coefficient four times, for the four-channel loop."""
    cdef size_t i, n = <size_t>c.out_size * c.ksize
    c.kk4 = <int32_t *>malloc(n * 4 * sizeof(int32_t))
    if c.kk4 == NULL:
        return -1
    for i in range(n):
        c.kk4[4 * i] = c.kk4[4 * i + 1] = c.kk4[4 * i + 2] = c.kk4[4 * i + 3] = c.kk[i]
    return 0


cdef int pf_precompute_coeffs(int in_size, float in0, float in1, int out_size,
                              int filter, pf_coeffs *c) noexcept nogil:
    cdef double support, scale, filterscale, center, ww, ss, w
    cdef int xx, x, ksize, xmin, xmax
    cdef double *k
    c.bounds = NULL
    c.kk = NULL
    c.kk4 = NULL
    c.kk16 = NULL
    c.ks16 = 0
    c.out_size = out_size
    filterscale = scale = <double>(in1 - in0) / out_size
    if filterscale < 1.0:
        filterscale = 1.0
    support = _support(filter) * filterscale
    ksize = <int>ceil(support) * 2 + 1
    c.ksize = ksize
    if ksize <= 0 or <size_t>out_size * <size_t>ksize > (<size_t>1 << 40):
        return -1
    k = <double *>malloc(ksize * sizeof(double))
    c.bounds = <int *>malloc(<size_t>out_size * 2 * sizeof(int))
    c.kk = <int32_t *>malloc(<size_t>out_size * ksize * sizeof(int32_t))
    if k == NULL or c.bounds == NULL or c.kk == NULL:
        free(k)
        pf_free_coeffs(c)
        return -1
    ss = 1.0 / filterscale
    for xx in range(out_size):
        center = in0 + (xx + 0.5) * scale
        ww = 0.0
        xmin = <int>(center - support + 0.5)
        if xmin < 0:
            xmin = 0
        xmax = <int>(center + support + 0.5)
        if xmax > in_size:
            xmax = in_size
        xmax -= xmin
        for x in range(xmax):
            w = _filter(filter, (x + xmin - center + 0.5) * ss)
            k[x] = w
            ww += w
        for x in range(xmax):
            if ww != 0.0:
                k[x] /= ww
        for x in range(ksize):
            if x >= xmax:
                c.kk[<size_t>xx * ksize + x] = 0
            elif k[x] < 0:
                c.kk[<size_t>xx * ksize + x] = <int32_t>(-0.5 + k[x] * (1 << PF_PRECISION_BITS))
            else:
                c.kk[<size_t>xx * ksize + x] = <int32_t>(0.5 + k[x] * (1 << PF_PRECISION_BITS))
        c.bounds[2 * xx] = xmin
        c.bounds[2 * xx + 1] = xmax
    free(k)
    return 0


# ---------------------------------------------------------------------------
# Row kernels
# ---------------------------------------------------------------------------


cdef inline uint32_t _muldiv255(uint32_t a, uint32_t b) noexcept nogil:
    cdef uint32_t t = a * b + 128
    return ((t >> 8) + t) >> 8


cdef inline void _hrow1(const uint8_t *src, uint8_t *dst, const pf_coeffs *c) noexcept nogil:
    pf_hrow1(src, dst, c.bounds, c.kk, c.kk16, c.ksize, c.ks16, c.out_size)


cdef inline void _hrow4(const uint8_t *src, uint8_t *dst, const pf_coeffs *c) noexcept nogil:
    pf_hrow4(src, dst, c.bounds, c.kk4, c.ksize, c.out_size)


cdef void _prepare(const uint8_t *src, int src_ps, uint8_t *dst, int x0, int x1,
                   int kind) noexcept nogil:
    """Columns [x0, x1) of a source row into the working layout: LA and RGBA
    premultiplied (4 bytes a pixel), or the luminance of RGB(A) and LA."""
    cdef int x
    cdef uint32_t a, l
    cdef const uint8_t *p
    if kind == PF_KIND_RGB_AS_L:
        pf_luma_row(src, dst, x0, x1)
    elif kind == PF_KIND_LA_AS_L:
        for x in range(x0, x1):
            dst[x] = src[src_ps * x]
    elif kind == PF_KIND_RGBA:
        pf_premultiply_rgba(src, dst, x0, x1)
    else:
        for x in range(x0, x1):
            p = src + src_ps * x
            a = p[src_ps - 1]
            l = _muldiv255(p[0], a)
            dst[4 * x] = <uint8_t>l
            dst[4 * x + 1] = <uint8_t>l
            dst[4 * x + 2] = <uint8_t>l
            dst[4 * x + 3] = <uint8_t>a


# ceil(2**24 / a): (x * _recip[a]) >> 24 == x // a for every x <= 255 * 255
# and a in 1..255 (checked exhaustively), a multiply instead of a division.
cdef uint64_t _recip[256]


cdef void _init_recip() noexcept nogil:
    cdef uint64_t a
    _recip[0] = 0
    for a in range(1, 256):
        _recip[a] = ((<uint64_t>1 << 24) + a - 1) // a


_init_recip()


cdef inline uint8_t _unpremul(uint32_t v, uint32_t a) noexcept nogil:
    # Pillow's CLIP8((255 * v) / a)
    v = <uint32_t>(((<uint64_t>(255 * v)) * _recip[a]) >> 24)
    return <uint8_t>(255 if v > 255 else v)


cdef void _store(const uint8_t *src, uint8_t *dst, int dst_ps, int width, int kind) noexcept nogil:
    """A finished row (working layout) into the output image's row."""
    cdef int x
    cdef uint32_t a
    cdef uint8_t l
    cdef const uint8_t *p
    if kind == PF_KIND_L or kind == PF_KIND_RGB_AS_L or kind == PF_KIND_LA_AS_L:
        memcpy(dst, src, width)
    elif kind == PF_KIND_RGB:
        for x in range(width):
            dst[4 * x] = src[4 * x]
            dst[4 * x + 1] = src[4 * x + 1]
            dst[4 * x + 2] = src[4 * x + 2]
            dst[4 * x + 3] = 255
    elif kind == PF_KIND_RGBA:
        for x in range(width):
            p = src + 4 * x
            a = p[3]
            if a == 0 or a == 255:
                dst[4 * x] = p[0]
                dst[4 * x + 1] = p[1]
                dst[4 * x + 2] = p[2]
            else:
                dst[4 * x] = _unpremul(p[0], a)
                dst[4 * x + 1] = _unpremul(p[1], a)
                dst[4 * x + 2] = _unpremul(p[2], a)
            dst[4 * x + 3] = <uint8_t>a
    else:
        for x in range(width):
            p = src + 4 * x
            a = p[3]
            l = p[0] if (a == 0 or a == 255) else _unpremul(p[0], a)
            if dst_ps == 4:
                dst[4 * x] = l
                dst[4 * x + 1] = l
                dst[4 * x + 2] = l
                dst[4 * x + 3] = <uint8_t>a
            else:
                dst[dst_ps * x] = l
                dst[dst_ps * x + dst_ps - 1] = <uint8_t>a


cdef void _copy_row(const uint8_t *src, int src_ps, uint8_t *dst, int dst_ps,
                    int width) noexcept nogil:
    """Pixels unchanged; a two-byte LA row widens to four bytes or back."""
    cdef int x
    if src_ps == dst_ps:
        memcpy(dst, src, <size_t>width * src_ps)
        return
    for x in range(width):
        dst[dst_ps * x] = src[src_ps * x]
        dst[dst_ps * x + dst_ps - 1] = src[src_ps * x + src_ps - 1]
        if dst_ps == 4:
            dst[4 * x + 1] = dst[4 * x + 2] = src[src_ps * x]


# ---------------------------------------------------------------------------
# The two passes
# ---------------------------------------------------------------------------


ctypedef struct _job:
    const pf_plane *src
    pf_plane *dst
    int kind
    int ps                  # working bytes per pixel: 1 or 4
    bint prepare            # LA/RGBA premultiplied, or luminance taken
    bint need_h
    bint need_v
    pf_coeffs h
    pf_coeffs v
    int ybox_first          # source rows [ybox_first, ybox_first + nrows)
    int nrows               # are the ones the vertical pass reads
    int x_first             # source columns [x_first, x_last) are the ones
    int x_last              # the horizontal pass reads
    uint8_t *pm             # prepared copy of those rows, when needed
    size_t pm_stride
    uint8_t *tmp            # the image between the passes
    size_t tmp_stride
    uint8_t **vrows         # the rows the vertical pass reads
    bint v_final            # the vertical pass writes the output image
    uint8_t *pbuf           # per thread: one prepared source row
    size_t pbuf_stride
    int32_t *acc            # per thread: vertical accumulators
    uint8_t *obuf           # per thread: one finished output row
    size_t obuf_stride


cdef void _prepare_row(_job *j, int r, int tid) noexcept nogil:
    """Source row ybox_first + r, prepared, for a vertical first pass."""
    _prepare(j.src.rows[j.ybox_first + r], j.src.pixelsize, j.pm + r * j.pm_stride,
                 j.x_first, j.x_last, j.kind)


cdef void _h_first_row(_job *j, int r, int tid) noexcept nogil:
    """Horizontal first pass: source row ybox_first + r across."""
    cdef const uint8_t *row = j.src.rows[j.ybox_first + r]
    cdef uint8_t *out
    if j.prepare:
        _prepare(row, j.src.pixelsize, j.pbuf + tid * j.pbuf_stride,
                     j.x_first, j.x_last, j.kind)
        row = j.pbuf + tid * j.pbuf_stride
    if j.need_v:
        out = j.tmp + r * j.tmp_stride
    else:
        out = j.obuf + tid * j.obuf_stride
    if j.ps == 4:
        _hrow4(row, out, &j.h)
    else:
        _hrow1(row, out, &j.h)
    if not j.need_v:
        _store(out, j.dst.rows[r], j.dst.pixelsize, j.dst.width, j.kind)


cdef void _v_row(_job *j, int yy, int tid) noexcept nogil:
    """Output row yy of the vertical pass, over columns [x_first, x_last)."""
    cdef uint8_t *out
    cdef size_t off = <size_t>j.x_first * j.ps
    if j.v_final:
        out = j.obuf + tid * j.obuf_stride
    else:
        out = j.tmp + yy * j.tmp_stride
    pf_vrow(j.vrows + j.v.bounds[2 * yy], off, j.v.kk + <size_t>yy * j.v.ksize,
            j.v.bounds[2 * yy + 1], (j.x_last - j.x_first) * j.ps,
            j.acc + tid * j.obuf_stride, out)
    if j.v_final:
        _store(out + off, j.dst.rows[yy], j.dst.pixelsize, j.dst.width, j.kind)


cdef void _h_second_row(_job *j, int yy, int tid) noexcept nogil:
    """Horizontal second pass: row yy of the vertically resampled image."""
    cdef uint8_t *out = j.obuf + tid * j.obuf_stride
    if j.ps == 4:
        _hrow4(j.tmp + yy * j.tmp_stride, out, &j.h)
    else:
        _hrow1(j.tmp + yy * j.tmp_stride, out, &j.h)
    _store(out, j.dst.rows[yy], j.dst.pixelsize, j.dst.width, j.kind)


cdef inline int _chunk(int rows, int nthreads) noexcept nogil:
    """Rows per work item: small enough that a thread held up by other
    processes leaves its share to the others, large enough to stay cheap."""
    cdef int c = rows // (nthreads * 8)
    return 1 if c < 1 else (64 if c > 64 else c)


ctypedef void (*_row_fn)(_job *j, int r, int tid) noexcept nogil


cdef void _run(_row_fn fn, _job *j, int rows, int nthreads) noexcept nogil:
    """fn for every row, on nthreads OpenMP threads (no parallel region at all
    for one thread: see _after_fork_in_child)."""
    cdef int r
    global _openmp_used
    if nthreads > 1:
        _openmp_used = 1
        for r in prange(rows, num_threads=nthreads, schedule='dynamic',
                        chunksize=_chunk(rows, nthreads)):
            fn(j, r, threadid())
    else:
        for r in range(rows):
            fn(j, r, 0)


cdef void _free_job(_job *j) noexcept nogil:
    pf_free_coeffs(&j.h)
    pf_free_coeffs(&j.v)
    free(j.pm)
    free(j.tmp)
    free(j.vrows)
    free(j.pbuf)
    free(j.acc)
    free(j.obuf)


cdef int pf_resample(const pf_plane *src, pf_plane *dst, int kind, int filter,
                     const float *box, int order, int nthreads) noexcept nogil:
    cdef _job j
    cdef int i, r, yy, out_w = dst.width, out_h = dst.height
    cdef bint h_first
    cdef size_t n, width_max
    memset(&j, 0, sizeof(j))
    if nthreads < 1 or _serial_only:
        nthreads = 1
    j.src = src
    j.dst = dst
    j.kind = kind
    j.ps = 4 if kind == PF_KIND_LA or kind == PF_KIND_RGB or kind == PF_KIND_RGBA else 1
    j.prepare = kind != PF_KIND_L and kind != PF_KIND_RGB
    j.need_h = out_w != src.width or box[0] != 0 or box[2] != out_w
    j.need_v = out_h != src.height or box[1] != 0 or box[3] != out_h

    if not j.need_h and not j.need_v:
        for r in range(out_h):
            if kind == PF_KIND_RGB_AS_L or kind == PF_KIND_LA_AS_L:
                _prepare(src.rows[r], src.pixelsize, dst.rows[r], 0, out_w, kind)
            else:
                _copy_row(src.rows[r], src.pixelsize, dst.rows[r], dst.pixelsize, out_w)
        return 0

    # Pillow 13 runs the vertical pass first when the height shrinks by more
    # than twice as many pixels as the width; earlier releases never do.
    h_first = not (order == PF_ORDER_PILLOW13 and src.height - out_h > 0
                   and src.height - out_h > (src.width - out_w) * 2)

    if j.need_v:
        if pf_precompute_coeffs(src.height, box[1], box[3], out_h, filter, &j.v) != 0:
            return -1
        j.ybox_first = j.v.bounds[0]
        j.nrows = j.v.bounds[2 * out_h - 2] + j.v.bounds[2 * out_h - 1] - j.ybox_first
        if j.nrows < 0:
            j.nrows = 0
        for i in range(out_h):
            j.v.bounds[2 * i] -= j.ybox_first
    else:
        j.ybox_first = 0
        j.nrows = src.height
    if j.need_h:
        if (pf_precompute_coeffs(src.width, box[0], box[2], out_w, filter, &j.h) != 0
                or (j.ps == 4 and _expand4(&j.h) != 0)):
            _free_job(&j)
            return -1
        if j.ps == 1:
            # optional: NULL (no AVX2, or no memory) selects the plain loop
            j.h.kk16 = pf_split16(j.h.kk, j.h.ksize, j.h.out_size, &j.h.ks16)
        j.x_first = j.h.bounds[0]
        j.x_last = j.h.bounds[2 * out_w - 2] + j.h.bounds[2 * out_w - 1]
        if j.x_last < j.x_first:
            j.x_last = j.x_first
    else:
        j.x_first = 0
        j.x_last = src.width

    # below about a million multiply-adds, waking threads costs more than it saves
    if nthreads > 1 and (<double>j.nrows * out_w * (j.h.ksize if j.need_h else 0)
                         + <double>out_h * (src.width if src.width > out_w else out_w)
                         * (j.v.ksize if j.need_v else 0)) * j.ps < 1e6:
        nthreads = 1

    # never more threads than rows to share out
    if nthreads > j.nrows and nthreads > out_h:
        nthreads = j.nrows if j.nrows > out_h else out_h

    width_max = <size_t>(src.width if src.width > out_w else out_w) * j.ps + 64
    j.obuf_stride = width_max
    j.obuf = <uint8_t *>malloc(nthreads * j.obuf_stride)
    j.acc = <int32_t *>malloc(nthreads * j.obuf_stride * sizeof(int32_t))
    j.vrows = <uint8_t **>malloc(<size_t>(j.nrows if j.nrows > 0 else 1) * sizeof(uint8_t *))
    if j.obuf == NULL or j.acc == NULL or j.vrows == NULL:
        _free_job(&j)
        return -1

    if h_first and j.need_h:
        # source rows -> (prepared on the fly) horizontal -> tmp -> vertical
        if j.prepare:
            j.pbuf_stride = <size_t>src.width * 4 + 64
            j.pbuf = <uint8_t *>malloc(nthreads * j.pbuf_stride)
            if j.pbuf == NULL:
                _free_job(&j)
                return -1
        if j.need_v:
            j.tmp_stride = <size_t>out_w * j.ps
            j.tmp = <uint8_t *>malloc(<size_t>(j.nrows if j.nrows > 0 else 1) * j.tmp_stride)
            if j.tmp == NULL:
                _free_job(&j)
                return -1
            for r in range(j.nrows):
                j.vrows[r] = j.tmp + r * j.tmp_stride
        _run(_h_first_row, &j, j.nrows, nthreads)
        if j.need_v:
            # the horizontal pass produced all columns of its output
            j.x_first = 0
            j.x_last = out_w
            j.v_final = True
            _run(_v_row, &j, out_h, nthreads)
    else:
        # source rows (prepared first if needed) -> vertical -> horizontal
        if j.prepare:
            j.pm_stride = <size_t>src.width * j.ps
            j.pm = <uint8_t *>malloc(<size_t>(j.nrows if j.nrows > 0 else 1) * j.pm_stride)
            if j.pm == NULL:
                _free_job(&j)
                return -1
            _run(_prepare_row, &j, j.nrows, nthreads)
            for r in range(j.nrows):
                j.vrows[r] = j.pm + r * j.pm_stride
        else:
            for r in range(j.nrows):
                j.vrows[r] = src.rows[j.ybox_first + r]
        j.v_final = not j.need_h
        if j.need_h:
            j.tmp_stride = <size_t>src.width * j.ps
            j.tmp = <uint8_t *>malloc(<size_t>out_h * j.tmp_stride)
            if j.tmp == NULL:
                _free_job(&j)
                return -1
        _run(_v_row, &j, out_h, nthreads)
        if j.need_h:
            _run(_h_second_row, &j, out_h, nthreads)
    _free_job(&j)
    return 0


# ---------------------------------------------------------------------------
# Pillow images in and out
# ---------------------------------------------------------------------------


_KINDS = {"L": PF_KIND_L, "LA": PF_KIND_LA, "RGB": PF_KIND_RGB, "RGBA": PF_KIND_RGBA}
_BANDS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
# rawmodes of the copying route, and their bytes per pixel
_RAWMODES = {"L": ("L", 1), "LA": ("LA", 2), "RGB": ("RGBX", 4), "RGBA": ("RGBA", 4)}


cdef object pf_pillow_core(object image):
    """The loaded image's core object, or None if it offers no pointer.

    Hold it while using rows from pf_pillow_rows: the core owns the memory,
    and another thread could replace the image's core (close(), a copy made
    before writing) while the GIL is released."""
    image.load()
    core = getattr(image, "im", None)
    if core is None or getattr(core, "ptr", None) is None:
        return None
    return core


cdef uint8_t **pf_pillow_rows(object core, int w, int h, int bands,
                              int pixelsize) except? NULL:
    """Row pointers into the core's memory, or NULL if its layout is unknown."""
    cdef void *p
    cdef pf_imaging_v12 *a
    cdef pf_imaging_v10 *b
    cdef char **image_rows = NULL
    cdef uint8_t **rows
    cdef Py_ssize_t i
    if core is None:
        return NULL
    capsule = core.ptr
    if not PyCapsule_IsValid(capsule, b"Pillow Imaging"):
        return NULL
    p = PyCapsule_GetPointer(capsule, b"Pillow Imaging")
    a = <pf_imaging_v12 *>p
    b = <pf_imaging_v10 *>p
    if (a.type == 0 and a.bands == bands and a.xsize == w and a.ysize == h
            and a.pixelsize == pixelsize and a.linesize == w * pixelsize
            and a.image != NULL
            and ((pixelsize == 1 and <void *>a.image8 == <void *>a.image and a.image32 == NULL)
                 or (pixelsize == 4 and <void *>a.image32 == <void *>a.image and a.image8 == NULL))):
        image_rows = a.image
    elif (b.type == 0 and b.bands == bands and b.xsize == w and b.ysize == h
            and b.pixelsize == pixelsize and b.linesize == w * pixelsize
            and b.image != NULL
            and ((pixelsize == 1 and <void *>b.image8 == <void *>b.image and b.image32 == NULL)
                 or (pixelsize == 4 and <void *>b.image32 == <void *>b.image and b.image8 == NULL))):
        image_rows = b.image
    if image_rows == NULL:
        return NULL
    rows = <uint8_t **>malloc(<size_t>h * sizeof(uint8_t *))
    if rows == NULL:
        raise MemoryError()
    for i in range(h):
        rows[i] = <uint8_t *>image_rows[i]
    return rows


cdef uint8_t **_buffer_rows(unsigned char[::1] buf, int width, int height, int pixelsize) except NULL:
    cdef uint8_t **rows = <uint8_t **>malloc(<size_t>(height if height > 0 else 1) * sizeof(uint8_t *))
    cdef size_t stride = <size_t>width * pixelsize
    cdef uint8_t *base = &buf[0]
    cdef Py_ssize_t i
    if rows == NULL:
        raise MemoryError()
    for i in range(height):
        rows[i] = base + i * stride
    return rows


def kernel_name() -> str:
    """The inner loops in use: ``"avx2"`` or ``"c"``."""
    return pf_kernel_name().decode()


def use_plain_c(bint flag) -> None:
    """Run the plain C inner loops instead of AVX2 (for tests; not thread-safe)."""
    global pf_force_plain_c
    pf_force_plain_c = 1 if flag else 0


def pillow_layout_known(image) -> bool:
    """True when ``image``'s pixels can be read in place (no copy)."""
    mode = image.mode
    if mode not in _BANDS:
        return False
    cdef uint8_t **rows = pf_pillow_rows(pf_pillow_core(image), image.width, image.height,
                                         _BANDS[mode], 1 if mode == "L" else 4)
    free(rows)
    return rows != NULL


def resize(image, int width, int height, int filter,
           float x0, float y0, float x1, float y1, int threads=1, int order=0,
           bint zero_copy=True):
    """Resample a Pillow image of mode L, LA, RGB or RGBA to ``(width, height)``.

    Arguments are not checked here beyond what C needs: use
    ``pastefile.ext.resample.resize``.
    """
    cdef pf_plane src, dst
    cdef float box[4]
    cdef int rc, kind
    cdef unsigned char[::1] src_buf, dst_buf
    mode = image.mode
    kind = _KINDS[mode]
    if width < 1 or height < 1 or threads < 1:
        raise ValueError("sizes and threads must be >= 1")
    if filter < PF_FILTER_BOX or filter > PF_FILTER_LANCZOS:
        raise ValueError("unknown filter")
    if order != PF_ORDER_PILLOW13 and order != PF_ORDER_HORIZONTAL:
        raise ValueError("unknown pass order")
    box[0] = x0
    box[1] = y0
    box[2] = x1
    box[3] = y1
    if not (0 <= box[0] < box[2] <= image.width and 0 <= box[1] < box[3] <= image.height):
        raise ValueError("box must lie inside the image and be non-empty")
    bands = _BANDS[mode]
    pixelsize = 1 if kind == PF_KIND_L else 4
    rawmode, raw_ps = _RAWMODES[mode]
    src.rows = NULL
    dst.rows = NULL
    src.width = image.width
    src.height = image.height
    dst.width = width
    dst.height = height
    out = None
    try:
        src_core = pf_pillow_core(image) if zero_copy else None
        if src_core is not None:
            src.rows = pf_pillow_rows(src_core, src.width, src.height, bands, pixelsize)
        if src.rows != NULL:
            src.pixelsize = pixelsize
        else:
            data = bytearray(image.tobytes("raw", rawmode))
            src_buf = data
            src.pixelsize = raw_ps
            src.rows = _buffer_rows(src_buf, src.width, src.height, raw_ps)
        if zero_copy:
            out = Image.new(mode, (width, height))
            dst_core = pf_pillow_core(out)
            dst.rows = pf_pillow_rows(dst_core, width, height, bands, pixelsize)
        if dst.rows != NULL:
            dst.pixelsize = pixelsize
        else:
            out_data = bytearray(<size_t>width * height * raw_ps)
            dst_buf = out_data
            dst.pixelsize = raw_ps
            dst.rows = _buffer_rows(dst_buf, width, height, raw_ps)
            out = None
        with nogil:
            rc = pf_resample(&src, &dst, kind, filter, box, order, threads)
        if rc != 0:
            raise MemoryError("out of memory while resampling")
        if out is None:
            out = Image.frombytes(mode, (width, height), bytes(out_data), "raw", rawmode)
        return out
    finally:
        free(src.rows)
        free(dst.rows)
