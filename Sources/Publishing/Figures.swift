import Foundation
import Storage

/// The figures the province judges the platform and each department by, at the moment: the open
/// rate by data items, 按需共享率 and requests answered on time, error reports closed on time and
/// ratings, showcases approved. `GET /v1/stats`, `kaifang stats` and the portal read them here.
/// Each list has the platform's figures (`department` "") first, then each department's by name.
public struct Figures: Sendable {
    public var openItems: [OpenItemFigures]
    public var demand: [DemandFigures]
    public var feedback: [FeedbackFigures]
    public var showcases: [ShowcaseFigures]

    /// Reads them from `catalog`, judging due dates on `today` (`YYYY-MM-DD`).
    public static func of(catalog: any CatalogStore, today: String) throws -> Figures {
        let ratings = try catalog.ratings(dataset: nil)
        let showcases = try catalog.showcases(status: nil)
        var owners: [String: String] = [:]
        for id in Set(ratings.map(\.dataset)).union(showcases.flatMap(\.datasets)) { owners[id] = try catalog.dataset(id)?.manifest.department }
        return Figures(
            openItems: try OpenItemFigures.current(catalog: catalog),
            demand: DemandFigures.of(try catalog.dataRequests(department: nil, status: nil), today: today),
            feedback: FeedbackFigures.of(try catalog.errorReports(dataset: nil, department: nil), ratings: ratings, departmentOf: { owners[$0] }, today: today),
            showcases: ShowcaseFigures.of(showcases, departmentOf: { owners[$0] }))
    }

    /// One department's row of each list (empty figures where it has none), for its page.
    public func of(department: String) -> (openItems: OpenItemFigures, demand: DemandFigures, feedback: FeedbackFigures, showcases: ShowcaseFigures) {
        (openItems.first { $0.department == department } ?? OpenItemFigures(department: department),
         demand.first { $0.department == department } ?? DemandFigures(department: department),
         feedback.first { $0.department == department } ?? FeedbackFigures(department: department),
         showcases.first { $0.department == department } ?? ShowcaseFigures(department: department))
    }

    /// The departments any list names, by name.
    public var departments: [String] {
        Set(openItems.map(\.department) + demand.map(\.department) + feedback.map(\.department) + showcases.map(\.department))
            .subtracting([""]).sorted()
    }
}
