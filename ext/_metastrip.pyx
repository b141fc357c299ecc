# cython: language_level=3, boundscheck=False, wraparound=False
"""Container walks for lossless metadata removal: the byte loops only.

Each walk lists the segments of a container header as ``(kind, offset,
length)`` and says where and how it stopped: ``(segments, end, status)``.
What to keep, drop or rewrite is decided by the caller (pastefile.core).

JPEG: from SOI up to and including the first SOS (entropy-coded data is not
walked), or EOI for a file without a scan.  ``kind`` is the marker code,
``offset`` the 0xFF right before it, ``length`` 2 for standalone markers
(TEMn, RSTn, EOI) and 2 + the length field otherwise.  Fill bytes (0xFF
runs before a marker) lie between segments and belong to none.

PNG: the chunks after the 8-byte signature up to and including IEND;
``kind`` is the chunk type read big-endian, ``length`` 12 + data length.

RIFF (WebP): the chunks after the 12-byte header, up to the end the header
declares; ``kind`` is the FourCC read big-endian, ``length`` 8 + size + the
pad byte of an odd size (left out when the buffer or the RIFF ends right
before it, as some writers do).

``end`` is the offset after the last segment listed; with a status other than
WALK_DONE it is where the next segment would have started.
"""
from libc.stdint cimport uint32_t

WALK_DONE = PF_WALK_DONE
WALK_TRUNCATED = PF_WALK_TRUNCATED
WALK_MALFORMED = PF_WALK_MALFORMED
WALK_NOT_CONTAINER = PF_WALK_NOT_CONTAINER

cdef enum:
    _SOS = 0xDA
    _EOI = 0xD9
    _IEND = 0x49454E44


cdef inline uint32_t _be16(const unsigned char *p) noexcept nogil:
    return (<uint32_t>p[0] << 8) | p[1]


cdef inline uint32_t _be32(const unsigned char *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline uint32_t _le32(const unsigned char *p) noexcept nogil:
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | p[0]


cdef inline bint _is_letter(unsigned char c) noexcept nogil:
    return (65 <= c <= 90) or (97 <= c <= 122)


cdef int pf_jpeg_step(const unsigned char *buf, Py_ssize_t n, Py_ssize_t pos,
                      pf_segment *seg) noexcept nogil:
    cdef Py_ssize_t p = pos
    cdef unsigned char m
    cdef Py_ssize_t size
    if p >= n:
        return PF_WALK_TRUNCATED
    if buf[p] != 0xFF:
        return PF_WALK_MALFORMED
    while p + 1 < n and buf[p + 1] == 0xFF:  # fill bytes
        p += 1
    if p + 1 >= n:
        return PF_WALK_TRUNCATED  # 0xFF (run) at the very end
    m = buf[p + 1]
    if m == 0x00 or m == 0xD8:
        # a stuffed zero or a second SOI cannot start a header segment
        return PF_WALK_MALFORMED
    seg.kind = m
    seg.offset = p
    if m == 0x01 or 0xD0 <= m <= 0xD9:
        seg.length = 2
        return PF_WALK_MORE
    if p + 4 > n:
        return PF_WALK_TRUNCATED
    size = _be16(buf + p + 2)
    if size < 2:
        return PF_WALK_MALFORMED
    if p + 2 + size > n:
        return PF_WALK_TRUNCATED
    seg.length = 2 + size
    return PF_WALK_MORE


cdef int pf_png_step(const unsigned char *buf, Py_ssize_t n, Py_ssize_t pos,
                     pf_segment *seg) noexcept nogil:
    cdef Py_ssize_t size
    cdef int i
    if pos + 8 > n:
        return PF_WALK_TRUNCATED
    size = _be32(buf + pos)
    if size > 0x7FFFFFFF:
        return PF_WALK_MALFORMED
    for i in range(4):
        if not _is_letter(buf[pos + 4 + i]):
            return PF_WALK_MALFORMED
    if pos + 12 + size > n:
        return PF_WALK_TRUNCATED
    seg.kind = _be32(buf + pos + 4)
    seg.offset = pos
    seg.length = 12 + size
    return PF_WALK_MORE


cdef int pf_riff_step(const unsigned char *buf, Py_ssize_t riff_end, Py_ssize_t n,
                      Py_ssize_t pos, pf_segment *seg) noexcept nogil:
    cdef Py_ssize_t limit = riff_end if riff_end < n else n
    cdef Py_ssize_t size
    # past the declared end the file is wrong; past the buffer it was cut short
    cdef int short_status = PF_WALK_MALFORMED if riff_end <= n else PF_WALK_TRUNCATED
    if pos + 8 > limit:
        return short_status
    size = _le32(buf + pos + 4)
    if pos + 8 + size > limit:
        return short_status
    seg.kind = _be32(buf + pos)
    seg.offset = pos
    seg.length = 8 + size + (size & 1)
    if pos + seg.length > limit:
        seg.length = 8 + size  # the pad byte is missing at the very end
    return PF_WALK_MORE


def jpeg_segments(const unsigned char[::1] buf not None):
    """JPEG marker segments from SOI to the first SOS (or EOI): (segments, end, status)."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef const unsigned char *p = &buf[0] if n else NULL
    cdef Py_ssize_t pos = 2
    cdef pf_segment seg
    cdef int status
    if n < 2 or p[0] != 0xFF or p[1] != 0xD8:
        return [], 0, WALK_NOT_CONTAINER
    segments = [(0xD8, 0, 2)]
    while True:
        status = pf_jpeg_step(p, n, pos, &seg)
        if status != PF_WALK_MORE:
            return segments, pos, status
        segments.append((seg.kind, seg.offset, seg.length))
        pos = seg.offset + seg.length
        if seg.kind == _SOS or seg.kind == _EOI:
            return segments, pos, WALK_DONE


def png_chunks(const unsigned char[::1] buf not None):
    """PNG chunks after the signature up to IEND: (chunks, end, status)."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef const unsigned char *p = &buf[0] if n else NULL
    cdef Py_ssize_t pos = 8
    cdef pf_segment seg
    cdef int status
    if n < 8 or p[0] != 0x89 or p[1] != 0x50 or p[2] != 0x4E or p[3] != 0x47 \
            or p[4] != 0x0D or p[5] != 0x0A or p[6] != 0x1A or p[7] != 0x0A:
        return [], 0, WALK_NOT_CONTAINER
    chunks = []
    while True:
        status = pf_png_step(p, n, pos, &seg)
        if status != PF_WALK_MORE:
            return chunks, pos, status
        chunks.append((seg.kind, seg.offset, seg.length))
        pos += seg.length
        if seg.kind == _IEND:
            return chunks, pos, WALK_DONE


def riff_chunks(const unsigned char[::1] buf not None):
    """RIFF chunks after the 12-byte header, to the declared end: (chunks, end, status)."""
    cdef Py_ssize_t n = buf.shape[0]
    cdef const unsigned char *p = &buf[0] if n else NULL
    cdef Py_ssize_t pos = 12
    cdef Py_ssize_t riff_end
    cdef pf_segment seg
    cdef int status
    if n < 12 or p[0] != 0x52 or p[1] != 0x49 or p[2] != 0x46 or p[3] != 0x46:
        return [], 0, WALK_NOT_CONTAINER
    riff_end = 8 + <Py_ssize_t>_le32(p + 4)
    if riff_end < 12:
        return [], 12, WALK_MALFORMED
    chunks = []
    while pos < riff_end:
        status = pf_riff_step(p, riff_end, n, pos, &seg)
        if status != PF_WALK_MORE:
            return chunks, pos, status
        chunks.append((seg.kind, seg.offset, seg.length))
        pos += seg.length
    return chunks, pos, WALK_DONE
