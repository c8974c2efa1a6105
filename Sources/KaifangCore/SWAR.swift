/// Eight bytes at a time in one register ("SIMD within a register"), for the byte loops: the
/// CSV reader's field scan, the JSON escaper, normalization.
public enum SWAR {
    /// Eight bytes from `p` (any alignment), the first in the lowest byte.
    @inlinable @inline(__always) public static func load(_ p: UnsafePointer<UInt8>) -> UInt64 {
        UnsafeRawPointer(p).loadUnaligned(as: UInt64.self).littleEndian
    }

    /// `b` in every byte.
    @inlinable @inline(__always) public static func broadcast(_ b: UInt8) -> UInt64 {
        UInt64(b) &* 0x0101_0101_0101_0101
    }

    /// The high bit of each zero byte of `x`. A byte above a zero byte may be flagged too, so
    /// only the lowest set bit (and whether any is set) is exact.
    @inlinable @inline(__always) public static func zeroBytes(_ x: UInt64) -> UInt64 {
        (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
    }

    /// The high bit of each byte of `x` below `n` (n ≤ 0x80), exact in the same sense.
    @inlinable @inline(__always) public static func bytesBelow(_ x: UInt64, _ n: UInt8) -> UInt64 {
        (x &- broadcast(n)) & ~x & 0x8080_8080_8080_8080
    }

    /// The index (0–7) of the byte that the lowest set high bit of `mask` marks.
    @inlinable @inline(__always) public static func firstByte(_ mask: UInt64) -> Int {
        mask.trailingZeroBitCount >> 3
    }

    /// Whether all eight bytes of `x` are ASCII digits: every high nibble 3, and no low nibble
    /// above 9 (adding 6 to it would carry into the high nibble).
    @inlinable @inline(__always) public static func allDigits(_ x: UInt64) -> Bool {
        (x & 0xF0F0_F0F0_F0F0_F0F0) == 0x3030_3030_3030_3030
            && ((x & 0x0F0F_0F0F_0F0F_0F0F) &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0 == 0
    }
}
