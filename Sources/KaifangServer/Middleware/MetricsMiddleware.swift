import Synchronization
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

    private let rowsCounter: Counter
    private let maskedCounter: Counter
    /// Counters and histograms by their labels, made once (the registry's lookup per request
    /// costs a lock, label arrays and a dictionary probe).
    private let byLabels = Mutex<(counters: [String: Counter], histograms: [String: DurationHistogram])>(([:], [:]))

    public init() {
        rowsCounter = registry.makeCounter(descriptor: Self.rows)
        maskedCounter = registry.makeCounter(descriptor: Self.masked)
    }

    static var requests: MetricNameDescriptor { MetricNameDescriptor(namespace: "kaifang", metricName: "http_requests", unitName: "total", helpText: "HTTP requests by route template, method and status.") }
    static var latency: MetricNameDescriptor { MetricNameDescriptor(namespace: "kaifang", metricName: "http_request_duration", unitName: "seconds", helpText: "HTTP request latency by route template.") }
    static var rows: MetricNameDescriptor { MetricNameDescriptor(namespace: "kaifang", metricName: "rows_served", unitName: "total", helpText: "Rows served through rows and export.") }
    static var masked: MetricNameDescriptor { MetricNameDescriptor(namespace: "kaifang", metricName: "masked_cells", unitName: "total", helpText: "Cells masked, generalized, pseudonymized or suppressed before serving.") }

    func record(route: String, method: String, status: Int, duration: Duration) {
        let key = "\(route) \(method) \(status)"
        let (counter, histogram) = byLabels.withLock { cache -> (Counter, DurationHistogram) in
            let c = cache.counters[key] ?? registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(status))])
            cache.counters[key] = c
            let h = cache.histograms[route] ?? registry.makeDurationHistogram(
                descriptor: Self.latency, labels: [("route", route)],
                buckets: [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20),
                          .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5)])
            cache.histograms[route] = h
            return (c, h)
        }
        counter.increment()
        histogram.record(duration)
    }

    /// Counts rows and masked cells served.
    public func served(rows: Int, maskedCells: Int) {
        rowsCounter.increment(by: Int64(rows))
        maskedCounter.increment(by: Int64(maskedCells))
    }
}
