/// UTC timestamps as the logs and the audit chain write them, without a time-zone lookup or a
/// formatter: `2026-11-30T11:07:47.123Z` (years 0–9999).
public enum UTCTimestamp {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a Unix time (civil date from days, H. Hinnant's algorithm).
    public static func append(seconds: Int64, milliseconds: Int, into out: inout [UInt8]) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secs = Int(seconds - days * 86_400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yoe + era * 400 + (month <= 2 ? 1 : 0))
        func digits(_ v: Int, _ n: Int) {
            var d = 1
            for _ in 1..<n { d *= 10 }
            var v = v
            while d > 0 { out.append(UInt8(truncatingIfNeeded: 0x30 + v / d)); v %= d; d /= 10 }
        }
        digits(year, 4); out.append(0x2D); digits(month, 2); out.append(0x2D); digits(day, 2)
        out.append(0x54)
        digits(secs / 3_600, 2); out.append(0x3A); digits(secs / 60 % 60, 2); out.append(0x3A); digits(secs % 60, 2)
        out.append(0x2E); digits(milliseconds, 3); out.append(0x5A)
    }
}
