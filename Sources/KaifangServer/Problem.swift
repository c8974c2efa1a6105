import Foundation
import HTTPTypes
import Hummingbird
import KaifangCore

/// An RFC 9457 problem: the one error shape of every 4xx and 5xx response.
public struct Problem: Error, Codable, Sendable, Equatable {
    public var type: String
    public var title: String
    public var status: Int
    public var detail: String?
    public var instance: String?
    /// Seconds for a `Retry-After` header (429), not part of the body.
    public var retryAfter: Int?

    enum CodingKeys: String, CodingKey { case type, title, status, detail, instance }

    /// Makes a problem for a status with a detail that says what to do.
    public init(status: HTTPResponse.Status, detail: String?, instance: String? = nil, retryAfter: Int? = nil) {
        self.retryAfter = retryAfter
        self.status = Int(status.code)
        self.title = status.reasonPhrase
        self.type = "https://kaifang.example/problems/\(Self.slug(status))"
        self.detail = detail
        self.instance = instance
    }

    static func slug(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "bad-request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not-found"
        case 405: "method-not-allowed"
        case 409: "conflict"
        case 413: "too-large"
        case 415: "unsupported-media-type"
        case 422: "unprocessable"
        case 429: "rate-limited"
        case 503: "unavailable"
        default: status.code >= 500 ? "server-error" : "client-error"
        }
    }

    /// The HTTP status of a Kaifang error kind.
    public static func status(of kind: ErrorKind) -> HTTPResponse.Status {
        switch kind {
        case .badInput: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .forbidden: .forbidden
        case .unauthorized: .unauthorized
        case .runtime: .internalServerError
        }
    }

    /// The problem for a Kaifang error (runtime errors keep their detail out of the body).
    public init(_ error: KaifangError, instance: String?) {
        let status = Self.status(of: error.kind)
        self.init(status: status, detail: error.kind == .runtime ? "the server failed; the request id in X-Request-Id finds it in the logs" : error.message, instance: instance)
    }

    /// The problem as a response with `application/problem+json`.
    public func response(headers extra: HTTPFields = [:]) -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? enc.encode(self)) ?? Data("{\"status\":\(status)}".utf8)
        var headers = extra
        headers[.contentType] = "application/problem+json; charset=utf-8"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
