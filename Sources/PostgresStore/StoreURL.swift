import Foundation
import KaifangCore
import PostgresNIO

/// Where a PostgreSQL store is: `postgres://user:password@host:port/database[?sslmode=disable]`,
/// parsed into the connection settings PostgresNIO takes.
public struct StoreURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    /// The schema that holds Kaifang's tables (`?schema=NAME`; default: the database's own).
    public var schema: String?

    /// Parses a store URL.
    /// - Throws: `KaifangError.badInput` naming what is missing or malformed (never the password).
    public init(_ text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw KaifangError.badInput("the store must be a postgres://user:password@host:port/database URL (the embedded store needs no --store)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw KaifangError.badInput("the store URL names no host: postgres://user@HOST:5432/database")
        }
        guard let user = components.user, !user.isEmpty else {
            throw KaifangError.badInput("the store URL names no user: postgres://USER@\(host)/database")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty else {
            throw KaifangError.badInput("the store URL names no database: postgres://\(user)@\(host)/DATABASE")
        }
        if let mode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value, mode != "disable" {
            throw KaifangError.badInput("sslmode=\(mode) is not supported: Kaifang talks to PostgreSQL over a trusted network (sslmode=disable), or through a local TLS tunnel")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.user = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database.removingPercentEncoding ?? database
        if let schema = components.queryItems?.first(where: { $0.name == "schema" })?.value {
            guard !schema.isEmpty, schema.count <= 63, schema.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw KaifangError.badInput("schema=\(schema) is not a schema name: use 1–63 ASCII letters, digits or '_'")
            }
            self.schema = schema
        }
        if let unknown = components.queryItems?.first(where: { !["sslmode", "schema"].contains($0.name) }) {
            throw KaifangError.badInput("the store URL's parameter '\(unknown.name)' is not known: only schema and sslmode=disable are")
        }
    }

    /// The whole URL, password included, for handing to another process (never for a log).
    public var unredacted: String {
        var c = URLComponents()
        c.scheme = "postgres"
        c.user = user
        c.password = password
        c.host = host
        c.port = port
        c.path = "/" + database
        if let schema { c.queryItems = [URLQueryItem(name: "schema", value: schema)] }
        return c.string ?? redacted
    }

    /// The URL without its password, for logs and messages.
    public var redacted: String { "postgres://\(user)@\(host):\(port)/\(database)" + (schema.map { "?schema=\($0)" } ?? "") }
}
