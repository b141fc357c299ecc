# C-level declarations of the perceptual hashes, for other Cython kernels.
from libc.stdint cimport uint8_t, uint64_t

# pHash of a 32x32 grey thumbnail (row-major bytes): integer DCT-II, the 8x8
# lowest frequencies against their median, first bit most significant.
cdef uint64_t pf_phash_bits(const uint8_t *px) noexcept nogil

# dHash of a 9-wide, 8-high grey thumbnail: pixel brighter than its left
# neighbour, row by row, first bit most significant.
cdef uint64_t pf_dhash_bits(const uint8_t *px) noexcept nogil
