#include "byte_scan.h"
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KAIFANG_X86 1
#endif

static inline int is_special(uint8_t x, uint8_t delim) {
    return x != delim && (x == 0x22 || x == 0x0D || x == 0x0A);
}

/// The bits of p[0 ..< n] (n < 64) for one word, byte by byte.
static inline void tail_words(const uint8_t *p, size_t n, uint8_t delim, uint64_t *d, uint64_t *s) {
    uint64_t dw = 0, sw = 0;
    for (size_t j = 0; j < n; j++) {
        if (p[j] == delim) dw |= (uint64_t)1 << j;
        else if (is_special(p[j], delim)) sw |= (uint64_t)1 << j;
    }
    *d = dw;
    *s = sw;
}

void kaifang_csv_index_portable(const uint8_t *p, size_t n, uint8_t delim, uint64_t *delims, uint64_t *specials) {
    size_t words = (n + 63) / 64;
    memset(delims, 0, words * sizeof(uint64_t));
    memset(specials, 0, words * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) {
        uint8_t x = p[i];
        if (x == delim) delims[i >> 6] |= (uint64_t)1 << (i & 63);
        else if (is_special(x, delim)) specials[i >> 6] |= (uint64_t)1 << (i & 63);
    }
}

#ifdef KAIFANG_X86
__attribute__((target("avx2")))
static void index_avx2(const uint8_t *p, size_t n, uint8_t delim, uint64_t *delims, uint64_t *specials) {
    const __m256i vd = _mm256_set1_epi8((char)delim), vq = _mm256_set1_epi8(0x22);
    const __m256i vr = _mm256_set1_epi8(0x0D), vn = _mm256_set1_epi8(0x0A);
    size_t i = 0, w = 0;
    for (; i + 64 <= n; i += 64, w++) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(p + i));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(p + i + 32));
        __m256i d0 = _mm256_cmpeq_epi8(x0, vd), d1 = _mm256_cmpeq_epi8(x1, vd);
        __m256i s0 = _mm256_or_si256(_mm256_cmpeq_epi8(x0, vq), _mm256_or_si256(_mm256_cmpeq_epi8(x0, vr), _mm256_cmpeq_epi8(x0, vn)));
        __m256i s1 = _mm256_or_si256(_mm256_cmpeq_epi8(x1, vq), _mm256_or_si256(_mm256_cmpeq_epi8(x1, vr), _mm256_cmpeq_epi8(x1, vn)));
        uint64_t dw = (uint64_t)(uint32_t)_mm256_movemask_epi8(d0) | ((uint64_t)(uint32_t)_mm256_movemask_epi8(d1) << 32);
        uint64_t sw = (uint64_t)(uint32_t)_mm256_movemask_epi8(s0) | ((uint64_t)(uint32_t)_mm256_movemask_epi8(s1) << 32);
        delims[w] = dw;
        specials[w] = sw & ~dw;
    }
    if (i < n) tail_words(p + i, n - i, delim, &delims[w], &specials[w]);
}
#endif

void kaifang_csv_index_sse2(const uint8_t *p, size_t n, uint8_t delim, uint64_t *delims, uint64_t *specials) {
#ifdef KAIFANG_X86
    const __m128i vd = _mm_set1_epi8((char)delim), vq = _mm_set1_epi8(0x22);
    const __m128i vr = _mm_set1_epi8(0x0D), vn = _mm_set1_epi8(0x0A);
    size_t i = 0, w = 0;
    for (; i + 64 <= n; i += 64, w++) {
        uint64_t dw = 0, sw = 0;
        for (int k = 0; k < 4; k++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(p + i + 16 * k));
            __m128i s = _mm_or_si128(_mm_cmpeq_epi8(x, vq), _mm_or_si128(_mm_cmpeq_epi8(x, vr), _mm_cmpeq_epi8(x, vn)));
            dw |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, vd)) << (16 * k);
            sw |= (uint64_t)(uint16_t)_mm_movemask_epi8(s) << (16 * k);
        }
        delims[w] = dw;
        specials[w] = sw & ~dw;
    }
    if (i < n) tail_words(p + i, n - i, delim, &delims[w], &specials[w]);
#else
    kaifang_csv_index_portable(p, n, delim, delims, specials);
#endif
}

void kaifang_csv_index(const uint8_t *p, size_t n, uint8_t delim, uint64_t *delims, uint64_t *specials) {
#ifdef KAIFANG_X86
    if (__builtin_cpu_supports("avx2")) index_avx2(p, n, delim, delims, specials);
    else kaifang_csv_index_sse2(p, n, delim, delims, specials);
#else
    kaifang_csv_index_portable(p, n, delim, delims, specials);
#endif
}
