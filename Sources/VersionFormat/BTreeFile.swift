import Foundation
import GRDBSQLite
import KaifangCore

// Writes SQLite database files directly, page by page, in the documented file format
// (https://www.sqlite.org/fileformat2.html): a table B-tree whose rows arrive in rowid order, and
// index B-trees from keys sorted beforehand. A version file is written once and never changed,
// so every page can be filled and written in order — the work SQLite's insert path and its
// index sorter do for a general, updatable file is not needed. Tests hold every file written
// here to `PRAGMA integrity_check` and to the same data written by SQLite itself.

/// SQLite's variable-length integer (1–9 bytes, big-endian groups of 7 bits, the ninth byte 8 bits).
enum SQLiteVarint {
    /// The varint at `base + at` and its length; nil when it would run to `end` or past it.
    @inline(__always) static func read(_ base: UnsafePointer<UInt8>, _ at: Int, end: Int) -> (UInt64, Int)? {
        var v: UInt64 = 0
        for i in 0..<8 {
            guard at + i < end else { return nil }
            let b = base[at + i]
            v = v << 7 | UInt64(b & 0x7F)
            if b < 0x80 { return (v, i + 1) }
        }
        guard at + 8 < end else { return nil }
        return (v << 8 | UInt64(base[at + 8]), 9)
    }

    @inline(__always) static func length(_ v: UInt64) -> Int {
        if v <= 0x7F { return 1 }
        if v <= 0x3FFF { return 2 }
        if v > 0x00FF_FFFF_FFFF_FFFF { return 9 }
        var n = 1
        var x = v >> 7
        while x != 0 { n += 1; x >>= 7 }
        return n
    }

    @inline(__always) static func append(_ v: UInt64, to buf: inout [UInt8]) {
        if v <= 0x7F { buf.append(UInt8(truncatingIfNeeded: v)); return }
        if v > 0x00FF_FFFF_FFFF_FFFF {
            // Eight bytes of 7 bits for the high 56 bits, then the low 8 bits whole.
            let high = v >> 8
            for i in stride(from: 7, through: 0, by: -1) {
                buf.append(UInt8(truncatingIfNeeded: (high >> (7 * UInt64(i))) & 0x7F) | 0x80)
            }
            buf.append(UInt8(truncatingIfNeeded: v))
            return
        }
        let n = length(v)
        for i in stride(from: n - 1, through: 1, by: -1) {
            buf.append(UInt8(truncatingIfNeeded: (v >> (7 * UInt64(i))) & 0x7F) | 0x80)
        }
        buf.append(UInt8(truncatingIfNeeded: v & 0x7F))
    }
}

/// Big-endian integers, as the file format stores page numbers and values.
enum BigEndian {
    /// Writes `v` at `at` in `p` (4 bytes).
    @inline(__always) static func put(_ v: UInt32, _ p: UnsafeMutableBufferPointer<UInt8>, at: Int) {
        UnsafeMutableRawPointer(p.baseAddress! + at).storeBytes(of: v.bigEndian, as: UInt32.self)
    }

    /// Writes `v` at `at` in `bytes` (4 bytes).
    @inline(__always) static func put(_ v: UInt32, _ bytes: inout [UInt8], at: Int) {
        bytes.withUnsafeMutableBufferPointer { put(v, $0, at: at) }
    }

    /// Appends the low `count` bytes of `v`, most significant first.
    @inline(__always) static func append(_ v: UInt64, count: Int, to buf: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { buf.append(contentsOf: $0.suffix(count)) }
    }
}

/// One value of a record, as SQLite stores it.
enum RecordValue {
    case null
    case integer(Int64)
    case real(Double)
    case text(UnsafeBufferPointer<UInt8>)

    /// The serial type (format 4: 0 and 1 take no body bytes).
    @inline(__always) var serialType: UInt64 {
        switch self {
        case .null: 0
        case .integer(let v):
            switch v {
            case 0: 8
            case 1: 9
            case -128...127: 1
            case -32768...32767: 2
            case -8_388_608...8_388_607: 3
            case -2_147_483_648...2_147_483_647: 4
            case -140_737_488_355_328...140_737_488_355_327: 5
            default: 6
            }
        case .real: 7
        case .text(let b): UInt64(b.count) * 2 + 13
        }
    }

    @inline(__always) static func bodyLength(_ serialType: UInt64) -> Int {
        switch serialType {
        case 0, 8, 9: 0
        case 1: 1
        case 2: 2
        case 3: 3
        case 4: 4
        case 5: 6
        case 6, 7: 8
        default: Int((serialType - 12) / 2)
        }
    }

    @inline(__always) func appendBody(_ serialType: UInt64, to buf: inout [UInt8]) {
        switch self {
        case .null: break
        case .integer(let v):
            BigEndian.append(UInt64(bitPattern: v), count: Self.bodyLength(serialType), to: &buf)
        case .real(let d):
            BigEndian.append(d.bitPattern, count: 8, to: &buf)
        case .text(let b):
            buf.append(contentsOf: b)
        }
    }
}

/// Encodes records (header of serial types, then the values) into a reused buffer.
struct RecordEncoder {
    /// Appends the size of a record header whose serial types take `typesLength` bytes (the
    /// size counts its own varint).
    @inline(__always)
    static func appendHeaderSize(typesLength: Int, to buf: inout [UInt8]) {
        var headerSize = typesLength + 1
        if headerSize > 0x7F { headerSize = typesLength + SQLiteVarint.length(UInt64(typesLength + 2)) }
        SQLiteVarint.append(UInt64(headerSize), to: &buf)
    }

    private var types: [UInt64] = []

    /// Appends the record of `values` to `buf`.
    mutating func append(_ values: UnsafeBufferPointer<RecordValue>, to buf: inout [UInt8]) {
        types.removeAll(keepingCapacity: true)
        var typesLength = 0
        for v in values {
            let t = v.serialType
            types.append(t)
            typesLength += SQLiteVarint.length(t)
        }
        Self.appendHeaderSize(typesLength: typesLength, to: &buf)
        for t in types { SQLiteVarint.append(t, to: &buf) }
        for (i, v) in values.enumerated() { v.appendBody(types[i], to: &buf) }
    }
}

/// The database file being written: pages are appended in order (page 1, the header and schema,
/// is written last in place); the page holding the lock byte at 1 GiB is skipped with zeros,
/// as SQLite requires. Safe to share between threads: each page (and each overflow chain) is
/// numbered and appended under a lock.
final class PageFile: @unchecked Sendable {
    private let lock = NSLock()
    static let pageSize = 8192
    /// The page that holds byte offset 2^30 (SQLite's lock byte); never used for data.
    static let pendingBytePage = UInt32(0x4000_0000 / pageSize + 1)
    let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    /// Pages written so far (counting page 1).
    private(set) var pageCount: UInt32 = 0
    private var failed = false

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw KaifangError.runtime("cannot create version file \(path): \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(1 << 20)
        // Page 1 holds the header and the schema, which are known only at the end.
        buffer.append(contentsOf: repeatElement(0, count: Self.pageSize))
        pageCount = 1
    }

    deinit { close(fd) }

    /// The number the `k`-th page after `page` will get.
    static func number(after page: UInt32) -> UInt32 {
        let n = page + 1
        return n == pendingBytePage ? n + 1 : n
    }

    /// Appends one page; returns its number.
    @discardableResult
    func write(_ page: UnsafeRawBufferPointer) throws -> UInt32 {
        lock.lock()
        defer { lock.unlock() }
        return try append(page)
    }

    /// Appends `bytes` as a chain of overflow pages (each starts with the next one's number,
    /// 0 on the last); returns the first page's number.
    func writeChain(_ bytes: UnsafeBufferPointer<UInt8>) throws -> UInt32 {
        lock.lock()
        defer { lock.unlock() }
        var page = [UInt8](repeating: 0, count: Self.pageSize)
        var at = 0
        var number = Self.number(after: pageCount)
        let first = number
        while at < bytes.count {
            let take = min(Self.pageSize - 4, bytes.count - at)
            let next: UInt32 = at + take < bytes.count ? Self.number(after: number) : 0
            BigEndian.put(next, &page, at: 0)
            page.withUnsafeMutableBytes { p in
                p.baseAddress!.advanced(by: 4).copyMemory(from: bytes.baseAddress! + at, byteCount: take)
                if take < Self.pageSize - 4 { (p.baseAddress! + 4 + take).initializeMemory(as: UInt8.self, repeating: 0, count: Self.pageSize - 4 - take) }
            }
            let written = try page.withUnsafeBytes { try append($0) }
            precondition(written == number)
            number = Self.number(after: number)
            at += take
        }
        return first
    }

    private func append(_ page: UnsafeRawBufferPointer) throws -> UInt32 {
        precondition(page.count == Self.pageSize)
        if pageCount + 1 == Self.pendingBytePage {
            buffer.append(contentsOf: repeatElement(0, count: Self.pageSize))
            pageCount += 1
        }
        buffer.append(contentsOf: page)
        pageCount += 1
        if buffer.count >= 1 << 20 { try flush() }
        return pageCount
    }

    private func flush() throws {
        var off = 0
        while off < buffer.count {
            let n = buffer.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KaifangError.runtime("writing version file \(path) failed: \(String(cString: strerror(errno))): check free disk space")
            }
            off += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes page 1 in place and flushes everything.
    func finish(page1: [UInt8]) throws {
        lock.lock()
        defer { lock.unlock() }
        try flush()
        let n = page1.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
        guard n == page1.count else {
            throw KaifangError.runtime("writing version file \(path) failed: \(String(cString: strerror(errno))): check free disk space")
        }
    }
}

/// The kinds of B-tree page.
enum PageKind: UInt8 {
    case indexInterior = 0x02
    case tableInterior = 0x05
    case indexLeaf = 0x0A
    case tableLeaf = 0x0D

    var isInterior: Bool { self == .indexInterior || self == .tableInterior }
    var headerSize: Int { isInterior ? 12 : 8 }
}

/// One page being filled: the cell pointer array grows from the header, the cells from the end.
struct PageBuilder {
    private(set) var bytes: [UInt8]
    /// Where the B-tree header starts (100 on page 1, after the file header).
    let base: Int
    private(set) var kind: PageKind
    private(set) var count = 0
    private var contentStart = PageFile.pageSize
    private var lastCellSize = 0

    init(kind: PageKind, base: Int = 0) {
        bytes = [UInt8](repeating: 0, count: PageFile.pageSize)
        self.kind = kind
        self.base = base
    }

    mutating func reset(kind: PageKind) {
        self.kind = kind
        count = 0
        contentStart = PageFile.pageSize
        lastCellSize = 0
    }

    /// Whether one more cell of `size` bytes fits.
    @inline(__always) func fits(_ size: Int) -> Bool {
        base + kind.headerSize + 2 * (count + 1) + max(size, 4) <= contentStart
    }

    /// Free bytes with no cell added (for a page of this kind).
    var capacity: Int { PageFile.pageSize - base - kind.headerSize }

    /// Adds a cell: an optional left-child page number, then `cell`.
    mutating func add(child: UInt32? = nil, _ cell: UnsafeBufferPointer<UInt8>) {
        let size = max(cell.count + (child == nil ? 0 : 4), 4)
        precondition(fits(size))
        contentStart -= size
        var at = contentStart
        bytes.withUnsafeMutableBufferPointer { p in
            if let child {
                BigEndian.put(child, p, at: at)
                at += 4
            }
            if cell.count > 0 { UnsafeMutableRawPointer(p.baseAddress! + at).copyMemory(from: cell.baseAddress!, byteCount: cell.count) }
            let ptr = base + kind.headerSize + 2 * count
            p[ptr] = UInt8(contentStart >> 8); p[ptr + 1] = UInt8(contentStart & 0xFF)
        }
        count += 1
        lastCellSize = size
    }

    /// Takes the last cell out again (its bytes after the child pointer, if any).
    mutating func removeLast() -> [UInt8] {
        precondition(count > 0)
        let skip = kind.isInterior ? 4 : 0
        let cell = Array(bytes[(contentStart + skip)..<(contentStart + lastCellSize)])
        contentStart += lastCellSize
        count -= 1
        lastCellSize = 0
        return cell
    }

    /// Writes the header (and the right-most child of an interior page); zeroes the free gap.
    mutating func seal(rightChild: UInt32 = 0) -> [UInt8] {
        let h = base
        bytes[h] = kind.rawValue
        bytes[h + 1] = 0; bytes[h + 2] = 0
        bytes[h + 3] = UInt8(count >> 8); bytes[h + 4] = UInt8(count & 0xFF)
        let start = contentStart == 65536 ? 0 : contentStart
        bytes[h + 5] = UInt8(start >> 8); bytes[h + 6] = UInt8(start & 0xFF)
        bytes[h + 7] = 0
        if kind.isInterior {
            BigEndian.put(rightChild, &bytes, at: h + 8)
        }
        let gap = h + kind.headerSize + 2 * count
        if gap < contentStart {
            bytes.withUnsafeMutableBufferPointer { p in
                (p.baseAddress! + gap).initialize(repeating: 0, count: contentStart - gap)
            }
        }
        return bytes
    }
}

/// The payload of a cell: how much stays on the page and where the rest goes.
enum Payload {
    /// Largest payload kept whole on a table leaf page.
    static let tableMaxLocal = PageFile.pageSize - 35
    /// Largest payload kept whole on an index page.
    static let indexMaxLocal = (PageFile.pageSize - 12) * 64 / 255 - 23
    static let minLocal = (PageFile.pageSize - 12) * 32 / 255 - 23

    /// Bytes of a payload of `p` bytes kept on the page (SQLite's rule).
    static func local(_ p: Int, maxLocal: Int) -> Int {
        if p <= maxLocal { return p }
        let k = minLocal + (p - minLocal) % (PageFile.pageSize - 4)
        return k <= maxLocal ? k : minLocal
    }

    /// Appends `payload`'s local part to `cell`, writing the rest to overflow pages (and the
    /// first overflow page's number after the local part).
    static func append(_ payload: UnsafeBufferPointer<UInt8>, maxLocal: Int, to cell: inout [UInt8], file: PageFile) throws {
        let n = local(payload.count, maxLocal: maxLocal)
        cell.append(contentsOf: UnsafeBufferPointer(rebasing: payload[0..<n]))
        guard n < payload.count else { return }
        let first = try file.writeChain(UnsafeBufferPointer(rebasing: payload[n...]))
        BigEndian.append(UInt64(first), count: 4, to: &cell)
    }
}

/// Builds the interior levels over a level of pages: `children[i]` and `children[i+1]` are
/// separated by `dividers[i]` (a cell without its child pointer). Returns the root page.
/// Each page gets as many cells as fit; the divider after a page's right-most child moves up.
func buildInterior(children: [UInt32], dividers: [[UInt8]], kind: PageKind, file: PageFile) throws -> UInt32 {
    precondition(kind.isInterior && dividers.count == children.count - 1)
    var children = children
    var dividers = dividers
    var page = PageBuilder(kind: kind)
    while children.count > 1 {
        var upChildren: [UInt32] = []
        var upDividers: [[UInt8]] = []
        let m = children.count
        var a = 0
        while a < m {
            page.reset(kind: kind)
            var i = a
            while i < m - 1 && page.fits(4 + dividers[i].count) {
                dividers[i].withUnsafeBufferPointer { page.add(child: children[i], $0) }
                i += 1
            }
            if i == m - 1 {
                upChildren.append(try page.seal(rightChild: children[i]).withUnsafeBytes { try file.write($0) })
                break
            }
            if i + 1 == m - 1 {
                // The next page would hold one child and no cell: end this one a child earlier.
                precondition(page.count > 1)
                _ = page.removeLast()
                upChildren.append(try page.seal(rightChild: children[i - 1]).withUnsafeBytes { try file.write($0) })
                upDividers.append(dividers[i - 1])
                a = i
                continue
            }
            upChildren.append(try page.seal(rightChild: children[i]).withUnsafeBytes { try file.write($0) })
            upDividers.append(dividers[i])
            a = i + 1
        }
        children = upChildren
        dividers = upDividers
    }
    return children[0]
}

/// A table B-tree written as rows arrive in increasing rowid order.
struct TableTreeWriter {
    private var page = PageBuilder(kind: .tableLeaf)
    private var children: [UInt32] = []
    private var dividers: [[UInt8]] = []
    private var lastRowid: Int64 = 0
    private var cell: [UInt8] = []

    /// Appends a row; `rowid` must be greater than the last one.
    mutating func append(rowid: Int64, record: UnsafeBufferPointer<UInt8>, file: PageFile) throws {
        cell.removeAll(keepingCapacity: true)
        SQLiteVarint.append(UInt64(record.count), to: &cell)
        SQLiteVarint.append(UInt64(bitPattern: rowid), to: &cell)
        try Payload.append(record, maxLocal: Payload.tableMaxLocal, to: &cell, file: file)
        if !page.fits(cell.count) { try flush(file) }
        cell.withUnsafeBufferPointer { page.add($0) }
        lastRowid = rowid
    }

    private mutating func flush(_ file: PageFile) throws {
        children.append(try page.seal().withUnsafeBytes { try file.write($0) })
        var d: [UInt8] = []
        SQLiteVarint.append(UInt64(bitPattern: lastRowid), to: &d)
        dividers.append(d)
        page.reset(kind: .tableLeaf)
    }

    /// Writes what is left; returns the root page.
    mutating func finish(file: PageFile) throws -> UInt32 {
        if page.count > 0 || children.isEmpty { try flush(file) }
        dividers.removeLast()
        return try buildInterior(children: children, dividers: dividers, kind: .tableInterior, file: file)
    }
}

/// An index B-tree written from its entries in sorted order. Unlike a table, an index keeps each
/// entry once: an entry between two leaves goes up as the divider.
struct IndexTreeWriter {
    private var page = PageBuilder(kind: .indexLeaf)
    private var children: [UInt32] = []
    private var dividers: [[UInt8]] = []
    private var cell: [UInt8] = []

    /// Appends the next entry (a record, in index order); `isLast` for the final one.
    mutating func append(record: UnsafeBufferPointer<UInt8>, isLast: Bool, file: PageFile) throws {
        cell.removeAll(keepingCapacity: true)
        SQLiteVarint.append(UInt64(record.count), to: &cell)
        try Payload.append(record, maxLocal: Payload.indexMaxLocal, to: &cell, file: file)
        if page.fits(cell.count) {
            cell.withUnsafeBufferPointer { page.add($0) }
            return
        }
        if !isLast {
            // This entry separates the full leaf from the next one.
            children.append(try page.seal().withUnsafeBytes { try file.write($0) })
            dividers.append(cell)
            page.reset(kind: .indexLeaf)
        } else {
            // The last entry needs a leaf of its own: the full leaf's last entry divides them.
            let divider = page.removeLast()
            children.append(try page.seal().withUnsafeBytes { try file.write($0) })
            dividers.append(divider)
            page.reset(kind: .indexLeaf)
            cell.withUnsafeBufferPointer { page.add($0) }
        }
    }

    /// Writes what is left; returns the root page.
    mutating func finish(file: PageFile) throws -> UInt32 {
        children.append(try page.seal().withUnsafeBytes { try file.write($0) })
        return try buildInterior(children: children, dividers: dividers, kind: .indexInterior, file: file)
    }
}

/// Page 1: the 100-byte file header and the schema table (`sqlite_schema`), whose root must be
/// page 1. `entries` are (type, name, table, root page, sql).
func writeSchema(_ entries: [(type: String, name: String, table: String, root: UInt32, sql: String)], file: PageFile) throws {
    var encoder = RecordEncoder()
    var cells: [[UInt8]] = []
    var record: [UInt8] = []
    for (i, e) in entries.enumerated() {
        record.removeAll(keepingCapacity: true)
        var type = e.type, name = e.name, table = e.table, sql = e.sql
        type.withUTF8 { t in name.withUTF8 { n in table.withUTF8 { tb in sql.withUTF8 { s in
            let values: [RecordValue] = [.text(t), .text(n), .text(tb), .integer(Int64(e.root)), .text(s)]
            values.withUnsafeBufferPointer { encoder.append($0, to: &record) }
        } } } }
        var cell: [UInt8] = []
        SQLiteVarint.append(UInt64(record.count), to: &cell)
        SQLiteVarint.append(UInt64(i + 1), to: &cell)
        try record.withUnsafeBufferPointer { try Payload.append($0, maxLocal: Payload.tableMaxLocal, to: &cell, file: file) }
        cells.append(cell)
    }
    var root = PageBuilder(kind: .tableLeaf, base: 100)
    var rightChild: UInt32 = 0
    if cells.reduce(0, { $0 + max($1.count, 4) + 2 }) <= root.capacity {
        for c in cells { c.withUnsafeBufferPointer { root.add($0) } }
    } else {
        // Leaves elsewhere; page 1 holds their interior root.
        var leaf = PageBuilder(kind: .tableLeaf)
        var children: [UInt32] = []
        var keys: [Int] = []
        for (i, c) in cells.enumerated() {
            if !leaf.fits(c.count) {
                children.append(try leaf.seal().withUnsafeBytes { try file.write($0) })
                keys.append(i)
                leaf.reset(kind: .tableLeaf)
            }
            c.withUnsafeBufferPointer { leaf.add($0) }
        }
        children.append(try leaf.seal().withUnsafeBytes { try file.write($0) })
        root.reset(kind: .tableInterior)
        for (child, key) in zip(children.dropLast(), keys) {
            var d: [UInt8] = []
            SQLiteVarint.append(UInt64(key), to: &d)
            guard root.fits(4 + d.count) else { throw KaifangError.runtime("version file schema too large") }
            d.withUnsafeBufferPointer { root.add(child: child, $0) }
        }
        rightChild = children.last!
    }
    var page = root.seal(rightChild: rightChild)
    let pages = file.pageCount
    func put32(_ v: UInt32, _ at: Int) { BigEndian.put(v, &page, at: at) }
    for (i, b) in "SQLite format 3\0".utf8.enumerated() { page[i] = b }
    page[16] = UInt8(PageFile.pageSize >> 8); page[17] = UInt8(PageFile.pageSize & 0xFF)
    page[18] = 1; page[19] = 1            // legacy (rollback journal) read and write versions
    page[20] = 0                          // no reserved bytes per page
    page[21] = 64; page[22] = 32; page[23] = 32
    put32(1, 24)                          // file change counter
    put32(pages, 28)                      // database size in pages
    put32(0, 32); put32(0, 36)            // no freelist
    put32(1, 40)                          // schema cookie
    put32(4, 44)                          // schema format 4
    put32(0, 48); put32(0, 52)
    put32(1, 56)                          // UTF-8
    for off in stride(from: 60, to: 92, by: 4) { put32(0, off) }
    put32(1, 92)                          // version-valid-for = change counter
    put32(UInt32(sqlite3_libversion_number()), 96)
    try file.finish(page1: page)
}
