/// One typed value of a row, as stored in a dataset version file.
public enum Cell: Sendable, Equatable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    /// The value as text (what a CSV export writes); empty for null.
    public var text: String {
        switch self {
        case .null: ""
        case .integer(let v): String(v)
        case .real(let v): Cell.format(v)
        case .text(let s): s
        }
    }

    /// Formats a double the way Kaifang writes numbers: integral values without a fraction,
    /// others with the shortest representation that round-trips.
    public static func format(_ v: Double) -> String {
        if v.isFinite, v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
