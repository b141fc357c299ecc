# C-level declarations of the resampling kernel, for other Cython kernels
# (the perceptual hashes cimport these).
from libc.stdint cimport int16_t, int32_t, uint8_t

cdef enum:
    PF_PRECISION_BITS = 22          # 32 - 8 - 2, as in Pillow's Resample.c

cdef enum pf_filter:
    PF_FILTER_BOX = 0
    PF_FILTER_BILINEAR = 1
    PF_FILTER_BICUBIC = 2
    PF_FILTER_LANCZOS = 3

cdef enum pf_kind:
    PF_KIND_L = 0       # one byte per pixel
    PF_KIND_LA = 1      # luminance + alpha, premultiplied while resampling
    PF_KIND_RGB = 2     # R, G, B, pad
    PF_KIND_RGBA = 3    # premultiplied while resampling
    PF_KIND_RGB_AS_L = 4   # RGB or RGBA source, resampled as its luminance
    PF_KIND_LA_AS_L = 5    # LA source, resampled as its L band

# Fixed-point coefficients of one axis: output pixel i reads bounds[2i + 1]
# source pixels from bounds[2i], weighted by kk[i * ksize ...].  kk4, when
# set, repeats each coefficient four times (one per channel); kk16, when set,
# holds them split in 16-bit halves for the one-channel AVX2 loop.
ctypedef struct pf_coeffs:
    int out_size
    int ksize
    int *bounds
    int32_t *kk
    int32_t *kk4
    int16_t *kk16
    int ks16

cdef enum pf_order:
    PF_ORDER_PILLOW13 = 0    # vertical pass first when the height shrinks most
    PF_ORDER_HORIZONTAL = 1  # always horizontal first (Pillow before 13)

# Rows of an 8-bit image.  pixelsize is 1 for L, 4 for the other kinds in
# Pillow's memory layout; 2 (L, A) is accepted for LA.  The *_AS_L kinds
# take a source of four bytes a pixel (two for LA) and give an L image, the
# luminance as Pillow's convert("L") computes it (ITU-R 601-2).
ctypedef struct pf_plane:
    uint8_t **rows
    int width
    int height
    int pixelsize

cdef int pf_precompute_coeffs(int in_size, float in0, float in1, int out_size,
                              int filter, pf_coeffs *c) noexcept nogil
cdef void pf_free_coeffs(pf_coeffs *c) noexcept nogil

# Resample the box (x0, y0, x1, y1) of src onto dst, whose width and height
# are the output size.  Returns 0, or -1 when memory runs out.
cdef int pf_resample(const pf_plane *src, pf_plane *dst, int kind, int filter,
                     const float *box, int order, int nthreads) noexcept nogil

# A loaded Pillow image's core object (it owns the pixels; hold it while the
# rows are in use), or None.  Row pointers into the core's memory (free()
# them), or NULL when its layout is not one this module knows.
cdef object pf_pillow_core(object image)
cdef uint8_t **pf_pillow_rows(object core, int w, int h, int bands,
                              int pixelsize) except? NULL
