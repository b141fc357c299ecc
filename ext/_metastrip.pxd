# C-level declarations of the container walks, for other Cython kernels.
from libc.stdint cimport uint32_t

# How a walk ended (also the third item of the Python-level results).
cdef enum:
    PF_WALK_DONE = 0           # natural end: JPEG SOS or EOI, PNG IEND, RIFF end
    PF_WALK_TRUNCATED = 1      # the buffer ends inside a segment (or before the end)
    PF_WALK_MALFORMED = 2      # bytes that are not a segment where one must start
    PF_WALK_NOT_CONTAINER = 3  # no signature
    PF_WALK_MORE = -1          # step only: *seg was filled, walk on

# One segment or chunk: JPEG marker code, or PNG/RIFF FourCC read big-endian;
# offset of its first byte; length in bytes, header and (RIFF) padding included.
cdef struct pf_segment:
    uint32_t kind
    Py_ssize_t offset
    Py_ssize_t length

# One step of each walk from ``pos``: PF_WALK_MORE with *seg filled, or how
# the walk ends there.  Never reads outside buf[0:n].  RIFF: ``riff_end`` is
# the end the RIFF header declares (8 + its size), possibly beyond n.
cdef int pf_jpeg_step(const unsigned char *buf, Py_ssize_t n, Py_ssize_t pos,
                      pf_segment *seg) noexcept nogil
cdef int pf_png_step(const unsigned char *buf, Py_ssize_t n, Py_ssize_t pos,
                     pf_segment *seg) noexcept nogil
cdef int pf_riff_step(const unsigned char *buf, Py_ssize_t riff_end, Py_ssize_t n,
                      Py_ssize_t pos, pf_segment *seg) noexcept nogil
