import Foundation
import KaifangCore

/// Distinct byte strings, each given a small number in order of first appearance.
struct ByteDictionary {
    private(set) var arena: [UInt8] = []
    private(set) var starts: [Int] = [0]
    private var hashes: [UInt64] = []
    private var slots: [Int32] = Array(repeating: -1, count: 1024)

    var count: Int { hashes.count }
    var bytesUsed: Int { arena.capacity + starts.capacity * 8 + hashes.capacity * 8 + slots.capacity * 4 }

    @inline(__always) static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(b.count)
        var i = 0
        let base = UnsafeRawPointer(b.baseAddress)
        while i + 8 <= b.count {
            h = (h ^ base!.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 29
            i += 8
        }
        if i < b.count {
            var tail: UInt64 = 0
            for j in i..<b.count { tail = tail << 8 | UInt64(b[j]) }
            h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        }
        return h ^ (h >> 32)
    }

    /// The number of `b`, adding it when new.
    @inline(__always) mutating func id(of b: UnsafeBufferPointer<UInt8>) -> UInt32 {
        let h = Self.hash(b)
        var mask = slots.count - 1
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let id = Int(slots[s])
            if id < 0 { break }
            if hashes[id] == h && starts[id + 1] - starts[id] == b.count && (b.count == 0 || arena.withUnsafeBufferPointer({ memcmp($0.baseAddress! + starts[id], b.baseAddress!, b.count) == 0 })) {
                return UInt32(id)
            }
            s = (s + 1) & mask
        }
        let id = hashes.count
        hashes.append(h)
        arena.append(contentsOf: b)
        starts.append(arena.count)
        slots[s] = Int32(id)
        if hashes.count * 2 > slots.count {
            slots = Array(repeating: -1, count: slots.count * 2)
            mask = slots.count - 1
            for (i, h) in hashes.enumerated() {
                var t = Int(truncatingIfNeeded: h) & mask
                while slots[t] >= 0 { t = (t + 1) & mask }
                slots[t] = Int32(i)
            }
        }
        return UInt32(id)
    }

    /// The bytes of value `id`.
    func withBytes<T>(_ id: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> T) rethrows -> T {
        try arena.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[starts[id]..<starts[id + 1]])) }
    }
}

/// One indexed column's keys, gathered as rows are written, then given back in the index's
/// order — SQLite's order for a column of one storage class: NULLs first, then values (numbers
/// by value, text by its bytes, as the BINARY collation compares), equal values by rowid.
/// A column whose values mix storage classes, or whose keys outgrow the memory budget, is
/// `abandoned`: SQLite's own CREATE INDEX builds that one.
struct IndexKeyCollector {
    enum Kind { case unknown, integers, reals, texts, abandoned }
    private(set) var kind: Kind = .unknown
    private let budget: Int
    private var rows = 0
    private var nullRows: [UInt32] = []
    /// Integers and reals: the value mapped to bits that sort as unsigned integers, and the row.
    private var numbers: [(key: UInt64, row: UInt32)] = []
    /// Text: per row, the value's number in `dictionary` (`UInt32.max` for NULL).
    private var textIDs: [UInt32] = []
    private var dictionary = ByteDictionary()

    init(budget: Int) { self.budget = budget }

    private static let sign: UInt64 = 1 << 63

    /// Adds the key of the next row (rows are 1, 2, 3… in call order), as stored.
    @inline(__always)
    mutating func add(_ value: RecordValue) {
        rows += 1
        guard kind != .abandoned else { return }
        guard rows < Int(UInt32.max) else { abandon(); return }
        switch value {
        case .null:
            if kind == .texts { textIDs.append(UInt32.max) } else { nullRows.append(UInt32(rows)) }
        case .integer(let v):
            guard kind == .integers || kind == .unknown else { abandon(); return }
            kind = .integers
            numbers.append((UInt64(bitPattern: v) ^ Self.sign, UInt32(rows)))
        case .real(let d):
            guard kind == .reals || kind == .unknown else { abandon(); return }
            kind = .reals
            let bits = (d == 0 ? 0.0 : d).bitPattern  // -0.0 equals 0.0 in SQLite
            numbers.append((bits & Self.sign != 0 ? ~bits : bits | Self.sign, UInt32(rows)))
        case .text(let b):
            if kind == .unknown {
                kind = .texts
                // Rows so far were NULL.
                textIDs = Array(repeating: UInt32.max, count: rows - 1)
                nullRows = []
            }
            guard kind == .texts else { abandon(); return }
            textIDs.append(dictionary.id(of: b))
        }
        if rows & 0xFFFF == 0 && bytesUsed > budget { abandon() }
    }

    /// For text keys with at most `maxValues` distinct values: each value with its rows in
    /// ascending order (NULLs in none); nil for other keys.
    func rowSets(maxValues: Int) -> [(value: [UInt8], rows: [UInt32])]? {
        guard kind == .texts, dictionary.count <= maxValues else { return nil }
        var counts = [Int](repeating: 0, count: dictionary.count)
        for id in textIDs where id != UInt32.max { counts[Int(id)] += 1 }
        var lists = counts.map { n -> [UInt32] in
            var a: [UInt32] = []
            a.reserveCapacity(n)
            return a
        }
        for (i, id) in textIDs.enumerated() where id != UInt32.max { lists[Int(id)].append(UInt32(i + 1)) }
        return lists.enumerated().map { id, rows in (dictionary.withBytes(id) { Array($0) }, rows) }
    }

    var bytesUsed: Int { nullRows.capacity * 4 + numbers.capacity * 16 + textIDs.capacity * 4 + dictionary.bytesUsed }

    private mutating func abandon() {
        kind = .abandoned
        nullRows = []; numbers = []; textIDs = []; dictionary = ByteDictionary()
    }

    /// Calls `body` with each entry's key and row in index order; returns the number of
    /// distinct keys (NULL counting as one, as ANALYZE counts them).
    mutating func forEachEntry(_ body: (RecordValue, Int64, _ isLast: Bool) throws -> Void) rethrows -> Int {
        precondition(kind != .abandoned)
        var emitted = 0
        var distinct = 0
        func emit(_ v: RecordValue, _ row: UInt32) throws {
            emitted += 1
            try body(v, Int64(row), emitted == rows)
        }
        switch kind {
        case .unknown, .integers, .reals:
            if !nullRows.isEmpty { distinct += 1 }
            for r in nullRows { try emit(.null, r) }
            Self.radixSort(&numbers)
            var previous: UInt64? = nil
            for (key, row) in numbers {
                if key != previous { distinct += 1; previous = key }
                if kind == .integers {
                    try emit(.integer(Int64(bitPattern: key ^ Self.sign)), row)
                } else {
                    let bits = key & Self.sign != 0 ? key ^ Self.sign : ~key
                    try emit(.real(Double(bitPattern: bits)), row)
                }
            }
        case .texts:
            // Sort the distinct values, then place the rows by a counting sort (stable, so equal
            // values stay in row order).
            let n = dictionary.count
            let order = dictionary.arena.withUnsafeBufferPointer { arena -> [Int] in
                let starts = dictionary.starts
                return (0..<n).sorted { a, b in
                    let la = starts[a + 1] - starts[a], lb = starts[b + 1] - starts[b]
                    let c = min(la, lb) == 0 ? 0 : memcmp(arena.baseAddress! + starts[a], arena.baseAddress! + starts[b], min(la, lb))
                    return c != 0 ? c < 0 : la < lb
                }
            }
            var rank = [Int](repeating: 0, count: n)
            for (r, id) in order.enumerated() { rank[id] = r }
            var next = [Int](repeating: 0, count: n + 1)
            var nulls = 0
            for id in textIDs {
                if id == UInt32.max { nulls += 1 } else { next[rank[Int(id)] + 1] += 1 }
            }
            for r in 0..<n { next[r + 1] += next[r] }
            var placed = [UInt32](repeating: 0, count: textIDs.count - nulls)
            for (i, id) in textIDs.enumerated() where id != UInt32.max {
                let r = rank[Int(id)]
                placed[next[r]] = UInt32(i + 1)
                next[r] += 1
            }
            if nulls > 0 { distinct += 1 }
            for (i, id) in textIDs.enumerated() where id == UInt32.max { try emit(.null, UInt32(i + 1)) }
            distinct += n
            for row in placed {
                let id = Int(textIDs[Int(row) - 1])
                try dictionary.withBytes(id) { try emit(.text($0), row) }
            }
        case .abandoned:
            break
        }
        return distinct
    }

    /// Sorts by key, keeping equal keys in their order (rows ascending, as added): a stable
    /// least-significant-digit radix sort on 16-bit digits, skipping digits all keys share.
    static func radixSort(_ a: inout [(key: UInt64, row: UInt32)]) {
        let n = a.count
        guard n > 1 else { return }
        var counts = [Int](repeating: 0, count: 4 << 16)
        for e in a {
            counts[Int(e.key & 0xFFFF)] += 1
            counts[65536 + Int((e.key >> 16) & 0xFFFF)] += 1
            counts[131072 + Int((e.key >> 32) & 0xFFFF)] += 1
            counts[196608 + Int(e.key >> 48)] += 1
        }
        var other = a
        for digit in 0..<4 {
            let base = digit << 16
            if counts[base + Int((a[0].key >> (16 * UInt64(digit))) & 0xFFFF)] == n { continue }
            var next = 0
            for d in 0..<65536 { let c = counts[base + d]; counts[base + d] = next; next += c }
            a.withUnsafeBufferPointer { src in
                other.withUnsafeMutableBufferPointer { dst in
                    for e in src {
                        let d = base + Int((e.key >> (16 * UInt64(digit))) & 0xFFFF)
                        dst[counts[d]] = e
                        counts[d] += 1
                    }
                }
            }
            swap(&a, &other)
        }
    }

    /// The `sqlite_stat1` figures ANALYZE would write for an index on (column, _row) with
    /// `distinct` keys over `rows` rows; nil for an empty table (ANALYZE writes none).
    static func stat(rows: Int, distinct: Int) -> String? {
        guard rows > 0 else { return nil }
        var avg = (rows + distinct - 1) / distinct
        if avg == 2 && rows * 10 <= distinct * 11 { avg = 1 }
        return "\(rows) \(avg) 1"
    }
}
