import Foundation
import HTTPTypes
import Hummingbird
import KaifangCore
import Logging
import OpenAPIRuntime
import Synchronization

/// Request ids in the UUID v4 format, unique without a system call each: a counter mixed with
/// two keys drawn once per process (`UUID()` asks the kernel for 16 random bytes every time,
/// about 3 % of a page request). Ids are for finding a request in the log, not secrets.
enum RequestID {
    private static let keys = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
    private static let counter = Atomic<UInt64>(0)

    /// SplitMix64's finalizer: a bijection, so distinct counters give distinct halves.
    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func next() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        let high = mix(n ^ keys.0), low = mix(n ^ keys.1)
        // Version 4 in the third group, variant 10 in the fourth: xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx.
        let a = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000
        let b = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 36) { out in
            var at = 0
            for k in 0..<32 {
                if at == 8 || at == 13 || at == 18 || at == 23 { out[at] = 0x2D; at += 1 }
                let word = k < 16 ? a : b
                out[at] = digits.utf8Start[Int((word >> UInt64(60 - 4 * (k & 15))) & 15)]
                at += 1
            }
            return at
        }
    }
}

/// Turns every error into one `application/problem+json` shape, gives each request an id
/// (`X-Request-Id`), and logs one structured line per request without any data value.
struct ProblemMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = request.headers[.init("X-Request-Id")!].flatMap { $0.count <= 64 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } ? $0 : nil }
            ?? RequestID.next()
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
