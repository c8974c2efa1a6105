import Foundation
import KaifangCore
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// A small pool of PostgreSQL connections used synchronously: a call checks a connection out,
/// runs its queries (futures on the process's shared event loops, NIO's singleton group, which
/// the HTTP server also runs on; waited for by the calling thread, a store thread or one of
/// Swift's concurrency pool, never a loop) and checks it back in. The store's interface is
/// synchronous, like SQLite's, so a round trip blocks its caller as a disk read does.
final class PGClient: @unchecked Sendable {
    let url: StoreURL
    let logger: Logger
    private let group = MultiThreadedEventLoopGroup.singleton
    private let condition = NSCondition()
    private var idle: [PostgresConnection] = []
    private var open = 0
    private var closed = false
    private let maxConnections: Int
    private var nextID = 0

    /// Connects once, so a wrong address or password is reported at start, never at the first
    /// request.
    /// - Throws: `KaifangError.runtime` with a one-line reason (never the password).
    init(url: StoreURL, maxConnections: Int = 16, logger: Logger) throws {
        self.url = url
        self.logger = logger
        self.maxConnections = max(1, maxConnections)
        let first = try connect()
        condition.lock()
        open = 1
        idle.append(first)
        condition.unlock()
    }

    deinit { close() }

    /// Closes every connection.
    func close() {
        condition.lock()
        let all = idle
        idle = []
        let wasClosed = closed
        closed = true
        condition.broadcast()
        condition.unlock()
        guard !wasClosed else { return }
        for c in all { _ = try? c.close().wait() }
    }

    private func connect() throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.user, password: url.password,
                                                             database: url.database, tls: .disable)
        configuration.options.connectTimeout = .seconds(5)
        condition.lock()
        nextID += 1
        let id = nextID
        condition.unlock()
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger).wait()
        } catch {
            throw KaifangError.runtime("cannot connect to the store \(url.redacted): \(Self.reason(error))")
        }
        if let schema = url.schema {
            do {
                _ = try connection.query(PostgresQuery(unsafeSQL: "SET search_path TO \(Self.quote(schema))"), logger: logger).wait()
            } catch {
                _ = try? connection.close().wait()
                throw KaifangError.runtime("cannot use schema \(schema) of the store \(url.redacted): \(Self.reason(error))")
            }
        }
        return connection
    }

    /// Runs `body` with a connection of the pool; a connection that failed is closed, not reused.
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try checkout()
        do {
            let result = try body(connection)
            checkin(connection, broken: false)
            return result
        } catch {
            checkin(connection, broken: connection.isClosed)
            throw error
        }
    }

    /// A connection of the pool for a caller that runs its own queries (and must check it in).
    func checkoutConnection() throws -> PostgresConnection { try checkout() }

    func checkinConnection(_ c: PostgresConnection, broken: Bool) { checkin(c, broken: broken) }

    private func checkout() throws -> PostgresConnection {
        condition.lock()
        while true {
            if closed { condition.unlock(); throw KaifangError.runtime("the store \(url.redacted) is closed") }
            if let c = idle.popLast() {
                condition.unlock()
                if c.isClosed {
                    condition.lock()
                    open -= 1
                    continue
                }
                return c
            }
            if open < maxConnections {
                open += 1
                condition.unlock()
                do {
                    return try connect()
                } catch {
                    condition.lock()
                    open -= 1
                    condition.signal()
                    condition.unlock()
                    throw error
                }
            }
            condition.wait()
        }
    }

    private func checkin(_ c: PostgresConnection, broken: Bool) {
        condition.lock()
        if broken || closed {
            open -= 1
            condition.signal()
            condition.unlock()
            let closing: EventLoopFuture<Void> = c.close()
            closing.whenComplete { _ in }
            return
        }
        idle.append(c)
        condition.signal()
        condition.unlock()
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    func query(_ query: PostgresQuery) throws -> [PGRow] {
        try withConnection { try Self.run($0, query, logger: logger) }
    }

    /// Runs `body` in one transaction (BEGIN … COMMIT; ROLLBACK when it throws).
    func transaction<T>(_ body: (PGTransaction) throws -> T) throws -> T {
        try withConnection { c in
            let tx = PGTransaction(connection: c, logger: logger)
            try tx.execute("BEGIN")
            do {
                let result = try body(tx)
                try tx.execute("COMMIT")
                return result
            } catch {
                _ = try? Self.run(c, "ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    static func run(_ c: PostgresConnection, _ query: PostgresQuery, logger: Logger) throws -> [PGRow] {
        do {
            return try c.query(query, logger: logger).wait().map { PGRow($0.makeRandomAccess()) }
        } catch let e as KaifangError {
            throw e
        } catch {
            throw PGFailure(error)
        }
    }

    /// A quoted identifier.
    static func quote(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// A one-line reason for a failure, from the server's message and code or the connection's
    /// error; never the query or its values.
    static func reason(_ error: any Error) -> String {
        if let f = error as? PGFailure { return f.message }
        if let k = error as? KaifangError { return k.message }
        if let e = error as? PSQLError {
            if let info = e.serverInfo {
                let code = info[.sqlState] ?? "?"
                return "\(info[.message] ?? "the server refused") (SQLSTATE \(code))"
            }
            if let underlying = e.underlying { return Self.brief(underlying) }
            switch e.code {
            case .serverClosedConnection: return "the connection was closed before the server answered (is PostgreSQL listening there, and reachable?)"
            case .connectionError: return "the connection failed"
            default: return e.code.description
            }
        }
        return brief(error)
    }

    private static func brief(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        if let c = error as? NIOConnectionError {
            if let first = c.connectionErrors.first { return brief(first.error) }
            return c.dnsAAAAError.map(brief) ?? c.dnsAError.map(brief) ?? "the address could not be resolved"
        }
        if let ch = error as? ChannelError, case .connectTimeout = ch { return "no answer within the connect timeout" }
        if error is SocketAddressError.UnknownHost { return "the host name does not resolve" }
        if error is ChannelError { return "the connection failed (\(error))" }
        return String(describing: type(of: error))
    }
}

/// A failed statement: its SQLSTATE and the server's one-line message (never the values).
struct PGFailure: Error, CustomStringConvertible {
    let sqlState: String?
    let message: String

    init(_ error: any Error) {
        sqlState = (error as? PSQLError)?.serverInfo?[.sqlState]
        message = PGClient.reason(error)
    }

    var description: String { "store query failed: \(message)" }

    /// A unique or exclusion constraint refused the write.
    var isUniqueViolation: Bool { sqlState == "23505" }
}

/// One transaction's connection.
struct PGTransaction {
    let connection: PostgresConnection
    let logger: Logger

    @discardableResult
    func query(_ q: PostgresQuery) throws -> [PGRow] { try PGClient.run(connection, q, logger: logger) }

    func execute(_ sql: String) throws { _ = try PGClient.run(connection, PostgresQuery(unsafeSQL: sql), logger: logger) }
}

/// A result row with typed getters by column name; a missing or mistyped column is a runtime
/// error naming the column (a schema mismatch), never a crash.
struct PGRow {
    let row: PostgresRandomAccessRow

    init(_ row: PostgresRandomAccessRow) { self.row = row }

    func get<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard row.contains(column) else { throw KaifangError.runtime("the store's result has no column \(column): is its schema current?") }
        do { return try row[column].decode(T.self) } catch {
            throw KaifangError.runtime("the store's column \(column) does not hold a \(T.self)")
        }
    }

    func string(_ c: String) throws -> String { try get(c) }
    func optString(_ c: String) throws -> String? { try get(c, as: String?.self) }
    func int(_ c: String) throws -> Int { try get(c) }
    func optInt(_ c: String) throws -> Int? { try get(c, as: Int?.self) }
    func int64(_ c: String) throws -> Int64 { try get(c) }
    func double(_ c: String) throws -> Double { try get(c) }
    func optDouble(_ c: String) throws -> Double? { try get(c, as: Double?.self) }
    func bool(_ c: String) throws -> Bool { try get(c) }
    func data(_ c: String) throws -> Data { try get(c) }

    /// An integer column of a statement prepared with `prepare(query:)`: the store sends it in
    /// binary (every execution asks for binary results) while the prepared statement's row
    /// description still says text.
    func preparedInt64(_ column: String) throws -> Int64 {
        guard row.contains(column) else { throw KaifangError.runtime("the store's result has no column \(column): is its schema current?") }
        var cell = row[column]
        cell.format = .binary
        do { return try cell.decode(Int64.self) } catch {
            throw KaifangError.runtime("the store's column \(column) does not hold an integer")
        }
    }
}
