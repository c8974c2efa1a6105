import HTTPTypes
import OpenAPIRuntime

/// Registers the generated handlers on a transport except for the operations Kaifang serves
/// with a hand-written byte-level route (rows: a page of masked rows is written straight from
/// SQLite to JSON bytes, which the generated JSON path would decode into typed values and
/// re-encode). The skipped operations stay in the contract; tests hold the fast route to it.
struct SelectiveTransport: ServerTransport {
    let base: any ServerTransport
    /// `METHOD path` of the operations not to register, as the spec writes them.
    let skip: Set<String>

    func register(_ handler: @Sendable @escaping (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
                  method: HTTPRequest.Method, path: String) throws {
        if skip.contains("\(method.rawValue) \(path)") { return }
        try base.register(handler, method: method, path: path)
    }
}
