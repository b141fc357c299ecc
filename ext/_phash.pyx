# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Perceptual hashes (dHash, DCT pHash) on thumbnails from the resampling kernel.

The thumbnail is the image's luminance (Pillow's ``convert("L")``: ITU-R
601-2 weights in fixed point) resampled with Lanczos, computed in one go by
``pf_resample`` without a full-size grey copy: the luminance of each source
row is taken as the horizontal pass reads it.  With every row used, it is
byte-identical to ``image.convert("L").resize(size, Image.LANCZOS)`` (Pillow
13's pass order), which is how imagehash makes its thumbnails.

``row_step`` > 1 reads one source row in ``row_step`` (the middle row of each
band of ``row_step`` rows; a remainder under ``row_step`` at the bottom is
left out), for a thumbnail that costs a fraction of the memory traffic.

pHash: the 2-D DCT-II of the 32x32 thumbnail, its 8x8 lowest frequencies,
bit set where a coefficient exceeds their median.  The DCT is computed in
integers (cosines scaled by 2**DCT_BITS and rounded), so the median
comparison is exact and any other implementation using the same table agrees
bit for bit.  dHash: a 9x8 thumbnail, bit set where a pixel is brighter than
its left neighbour.  Bits are numbered row by row, the first one being the
most significant, as in imagehash's hexadecimal strings.
"""
import math

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memset

from pastefile.ext._resample cimport (
    PF_FILTER_BOX,
    PF_FILTER_LANCZOS,
    PF_KIND_L,
    PF_KIND_LA_AS_L,
    PF_KIND_RGB_AS_L,
    pf_pillow_core,
    pf_pillow_rows,
    pf_plane,
    pf_resample,
)

DCT_BITS = 20
PHASH_SIZE = 32
DHASH_WIDTH = 9
DHASH_HEIGHT = 8

# cos(pi * u * (2n + 1) / 64) * 2**DCT_BITS, rounded half up, u < 8, n < 32
cdef int64_t _dct[8][32]


def dct_table():
    """The integer DCT-II basis the pHash uses: 8 rows of 32 values."""
    return [[math.floor(math.cos(math.pi * u * (2 * n + 1) / 64) * 2**DCT_BITS + 0.5)
             for n in range(32)] for u in range(8)]


def _fill_table():
    table = dct_table()
    for u in range(8):
        for n in range(32):
            _dct[u][n] = table[u][n]


_fill_table()


_KINDS = {"L": (PF_KIND_L, 1, 1), "LA": (PF_KIND_LA_AS_L, 2, 4),
          "RGB": (PF_KIND_RGB_AS_L, 3, 4), "RGBA": (PF_KIND_RGB_AS_L, 4, 4)}
_RAWMODES = {"L": ("L", 1), "LA": ("LA", 2), "RGB": ("RGBX", 4), "RGBA": ("RGBA", 4)}


cdef int _cmp_int64(const void *a, const void *b) noexcept nogil:
    cdef int64_t x = (<const int64_t *>a)[0], y = (<const int64_t *>b)[0]
    return (x > y) - (x < y)


cdef uint64_t pf_phash_bits(const uint8_t *px) noexcept nogil:
    """pHash of a 32x32 thumbnail (row-major bytes)."""
    cdef int64_t t[8][32]
    cdef int64_t c[64]
    cdef int64_t s[64]
    cdef int64_t acc, m2
    cdef int u, v, x, y
    cdef uint64_t h = 0
    # along the columns (axis 0) first, then along the rows, as imagehash does
    for u in range(8):
        for x in range(32):
            acc = 0
            for y in range(32):
                acc += _dct[u][y] * px[32 * y + x]
            t[u][x] = acc
    for u in range(8):
        for v in range(8):
            acc = 0
            for x in range(32):
                acc += _dct[v][x] * t[u][x]
            c[8 * u + v] = acc
            s[8 * u + v] = acc
    qsort(s, 64, sizeof(int64_t), _cmp_int64)
    m2 = s[31] + s[32]          # twice the median
    for u in range(64):
        if 2 * c[u] > m2:
            h |= (<uint64_t>1) << (63 - u)
    return h


cdef uint64_t pf_dhash_bits(const uint8_t *px) noexcept nogil:
    """dHash of a 9x8 thumbnail (row-major bytes)."""
    cdef int x, y
    cdef uint64_t h = 0
    for y in range(8):
        for x in range(8):
            if px[9 * y + x + 1] > px[9 * y + x]:
                h |= (<uint64_t>1) << (63 - (8 * y + x))
    return h


cdef bytes _thumbnail(object image, int width, int height, int filter, int row_step,
                      int threads, int order, bint zero_copy):
    cdef pf_plane src, dst
    cdef float box[4]
    cdef uint8_t **rows = NULL
    cdef uint8_t **picked = NULL
    cdef unsigned char[::1] src_view
    cdef unsigned char *base
    cdef bytearray out
    cdef int kind, bands, ps, count, i, rc
    cdef size_t stride
    mode = image.mode
    if mode not in _KINDS:
        raise ValueError(f"mode must be L, LA, RGB or RGBA, got {mode!r}")
    if width < 1 or height < 1 or threads < 1 or row_step < 1:
        raise ValueError("sizes, threads and row_step must be >= 1")
    if filter < PF_FILTER_BOX or filter > PF_FILTER_LANCZOS:
        raise ValueError("unknown filter")
    kind, bands, ps = _KINDS[mode]
    w, h = image.size
    if w < 1 or h < 1:
        raise ValueError("the image is empty")
    count = h // row_step if row_step > 1 else h
    if count < 1:
        raise ValueError("row_step exceeds the image height")
    out = bytearray(width * height)
    dst.rows = NULL
    try:
        core = pf_pillow_core(image) if zero_copy else None
        if core is not None:
            rows = pf_pillow_rows(core, w, h, bands, ps)
        if rows == NULL:
            rawmode, ps = _RAWMODES[mode]
            data = bytearray(image.tobytes("raw", rawmode))
            src_view = data
            base = &src_view[0]
            stride = <size_t>w * ps
            rows = <uint8_t **>malloc(<size_t>h * sizeof(uint8_t *))
            if rows == NULL:
                raise MemoryError()
            for i in range(h):
                rows[i] = base + i * stride
        picked = <uint8_t **>malloc(<size_t>count * sizeof(uint8_t *))
        if picked == NULL:
            raise MemoryError()
        if row_step > 1:
            for i in range(count):
                picked[i] = rows[i * row_step + row_step // 2]
        else:
            for i in range(count):
                picked[i] = rows[i]
        src.rows = picked
        src.width = w
        src.height = count
        src.pixelsize = ps
        dst.rows = <uint8_t **>malloc(<size_t>height * sizeof(uint8_t *))
        if dst.rows == NULL:
            raise MemoryError()
        base = out
        for i in range(height):
            dst.rows[i] = base + <size_t>i * width
        dst.width = width
        dst.height = height
        dst.pixelsize = 1
        box[0] = 0
        box[1] = 0
        box[2] = w
        box[3] = count
        with nogil:
            rc = pf_resample(&src, &dst, kind, filter, box, order, threads)
        if rc != 0:
            raise MemoryError("out of memory while resampling")
    finally:
        free(rows)
        free(picked)
        free(dst.rows)
    return bytes(out)


def gray_thumbnail(image, int width, int height, int filter=PF_FILTER_LANCZOS, int row_step=1,
                   int threads=1, int order=0, bint zero_copy=True) -> bytes:
    """Row-major luminance bytes of ``image`` resampled to ``width`` x ``height``.

    ``filter`` and ``order`` are the codes of ``pastefile.ext._resample``.
    """
    return _thumbnail(image, width, height, filter, row_step, threads, order, zero_copy)


def phash(image, int row_step=1, int threads=1) -> int:
    """64-bit DCT pHash of a Pillow image of mode L, LA, RGB or RGBA."""
    cdef bytes px = _thumbnail(image, 32, 32, PF_FILTER_LANCZOS, row_step, threads, 0, True)
    cdef const unsigned char *p = px
    return pf_phash_bits(p)


def dhash(image, int row_step=1, int threads=1) -> int:
    """64-bit difference hash of a Pillow image of mode L, LA, RGB or RGBA."""
    cdef bytes px = _thumbnail(image, 9, 8, PF_FILTER_LANCZOS, row_step, threads, 0, True)
    cdef const unsigned char *p = px
    return pf_dhash_bits(p)


def phash_of_thumbnail(const unsigned char[::1] pixels) -> int:
    """pHash of 32x32 row-major grey bytes."""
    if pixels.shape[0] != 32 * 32:
        raise ValueError("expected 1024 bytes (32x32)")
    return pf_phash_bits(&pixels[0])


def dhash_of_thumbnail(const unsigned char[::1] pixels) -> int:
    """dHash of 9x8 row-major grey bytes."""
    if pixels.shape[0] != 9 * 8:
        raise ValueError("expected 72 bytes (9x8)")
    return pf_dhash_bits(&pixels[0])
