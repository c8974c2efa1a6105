import Audit
import Foundation
import KaifangAPI
import KaifangCore
import OpenAPIRuntime
import Publishing
import Storage

extension APIHandler {
    func getScorecards(_ input: Operations.GetScorecards.Input) async throws -> Operations.GetScorecards.Output {
        try limiter.admit(Caller.current)
        let (at, month, cards) = try await scorecards.current(catalog)
        return .ok(.init(body: .json(.init(asOf: at, month: month, departments: cards.map(Self.scorecard)))))
    }

    func getScorecardHistory(_ input: Operations.GetScorecardHistory.Input) async throws -> Operations.GetScorecardHistory.Output {
        try limiter.admit(Caller.current)
        let q = input.query
        for (name, value) in [("from", q.from), ("to", q.to)] {
            guard let value else { continue }
            do { _ = try ScorecardMonth.bounds(value) } catch let e as KaifangError {
                return .badRequest(.init(body: .applicationProblemJson(Self.problem(Problem(status: .badRequest, detail: "\(name): \(e.message)", instance: "/v1/scorecards/history")))))
            }
        }
        let catalog = self.catalog
        let kept = try await StoreThreads.run { try ScorecardSnapshots.history(catalog: catalog) }.filter { m in
            (q.department == nil || m.card.department == q.department) && (q.from.map { m.month >= $0 } ?? true) && (q.to.map { m.month <= $0 } ?? true)
        }
        if q.format == .csv {
            return .ok(.init(body: .csv(HTTPBody(ScorecardSnapshots.csv(kept)))))
        }
        var months: [Components.Schemas.ScorecardMonth] = []
        for m in kept {
            let card = Self.scorecard(m.card)
            if months.last?.month == m.month { months[months.count - 1].departments.append(card); continue }
            months.append(.init(month: m.month, takenAt: AuditChain.date(m.takenAt) ?? Date(timeIntervalSince1970: 0), departments: [card]))
        }
        return .ok(.init(body: .json(.init(months: months))))
    }

    static func scorecard(_ c: Scorecard) -> Components.Schemas.Scorecard {
        .init(department: c.department, datasets: c.datasets, shouldOpen: c.shouldOpen, items: c.items, itemsOpened: c.itemsOpened,
              openRate: c.openRate, published: c.published, timely: c.timely, timelinessRate: c.timelinessRate,
              applicationsDecided: c.applicationsDecided, applicationsApproved: c.applicationsApproved, sharingRate: c.sharingRate,
              applicationsPending: c.applicationsPending, completeness: c.completeness, metadataScore: c.metadataScore)
    }
}

extension APIHandler {
    func listDepartments(_ input: Operations.ListDepartments.Input) async throws -> Operations.ListDepartments.Output {
        try limiter.admit(Caller.current)
        let catalog = self.catalog
        let (departments, published) = try await StoreThreads.run {
            (try catalog.departments(), try catalog.search(DatasetQuery(limit: 1)).departments)
        }
        let counts = Dictionary(published.map { ($0.value, $0.count) }, uniquingKeysWith: +)
        return .ok(.init(body: .json(.init(departments: departments.map {
            .init(name: $0.name, parent: $0.parent, datasets: counts[$0.name] ?? 0)
        }))))
    }
}

extension APIHandler {
    func listDuties(_ input: Operations.ListDuties.Input) async throws -> Operations.ListDuties.Output {
        try limiter.admit(Caller.current)
        let q = input.query
        let at = q.at ?? String(AuditChain.timestamp().prefix(10))
        do { try CatalogRules.calendarDay(at, what: "at") } catch let e as KaifangError {
            throw Problem(status: .badRequest, detail: e.message)
        }
        let catalog = self.catalog
        let all = try await StoreThreads.run { try catalog.duties(department: q.department) }
        var shown: [Components.Schemas.Duty] = []
        for d in all {
            let state = d.state(today: at)
            if let wanted = q.state, wanted.rawValue != state.rawValue { continue }
            let fulfilled = d.fulfilledAt.flatMap { String($0.prefix(10)) <= at ? Self.date($0) : nil }
            shown.append(.init(id: Int(d.id), department: d.department, dataset: d.dataset, kind: d.kind == .open ? .open : .share, title: d.title,
                               due: d.due, state: .init(rawValue: state.rawValue) ?? .due, fulfilledAt: fulfilled, withdrawnReason: d.withdrawnReason))
        }
        return .ok(.init(body: .json(.init(at: at, duties: shown))))
    }
}
