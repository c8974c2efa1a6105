#ifndef KAIFANG_BYTE_SCAN_H
#define KAIFANG_BYTE_SCAN_H

#include <stddef.h>
#include <stdint.h>

// The CSV reader's structural index (in the manner of simdjson / simdcsv): one bit per input
// byte in two bitmaps, one for the delimiter and one for the bytes that end a record or need
// the quoted-field parser. Vector compares need a movemask, which Swift's SIMD types do not
// expose, hence this small C target.

/// For i in 0 ..< n: sets bit (i % 64) of delims[i / 64] when p[i] is `delim`, and of
/// specials[i / 64] when p[i] is a quote, CR or LF (and not `delim`); clears the bits of the
/// last words past n. Each bitmap holds (n + 63) / 64 words. Uses AVX2 when the CPU has it,
/// else SSE2, else a portable loop (same result).
void kaifang_csv_index(const uint8_t *p, size_t n, uint8_t delim, uint64_t *delims, uint64_t *specials);

/// The portable loop alone (for tests: the vector paths must agree with it).
void kaifang_csv_index_portable(const uint8_t *p, size_t n, uint8_t delim, uint64_t *delims, uint64_t *specials);

/// The SSE2 path alone (the portable loop off x86), for the same tests.
void kaifang_csv_index_sse2(const uint8_t *p, size_t n, uint8_t delim, uint64_t *delims, uint64_t *specials);

#endif
