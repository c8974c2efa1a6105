import Crypto
import Foundation
import GRDBSQLite
import KaifangCore
import Masking
import Storage
import VersionFormat

// Masked rows as bytes: the encoder the rows API and every export share, and the export
// stream itself, so an API export and `kaifang dataset export` write the same bytes.

/// Byte-level JSON output.
package enum JSONOut {
    @inline(__always)
    package static func string(_ b: UnsafeBufferPointer<UInt8>, into out: inout ByteBuilder) { JSONBytes.appendString(b, to: &out) }

    package static func string(_ s: String, into out: inout ByteBuilder) { JSONBytes.appendString(s, to: &out) }

    package static func raw(_ s: String, into out: inout ByteBuilder) { out.append(s) }
}

/// Reads rows from a prepared statement and writes them masked, as JSON objects or CSV lines.
package struct RowEncoder: ~Copyable {
    package let plan: MaskingPlan
    package let columns: [Int]
    /// Offset of the first data column in the statement (after `_row` and the sort column).
    package let firstColumn: Int32
    var scratch = MaskScratch()
    var masked = ByteBuilder(capacity: 256)
    var digits = ByteBuilder(capacity: 24)
    package var maskedCells = 0

    /// Per requested column: whether its value is served as stored (no masking).
    let keeps: [Bool]
    /// Per requested column: whether its masked value is a number (JSON writes it unquoted).
    let numbers: [Bool]

    /// The `"name":` prefixes of the columns, JSON-escaped once, in one array (`nameEnds[k]`
    /// ends column k's): one buffer access per row instead of an array retained per cell.
    let nameBytes: [UInt8]
    let nameEnds: [Int]

    /// Per requested column: declared TEXT in the file, so every value is TEXT or NULL (the
    /// column's affinity stores numbers as text) and `sqlite3_column_type` can be skipped.
    let texts: [Bool]

    package init(plan: MaskingPlan, columns: [Int], firstColumn: Int32, statement: OpaquePointer?) {
        self.init(plan: plan, columns: columns, firstColumn: firstColumn, texts: columns.indices.map { k in
            sqlite3_column_decltype(statement, firstColumn + Int32(k)).map { strcasecmp($0, "TEXT") == 0 } ?? false
        })
    }

    /// For rows read from the file's pages (`json(_:positions:row:into:)`): `texts` says per
    /// requested column whether it is declared TEXT.
    package init(plan: MaskingPlan, columns: [Int], firstColumn: Int32 = 0, texts: [Bool]) {
        self.plan = plan; self.columns = columns; self.firstColumn = firstColumn
        self.keeps = columns.map { plan.columns[$0].operation == .keep }
        self.numbers = columns.map { plan.columns[$0].operation.keepsType && plan.columns[$0].operation != .keep }
        self.texts = texts
        var bytes = ByteBuilder()
        var ends: [Int] = []
        for c in columns {
            JSONOut.string(plan.columns[c].field.name, into: &bytes)
            bytes.append(0x3A)
            ends.append(bytes.count)
        }
        self.nameBytes = bytes.array
        self.nameEnds = ends
    }

    /// Calls `body` with the bytes of the statement's column as text (nil for NULL), then masks it.
    @inline(__always)
    mutating func value(_ stmt: OpaquePointer?, _ k: Int, row: Int64, _ body: (UnsafeBufferPointer<UInt8>?, Bool) -> Void) {
        let sc = firstColumn + Int32(k)
        let planColumn = columns[k]
        if texts[k] {
            guard let p = sqlite3_column_text(stmt, sc) else { body(nil, false); return }
            let bytes = UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, sc)))
            if keeps[k] { body(bytes, false); return }
            maskText(bytes, k, row: row, body)
            return
        }
        let type = sqlite3_column_type(stmt, sc)
        if type == SQLITE_NULL { body(nil, false); return }
        let keep = keeps[k]
        if type == SQLITE_FLOAT && keep {
            var text = Cell.format(sqlite3_column_double(stmt, sc))
            text.withUTF8 { body($0, true) }
            return
        }
        if type == SQLITE_FLOAT {
            masked.removeAll()
            if let kept = plan.applyNumber(column: planColumn, sqlite3_column_double(stmt, sc), into: &masked) {
                maskedCells += 1
                if kept { body(masked.bytes, numbers[k]) } else { body(nil, false) }
                return
            }
        }
        guard let p = sqlite3_column_text(stmt, sc) else { body(nil, false); return }
        let bytes = UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, sc)))
        if keep { body(bytes, type == SQLITE_INTEGER); return }
        maskText(bytes, k, row: row, body)
    }

    /// Masks the text of requested column `k`.
    @inline(__always)
    private mutating func maskText(_ bytes: UnsafeBufferPointer<UInt8>, _ k: Int, row: Int64, _ body: (UnsafeBufferPointer<UInt8>?, Bool) -> Void) {
        maskedCells += 1
        masked.removeAll()
        if plan.apply(column: columns[k], bytes, row: row, scratch: &scratch, into: &masked) {
            body(masked.bytes, numbers[k])
        } else {
            body(nil, false)
        }
    }

    /// The same for a value read from the file's pages (`TableCursor`), as SQLite would hand it
    /// out; false when only SQLite's own conversion renders it (a real in a TEXT column, a real
    /// that a text mask needs): the caller then reads the page through SQLite.
    @inline(__always)
    mutating func value(_ v: StoredValue, _ k: Int, row: Int64, _ body: (UnsafeBufferPointer<UInt8>?, Bool) -> Void) -> Bool {
        switch v {
        case .null:
            body(nil, false)
        case .text(let bytes):
            if keeps[k] { body(bytes, false) } else { maskText(bytes, k, row: row, body) }
        case .integer(let i):
            // SQLite's text of an integer: its decimal digits (in their own buffer: a mask
            // writes into `masked`).
            digits.removeAll()
            digits.append(decimal: i)
            if keeps[k] { body(digits.bytes, !texts[k]) } else { maskText(digits.bytes, k, row: row, body) }
        case .real(let d):
            if texts[k] { return false }
            if keeps[k] {
                var text = Cell.format(d)
                text.withUTF8 { body($0, true) }
            } else {
                masked.removeAll()
                guard let kept = plan.applyNumber(column: columns[k], d, into: &masked) else { return false }
                maskedCells += 1
                if kept { body(masked.bytes, numbers[k]) } else { body(nil, false) }
            }
        }
        return true
    }

    @inline(__always)
    private func appendName(_ k: Int, into out: inout ByteBuilder) {
        if k > 0 { out.append(0x2C) }
        nameBytes.withUnsafeBufferPointer { n in
            out.append(contentsOf: UnsafeBufferPointer(rebasing: n[(k == 0 ? 0 : nameEnds[k - 1])..<nameEnds[k]]))
        }
    }

    @inline(__always)
    private static func appendValue(_ bytes: UnsafeBufferPointer<UInt8>?, numeric: Bool, into out: inout ByteBuilder) {
        guard let bytes else { out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C]); return }
        if numeric { out.append(contentsOf: bytes) } else { JSONOut.string(bytes, into: &out) }
    }

    /// Appends the current row as a JSON object.
    package mutating func json(_ stmt: OpaquePointer?, row: Int64, into out: inout ByteBuilder) {
        out.append(0x7B)
        for k in 0..<columns.count {
            appendName(k, into: &out)
            value(stmt, k, row: row) { bytes, numeric in Self.appendValue(bytes, numeric: numeric, into: &out) }
        }
        out.append(0x7D)
    }

    /// Appends the cursor's current row (loaded) as a JSON object; `positions` are the record
    /// positions of the requested columns. False when a value needs SQLite (see `value`).
    package mutating func json(_ cursor: borrowing TableCursor, positions: [Int], row: Int64, into out: inout ByteBuilder) -> Bool {
        out.append(0x7B)
        for k in 0..<columns.count {
            appendName(k, into: &out)
            let done = value(cursor.value(positions[k]), k, row: row) { bytes, numeric in Self.appendValue(bytes, numeric: numeric, into: &out) }
            if !done { return false }
        }
        out.append(0x7D)
        return true
    }

    /// Appends the current row as a CSV line.
    package mutating func csv(_ stmt: OpaquePointer?, row: Int64, into out: inout ByteBuilder) {
        for k in 0..<columns.count {
            if k > 0 { out.append(0x2C) }
            value(stmt, k, row: row) { bytes, _ in
                guard let bytes else { return }
                var needs = false
                for b in bytes where b == 0x2C || b == 0x22 || b == 0x0A || b == 0x0D { needs = true; break }
                if !needs { out.append(contentsOf: bytes); return }
                out.append(0x22)
                for b in bytes { if b == 0x22 { out.append(0x22) }; out.append(b) }
                out.append(0x22)
            }
        }
        out.append(0x0A)
    }
}

/// Runs statements on a version connection.
package enum Statement {
    package static func prepare(_ db: OpaquePointer?, _ sql: String, _ args: [Cell]) throws -> OpaquePointer? {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK else {
            throw KaifangError.runtime("query failed: \(String(cString: sqlite3_errmsg(db)))")
        }
        VersionReader.bind(stmt, args)
        return stmt
    }
}

/// Pulls chunks of an export from SQLite as the client reads them: memory stays at one chunk.
package final class ExportProducer: @unchecked Sendable {
    private let pool: VersionPool
    private let reader: VersionReader
    private var stmt: OpaquePointer?
    private var encoder: RowEncoder
    private let jsonl: Bool
    private var headerDone = false
    private var done = false
    /// Called once at the end with the rows written and the cells masked (the server counts them).
    private let onFinish: @Sendable (_ rows: Int, _ maskedCells: Int) -> Void
    private var rows = 0
    /// The SHA-256 of every byte produced, and how many (the export's provenance).
    private var hasher = SHA256()
    private var produced = 0
    /// When the last chunk has been produced: the export's SHA-256 (hex), bytes and rows.
    package private(set) var summary: (sha256: String, bytes: Int, rows: Int)?
    static let chunk = 64 << 10

    /// Prepares the whole version's rows in row order, `columns` (positions in `plan`) only.
    /// - Throws: `KaifangError.runtime` when the file cannot be read.
    package init(pool: VersionPool, path: String, plan: MaskingPlan, columns: [Int], jsonl: Bool,
                 onFinish: @escaping @Sendable (_ rows: Int, _ maskedCells: Int) -> Void = { _, _ in }) throws {
        self.pool = pool
        self.reader = try pool.checkout(path)
        let select = (["_row"] + columns.map { quoteIdentifier(plan.columns[$0].field.name) }).joined(separator: ", ")
        self.stmt = try Statement.prepare(reader.db, "SELECT \(select) FROM rows ORDER BY _row", [])
        self.encoder = RowEncoder(plan: plan, columns: columns, firstColumn: 1, statement: stmt)
        self.jsonl = jsonl
        self.onFinish = onFinish
    }

    deinit {
        sqlite3_finalize(stmt)
        pool.checkin(reader)
    }

    package func next() throws -> [UInt8]? {
        if done { return nil }
        var out = ByteBuilder(capacity: Self.chunk + 4096)
        if !headerDone && !jsonl {
            for (i, c) in encoder.columns.enumerated() {
                if i > 0 { out.append(0x2C) }
                out.append(contentsOf: Array(encoder.plan.columns[c].field.name.utf8))
            }
            out.append(0x0A)
        }
        headerDone = true
        while out.count < Self.chunk {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE {
                done = true
                break
            }
            guard rc == SQLITE_ROW else { throw KaifangError.runtime("export failed: \(String(cString: sqlite3_errmsg(reader.db)))") }
            let rowID = sqlite3_column_int64(stmt, 0)
            if jsonl { encoder.json(stmt, row: rowID, into: &out); out.append(0x0A) } else { encoder.csv(stmt, row: rowID, into: &out) }
            rows += 1
        }
        hasher.update(bufferPointer: UnsafeRawBufferPointer(out.bytes))
        produced += out.count
        if done {
            summary = (hasher.finalize().hexString, produced, rows)
            onFinish(rows, encoder.maskedCells)
        }
        return out.isEmpty ? nil : out.array
    }
}

/// An export as the response body. `onEnd` runs once after the last chunk was handed over and
/// before the body ends (the server records the export's provenance there, so it is in the
/// audit log before the response completes); not when the client goes away first.
package struct ExportSequence: AsyncSequence, Sendable {
    package typealias Element = ArraySlice<UInt8>
    package typealias Summary = (sha256: String, bytes: Int, rows: Int)
    package let producer: ExportProducer
    let onEnd: @Sendable (Summary) async throws -> Void

    package init(producer: ExportProducer, onEnd: @escaping @Sendable (Summary) async throws -> Void = { _ in }) {
        self.producer = producer
        self.onEnd = onEnd
    }

    package struct AsyncIterator: AsyncIteratorProtocol {
        let producer: ExportProducer
        let onEnd: @Sendable (Summary) async throws -> Void
        var ended = false
        package mutating func next() async throws -> ArraySlice<UInt8>? {
            if let chunk = try producer.next() { return ArraySlice(chunk) }
            if !ended, let summary = producer.summary {
                ended = true
                try await onEnd(summary)
            }
            return nil
        }
    }

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(producer: producer, onEnd: onEnd) }
}
