import Foundation
import PostgresNIO
@testable import PostgresStore
import Storage

/// The PostgreSQL server the tests may use (`KAIFANG_TEST_POSTGRES`, set by
/// scripts/with-postgres.sh), and fresh schemas on it, one per store a test makes.
public enum TestPostgres {
    /// The server's URL, or nil when the tests run without one.
    public static var adminURL: String? { ProcessInfo.processInfo.environment["KAIFANG_TEST_POSTGRES"] }

    /// A store URL on a new, empty schema of the test server.
    /// - Throws: when there is no test server or it refuses.
    public static func freshURL(prefix: String = "t") throws -> StoreURL {
        guard let admin = adminURL else { throw KaifangTestError.noServer }
        var url = try StoreURL(admin)
        let schema = prefix + "_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let client = try PGClient(url: url, maxConnections: 1, logger: .init(label: "test"))
        defer { client.close() }
        try client.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"))
        url.schema = String(schema)
        return url
    }

    /// Runs one statement on `url` and returns its rows as text by column name.
    public static func rows(_ url: StoreURL, _ sql: String) throws -> [[String: String]] {
        let session = try Session(url)
        defer { session.close() }
        return try session.rows(sql)
    }

    /// One connection kept open for many statements (a poll).
    public final class Session: @unchecked Sendable {
        let client: PGClient
        public init(_ url: StoreURL) throws { client = try PGClient(url: url, maxConnections: 1, logger: .init(label: "test")) }
        public func close() { client.close() }

        /// One statement's rows as text by column name.
        public func rows(_ sql: String) throws -> [[String: String]] { try TestPostgres.decode(try client.query(PostgresQuery(unsafeSQL: sql))) }
    }

    static func decode(_ result: [PGRow]) throws -> [[String: String]] {
        result.map { r in
            var out: [String: String] = [:]
            for cell in r.row {
                // By the column's type (text-like columns decode as text, numbers as numbers).
                switch cell.dataType {
                case .int2, .int4, .int8: out[cell.columnName] = (try? cell.decode(Int?.self)).flatMap { $0 }.map(String.init)
                case .bool: out[cell.columnName] = (try? cell.decode(Bool?.self)).flatMap { $0 }.map { $0 ? "true" : "false" }
                case .float8: out[cell.columnName] = (try? cell.decode(Double?.self)).flatMap { $0 }.map { String($0) }
                default: out[cell.columnName] = (try? cell.decode(String?.self)).flatMap { $0 }
                }
            }
            return out
        }
    }
}

public enum KaifangTestError: Error { case noServer }
