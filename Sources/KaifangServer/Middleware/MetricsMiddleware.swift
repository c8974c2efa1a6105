import Hummingbird
import Prometheus

/// Counts requests by route and status and records their latency. Labels are route templates,
/// never paths with ids or values.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let route = context.endpointPath ?? "unmatched"
        metrics.record(route: route, method: request.method.rawValue, status: Int(response.status.code), duration: ContinuousClock.now - start)
        return response
    }
}

/// The server's metrics, in one registry owned by the application (no global state).
public final class ServerMetrics: Sendable {
    /// The registry `GET /metrics` emits.
    public let registry = PrometheusCollectorRegistry()

    public init() {}

    static var requests: MetricNameDescriptor { MetricNameDescriptor(namespace: "kaifang", metricName: "http_requests", unitName: "total", helpText: "HTTP requests by route template, method and status.") }
    static var latency: MetricNameDescriptor { MetricNameDescriptor(namespace: "kaifang", metricName: "http_request_duration", unitName: "seconds", helpText: "HTTP request latency by route template.") }
    static var rows: MetricNameDescriptor { MetricNameDescriptor(namespace: "kaifang", metricName: "rows_served", unitName: "total", helpText: "Rows served through rows and export.") }
    static var masked: MetricNameDescriptor { MetricNameDescriptor(namespace: "kaifang", metricName: "masked_cells", unitName: "total", helpText: "Cells masked, generalized, pseudonymized or suppressed before serving.") }

    func record(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: Self.latency, labels: [("route", route)],
                                       buckets: [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20),
                                                 .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)]).record(duration)
    }

    /// Counts rows and masked cells served.
    public func served(rows: Int, maskedCells: Int) {
        registry.makeCounter(descriptor: Self.rows).increment(by: Int64(rows))
        registry.makeCounter(descriptor: Self.masked).increment(by: Int64(maskedCells))
    }
}
