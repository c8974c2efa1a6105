import KaifangCore
import Storage

/// Who is calling: anonymous, or the holder of an API key.
public struct Caller: Sendable, Equatable {
    /// The key, when one was presented and is active.
    public var key: APIKeyRecord?
    /// The request id (also in the `X-Request-Id` response header and the logs).
    public var requestID: String
    /// The peer's address (for anonymous rate limits); never logged with data.
    public var remote: String = "-"
    /// The raw query string (the generated handlers only see declared parameters; row filters
    /// are dynamic).
    public var rawQuery: String = ""
    /// `http://host:port` as the client addressed the server (for absolute links).
    public var baseURL: String = "http://127.0.0.1:8080"

    /// The caller's role; nil when anonymous.
    public var role: Role? { key?.role }
    /// Whether the caller is a steward.
    public var isSteward: Bool { key?.role == .steward }

    /// Whether the caller acts for the department that owns a dataset: a steward (for every
    /// department), or a publisher or reviewer of that department. Such callers see the
    /// dataset as its owner does (every version, raw values).
    public func actsFor(_ dataset: DatasetRecord) -> Bool { actsFor(department: dataset.manifest.department) }

    /// Whether the caller acts for `department`: a steward, or its publisher or reviewer.
    public func actsFor(department: String) -> Bool {
        isSteward || (key?.role.isDepartmental == true && key?.department == department)
    }

    /// Whether the caller may import new versions of a dataset: a steward, or a publisher of the
    /// department that owns it.
    public func mayImport(_ dataset: DatasetRecord) -> Bool {
        isSteward || (key?.role == .publisher && key?.department == dataset.manifest.department)
    }
    /// How the audit log names the caller.
    public var actor: String { key.map { "key:\($0.id)" } ?? "anonymous:\(remote)" }

    /// The caller of the current request (set by `AuthMiddleware`).
    @TaskLocal public static var current = Caller(key: nil, requestID: "-")
}
