import Foundation
import GRDB
import GRDBSQLite
import KaifangCore

/// Moves the catalog's write-ahead log into the database file on a thread of its own.
///
/// SQLite checkpoints in the connection that commits, once the log passes 1 000 pages: under a
/// read load the audit group commit of some request would then wait for the checkpoint's page
/// writes and fsyncs (milliseconds, several times a second), and so would every request waiting
/// on that commit. The server turns that off (`wal_autocheckpoint = 0` on the writer) and runs
/// passive checkpoints here instead, from a second connection: a passive checkpoint never blocks
/// the writer, and the log stays as short as the period allows. Short-lived CLI processes keep
/// SQLite's automatic checkpoints.
public final class Checkpointer: @unchecked Sendable {
    private let catalog: CatalogDatabase
    private let period: Double
    /// Log length (frames) past which a checkpoint also starts the log over.
    private let restartFrames: Int32
    private let stopped = NSCondition()
    private var stopping = false
    private var thread: Thread?
    private var counts = (runs: 0, frames: 0)
    /// Checkpoints run, and the sum of the log frames each found moved into the database.
    public var progress: (runs: Int, frames: Int) { stopped.withLock { counts } }

    public init(catalog: CatalogDatabase, periodSeconds: Double = 0.5, restartFrames: Int32 = 4096) {
        self.catalog = catalog
        self.period = periodSeconds
        self.restartFrames = restartFrames
    }

    /// Turns off the writer's automatic checkpoints and starts the thread.
    /// - Throws: when the catalog cannot be opened a second time.
    public func start() throws {
        var db: OpaquePointer?
        guard sqlite3_open_v2(catalog.directory.catalogPath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db else {
            sqlite3_close(db)
            throw KaifangError.runtime("cannot open the catalog \(catalog.directory.catalogPath) for checkpoints")
        }
        // A connection learns that the file is in WAL mode at its first read; until then a
        // checkpoint is a no-op.
        guard sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", nil, nil, nil) == SQLITE_OK else {
            sqlite3_close(db)
            throw KaifangError.runtime("cannot read the catalog \(catalog.directory.catalogPath) for checkpoints")
        }
        sqlite3_busy_timeout(db, 100)
        try catalog.setAutomaticCheckpoints(false)
        nonisolated(unsafe) let connection = db   // used by the thread alone from here on
        let t = Thread { [self] in
            // Named from inside: on Linux a name given before start is not applied, and the
            // kernel keeps 15 bytes of it (`top -H`, `/proc/PID/task/*/comm`).
            Thread.current.name = "kaifang-ckpt"
            loop(connection)
            sqlite3_wal_checkpoint_v2(connection, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            sqlite3_close(connection)
        }
        thread = t
        t.start()
    }

    /// Stops the thread after a last checkpoint and gives the writer its automatic checkpoints back.
    public func stop() {
        stopped.lock()
        stopping = true
        stopped.broadcast()
        stopped.unlock()
        try? catalog.setAutomaticCheckpoints(true)
    }

    private func loop(_ db: OpaquePointer) {
        while true {
            stopped.lock()
            if !stopping { stopped.wait(until: Date(timeIntervalSinceNow: period)) }
            let done = stopping
            stopped.unlock()
            if done { return }
            var log: Int32 = 0
            var moved: Int32 = 0
            var rc = sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &moved)
            if rc == SQLITE_OK && log > restartFrames && moved == log {
                // Everything is in the database file, but under a steady stream of commits the
                // writer never finds the log fully checkpointed when it begins, so it never
                // starts the log over. A RESTART checkpoint waits (briefly: little is left to
                // copy) until it can, and the next commit writes from the log's start.
                rc = sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_RESTART, &log, &moved)
            }
            if rc == SQLITE_OK && moved >= 0 {
                stopped.withLock { counts.runs += 1; counts.frames += Int(moved) }
            }
        }
    }
}

extension CatalogDatabase {
    /// Turns SQLite's automatic checkpoints in the writer connection on (1 000 pages) or off.
    func setAutomaticCheckpoints(_ on: Bool) throws {
        try writer.barrierWriteWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(on ? 1000 : 0)")
        }
    }
}
