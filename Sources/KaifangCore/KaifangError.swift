/// What kind of failure an error is; the CLI and the API map it to an exit code or a status.
public enum ErrorKind: String, Sendable {
    /// The caller's input is wrong (a file, a flag, a query): CLI exit 2, HTTP 400.
    case badInput
    /// A named thing does not exist: CLI exit 2, HTTP 404.
    case notFound
    /// The request conflicts with the current state: CLI exit 2, HTTP 409.
    case conflict
    /// The caller may not do this: CLI exit 2, HTTP 403.
    case forbidden
    /// The caller is not authenticated: CLI exit 2, HTTP 401.
    case unauthorized
    /// Something failed at run time (disk, database): CLI exit 1, HTTP 500.
    case runtime
}

/// An error every Kaifang module throws: a kind, a message that says what went wrong and what
/// to do, and the underlying cause. Messages never contain a sensitive data value.
public struct KaifangError: Error, CustomStringConvertible, Sendable {
    /// The kind, which decides exit code and HTTP status.
    public var kind: ErrorKind
    /// A human message: what went wrong and how to fix it.
    public var message: String
    /// The underlying error's description, if any (never a data value).
    public var cause: String?

    /// Makes an error.
    public init(_ kind: ErrorKind, _ message: String, cause: (any Error)? = nil) {
        self.kind = kind
        self.message = message
        self.cause = cause.map { String(describing: $0) }
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }

    /// Bad input.
    public static func badInput(_ message: String) -> KaifangError { .init(.badInput, message) }
    /// Not found.
    public static func notFound(_ message: String) -> KaifangError { .init(.notFound, message) }
    /// Conflict.
    public static func conflict(_ message: String) -> KaifangError { .init(.conflict, message) }
    /// Forbidden.
    public static func forbidden(_ message: String) -> KaifangError { .init(.forbidden, message) }
    /// Runtime failure.
    public static func runtime(_ message: String, cause: (any Error)? = nil) -> KaifangError {
        .init(.runtime, message, cause: cause)
    }
}
