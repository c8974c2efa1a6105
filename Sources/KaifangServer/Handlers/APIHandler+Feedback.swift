import Audit
import Foundation
import KaifangAPI
import KaifangCore
import Masking
import OpenAPIRuntime
import Storage

/// Error reports (纠错) and ratings (好差评) of published datasets: anyone with a key files or
/// rates; the dataset's department closes reports with a resolution; both are public, their
/// texts masked as the data request board masks them.
extension APIHandler {
    static func report(_ r: ErrorReportRecord, for caller: Caller, today: String) -> Components.Schemas.ErrorReport {
        var shown = ShownText(plain: caller.actsFor(department: r.department) || caller.key?.id == r.filedBy)
        let text = shown(r.text), row = shown(r.row), answer = shown(r.answer)
        let masked = shown.masked
        return .init(id: r.id, dataset: r.dataset, department: r.department, field: r.field, version: r.version, row: row, text: text,
                     status: .init(rawValue: r.status.rawValue) ?? .open, filedAt: date(r.filedAt) ?? Date(timeIntervalSince1970: 0), due: r.due,
                     overdue: r.isOverdue(today: today), resolution: r.resolution.flatMap { .init(rawValue: $0.rawValue) }, fixedVersion: r.fixedVersion,
                     answer: answer, closedAt: date(r.closedAt), closedOnTime: r.closedOnTime, masked: masked)
    }

    /// The dataset, when the caller may see it (published, or the caller's department's).
    func visibleDataset(_ id: String) async throws -> DatasetRecord {
        let catalog = self.catalog
        guard let d = try await StoreThreads.run({ try catalog.dataset(id) }), d.isPublished || Caller.current.actsFor(d) else {
            throw Problem(status: .notFound, detail: "no published dataset '\(id)': GET /v1/datasets lists them")
        }
        return d
    }

    func listDatasetReports(_ input: Operations.ListDatasetReports.Input) async throws -> Operations.ListDatasetReports.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let d = try await visibleDataset(input.path.id)
        let catalog = self.catalog
        let all = try await StoreThreads.run { try catalog.errorReports(dataset: d.id, department: nil) }
        let today = Self.today
        return .ok(.init(body: .json(.init(at: today, reports: all.map { Self.report($0, for: caller, today: today) }))))
    }

    func createReport(_ input: Operations.CreateReport.Input) async throws -> Operations.CreateReport.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let b) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let d = try await visibleDataset(input.path.id)
        let due = CatalogRules.workingDaysAfter(Self.today, configuration.reportWorkingDays)
        let new = NewErrorReport(dataset: d.id, field: b.field, version: b.version, row: b.row, text: b.text, due: due, filerKey: key.id)
        let catalog = self.catalog
        let r = try await Self.badField { try await StoreThreads.run { try catalog.createReport(new, actor: caller.actor) } }
        return .created(.init(body: .json(Self.report(r, for: caller, today: Self.today))))
    }

    func listReports(_ input: Operations.ListReports.Input) async throws -> Operations.ListReports.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let q = input.query, catalog = self.catalog
        let all = try await StoreThreads.run { try catalog.errorReports(dataset: nil, department: q.department) }
            .filter { q.status == nil || $0.status.rawValue == q.status?.rawValue }
        let today = Self.today
        return .ok(.init(body: .json(.init(at: today, reports: all.map { Self.report($0, for: caller, today: today) }))))
    }

    func requireReport(_ id: Int64) async throws -> ErrorReportRecord {
        let catalog = self.catalog
        guard let r = try await StoreThreads.run({ try catalog.errorReport(id) }) else {
            throw Problem(status: .notFound, detail: "no error report \(id): GET /v1/reports lists them")
        }
        return r
    }

    func getReport(_ input: Operations.GetReport.Input) async throws -> Operations.GetReport.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let r = try await requireReport(input.path.reportId)
        return .ok(.init(body: .json(Self.report(r, for: caller, today: Self.today))))
    }

    func resolveReport(_ input: Operations.ResolveReport.Input) async throws -> Operations.ResolveReport.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let b) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let r = try await requireReport(input.path.reportId)
        guard caller.actsFor(department: r.department) else {
            throw Problem(status: .forbidden, detail: "report \(r.id) is on a dataset of \(r.department): its publishers and reviewers (or a steward) close it")
        }
        let resolution = ReportResolution(rawValue: b.resolution.rawValue) ?? .wontFix
        let catalog = self.catalog
        let done = try await Self.badField {
            try await StoreThreads.run { try catalog.closeReport(r.id, .resolve(resolution, answer: b.text, fixedVersion: b.version), keyID: key.id, actor: caller.actor) }
        }
        return .ok(.init(body: .json(Self.report(done, for: caller, today: Self.today))))
    }

    func withdrawReport(_ input: Operations.WithdrawReport.Input) async throws -> Operations.WithdrawReport.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        let r = try await requireReport(input.path.reportId)
        let catalog = self.catalog
        let done = try await StoreThreads.run { try catalog.closeReport(r.id, .withdraw, keyID: key.id, actor: caller.actor) }
        return .ok(.init(body: .json(Self.report(done, for: caller, today: Self.today))))
    }

    static func rating(_ r: RatingRecord, plain: Bool) -> Components.Schemas.Rating {
        .init(dataset: r.dataset, stars: r.stars, comment: r.comment.map { plain ? $0 : FreeText.mask($0).text }, updatedAt: date(r.updatedAt) ?? Date(timeIntervalSince1970: 0))
    }

    func getRatings(_ input: Operations.GetRatings.Input) async throws -> Operations.GetRatings.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let d = try await visibleDataset(input.path.id)
        let catalog = self.catalog
        let all = try await StoreThreads.run { try catalog.ratings(dataset: d.id) }
        var histogram = [0, 0, 0, 0, 0]
        for r in all { histogram[r.stars - 1] += 1 }
        let mean = all.isEmpty ? nil : Double(all.map(\.stars).reduce(0, +)) / Double(all.count)
        let plain = caller.actsFor(d)
        return .ok(.init(body: .json(.init(dataset: d.id, count: all.count, mean: mean, histogram: histogram,
                                           ratings: all.map { Self.rating($0, plain: plain || caller.key?.id == $0.keyID) }))))
    }

    func putRating(_ input: Operations.PutRating.Input) async throws -> Operations.PutRating.Output {
        let caller = Caller.current
        try limiter.admit(caller)
        let key = try Self.requireKey(caller)
        guard case .json(let b) = input.body else { throw Problem(status: .unsupportedMediaType, detail: "send application/json") }
        let d = try await visibleDataset(input.path.id)
        let catalog = self.catalog
        let (r, created) = try await Self.badField {
            try await StoreThreads.run { try catalog.rate(dataset: d.id, keyID: key.id, stars: b.stars, comment: b.comment, actor: caller.actor) }
        }
        let body = Self.rating(r, plain: true)
        return created ? .created(.init(body: .json(body))) : .ok(.init(body: .json(body)))
    }

    static func feedback(_ f: FeedbackFigures) -> Components.Schemas.FeedbackFigures {
        .init(department: f.department, reports: f.reports, closed: f.closed, closedOnTime: f.closedOnTime, overdue: f.overdue,
              onTimeRate: f.onTimeRate, ratings: f.ratings, meanStars: f.meanStars)
    }
}
