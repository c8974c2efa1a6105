import Foundation
import HTTPTypes
import Hummingbird
import KaifangCore
import Logging
import OpenAPIRuntime

/// Turns every error into one `application/problem+json` shape, gives each request an id
/// (`X-Request-Id`), and logs one structured line per request without any data value.
struct ProblemMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = request.headers[.init("X-Request-Id")!].flatMap { $0.count <= 64 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } ? $0 : nil }
            ?? UUID().uuidString.lowercased()
        let start = ContinuousClock.now
        var response: Response
        do {
            var caller = Caller(key: nil, requestID: requestID, remote: context.remoteAddress?.ipAddress ?? "-", rawQuery: request.uri.query ?? "")
            if let host = request.head.authority, Self.isHost(host) {
                caller.baseURL = "http://\(host)"
            }
            response = try await Caller.$current.withValue(caller) {
                try await next(request, context)
            }
        } catch {
            response = Self.problem(for: error, path: request.uri.path, logger: logger, requestID: requestID).response()
        }
        if response.status.code == 404, response.headers[.contentType]?.hasPrefix("application/problem+json") != true,
           response.headers[.contentType] == nil {
            response = Problem(status: .notFound, detail: "no such route: the API is described at /v1/openapi.yaml", instance: request.uri.path).response()
        }
        response.headers[.init("X-Request-Id")!] = requestID
        let elapsed = ContinuousClock.now - start
        logger.info("request", metadata: [
            "request.id": .string(requestID),
            "http.method": .string(request.method.rawValue),
            "http.route": .string(context.endpointPath ?? "unmatched"),
            "http.status": .stringConvertible(response.status.code),
            "duration.ms": .stringConvertible(Double(elapsed.components.attoseconds / 1_000_000_000_000) / 1000 + Double(elapsed.components.seconds) * 1000),
        ])
        return response
    }

    static func problem(for error: any Error, path: String, logger: Logger, requestID: String) -> Problem {
        switch error {
        case let p as Problem:
            var p = p
            if p.instance == nil { p.instance = path }
            return p
        case let e as KaifangError:
            if e.kind == .runtime {
                logger.error("request failed", metadata: ["request.id": .string(requestID), "error": .string(e.description)])
            }
            return Problem(e, instance: path)
        case let e as ServerError:
            if let inner = e.underlyingError as? Problem ?? (e.underlyingError as? KaifangError).map({ Problem($0, instance: path) }) {
                return problem(for: inner, path: path, logger: logger, requestID: requestID)
            }
            if e.httpStatus.code >= 500 {
                logger.error("handler failed", metadata: ["request.id": .string(requestID), "operation": .string(e.operationID), "error": .string(String(describing: type(of: e.underlyingError)))])
                return Problem(status: .internalServerError, detail: "the server failed; the request id in X-Request-Id finds it in the logs", instance: path)
            }
            return Problem(status: e.httpStatus, detail: "the request does not match the API contract of '\(e.operationID)'\(parameterHint(e.causeDescription)): check the parameters' types and allowed values in /v1/openapi.yaml", instance: path)
        case let e as HTTPError:
            return Problem(status: e.status, detail: e.body ?? defaultDetail(e.status), instance: path)
        default:
            logger.error("request failed", metadata: ["request.id": .string(requestID), "error.type": .string(String(describing: type(of: error)))])
            return Problem(status: .internalServerError, detail: "the server failed; the request id in X-Request-Id finds it in the logs", instance: path)
        }
    }

    /// A Host header safe to echo into links: letters, digits, `.`, `:`, `-`, brackets.
    static func isHost(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 255 else { return false }
        for b in host.utf8 {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x3A || b == 0x2D || b == 0x5B || b == 0x5D
            if !ok { return false }
        }
        return true
    }

    /// Names the parameter an OpenAPI decoding error is about, without echoing its value.
    static func parameterHint(_ cause: String) -> String {
        for marker in ["named: ", "parameter named ", "for parameter "] {
            if let r = cause.range(of: marker) {
                let name = cause[r.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                if !name.isEmpty { return " (parameter '\(name)')" }
            }
        }
        return ""
    }

    static func defaultDetail(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "no such route: the API is described at /v1/openapi.yaml"
        case 405: "this route does not accept that method"
        case 413: "the request body is too large"
        default: status.reasonPhrase
        }
    }
}
