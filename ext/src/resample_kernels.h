/* Inner loops of the Cython resampler (ext/_resample.pyx).
 *
 * Rows of 8-bit pixels times 32-bit fixed-point coefficients, summed in
 * 32-bit integers: a horizontal pass (each output pixel a dot product over a
 * window of the source row) and a vertical pass (each output row a weighted
 * sum of source rows).  On x86-64 an AVX2 version is compiled with a target
 * attribute and picked at run time, so even a baseline (portable) build uses
 * it where the CPU has it; elsewhere the plain C loops are left to the
 * compiler's vectoriser.  Integer sums do not depend on the order of the
 * additions, so every version returns the same bytes.
 *
 * The sums include the rounding half and are shifted by PF_KERNEL_BITS, then
 * clamped to 0..255, exactly like Pillow's clip8().
 */
#ifndef PASTEFILE_RESAMPLE_KERNELS_H
#define PASTEFILE_RESAMPLE_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PF_KERNEL_BITS 22
#define PF_KERNEL_HALF (1 << (PF_KERNEL_BITS - 1))

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define PF_X86_DISPATCH 1
#include <immintrin.h>
#endif

static inline uint8_t
pf_clip8(int32_t v) {
    v >>= PF_KERNEL_BITS;
    return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

/* ---- plain C ---------------------------------------------------------- */

/* bounds[2i], bounds[2i + 1]: first source pixel and tap count of output i;
   kk: ksize coefficients per output pixel (kk4: each one repeated 4 times). */
static void
pf_hrow1_c(const uint8_t *src, uint8_t *dst, const int *bounds, const int32_t *kk,
           int ksize, int out_size) {
    for (int xx = 0; xx < out_size; xx++) {
        const uint8_t *p = src + bounds[2 * xx];
        const int32_t *k = kk + (size_t)xx * ksize;
        int n = bounds[2 * xx + 1];
        int32_t s = PF_KERNEL_HALF;
        for (int x = 0; x < n; x++) {
            s += p[x] * k[x];
        }
        dst[xx] = pf_clip8(s);
    }
}

static void
pf_hrow4_c(const uint8_t *src, uint8_t *dst, const int *bounds, const int32_t *kk4,
           int ksize, int out_size) {
    for (int xx = 0; xx < out_size; xx++) {
        const uint8_t *p = src + 4 * (size_t)bounds[2 * xx];
        const int32_t *k = kk4 + (size_t)xx * ksize * 4;
        int n = bounds[2 * xx + 1];
        int32_t s0 = PF_KERNEL_HALF, s1 = PF_KERNEL_HALF, s2 = PF_KERNEL_HALF,
                s3 = PF_KERNEL_HALF;
        for (int x = 0; x < n; x++) {
            int32_t w = k[4 * x];
            s0 += p[4 * x] * w;
            s1 += p[4 * x + 1] * w;
            s2 += p[4 * x + 2] * w;
            s3 += p[4 * x + 3] * w;
        }
        dst[4 * xx] = pf_clip8(s0);
        dst[4 * xx + 1] = pf_clip8(s1);
        dst[4 * xx + 2] = pf_clip8(s2);
        dst[4 * xx + 3] = pf_clip8(s3);
    }
}

/* dst[i] = clip8(HALF + sum over y < n of rows[y][i] * k[y]), i < width;
   acc: width int32 of scratch. */
static void
pf_vrow_c(uint8_t *const *rows, size_t off, const int32_t *k, int n, int width,
          int32_t *acc, uint8_t *dst) {
    for (int i = 0; i < width; i++) {
        acc[i] = PF_KERNEL_HALF;
    }
    for (int y = 0; y < n; y++) {
        const uint8_t *row = rows[y] + off;
        int32_t w = k[y];
        for (int i = 0; i < width; i++) {
            acc[i] += row[i] * w;
        }
    }
    for (int i = 0; i < width; i++) {
        dst[i] = pf_clip8(acc[i]);
    }
}

/* Luminance of RGB(A) pixels (four bytes each), columns [x0, x1), as
   Pillow's convert("L"): ITU-R 601-2 weights in 16-bit fixed point. */
#define PF_LUMA_LOOP                                                          \
    for (int x = x0; x < x1; x++) {                                           \
        const uint8_t *p = src + 4 * (size_t)x;                               \
        dst[x] = (uint8_t)(((uint32_t)p[0] * 19595 + (uint32_t)p[1] * 38470 + \
                            (uint32_t)p[2] * 7471 + 0x8000) >> 16);           \
    }

static void
pf_luma_row_c(const uint8_t *src, uint8_t *dst, int x0, int x1) {
    PF_LUMA_LOOP
}

/* ---- AVX2 ------------------------------------------------------------- */

#ifdef PF_X86_DISPATCH

#define PF_AVX2 __attribute__((target("avx2")))

/* Eight pixels at a time with 16-bit multiply-adds: (r, b) pairs times
   (19595, 7471), and g times 19235 doubled (38470 does not fit in int16). */
PF_AVX2 static void
pf_luma_row_avx2(const uint8_t *src, uint8_t *dst, int x0, int x1) {
    const __m256i low_bytes = _mm256_set1_epi32(0x00FF00FF);
    const __m256i w_rb = _mm256_set1_epi32((7471 << 16) | 19595);
    const __m256i w_g = _mm256_set1_epi32(19235);
    const __m256i half = _mm256_set1_epi32(0x8000);
    int x = x0;
    for (; x + 8 <= x1; x += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(src + 4 * (size_t)x));
        __m256i rb = _mm256_and_si256(v, low_bytes);
        __m256i g = _mm256_and_si256(_mm256_srli_epi32(v, 8), low_bytes);
        __m256i s = _mm256_add_epi32(_mm256_madd_epi16(rb, w_rb),
                                     _mm256_slli_epi32(_mm256_madd_epi16(g, w_g), 1));
        s = _mm256_srli_epi32(_mm256_add_epi32(s, half), 16);
        s = _mm256_packus_epi16(_mm256_packus_epi32(s, s), s);
        int32_t lo = _mm256_cvtsi256_si32(s), hi = _mm256_extract_epi32(s, 4);
        memcpy(dst + x, &lo, 4);
        memcpy(dst + x + 4, &hi, 4);
    }
    for (; x < x1; x++) {
        const uint8_t *p = src + 4 * (size_t)x;
        dst[x] = (uint8_t)(((uint32_t)p[0] * 19595 + (uint32_t)p[1] * 38470 +
                            (uint32_t)p[2] * 7471 + 0x8000) >> 16);
    }
}

/* RGBA premultiplied by alpha, Pillow's MULDIV255 ((c*a + 128) * 257 >> 16,
   in 16-bit lanes), four pixels a step; alpha itself is kept. */
PF_AVX2 static void
pf_premultiply_rgba_avx2(const uint8_t *src, uint8_t *dst, int x0, int x1) {
    const __m256i round = _mm256_set1_epi16(128);
    int x = x0;
    for (; x + 4 <= x1; x += 4) {
        __m256i px = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(src + 4 * (size_t)x)));
        __m256i a = _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(px, 0xFF), 0xFF);
        __m256i t = _mm256_add_epi16(_mm256_mullo_epi16(px, a), round);
        t = _mm256_srli_epi16(_mm256_add_epi16(t, _mm256_srli_epi16(t, 8)), 8);
        t = _mm256_blend_epi16(t, px, 0x88);
        t = _mm256_permute4x64_epi64(_mm256_packus_epi16(t, t), 0x08);
        _mm_storeu_si128((__m128i *)(dst + 4 * (size_t)x), _mm256_castsi256_si128(t));
    }
    for (; x < x1; x++) {
        const uint8_t *p = src + 4 * (size_t)x;
        uint32_t a = p[3];
        for (int c = 0; c < 3; c++) {
            uint32_t t = p[c] * a + 128;
            dst[4 * (size_t)x + c] = (uint8_t)(((t >> 8) + t) >> 8);
        }
        dst[4 * (size_t)x + 3] = (uint8_t)a;
    }
}

/* Four int32 lanes: round, shift, clamp to 0..255, four bytes out. */
PF_AVX2 static inline void
pf_store4_avx2(__m128i s, uint8_t *dst) {
    s = _mm_srai_epi32(_mm_add_epi32(s, _mm_set1_epi32(PF_KERNEL_HALF)), PF_KERNEL_BITS);
    s = _mm_packus_epi16(_mm_packs_epi32(s, s), s);
    int32_t v = _mm_cvtsi128_si32(s);
    memcpy(dst, &v, 4);
}

PF_AVX2 static void
pf_hrow4_avx2(const uint8_t *src, uint8_t *dst, const int *bounds, const int32_t *kk4,
              int ksize, int out_size) {
    for (int xx = 0; xx < out_size; xx++) {
        const uint8_t *p = src + 4 * (size_t)bounds[2 * xx];
        const int32_t *k = kk4 + (size_t)xx * ksize * 4;
        int n = bounds[2 * xx + 1];
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
        int x = 0;
        /* two pixels (eight channels) per multiply */
        for (; x + 4 <= n; x += 4) {
            __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 4 * x)));
            __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 4 * x + 8)));
            acc0 = _mm256_add_epi32(
                acc0, _mm256_mullo_epi32(a, _mm256_loadu_si256((const __m256i *)(k + 4 * x))));
            acc1 = _mm256_add_epi32(
                acc1, _mm256_mullo_epi32(b, _mm256_loadu_si256((const __m256i *)(k + 4 * x + 8))));
        }
        if (x + 2 <= n) {
            __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 4 * x)));
            acc0 = _mm256_add_epi32(
                acc0, _mm256_mullo_epi32(a, _mm256_loadu_si256((const __m256i *)(k + 4 * x))));
            x += 2;
        }
        acc0 = _mm256_add_epi32(acc0, acc1);
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc0), _mm256_extracti128_si256(acc0, 1));
        if (x < n) {
            int32_t v;
            memcpy(&v, p + 4 * x, 4);
            __m128i a = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(v));
            s = _mm_add_epi32(s, _mm_mullo_epi32(a, _mm_loadu_si128((const __m128i *)(k + 4 * x))));
        }
        pf_store4_avx2(s, dst + 4 * xx);
    }
}

/* One channel, 16 taps per step with 16-bit multiply-adds.  Each 22-bit
   coefficient is split as hi * 2^15 + lo (kk16: ks16 hi values then ks16 lo
   values per output pixel, zero past the taps); the two partial sums wrap
   modulo 2^32 like any int32 sum, and the recombined total is exact because
   the true total fits in 32 bits. */
PF_AVX2 static void
pf_hrow1_avx2(const uint8_t *src, uint8_t *dst, const int *bounds, const int16_t *kk16,
              int ks16, int out_size) {
    for (int xx = 0; xx < out_size; xx++) {
        const uint8_t *p = src + bounds[2 * xx];
        const int16_t *khi = kk16 + (size_t)xx * ks16 * 2;
        const int16_t *klo = khi + ks16;
        int n = bounds[2 * xx + 1];
        __m256i ahi = _mm256_setzero_si256(), alo = _mm256_setzero_si256();
        int x = 0;
        for (; x + 16 <= n; x += 16) {
            __m256i px = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p + x)));
            ahi = _mm256_add_epi32(
                ahi, _mm256_madd_epi16(px, _mm256_loadu_si256((const __m256i *)(khi + x))));
            alo = _mm256_add_epi32(
                alo, _mm256_madd_epi16(px, _mm256_loadu_si256((const __m256i *)(klo + x))));
        }
        /* ahi * 2^15 + alo, summed across lanes */
        __m256i a = _mm256_add_epi32(_mm256_slli_epi32(ahi, 15), alo);
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
        uint32_t sum = (uint32_t)_mm_cvtsi128_si32(s) + (uint32_t)PF_KERNEL_HALF;
        /* the last taps one by one: a 16-byte copy of them through memory
           would stall on store forwarding */
        for (; x < n; x++) {
            sum += (uint32_t)p[x] * (uint32_t)((int32_t)khi[x] * 32768 + klo[x]);
        }
        dst[xx] = pf_clip8((int32_t)sum);
    }
}

/* 32 output bytes at a time, the accumulators in registers across taps. */
PF_AVX2 static void
pf_vrow_avx2(uint8_t *const *rows, size_t off, const int32_t *k, int n, int width,
             int32_t *acc, uint8_t *dst) {
    const __m256i half = _mm256_set1_epi32(PF_KERNEL_HALF);
    int i = 0;
    for (; i + 32 <= width; i += 32) {
        __m256i s0 = half, s1 = half, s2 = half, s3 = half;
        for (int y = 0; y < n; y++) {
            const uint8_t *row = rows[y] + off + i;
            __m256i w = _mm256_set1_epi32(k[y]);
            __m128i lo = _mm_loadu_si128((const __m128i *)row);
            __m128i hi = _mm_loadu_si128((const __m128i *)(row + 16));
            s0 = _mm256_add_epi32(s0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(lo), w));
            s1 = _mm256_add_epi32(
                s1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), w));
            s2 = _mm256_add_epi32(s2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(hi), w));
            s3 = _mm256_add_epi32(
                s3, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), w));
        }
        s0 = _mm256_srai_epi32(s0, PF_KERNEL_BITS);
        s1 = _mm256_srai_epi32(s1, PF_KERNEL_BITS);
        s2 = _mm256_srai_epi32(s2, PF_KERNEL_BITS);
        s3 = _mm256_srai_epi32(s3, PF_KERNEL_BITS);
        /* packs/packus work within 128-bit lanes: fix the order after */
        __m256i w01 = _mm256_packs_epi32(s0, s1);
        __m256i w23 = _mm256_packs_epi32(s2, s3);
        __m256i b = _mm256_packus_epi16(w01, w23);
        b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(dst + off + i), b);
    }
    if (i < width) {
        uint8_t *tail_rows_dst = dst + off + i;
        for (int j = 0; j < width - i; j++) {
            acc[j] = PF_KERNEL_HALF;
        }
        for (int y = 0; y < n; y++) {
            const uint8_t *row = rows[y] + off + i;
            int32_t w = k[y];
            for (int j = 0; j < width - i; j++) {
                acc[j] += row[j] * w;
            }
        }
        for (int j = 0; j < width - i; j++) {
            tail_rows_dst[j] = pf_clip8(acc[j]);
        }
    }
}

#endif /* PF_X86_DISPATCH */

/* Set to 1 to run the plain C loops even where AVX2 is available (tests). */
static int pf_force_plain_c = 0;

#ifdef PF_X86_DISPATCH
static int
pf_have_avx2(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return have && !pf_force_plain_c;
}
#endif

/* ---- entry points ----------------------------------------------------- */

/* kk16 (see pf_hrow1_avx2) may be NULL: then the plain loop runs. */
static void
pf_hrow1(const uint8_t *src, uint8_t *dst, const int *bounds, const int32_t *kk,
         const int16_t *kk16, int ksize, int ks16, int out_size) {
#ifdef PF_X86_DISPATCH
    if (kk16 != NULL && pf_have_avx2()) {
        pf_hrow1_avx2(src, dst, bounds, kk16, ks16, out_size);
        return;
    }
#else
    (void)kk16;
    (void)ks16;
#endif
    pf_hrow1_c(src, dst, bounds, kk, ksize, out_size);
}

static void
pf_hrow4(const uint8_t *src, uint8_t *dst, const int *bounds, const int32_t *kk4,
         int ksize, int out_size) {
#ifdef PF_X86_DISPATCH
    if (pf_have_avx2()) {
        pf_hrow4_avx2(src, dst, bounds, kk4, ksize, out_size);
        return;
    }
#endif
    pf_hrow4_c(src, dst, bounds, kk4, ksize, out_size);
}

/* Bytes [off, off + width) of dst from the same bytes of rows[0..n). */
static void
pf_vrow(uint8_t *const *rows, size_t off, const int32_t *k, int n, int width,
        int32_t *acc, uint8_t *dst) {
#ifdef PF_X86_DISPATCH
    if (pf_have_avx2()) {
        pf_vrow_avx2(rows, off, k, n, width, acc, dst);
        return;
    }
#endif
    pf_vrow_c(rows, off, k, n, width, acc, dst + off);
}

static void
pf_luma_row(const uint8_t *src, uint8_t *dst, int x0, int x1) {
#ifdef PF_X86_DISPATCH
    if (pf_have_avx2()) {
        pf_luma_row_avx2(src, dst, x0, x1);
        return;
    }
#endif
    pf_luma_row_c(src, dst, x0, x1);
}

/* kk16 for pf_hrow1_avx2: out_size * ks16 * 2 values, ks16 = ksize rounded
   up to 16.  Returns NULL when the AVX2 loop will not run or memory is short. */
static int16_t *
pf_split16(const int32_t *kk, int ksize, int out_size, int *ks16_out) {
    int ks16 = (ksize + 15) & ~15;
    *ks16_out = ks16;
#ifdef PF_X86_DISPATCH
    if (!pf_have_avx2()) {
        return NULL;
    }
    int16_t *out = (int16_t *)calloc((size_t)out_size * ks16 * 2, sizeof(int16_t));
    if (out == NULL) {
        return NULL;
    }
    for (int xx = 0; xx < out_size; xx++) {
        int16_t *hi = out + (size_t)xx * ks16 * 2, *lo = hi + ks16;
        for (int x = 0; x < ksize; x++) {
            int32_t k = kk[(size_t)xx * ksize + x];
            hi[x] = (int16_t)(k >> 15);
            lo[x] = (int16_t)(k & 0x7FFF);
        }
    }
    return out;
#else
    (void)kk;
    (void)out_size;
    return NULL;
#endif
}

/* RGBA row premultiplied, columns [x0, x1); see pf_premultiply_rgba_avx2. */
static void
pf_premultiply_rgba(const uint8_t *src, uint8_t *dst, int x0, int x1) {
#ifdef PF_X86_DISPATCH
    if (pf_have_avx2()) {
        pf_premultiply_rgba_avx2(src, dst, x0, x1);
        return;
    }
#endif
    for (int x = x0; x < x1; x++) {
        const uint8_t *p = src + 4 * (size_t)x;
        uint32_t a = p[3];
        for (int c = 0; c < 3; c++) {
            uint32_t t = p[c] * a + 128;
            dst[4 * (size_t)x + c] = (uint8_t)(((t >> 8) + t) >> 8);
        }
        dst[4 * (size_t)x + 3] = (uint8_t)a;
    }
}

/* Which inner loops run: "avx2" or "c". */
static const char *
pf_kernel_name(void) {
#ifdef PF_X86_DISPATCH
    if (pf_have_avx2()) {
        return "avx2";
    }
#endif
    return "c";
}

#endif
