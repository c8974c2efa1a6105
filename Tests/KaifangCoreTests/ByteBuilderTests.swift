import KaifangCore
import Testing

/// The hot loops' output buffer against `[UInt8]` doing the same edits.
@Suite struct ByteBuilderTests {
    @Test func randomEditsMatchAnArray() {
        var rng = SeededGenerator.announced(#function)
        var consistent = true
        for round in 0..<200 {
            var b = ByteBuilder(capacity: round % 5)   // below the minimum: starts at 16
            var a: [UInt8] = []
            for _ in 0..<300 {
                switch Int.random(in: 0..<8, using: &rng) {
                case 0, 1:
                    let x = UInt8.random(in: 0...255, using: &rng)
                    b.append(x); a.append(x)
                case 2:
                    let chunk = (0..<Int.random(in: 0..<90, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    chunk.withUnsafeBufferPointer { b.append(contentsOf: $0) }
                    a.append(contentsOf: chunk)
                case 3:
                    let n = Int.random(in: 0..<40, using: &rng)
                    b.append(repeating: 0x2A, count: n); a.append(contentsOf: repeatElement(0x2A, count: n))
                case 4:
                    let n = Int.random(in: 0...a.count, using: &rng)
                    b.truncate(to: n); a.removeSubrange(n...)
                case 5:
                    let n = Int.random(in: 0...a.count, using: &rng)
                    b.removeFirst(n); a.removeFirst(n)
                case 6:
                    b.append("空气质量 AQI"); a.append(contentsOf: Array("空气质量 AQI".utf8))
                default:
                    if !a.isEmpty {
                        let i = Int.random(in: 0..<a.count, using: &rng)
                        b[i] = 7; a[i] = 7
                    }
                }
                if b.count != a.count || b.capacity < b.count { consistent = false }
            }
            #expect(b.array == a)
            #expect(Array(b.bytes) == a)
            b.removeAll()
            #expect(b.isEmpty && b.bytes.isEmpty)
        }
        #expect(consistent)
    }

    /// Integers' decimal text against Swift's, at every length and both ends of Int64, appended
    /// after other bytes and across the buffer's growth.
    @Test func decimalsAreSwiftsText() {
        var values: [Int64] = [0, 1, -1, 9, 10, -10, .max, .min, .max - 1, .min + 1]
        var p: Int64 = 1
        for _ in 0..<18 { p *= 10; values += [p, p - 1, p + 1, -p, -p + 1, -p - 1] }
        var rng = SeededGenerator.announced(#function)
        for _ in 0..<2_000 { values.append(Int64.random(in: .min ... .max, using: &rng) >> Int64.random(in: 0...63, using: &rng)) }
        var b = ByteBuilder(capacity: 16)
        var expected: [UInt8] = []
        for v in values {
            b.append(0x2C); expected.append(0x2C)
            b.append(decimal: v); expected += Array(String(v).utf8)
        }
        #expect(Array(b.bytes) == expected)
    }

    /// A builder on lent storage writes there while the bytes fit, then moves them into storage
    /// of its own; the lent bytes past its capacity are never touched.
    @Test func aBorrowingBuilderMovesOutWhenItOutgrowsTheLentStorage() {
        for capacity in [0, 1, 16, 100] {
            let lent = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity + 8)
            defer { lent.deallocate() }
            lent.initialize(repeating: 0xEE, count: capacity + 8)
            var b = ByteBuilder(borrowing: lent, capacity: capacity)
            var expected: [UInt8] = []
            for i in 0..<300 {
                let x = UInt8(i % 200)
                b.append(x); expected.append(x)
                #expect(b.isBorrowed == (expected.count <= capacity))
                if b.isBorrowed { #expect(b.base == lent) }
            }
            #expect(Array(b.bytes) == expected)
            #expect((0..<8).allSatisfy { lent[capacity + $0] == 0xEE })
            #expect((0..<capacity).allSatisfy { lent[$0] == expected[$0] })
        }
    }
}
