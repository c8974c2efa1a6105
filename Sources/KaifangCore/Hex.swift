/// Lower-case hexadecimal of bytes (digests, secrets), without a formatter per byte.
extension Sequence where Element == UInt8 {
    /// Inlinable, so each caller's sequence (a digest, an array) is iterated specialized, not
    /// through witness tables (the audit chain hexes a SHA-256 per event).
    @inlinable public var hexString: String {
        if let s = withContiguousStorageIfAvailable({ hexEncode($0) }) { return s }
        return Array(self).withUnsafeBufferPointer { hexEncode($0) }
    }
}

/// `bytes` as lower-case hexadecimal.
@usableFromInline func hexEncode(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
    String(unsafeUninitializedCapacity: bytes.count * 2) { out in
        var i = 0
        for b in bytes {
            out[i] = hexDigit(b >> 4)
            out[i + 1] = hexDigit(b & 15)
            i += 2
        }
        return i
    }
}

@inline(__always) func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x57 + v }
