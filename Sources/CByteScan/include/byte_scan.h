#ifndef KAIFANG_BYTE_SCAN_H
#define KAIFANG_BYTE_SCAN_H

#include <stddef.h>
#include <stdint.h>

// The CSV reader's structural index (in the manner of simdjson / simdcsv): one bit per input
// byte, set where the byte is one of four structural bytes. Vector compares need a
// movemask, which Swift's SIMD types do not expose, hence this small C target.

/// Sets bit (i % 64) of out[i / 64] when p[i] is `a`, `b`, `c` or `d`, for i in 0 ..< n, and
/// clears the bits of the last word past n. `out` holds (n + 63) / 64 words.
/// Uses AVX2 when the CPU has it, else SSE2, else a portable loop (same result).
void kaifang_structural_bits(const uint8_t *p, size_t n, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint64_t *out);

/// The portable loop alone (for tests: the vector paths must agree with it).
void kaifang_structural_bits_portable(const uint8_t *p, size_t n, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint64_t *out);

/// The SSE2 path alone (the portable loop off x86), for the same tests.
void kaifang_structural_bits_sse2(const uint8_t *p, size_t n, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint64_t *out);

#endif
