import Hummingbird
import KaifangCore
import Storage

/// Reads `Authorization: Bearer <key>` and sets `Caller.current`. A header with an unknown,
/// malformed or revoked key gets 401 at once, a key of a suspended account 403; no header means
/// anonymous.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let catalog: any CatalogStore

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // A shared store reads its change mark once per request (revocations count from the next).
        guard catalog.isShared else { return try await authenticate(request, context: context, next: next) }
        return try await CatalogReadScope.$current.withValue(CatalogReadScope()) {
            try await catalog.prepareRequest(deferred: Self.isRecordedRead(request.uri.path))
            return try await authenticate(request, context: context, next: next)
        }
    }

    /// Reads whose audit event is committed before they are answered (rows, exports): they are
    /// checked against that commit's change mark, so they need not read it first.
    static func isRecordedRead(_ path: String) -> Bool {
        path.hasPrefix("/v1/datasets/") && (path.hasSuffix("/rows") || path.hasSuffix("/export"))
    }

    /// The answer to a key of a suspended account.
    static func suspended(_ reason: String) -> Problem {
        Problem(status: .forbidden, detail: "the account this key belongs to is suspended (\(reason)): its keys are refused until a data steward reinstates it")
    }

    func authenticate(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            return try await next(request, context)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw Problem(status: .unauthorized, detail: "the Authorization header must be 'Bearer <key>'; a steward creates keys with `kaifang key create`")
        }
        guard let key = try catalog.authenticate(String(parts[1]).trimmingCharacters(in: .whitespaces)) else {
            throw Problem(status: .unauthorized, detail: "the API key is unknown or revoked: ask a steward for a new key, or call without Authorization to read open data anonymously")
        }
        if let reason = key.suspension { throw Self.suspended(reason) }
        var caller = Caller.current
        caller.key = key
        return try await Caller.$current.withValue(caller) {
            try await next(request, context)
        }
    }
}
