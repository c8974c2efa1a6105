import Foundation
import GRDBSQLite
import KaifangCore
import Synchronization

// Reads the `rows` table of a version file straight from its pages, in the documented file
// format (https://www.sqlite.org/fileformat2.html), for the rows API's pages in row order: a
// page of 100 rows through SQLite spends most of its reading time in the VM decoding each
// record column by column behind the C API (`sqlite3_step`, `sqlite3_column_text`,
// `sqlite3_column_bytes`: a fifth of a page request's server time). Here a record's header is
// decoded once and each value is a pointer into the page. A version file is never written again
// and its path never reused, so a page read once serves every later request from a cache.
//
// Only reading is done here, of a rowid table (the `rows` table of every version file); the
// writer is `BTreeFile.swift`. Files it cannot read (not UTF-8, an unexpected page type) make
// `TableFile.init` return nil or a read throw, and the caller falls back to SQLite.

/// One stored value of a record, as the rows encoder needs it. A text points into a page (or
/// the cursor's overflow buffer) and stays valid until the cursor moves.
public enum StoredValue {
    case null
    case integer(Int64)
    case real(Double)
    /// Text, or a blob (which SQLite's `sqlite3_column_text` also returns as its bytes).
    case text(UnsafeBufferPointer<UInt8>)
}

/// A page of a version file, read once and shared (never changed after it is read).
final class FilePage: @unchecked Sendable {
    let base: UnsafeMutablePointer<UInt8>

    init(count: Int) {
        base = .allocate(capacity: count)
    }

    deinit { base.deallocate() }

    /// Its bytes, to read (valid while this page is held).
    @inline(__always) var bytes: PageBytes { PageBytes(base: base) }
}

/// A page's bytes without its owner: what a cursor reads while its `FilePage` is held
/// elsewhere (its levels, its leaf), so a seek retains and releases nothing per probe.
struct PageBytes {
    let base: UnsafeMutablePointer<UInt8>

    @inline(__always) func u16(_ at: Int) -> Int { Int(base[at]) << 8 | Int(base[at + 1]) }
    @inline(__always) func u32(_ at: Int) -> UInt32 {
        UInt32(base[at]) << 24 | UInt32(base[at + 1]) << 16 | UInt32(base[at + 2]) << 8 | UInt32(base[at + 3])
    }
    /// SQLite's varint at `at`, and its length; nil past `end`.
    @inline(__always) func varint(_ at: Int, end: Int) -> (UInt64, Int)? { SQLiteVarint.read(base, at, end: end) }
}

/// A cursor's buffer for a payload that spills onto overflow pages.
final class OverflowBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>?
    private var capacity = 0

    /// Room for `count` bytes (the contents are not kept).
    func reserve(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        if let base, capacity >= count { return base }
        base?.deallocate()
        base = .allocate(capacity: count)
        capacity = count
        return base!
    }

    deinit { base?.deallocate() }
}

/// The current record's header decoded: per column its serial type and the offset of its value
/// in the payload, in buffers reused from row to row (no array bookkeeping per value).
final class RecordHeader {
    private(set) var types: UnsafeMutablePointer<UInt64> = .allocate(capacity: 64)
    private(set) var offsets: UnsafeMutablePointer<Int> = .allocate(capacity: 64)
    private var capacity = 64
    var count = 0

    @inline(__always) func append(_ type: UInt64, _ offset: Int) {
        if count == capacity { grow() }
        types[count] = type
        offsets[count] = offset
        count += 1
    }

    private func grow() {
        let t = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity * 2)
        let o = UnsafeMutablePointer<Int>.allocate(capacity: capacity * 2)
        t.update(from: types, count: count); o.update(from: offsets, count: count)
        types.deallocate(); offsets.deallocate()
        types = t; offsets = o
        capacity *= 2
    }

    deinit { types.deallocate(); offsets.deallocate() }
}

/// The `rows` table of one version file, for `TableCursor`s.
public final class TableFile: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    let pageSize: Int
    /// Bytes of a page used for content (the page size less the reserved bytes at its end).
    let usable: Int
    let root: UInt32
    let pageCount: UInt32
    /// Position in the record of each column, by name (the rowid alias `_row` stores NULL).
    public let columns: [String: Int]
    /// Per record position: REAL affinity (an integral real is stored as an integer and read
    /// back as a real).
    let realAffinity: [Bool]
    /// Per record position: declared exactly `TEXT` (so SQLite hands every value out as text).
    public let declaredText: [Bool]
    /// The record position of the INTEGER PRIMARY KEY (the rowid), if any.
    let rowidColumn: Int?

    /// Opens the `rows` table of the file `db` has open at `path`; nil when the file is not one
    /// this reader handles (text not UTF-8, no `rows` rowid table) — read it through SQLite.
    public init?(path: String, db: OpaquePointer?) {
        var rootPage: Int64 = 0
        var names: [String: Int] = [:]
        var real: [Bool] = []
        var text: [Bool] = []
        var rowid: Int?
        var stmt: OpaquePointer?
        if sqlite3_prepare_v2(db, "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = 'rows' AND sql NOT LIKE '%WITHOUT ROWID%'", -1, &stmt, nil) == SQLITE_OK,
           sqlite3_step(stmt) == SQLITE_ROW {
            rootPage = sqlite3_column_int64(stmt, 0)
        }
        sqlite3_finalize(stmt)
        stmt = nil
        if sqlite3_prepare_v2(db, "SELECT cid, name, upper(type), pk FROM pragma_table_info('rows') ORDER BY cid", -1, &stmt, nil) == SQLITE_OK {
            while sqlite3_step(stmt) == SQLITE_ROW {
                let cid = Int(sqlite3_column_int64(stmt, 0))
                guard cid == real.count, let name = sqlite3_column_text(stmt, 1) else { break }
                let type = sqlite3_column_text(stmt, 2).map { String(cString: $0) } ?? ""
                names[String(cString: name)] = cid
                // SQLite's affinity rules, in order: INT, then CHAR/CLOB/TEXT, then BLOB, then REAL/FLOA/DOUB.
                let isReal = !type.contains("INT") && !type.contains("CHAR") && !type.contains("CLOB") && !type.contains("TEXT")
                    && !type.contains("BLOB") && (type.contains("REAL") || type.contains("FLOA") || type.contains("DOUB"))
                real.append(isReal)
                text.append(type == "TEXT")
                if sqlite3_column_int64(stmt, 3) == 1 && type == "INTEGER" { rowid = cid }
            }
        }
        sqlite3_finalize(stmt)
        guard rootPage > 0, rootPage <= Int64(UInt32.max), !real.isEmpty else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        let header = FilePage(count: 100)
        header.base.initialize(repeating: 0, count: 100)
        let n = pread(fd, header.base, 100, 0)
        // Page size (1 means 65 536), reserved bytes per page, page count, text encoding (1: UTF-8).
        let sizeField = header.bytes.u16(16)
        let size = sizeField == 1 ? 65_536 : sizeField
        let reserved = Int(header.base[20])
        // The header's page count holds only when its "version valid for" equals the change
        // counter (older writers left it stale); otherwise the file's size says.
        var pages = header.bytes.u32(28)
        if pages == 0 || header.bytes.u32(92) != header.bytes.u32(24) {
            var st = stat()
            pages = fstat(fd, &st) == 0 && size > 0 ? UInt32(clamping: Int(st.st_size) / size) : 0
        }
        let encoding = header.bytes.u32(56)
        guard n == 100, size >= 512, size <= 65_536, size & (size - 1) == 0, size - reserved >= 480,
              encoding == 1, UInt32(rootPage) <= pages else {
            close(fd)
            return nil
        }
        self.path = path
        self.number = Self.fileNumbers.withLock { numbers in
            if let known = numbers[path] { return known }
            numbers[path] = numbers.count
            return numbers.count - 1
        }
        self.fd = fd
        self.pageSize = size
        self.usable = size - reserved
        self.root = UInt32(rootPage)
        self.pageCount = pages
        self.columns = names
        self.realAffinity = real
        self.declaredText = text
        self.rowidColumn = rowid
    }

    deinit { close(fd) }

    struct PageKey: Hashable {
        let file: Int, page: UInt32

        /// The dictionary's hash: the two numbers and the table's seed through a 64-bit
        /// finalizer (MurmurHash3's) rather than SipHash — a filtered page looks up a hundred
        /// leaves, and hashing was a third of each lookup.
        func _rawHashValue(seed: Int) -> Int {
            var x = UInt64(truncatingIfNeeded: file) << 32 ^ UInt64(page) ^ UInt64(UInt(bitPattern: seed))
            x ^= x >> 33; x &*= 0xFF51_AFD7_ED55_8CCD
            x ^= x >> 33; x &*= 0xC4CE_B9FE_1A85_EC53
            x ^= x >> 33
            return Int(truncatingIfNeeded: x)
        }
    }

    /// A number per file path, for the page cache's keys (hashing two integers, not a path,
    /// per page read: a filtered page reads a hundred leaves).
    private static let fileNumbers = Mutex<[String: Int]>([:])
    let number: Int

    /// Pages already read, by file and number. At most `cacheLimit` (32 MiB of 8 KiB pages),
    /// cleared when full — the same policy as the row sets' chunks.
    final class PageCache: Sendable {
        let pages = Mutex<[PageKey: FilePage]>([:])
    }
    private static let sharedCache = PageCache()
    /// The process-wide cache, held by each file: reading a global costs a `swift_once` check
    /// per page read.
    private let cache = TableFile.sharedCache
    static let cacheLimit = 4_096

    /// Page `number`, from the cache or the file.
    /// - Throws: `KaifangError.runtime` when it is outside the file or cannot be read.
    func page(_ number: UInt32) throws -> FilePage {
        guard number >= 1, number <= pageCount else { throw damaged("page \(number) is outside the file") }
        let key = PageKey(file: self.number, page: number)
        if let hit = cache.pages.withLock({ $0[key] }) { return hit }
        let page = FilePage(count: pageSize)
        let n = pread(fd, page.base, pageSize, off_t(number - 1) * off_t(pageSize))
        guard n == pageSize else { throw damaged("page \(number) cannot be read") }
        cache.pages.withLock { c in
            if c.count >= Self.cacheLimit { c.removeAll(keepingCapacity: true) }
            c[key] = page
        }
        return page
    }

    func damaged(_ what: String) -> KaifangError {
        KaifangError.runtime("version file \(path) is damaged: \(what)")
    }
}

/// A position in the `rows` table, moved by rowid: `seek` to the first row at or after a rowid,
/// `next` to the following one; `load` decodes the current row's record for `value`.
public struct TableCursor {
    private struct Level {
        var number: UInt32
        /// Holds the page; `bytes` is read.
        var page: FilePage
        var bytes: PageBytes
        /// The child followed (`count` means the right-most pointer).
        var child: Int
        var count: Int
    }

    public let file: TableFile
    /// Interior pages from the root down to the current leaf's parent.
    private var levels: [Level] = []
    private var leaf: FilePage?
    /// `leaf`'s bytes (valid while `leaf` holds the page).
    private var leafBytes: PageBytes?
    private var leafNumber: UInt32 = 0
    private var cell = 0
    private var cells = 0
    /// The current row's rowid.
    public private(set) var rowid: Int64 = 0

    // The current record: its payload, and per column the serial type and the body's offset.
    private var payload: UnsafePointer<UInt8>?
    private var payloadSize = 0
    private var overflow = OverflowBuffer()
    private var header = RecordHeader()

    public init(_ file: TableFile) { self.file = file }

    @inline(__always) private static func header(_ number: UInt32) -> Int { number == 1 ? 100 : 0 }

    /// Positions on the first row whose rowid is `target` or more; false when there is none.
    /// Forward of the current row (the row sets' ascending rows), it starts from where it is:
    /// the current leaf, else the deepest interior page whose keys reach the target, searched
    /// from its current child — not from the root.
    /// - Throws: `KaifangError.runtime` when the file is damaged.
    public mutating func seek(_ target: Int64) throws -> Bool {
        if let page = leafBytes, cell < cells, target >= rowid {
            if target == rowid { return true }
            let h = Self.header(leafNumber)
            if try leafRowid(page, h, cells - 1) >= target {
                cell = try leafSearch(page, h, from: cell, rowid: rowid, to: cells, target: target)
                rowid = try leafRowid(page, h, cell)
                return true
            }
            // Every row of the current child's subtree is below target; the children right of
            // it hold rows up to their keys (the last one, at the root, all the rest).
            var depth = levels.count - 1
            while depth >= 0 {
                // Read field by field: a copy of the level would retain its page.
                let number = levels[depth].number, bytes = levels[depth].bytes, count = levels[depth].count
                let lh = Self.header(number)
                let reaches = try depth == 0 || (count > 0 && interiorKey(bytes, lh, count - 1) >= target)
                if reaches {
                    // Galloping from the current child (the target is most often a child or two to
                    // the right): probes at +0, +2, +5, +10…, then a binary search between the last two.
                    // Invariant: every key left of lo is below target; hi's key is not (or hi is
                    // the right-most pointer, which has no key).
                    var lo = levels[depth].child, hi = lo, step = 1
                    while hi < count, try interiorKey(bytes, lh, hi) < target {
                        lo = hi + 1
                        hi = min(lo + step, count)
                        step *= 2
                    }
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if try interiorKey(bytes, lh, mid) < target { lo = mid + 1 } else { hi = mid }
                    }
                    levels[depth].child = lo
                    levels.removeSubrange((depth + 1)...)
                    return try descend(from: try child(bytes, lh, lo, count), depth: depth + 1, to: target)
                }
                depth -= 1
            }
        }
        return try descend(from: file.root, depth: 0, to: target)
    }

    /// Seeks `target` in the subtree of page `number` at `depth` (levels above it are kept).
    private mutating func descend(from start: UInt32, depth first: Int, to target: Int64) throws -> Bool {
        var number = start
        var depth = first
        while true {
            // The level already at this depth when it is this page (no lookup, no retain), else
            // the page from the file, held by `owner` until a level or the leaf takes it.
            let page: PageBytes
            var owner: FilePage?
            if depth < levels.count && levels[depth].number == number {
                page = levels[depth].bytes
            } else {
                let p = try file.page(number)
                page = p.bytes
                owner = p
            }
            let h = Self.header(number)
            switch page.base[h] {
            case 0x05:
                let count = try cellCount(page, h, pointers: 12)
                // The first cell whose key (the largest rowid on its left) is at least target.
                var lo = 0, hi = count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if try interiorKey(page, h, mid) < target { lo = mid + 1 } else { hi = mid }
                }
                if let owner {
                    let level = Level(number: number, page: owner, bytes: page, child: lo, count: count)
                    if depth < levels.count { levels[depth] = level; levels.removeSubrange((depth + 1)...) } else { levels.append(level) }
                } else {
                    levels[depth].child = lo
                    levels[depth].count = count
                    levels.removeSubrange((depth + 1)...)
                }
                number = try child(page, h, lo, count)
                depth += 1
            case 0x0D:
                // A leaf is never one of the levels (those are interior pages).
                guard let owner else { throw file.damaged("page \(number) is both an interior page and a leaf") }
                levels.removeSubrange(depth...)
                let count = try cellCount(page, h, pointers: 8)
                var lo = 0
                if count > 0 {
                    let first = try leafRowid(page, h, 0)
                    if target > first { lo = try leafSearch(page, h, from: 0, rowid: first, to: count, target: target) }
                }
                leaf = owner; leafBytes = page; leafNumber = number; cells = count; cell = lo
                if lo < count { rowid = try leafRowid(page, h, lo); return true }
                return try nextLeaf()
            default:
                throw file.damaged("page \(number) is not a table page")
            }
            if depth > 64 { throw file.damaged("the table is deeper than 64 pages") }
        }
    }

    /// Moves to the next row; false at the end of the table.
    public mutating func next() throws -> Bool {
        guard let page = leafBytes else { return false }
        cell += 1
        if cell < cells { rowid = try leafRowid(page, Self.header(leafNumber), cell); return true }
        return try nextLeaf()
    }

    /// Moves to the first row of the next non-empty leaf.
    private mutating func nextLeaf() throws -> Bool {
        while true {
            // Up to the deepest level with a child to the right, then down its leftmost path.
            while let last = levels.last, last.child >= last.count { levels.removeLast() }
            guard !levels.isEmpty else { leaf = nil; leafBytes = nil; return false }
            let top = levels.count - 1
            levels[top].child += 1
            var number = try child(levels[top].bytes, Self.header(levels[top].number), levels[top].child, levels[top].count)
            while true {
                let page = try file.page(number)
                let bytes = page.bytes
                let h = Self.header(number)
                if bytes.base[h] == 0x0D {
                    let count = try cellCount(bytes, h, pointers: 8)
                    leaf = page; leafBytes = bytes; leafNumber = number; cells = count; cell = 0
                    if count > 0 { rowid = try leafRowid(bytes, h, 0); return true }
                    break
                }
                guard bytes.base[h] == 0x05 else { throw file.damaged("page \(number) is not a table page") }
                let count = try cellCount(bytes, h, pointers: 12)
                levels.append(Level(number: number, page: page, bytes: bytes, child: 0, count: count))
                if levels.count > 64 { throw file.damaged("the table is deeper than 64 pages") }
                number = try child(bytes, h, 0, count)
            }
        }
    }

    /// The first cell after `known` and before `end` whose rowid is at least `target` (`end` if
    /// none), given that cell `known` holds rowid `knownRowid` < `target`. Rowids on a leaf are
    /// strictly ascending, so the answer is at most `known + (target - knownRowid)`; in files
    /// written in one go they are consecutive and that guess is the answer: checked with two
    /// probes, else a binary search below it.
    private func leafSearch(_ page: PageBytes, _ h: Int, from known: Int, rowid knownRowid: Int64, to end: Int, target: Int64) throws -> Int {
        var lo = known + 1, hi = end
        let (gap, overflow) = target.subtractingReportingOverflow(knownRowid)
        if !overflow, gap < Int64(end - known) {
            let guess = known + Int(gap)
            if try leafRowid(page, h, guess - 1) < target { return guess }
            hi = guess
        }
        while lo < hi {
            let mid = (lo + hi) / 2
            if try leafRowid(page, h, mid) < target { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The number of cells on a page, checked to fit its cell pointer array in the page.
    private func cellCount(_ page: PageBytes, _ h: Int, pointers: Int) throws -> Int {
        let count = page.u16(h + 3)
        guard h + pointers + 2 * count <= file.usable else { throw file.damaged("a page's cell count is too large") }
        return count
    }

    /// Where cell `i` starts (`i` below the page's checked cell count), with at least 4 bytes
    /// of it inside the page.
    private func cellOffset(_ page: PageBytes, _ h: Int, _ i: Int, pointers: Int) throws -> Int {
        let at = page.u16(h + pointers + 2 * i)
        guard at >= h + pointers, at + 4 <= file.usable else { throw file.damaged("a cell pointer is outside its page") }
        return at
    }

    private func interiorKey(_ page: PageBytes, _ h: Int, _ i: Int) throws -> Int64 {
        let at = try cellOffset(page, h, i, pointers: 12)
        guard let (key, _) = page.varint(at + 4, end: file.usable) else { throw file.damaged("a cell runs past its page") }
        return Int64(bitPattern: key)
    }

    private func child(_ page: PageBytes, _ h: Int, _ i: Int, _ count: Int) throws -> UInt32 {
        i < count ? page.u32(try cellOffset(page, h, i, pointers: 12)) : page.u32(h + 8)
    }

    private func leafRowid(_ page: PageBytes, _ h: Int, _ i: Int) throws -> Int64 {
        let at = try cellOffset(page, h, i, pointers: 8)
        guard let (_, n) = page.varint(at, end: file.usable), let (key, _) = page.varint(at + n, end: file.usable) else {
            throw file.damaged("a cell runs past its page")
        }
        return Int64(bitPattern: key)
    }

    /// Decodes the current row's record header (and gathers an overflowing payload).
    /// - Throws: `KaifangError.runtime` when the record is damaged.
    public mutating func load() throws {
        guard let page = leafBytes else { throw file.damaged("no current row") }
        let u = file.usable
        var at = try cellOffset(page, Self.header(leafNumber), cell, pointers: 8)
        guard let (size, n1) = page.varint(at, end: u) else { throw file.damaged("a cell runs past its page") }
        at += n1
        guard let (_, n2) = page.varint(at, end: u) else { throw file.damaged("a cell runs past its page") }
        at += n2
        // No payload is larger than the file.
        guard size <= UInt64(file.pageCount) * UInt64(u) else { throw file.damaged("a record is larger than the file") }
        let p = Int(size)
        // How much of the payload is on the leaf (the file format's formula).
        let x = u - 35
        var local = p
        if p > x {
            let m = ((u - 12) * 32 / 255) - 23
            let k = m + (p - m) % (u - 4)
            local = k <= x ? k : m
        }
        guard at + local <= u else { throw file.damaged("a record runs past its page") }
        if local == p {
            payload = UnsafePointer(page.base + at)
        } else {
            guard at + local + 4 <= u else { throw file.damaged("a record runs past its page") }
            if !isKnownUniquelyReferenced(&overflow) { overflow = OverflowBuffer() }
            let buffer = overflow.reserve(p)
            buffer.update(from: page.base + at, count: local)
            var filled = local
            var next = page.u32(at + local)
            var hops = 0
            while filled < p {
                guard next != 0, hops <= Int(file.pageCount) else { throw file.damaged("an overflow chain ends early") }
                let o = try file.page(next)
                let take = min(u - 4, p - filled)
                (buffer + filled).update(from: o.base + 4, count: take)
                filled += take
                next = o.bytes.u32(0)
                hops += 1
            }
            payload = UnsafePointer(buffer)
        }
        payloadSize = p
        try decodeHeader()
    }

    private mutating func decodeHeader() throws {
        guard let base = payload else { return }
        if !isKnownUniquelyReferenced(&header) { header = RecordHeader() }
        let header = self.header
        header.count = 0
        let size = payloadSize
        func varint(_ at: Int) -> (UInt64, Int)? { SQLiteVarint.read(base, at, end: size) }
        guard let (hs, n) = varint(0), hs <= UInt64(payloadSize) else { throw file.damaged("a record header is damaged") }
        var at = n
        var body = Int(hs)
        while at < Int(hs) {
            guard let (t, m) = varint(at) else { throw file.damaged("a record header is damaged") }
            at += m
            let length = t > UInt64(2 * payloadSize + 13) ? payloadSize + 1 : Self.length(t)
            guard length <= payloadSize - body else { throw file.damaged("a record runs past its payload") }
            header.append(t, body)
            body += length
        }
    }

    @inline(__always) private static func length(_ t: UInt64) -> Int {
        switch t {
        case 0, 8, 9, 10, 11: 0
        case 1...4: Int(t)
        case 5: 6
        case 6, 7: 8
        default: Int((t - 12) / 2)
        }
    }

    /// The value at record position `column` of the row `load` decoded.
    public func value(_ column: Int) -> StoredValue {
        guard column >= 0, column < header.count, let base = payload else {
            return column == file.rowidColumn ? .integer(rowid) : .null
        }
        let t = header.types[column]
        let p = base + header.offsets[column]
        var int: Int64
        switch t {
        case 0: return column == file.rowidColumn ? .integer(rowid) : .null
        case 7:
            var bits: UInt64 = 0
            for i in 0..<8 { bits = bits << 8 | UInt64(p[i]) }
            return .real(Double(bitPattern: bits))
        case 8: int = 0
        case 9: int = 1
        case 1...6:
            let n = Self.length(t)
            int = Int64(Int8(bitPattern: p[0]))
            for i in 1..<n { int = int << 8 | Int64(p[i]) }
        case 10, 11: return .null
        default: return .text(UnsafeBufferPointer(start: p, count: Self.length(t)))
        }
        return file.realAffinity[column] ? .real(Double(int)) : .integer(int)
    }
}
