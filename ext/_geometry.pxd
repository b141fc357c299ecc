# C-level declarations shared with later Cython kernels (the resampler cimports these).
from libc.stdint cimport int64_t

ctypedef struct pf_geometry:
    int64_t left
    int64_t top
    int64_t right
    int64_t bottom
    int64_t out_w
    int64_t out_h

cdef int compute_geometry(int64_t src_w, int64_t src_h, int64_t w, int64_t h,
                          bint upscale, pf_geometry *g) noexcept nogil
