import Foundation
import GRDBSQLite
import KaifangCore
import Storage
import VersionFormat

/// What changed from one version of a dataset to another: the schema, the row counts, and the
/// rows added, removed and changed, matched by the dataset's primary key.
///
/// Each row of both files is read once (through SQLite) and reduced to a 128-bit digest of its
/// key and one of its content over the fields both versions have with the same type; the two
/// lists are sorted by key and merged. A key found more than once in a version identifies no
/// row: such keys are counted (`duplicateKeys`) and their rows treated as changed when rows
/// changed since a version are asked for, never as unchanged.
public struct VersionDiff: Codable, Sendable, Equatable {
    public var base: Int
    public var version: Int
    public var primaryKey: [String]
    public var rowsBefore: Int
    public var rowsAfter: Int
    public var added: Int
    public var removed: Int
    public var changed: Int
    public var unchanged: Int
    public var duplicateKeys: Int
    public var fieldsAdded: [String]
    public var fieldsRemoved: [String]
    /// `name: old type → new type`.
    public var fieldsRetyped: [String]
    /// A few rows of each kind, by rowid: added and changed rows in `version`, removed (and the
    /// changed rows' earlier state) in `base`.
    public var exampleAdded: [Int64]
    public var exampleRemoved: [Int64]
    public var exampleChanged: [ChangedRow]
    /// Seconds the comparison took.
    public var seconds: Double

    public struct ChangedRow: Codable, Sendable, Equatable {
        public var before: Int64
        public var after: Int64
    }

    enum CodingKeys: String, CodingKey {
        case base, version, primaryKey = "primary_key", rowsBefore = "rows_before", rowsAfter = "rows_after", added, removed, changed, unchanged
        case duplicateKeys = "duplicate_keys", fieldsAdded = "fields_added", fieldsRemoved = "fields_removed", fieldsRetyped = "fields_retyped"
        case exampleAdded = "example_added", exampleRemoved = "example_removed", exampleChanged = "example_changed", seconds
    }

    /// How many examples of each kind are kept.
    public static let examples = 5

    /// The rowids of `version` that are new or changed since `base` (ascending), for
    /// `_since_version`, and the removed rows' rowids in `base`.
    public struct Rows: Sendable {
        public var changedOrAdded: [Int64]
        public var removed: [Int64]
    }

    /// The key a diff matches rows by: the newer manifest's primary key, when the older version
    /// has those fields with the same types.
    /// - Throws: `KaifangError.conflict` saying why the versions cannot be compared.
    public static func key(old: DatasetManifest, new: DatasetManifest) throws -> [String] {
        guard let key = new.primaryKey else {
            throw KaifangError.conflict("'\(new.id)' declares no primary_key: add one to its manifest (the fields that identify a row) to compare its versions")
        }
        for name in key {
            guard let a = old.field(named: name), let b = new.field(named: name), a.type == b.type else {
                throw KaifangError.conflict("primary_key field '\(name)' is missing from the earlier version or has another type there: its versions are not comparable by key")
            }
        }
        return key
    }

    /// Compares the files of versions `base` and `version`.
    /// - Parameter rows: also collect every added, changed and removed rowid (`Rows`).
    /// - Throws: `KaifangError.conflict` when the versions have no common key; `.runtime` on a
    ///   damaged file.
    public static func compute(base: Int, oldPath: String, oldManifest: DatasetManifest, version: Int, newPath: String,
                               newManifest: DatasetManifest, rows: Bool = false) throws -> (VersionDiff, Rows?) {
        let start = ContinuousClock.now
        let key = try self.key(old: oldManifest, new: newManifest)
        var added: [String] = [], removed: [String] = [], retyped: [String] = [], common: [String] = []
        for f in newManifest.fields {
            if let o = oldManifest.field(named: f.name) {
                if o.type == f.type { common.append(f.name) } else { retyped.append("\(f.name): \(o.type.rawValue) → \(f.type.rawValue)") }
            } else {
                added.append(f.name)
            }
        }
        for f in oldManifest.fields where newManifest.field(named: f.name) == nil { removed.append(f.name) }
        // A field added or removed changes every row's content: compare over the common fields
        // (and count the schema change above), so a new column alone does not mark every row.
        // The two files are read at once, one on each of two threads.
        let results = Results()
        let fields = common
        DispatchQueue.concurrentPerform(iterations: 2) { side in
            let r = Result { try digests(path: side == 0 ? oldPath : newPath, key: key, content: fields) }
            results.lock.withLock { results.sides[side] = r }
        }
        let older = try results.sides[0].get(), newer = try results.sides[1].get()
        var diff = VersionDiff(base: base, version: version, primaryKey: key, rowsBefore: older.count, rowsAfter: newer.count, added: 0, removed: 0,
                               changed: 0, unchanged: 0, duplicateKeys: 0, fieldsAdded: added, fieldsRemoved: removed, fieldsRetyped: retyped,
                               exampleAdded: [], exampleRemoved: [], exampleChanged: [], seconds: 0)
        var out = rows ? Rows(changedOrAdded: [], removed: []) : nil
        var i = 0, j = 0
        // Rows whose key appears once on each side are compared; a key repeated on either side
        // marks every row of it changed (new side) or removed (old side) for `Rows`.
        while i < older.count || j < newer.count {
            let k: RowDigest.Key
            if j >= newer.count || (i < older.count && older[i].key < newer[j].key) { k = older[i].key } else { k = newer[j].key }
            var oi = i, nj = j
            while oi < older.count && older[oi].key == k { oi += 1 }
            while nj < newer.count && newer[nj].key == k { nj += 1 }
            let (nOld, nNew) = (oi - i, nj - j)
            if nOld > 1 || nNew > 1 {
                diff.duplicateKeys += 1
                for r in older[i..<oi] { out?.removed.append(r.row) }
                for r in newer[j..<nj] { out?.changedOrAdded.append(r.row) }
            } else if nOld == 0 {
                diff.added += 1
                if diff.exampleAdded.count < examples { diff.exampleAdded.append(newer[j].row) }
                out?.changedOrAdded.append(newer[j].row)
            } else if nNew == 0 {
                diff.removed += 1
                if diff.exampleRemoved.count < examples { diff.exampleRemoved.append(older[i].row) }
                out?.removed.append(older[i].row)
            } else if older[i].content != newer[j].content {
                diff.changed += 1
                if diff.exampleChanged.count < examples { diff.exampleChanged.append(ChangedRow(before: older[i].row, after: newer[j].row)) }
                out?.changedOrAdded.append(newer[j].row)
            } else {
                diff.unchanged += 1
            }
            i = oi; j = nj
        }
        out?.changedOrAdded.sort()
        out?.removed.sort()
        diff.exampleAdded.sort(); diff.exampleRemoved.sort()
        diff.exampleChanged.sort { $0.after < $1.after }
        let elapsed = ContinuousClock.now - start
        diff.seconds = ((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * 1000).rounded() / 1000
        return (diff, out)
    }

    /// Every row of a version file as (key digest, content digest, rowid), sorted by key.
    static func digests(path: String, key: [String], content: [String]) throws -> [RowDigest] {
        let reader = try VersionReader(path: path, immutable: true)
        let columns = key + content
        let sql = "SELECT _row, " + columns.map(quoteIdentifier).joined(separator: ", ") + " FROM rows"
        return try reader.withStatement(sql, []) { stmt in
            var out: [RowDigest] = []
            out.reserveCapacity(try reader.rowCount())
            while true {
                let rc = sqlite3_step(stmt)
                if rc == SQLITE_DONE { break }
                guard rc == SQLITE_ROW else { throw KaifangError.runtime("reading \(path) failed: \(String(cString: sqlite3_errmsg(reader.db)))") }
                var k = Digest128()
                for c in 0..<key.count { k.add(stmt, Int32(c + 1)) }
                var v = Digest128()
                for c in key.count..<columns.count { v.add(stmt, Int32(c + 1)) }
                out.append(RowDigest(key: k.value, content: v.value, row: sqlite3_column_int64(stmt, 0)))
            }
            out.sort { $0.key < $1.key }
            return out
        }
    }
}

/// The two sides' digests, filled by two threads.
private final class Results: @unchecked Sendable {
    let lock = NSLock()
    var sides: [Result<[RowDigest], any Error>] = [.success([]), .success([])]
}

/// A row reduced to digests.
struct RowDigest {
    struct Key: Comparable, Equatable {
        var hi: UInt64, lo: UInt64
        static func < (a: Key, b: Key) -> Bool { a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo }
    }
    var key: Key
    var content: Key
    var row: Int64
}

/// A 128-bit digest of a sequence of SQLite values (type, length and bytes of each), from two
/// 64-bit lanes mixed by full-width multiplication. Not cryptographic: it tells rows apart
/// (for a billion rows, two digests collide with a probability below 10⁻²⁰), and no one chooses
/// rows to collide with a row of their own data.
struct Digest128 {
    private var a: UInt64 = 0x243F_6A88_85A3_08D3
    private var b: UInt64 = 0x1319_8A2E_0370_7344

    @inline(__always) private static func mix(_ x: UInt64, _ y: UInt64) -> UInt64 {
        let m = x.multipliedFullWidth(by: y)
        return m.high ^ m.low
    }

    @inline(__always) mutating func word(_ w: UInt64) {
        a = Self.mix(a ^ w, 0x9E37_79B9_7F4A_7C15)
        b = Self.mix(b ^ w ^ 0xA076_1D64_78BD_642F, 0xE703_7ED1_A0B4_28DB) &+ a
    }

    mutating func bytes(_ p: UnsafeRawPointer?, _ count: Int) {
        word(UInt64(count) ^ 0x5C00_0000_0000_0000)
        guard let p, count > 0 else { return }
        var at = 0
        while at + 8 <= count {
            word(p.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            at += 8
        }
        if at < count {
            var tail: UInt64 = 0
            for k in 0..<(count - at) { tail |= UInt64(p.load(fromByteOffset: at + k, as: UInt8.self)) << (8 * UInt64(k)) }
            word(tail)
        }
    }

    /// Adds column `c` of the current row: its storage class, then its value.
    mutating func add(_ stmt: OpaquePointer, _ c: Int32) {
        switch sqlite3_column_type(stmt, c) {
        case SQLITE_INTEGER:
            word(1)
            word(UInt64(bitPattern: sqlite3_column_int64(stmt, c)))
        case SQLITE_FLOAT:
            word(2)
            word(sqlite3_column_double(stmt, c).bitPattern)
        case SQLITE_NULL:
            word(3)
        default:
            word(4)
            let p = sqlite3_column_text(stmt, c)
            bytes(UnsafeRawPointer(p), Int(sqlite3_column_bytes(stmt, c)))
        }
    }

    var value: RowDigest.Key {
        RowDigest.Key(hi: Self.mix(a, 0xC2B2_AE3D_27D4_EB4F) ^ b, lo: Self.mix(b, 0x1656_67B1_9E37_79F9) ^ a)
    }
}

extension VersionDiff {
    /// The changes of version `number` of `dataset` from the one before it: kept ones, else
    /// computed now and kept. Nil for a first version.
    /// - Throws: `KaifangError.conflict` when the versions are not comparable (no primary key,
    ///   or its fields differ); `.notFound` for a version that does not exist.
    public static func of(_ dataset: String, _ number: Int, catalog: any CatalogStore) throws -> VersionDiff? {
        if let json = try catalog.versionChanges(dataset, number) {
            return try JSONDecoder().decode(VersionDiff.self, from: Data(json.utf8))
        }
        guard let new = try catalog.version(dataset, number) else {
            throw KaifangError.notFound("'\(dataset)' has no version \(number): GET /v1/datasets/\(dataset) lists its versions")
        }
        guard number > 1, let old = try catalog.version(dataset, number - 1) else { return nil }
        let (diff, _) = try compute(base: old.number, oldPath: try catalog.localFile(old), oldManifest: old.manifest,
                                    version: new.number, newPath: try catalog.localFile(new), newManifest: new.manifest)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try catalog.recordVersionChanges(dataset, number, json: String(decoding: try enc.encode(diff), as: UTF8.self))
        return diff
    }

    /// One line for the CLI: `+added −removed ~changed (of before → after rows)`.
    public var summary: String {
        var s = "since version \(base): \(added) added, \(removed) removed, \(changed) changed, \(unchanged) unchanged (by \(primaryKey.joined(separator: ", ")))"
        if duplicateKeys > 0 { s += "; \(duplicateKeys) keys not unique" }
        if !fieldsAdded.isEmpty { s += "; fields added: \(fieldsAdded.joined(separator: ", "))" }
        if !fieldsRemoved.isEmpty { s += "; fields removed: \(fieldsRemoved.joined(separator: ", "))" }
        if !fieldsRetyped.isEmpty { s += "; fields retyped: \(fieldsRetyped.joined(separator: ", "))" }
        return s
    }
}
