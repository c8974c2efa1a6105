#include "byte_scan.h"
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KAIFANG_X86 1
#endif

void kaifang_structural_bits_portable(const uint8_t *p, size_t n, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint64_t *out) {
    size_t words = (n + 63) / 64;
    memset(out, 0, words * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) {
        uint8_t x = p[i];
        if (x == a || x == b || x == c || x == d) out[i >> 6] |= (uint64_t)1 << (i & 63);
    }
}

#ifdef KAIFANG_X86
__attribute__((target("avx2")))
static void bits_avx2(const uint8_t *p, size_t n, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint64_t *out) {
    const __m256i va = _mm256_set1_epi8((char)a), vb = _mm256_set1_epi8((char)b);
    const __m256i vc = _mm256_set1_epi8((char)c), vd = _mm256_set1_epi8((char)d);
    size_t i = 0, w = 0;
    for (; i + 64 <= n; i += 64, w++) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(p + i));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(p + i + 32));
        __m256i m0 = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(x0, va), _mm256_cmpeq_epi8(x0, vb)),
                                     _mm256_or_si256(_mm256_cmpeq_epi8(x0, vc), _mm256_cmpeq_epi8(x0, vd)));
        __m256i m1 = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(x1, va), _mm256_cmpeq_epi8(x1, vb)),
                                     _mm256_or_si256(_mm256_cmpeq_epi8(x1, vc), _mm256_cmpeq_epi8(x1, vd)));
        out[w] = (uint64_t)(uint32_t)_mm256_movemask_epi8(m0) | ((uint64_t)(uint32_t)_mm256_movemask_epi8(m1) << 32);
    }
    if (i < n) {
        uint64_t word = 0;
        for (size_t j = i; j < n; j++) {
            uint8_t x = p[j];
            if (x == a || x == b || x == c || x == d) word |= (uint64_t)1 << (j - i);
        }
        out[w] = word;
    }
}

void kaifang_structural_bits_sse2(const uint8_t *p, size_t n, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint64_t *out) {
    const __m128i va = _mm_set1_epi8((char)a), vb = _mm_set1_epi8((char)b);
    const __m128i vc = _mm_set1_epi8((char)c), vd = _mm_set1_epi8((char)d);
    size_t i = 0, w = 0;
    for (; i + 64 <= n; i += 64, w++) {
        uint64_t word = 0;
        for (int k = 0; k < 4; k++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(p + i + 16 * k));
            __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)),
                                     _mm_or_si128(_mm_cmpeq_epi8(x, vc), _mm_cmpeq_epi8(x, vd)));
            word |= (uint64_t)(uint16_t)_mm_movemask_epi8(m) << (16 * k);
        }
        out[w] = word;
    }
    if (i < n) {
        uint64_t word = 0;
        for (size_t j = i; j < n; j++) {
            uint8_t x = p[j];
            if (x == a || x == b || x == c || x == d) word |= (uint64_t)1 << (j - i);
        }
        out[w] = word;
    }
}
#endif

void kaifang_structural_bits(const uint8_t *p, size_t n, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint64_t *out) {
#ifdef KAIFANG_X86
    if (__builtin_cpu_supports("avx2")) bits_avx2(p, n, a, b, c, d, out); else kaifang_structural_bits_sse2(p, n, a, b, c, d, out);
#else
    kaifang_structural_bits_portable(p, n, a, b, c, d, out);
#endif
}

#ifndef KAIFANG_X86
void kaifang_structural_bits_sse2(const uint8_t *p, size_t n, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint64_t *out) {
    kaifang_structural_bits_portable(p, n, a, b, c, d, out);
}
#endif
