import Foundation
import GRDBSQLite
import KaifangCore
import Synchronization

/// Row sets of a version file's category fields: for each value, the rows that hold it, so a
/// page filtered by `field=value` or `field__in=…` on such fields intersects sets and reads
/// only the rows it serves (through `ix_<field>` SQLite reads about three rows per row served
/// when two filters each keep a few in ten).
///
/// Stored in the version file, written once with it (`VersionWriter`):
///
///     kaifang_rowset_fields(field TEXT PRIMARY KEY, chunks INTEGER)      -- the fields covered
///     kaifang_rowsets(field, value, chunk, bits, PRIMARY KEY (field, value, chunk)) WITHOUT ROWID
///
/// Rows are split in chunks of 65 536 (`chunk = rowid >> 16`); a chunk's set is either a bitmap
/// of 8 192 bytes (bit `i % 8` of byte `i / 8` for offset `i`) or, when it holds fewer than 4 096
/// rows, their offsets as ascending little-endian 16-bit numbers (a blob shorter than 8 192
/// bytes). A chunk with no row of the value has no entry. NULLs are in no set (`field = value`
/// never matches NULL in SQLite either).
public enum RowSets {
    public static let chunkShift = 16
    static let chunkRows = 1 << chunkShift
    static let bitmapBytes = chunkRows / 8
    static let words = chunkRows / 64
    /// Fields with more distinct values than this get no row sets (their index serves them).
    public static let maxValues = 10_000

    static let schema = """
        CREATE TABLE kaifang_rowset_fields (field TEXT PRIMARY KEY, chunks INTEGER NOT NULL);
        CREATE TABLE kaifang_rowsets (field TEXT NOT NULL, value TEXT NOT NULL, chunk INTEGER NOT NULL, bits BLOB NOT NULL,
                                      PRIMARY KEY (field, value, chunk)) WITHOUT ROWID
        """

    /// The chunk blobs of one value's rows (ascending, from 1).
    static func encode(_ rows: [UInt32]) -> [(chunk: Int64, bits: [UInt8])] {
        var out: [(Int64, [UInt8])] = []
        var i = 0
        while i < rows.count {
            let chunk = Int(rows[i]) >> chunkShift
            var j = i
            while j < rows.count && Int(rows[j]) >> chunkShift == chunk { j += 1 }
            let n = j - i
            var blob: [UInt8]
            if n * 2 < bitmapBytes {
                blob = []
                blob.reserveCapacity(n * 2)
                for r in rows[i..<j] {
                    let off = UInt16(truncatingIfNeeded: r)
                    blob.append(UInt8(truncatingIfNeeded: off)); blob.append(UInt8(truncatingIfNeeded: off >> 8))
                }
            } else {
                blob = [UInt8](repeating: 0, count: bitmapBytes)
                for r in rows[i..<j] {
                    let off = Int(r) & (chunkRows - 1)
                    blob[off >> 3] |= 1 << UInt8(off & 7)
                }
            }
            out.append((Int64(chunk), blob))
            i = j
        }
        return out
    }

    /// Writes the row sets of `field` inside the caller's transaction on `db`.
    static func write(_ db: OpaquePointer?, field: String, sets: [(value: [UInt8], rows: [UInt32])], rowCount: Int) throws {
        func failure() -> KaifangError { KaifangError.runtime("row sets of '\(field)': \(String(cString: sqlite3_errmsg(db)))") }
        var stmt: OpaquePointer?, mark: OpaquePointer?
        defer { sqlite3_finalize(stmt); sqlite3_finalize(mark) }
        guard sqlite3_prepare_v2(db, "INSERT INTO kaifang_rowsets VALUES (?, ?, ?, ?)", -1, &stmt, nil) == SQLITE_OK,
              sqlite3_prepare_v2(db, "INSERT INTO kaifang_rowset_fields VALUES (?, ?)", -1, &mark, nil) == SQLITE_OK else { throw failure() }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for set in sets {
            for (chunk, bits) in encode(set.rows) {
                sqlite3_reset(stmt)
                sqlite3_bind_text(stmt, 1, field, -1, transient)
                // The empty string may have no buffer: bind a literal "" for it.
                if set.value.isEmpty {
                    sqlite3_bind_text(stmt, 2, "", 0, transient)
                } else {
                    set.value.withUnsafeBytes { v in _ = sqlite3_bind_text(stmt, 2, v.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(v.count), transient) }
                }
                sqlite3_bind_int64(stmt, 3, chunk)
                bits.withUnsafeBytes { b in _ = sqlite3_bind_blob(stmt, 4, b.baseAddress, Int32(b.count), transient) }
                guard sqlite3_step(stmt) == SQLITE_DONE else { throw failure() }
            }
        }
        sqlite3_bind_text(mark, 1, field, -1, transient)
        sqlite3_bind_int64(mark, 2, Int64(rowCount >> chunkShift) + 1)
        guard sqlite3_step(mark) == SQLITE_DONE else { throw failure() }
    }

    struct ChunkKey: Hashable {
        let path: String, field: String, value: String, chunk: Int64
    }

    /// Chunks already read, by file, field, value and chunk (empty: no row of the value in the
    /// chunk). A version file never changes and its path is never reused, so a chunk read once
    /// serves every later request; at most `cacheLimit` chunks (32 MiB), cleared when full.
    private static let cache = Mutex<[ChunkKey: [UInt8]]>([:])
    static let cacheLimit = 4_096

    /// One chunk's set as a bitmap (`bitmapBytes` bytes; an offset list is expanded when read),
    /// or empty when no row of the chunk holds the value; from the cache or the file.
    static func chunkBits(_ reader: VersionReader, field: String, value: String, chunk: Int64) throws -> [UInt8] {
        let key = ChunkKey(path: reader.path, field: field, value: value, chunk: chunk)
        if let hit = cache.withLock({ $0[key] }) { return hit }
        var blob = try reader.withStatement("SELECT bits FROM kaifang_rowsets WHERE field = ? AND value = ? AND chunk = ?",
                                            [.text(field), .text(value), .integer(chunk)]) { stmt -> [UInt8] in
            guard sqlite3_step(stmt) == SQLITE_ROW, let p = sqlite3_column_blob(stmt, 0) else { return [] }
            return Array(UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, 0))))
        }
        if !blob.isEmpty && blob.count != bitmapBytes {
            guard blob.count < bitmapBytes, blob.count % 2 == 0 else {
                throw KaifangError.runtime("version file \(reader.path) is damaged: a row set of '\(field)' has \(blob.count) bytes")
            }
            var bitmap = [UInt8](repeating: 0, count: bitmapBytes)
            for i in stride(from: 0, to: blob.count, by: 2) {
                let off = Int(blob[i]) | Int(blob[i + 1]) << 8
                bitmap[off >> 3] |= 1 << UInt8(off & 7)
            }
            blob = bitmap
        }
        cache.withLock { c in
            if c.count >= cacheLimit { c.removeAll(keepingCapacity: true) }
            c[key] = blob
        }
        return blob
    }

    /// The fields of the file `reader` reads that have row sets, with their chunk count (empty
    /// for files written before row sets existed).
    public static func fields(_ reader: VersionReader) -> [String: Int64] {
        if let known = reader.rowSetFields { return known }
        var found: [String: Int64] = [:]
        var stmt: OpaquePointer?
        if sqlite3_prepare_v2(reader.db, "SELECT field, chunks FROM kaifang_rowset_fields", -1, &stmt, nil) == SQLITE_OK {
            while sqlite3_step(stmt) == SQLITE_ROW {
                if let name = sqlite3_column_text(stmt, 0) { found[String(cString: name)] = sqlite3_column_int64(stmt, 1) }
            }
        }
        sqlite3_finalize(stmt)
        reader.rowSetFields = found
        return found
    }

    /// The first `want` rows after row `after`, ascending, that hold one of each filter's
    /// values (filters AND, values OR); nil when a filter's field has no row sets in this file.
    /// - Throws: `KaifangError.runtime` when the file cannot be read.
    public static func matching(_ reader: VersionReader, _ filters: [(field: String, values: [String])], after: Int64, want: Int) throws -> [Int64]? {
        let covered = fields(reader)
        guard !filters.isEmpty, want > 0 else { return nil }
        var chunks = Int64.max
        for f in filters {
            guard let c = covered[f.field] else { return nil }
            chunks = min(chunks, c)
        }
        var found: [Int64] = []
        found.reserveCapacity(want)
        // Words are combined a block at a time, only as far as the page needs (a page of 100
        // rows of two filters keeping one row in 36 reads about 60 of a chunk's 1 024 words).
        let blockWords = 64
        var acc = [UInt64](repeating: 0, count: blockWords)
        var any = [UInt64](repeating: 0, count: blockWords)
        var chunk = max(0, after + 1) >> Int64(chunkShift)
        while chunk < chunks && found.count < want {
            // Per filter, the bitmaps of its values present in the chunk; none: no row matches.
            var sets: [[[UInt8]]] = []
            for f in filters {
                var maps: [[UInt8]] = []
                for v in f.values {
                    let bits = try chunkBits(reader, field: f.field, value: v, chunk: chunk)
                    if !bits.isEmpty { maps.append(bits) }
                }
                if maps.isEmpty { sets = []; break }
                sets.append(maps)
            }
            if !sets.isEmpty {
                let base = chunk << Int64(chunkShift)
                var w0 = after >= base ? Int((after - base + 1) >> 6) : 0
                while w0 < words {
                    let n = min(blockWords, words - w0)
                    for (k, maps) in sets.enumerated() {
                        for i in 0..<n { any[i] = 0 }
                        for m in maps {
                            m.withUnsafeBytes { b in
                                for i in 0..<n { any[i] |= b.loadUnaligned(fromByteOffset: (w0 + i) * 8, as: UInt64.self).littleEndian }
                            }
                        }
                        if k == 0 {
                            for i in 0..<n { acc[i] = any[i] }
                        } else {
                            for i in 0..<n { acc[i] &= any[i] }
                        }
                    }
                    for i in 0..<n where acc[i] != 0 {
                        var bits = acc[i]
                        while bits != 0 {
                            let row = base + Int64((w0 + i) * 64 + bits.trailingZeroBitCount)
                            bits &= bits - 1
                            if row <= after { continue }
                            found.append(row)
                            if found.count == want { return found }
                        }
                    }
                    w0 += n
                }
            }
            chunk += 1
        }
        return found
    }
}
