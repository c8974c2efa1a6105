// libFuzzer target: the page reader (`TableFile`, `TableCursor`) over corrupted and truncated
// version files. Each input is written to a file of its own; SQLite reads its schema (as the
// server does before it hands a file to the reader), then the cursor seeks and walks every row
// and value it can. A thrown "damaged" error is fine; a crash, a hang or a sanitizer report is a bug.
import Foundation
import GRDBSQLite

nonisolated(unsafe) var fuzzRun = 0
let fuzzFolder = NSTemporaryDirectory() + "kaifang-fuzz-pages-\(getpid())"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPageReader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzRun += 1
    try? FileManager.default.createDirectory(atPath: fuzzFolder, withIntermediateDirectories: true)
    // A new path each run: the reader's page cache is keyed by path.
    let path = "\(fuzzFolder)/\(fuzzRun % 2 == 0 ? "a" : "b")-\(fuzzRun).sqlite"
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size)) else { return 0 }
    defer { unlink(path) }
    var db: OpaquePointer?
    defer { sqlite3_close(db) }
    guard sqlite3_open_v2("file:\(path)?mode=ro&immutable=1", &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nil) == SQLITE_OK,
          let table = TableFile(path: path, db: db) else { return 0 }
    var cursor = TableCursor(table)
    do {
        var found = try cursor.seek(Int64.min)
        var steps = 0
        while found && steps < 20_000 {
            try cursor.load()
            for c in 0..<table.columns.count { _ = cursor.value(c) }
            found = try cursor.next()
            steps += 1
        }
        for target in [Int64(0), 1, 7, 100, 5_000, Int64.max, Int64.min + 1] { _ = try cursor.seek(target) }
    } catch {}
    return 0
}
