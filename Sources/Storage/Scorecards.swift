import Foundation

/// One department's figures for one month, as kept (`Scorecard` in Publishing gives the JSON's
/// shape): never changed once stored.
public struct ScorecardSnapshot: Sendable, Equatable {
    /// `YYYY-MM`.
    public var month: String
    public var department: String
    public var figuresJSON: String
    public var takenAt: String

    package init(month: String, department: String, figuresJSON: String, takenAt: String) {
        self.month = month; self.department = department; self.figuresJSON = figuresJSON; self.takenAt = takenAt
    }
}
