import Foundation

/// Format validators with check digits (docs/policy.md). Each takes normalized bytes (see
/// `Normalize`) and answers whether the value passes every check of its format.
public enum Validators {
    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }
    @inline(__always) static func digit(_ c: UInt8) -> Int { Int(c &- 0x30) }
    @inline(__always) static func isUpper(_ c: UInt8) -> Bool { c >= 0x41 && c <= 0x5A }
    @inline(__always) static func isLower(_ c: UInt8) -> Bool { c >= 0x61 && c <= 0x7A }

    // MARK: Resident ID (GB 11643-1999)

    /// Province-level codes of GB/T 2260 (the first two digits of a division code).
    static let provinces: Set<Int> = [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
                                      50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91]
    static let idWeights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    static let idCheck: [UInt8] = Array("10X98765432".utf8)

    /// The ISO 7064 MOD 11-2 check character of the first 17 digits.
    public static func residentIDCheck(_ first17: UnsafeBufferPointer<UInt8>) -> UInt8 {
        var s = 0
        for i in 0..<17 { s += digit(first17[i]) * idWeights[i] }
        return idCheck[s % 11]
    }

    /// Whether a division code's first two digits name a province.
    @inline(__always) static func validRegion(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        provinces.contains(digit(b[0]) * 10 + digit(b[1]))
    }

    /// Today's date (Beijing time) as yyyymmdd, for "birth date not in the future"; computed
    /// once per process.
    public static let today: Int = {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "Asia/Shanghai")!, from: Date())
        return (c.year ?? 2100) * 10000 + (c.month ?? 12) * 100 + (c.day ?? 31)
    }()

    static func validBirth(year: Int, month: Int, day: Int, today: Int) -> Bool {
        guard year >= 1800, Calendar.validDate(year: year, month: month, day: day) else { return false }
        return year * 10000 + month * 100 + day <= today
    }

    /// The shape of an 18-character resident ID: 17 digits then a digit or X, a province
    /// prefix, and digits 7–14 that read as a date of the 19th–21st century (month 01–12, day
    /// 01–31). This is what the value claims to be; `residentID18` also checks the calendar,
    /// the future and the check character.
    public static func looksLikeResidentID18(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 18 else { return false }
        for i in 0..<17 where !isDigit(b[i]) { return false }
        let last = b[17]
        guard isDigit(last) || last == 0x58 || last == 0x78 else { return false }
        guard validRegion(b) else { return false }
        let y = digit(b[6]) * 1000 + digit(b[7]) * 100 + digit(b[8]) * 10 + digit(b[9])
        let m = digit(b[10]) * 10 + digit(b[11]), d = digit(b[12]) * 10 + digit(b[13])
        return (1800...2099).contains(y) && (1...12).contains(m) && (1...31).contains(d)
    }

    /// The shape of a 15-digit legacy resident ID: a province prefix and YYMMDD with month 01–12, day 01–31.
    public static func looksLikeResidentID15(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 15 else { return false }
        for c in b where !isDigit(c) { return false }
        guard validRegion(b) else { return false }
        let m = digit(b[8]) * 10 + digit(b[9]), d = digit(b[10]) * 10 + digit(b[11])
        return (1...12).contains(m) && (1...31).contains(d)
    }

    /// An 18-digit resident ID: shape, province, real past birth date, MOD 11-2 check (`X` or `x`).
    public static func residentID18(_ b: UnsafeBufferPointer<UInt8>, today: Int = Validators.today) -> Bool {
        guard looksLikeResidentID18(b) else { return false }
        let y = digit(b[6]) * 1000 + digit(b[7]) * 100 + digit(b[8]) * 10 + digit(b[9])
        let m = digit(b[10]) * 10 + digit(b[11]), d = digit(b[12]) * 10 + digit(b[13])
        guard validBirth(year: y, month: m, day: d, today: today) else { return false }
        var last = b[17]
        if last == 0x78 { last = 0x58 }
        return residentIDCheck(b) == last
    }

    /// A 15-digit legacy resident ID (before 1999): province, real birth date 19YYMMDD, no check digit.
    public static func residentID15(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard looksLikeResidentID15(b) else { return false }
        let y = 1900 + digit(b[6]) * 10 + digit(b[7])
        let m = digit(b[8]) * 10 + digit(b[9]), d = digit(b[10]) * 10 + digit(b[11])
        return validBirth(year: y, month: m, day: d, today: today)
    }

    // MARK: USCC (GB 32100-2015)

    /// The 31 symbols of a USCC, without I O S V Z.
    public static let usccAlphabet: [UInt8] = Array("0123456789ABCDEFGHJKLMNPQRTUWXY".utf8)
    static let usccValue: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in usccAlphabet.enumerated() { t[Int(c)] = Int8(i) }
        return t
    }()
    static let usccWeights: [Int] = (0..<17).map { i in (0..<i).reduce(1) { acc, _ in acc * 3 % 31 } }

    /// The check character of the first 17 symbols: (31 − Σ vᵢ·3^(i−1) mod 31) mod 31.
    public static func usccCheck(_ first17: UnsafeBufferPointer<UInt8>) -> UInt8? {
        var s = 0
        for i in 0..<17 {
            let v = usccValue[Int(first17[i])]
            if v < 0 { return nil }
            s += Int(v) * usccWeights[i]
        }
        return usccAlphabet[(31 - s % 31) % 31]
    }

    /// The shape of a USCC: 18 symbols of the alphabet, a registration authority and kind
    /// that exist, a province in the division code.
    public static func looksLikeUSCC(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 18 else { return false }
        for c in b where usccValue[Int(c)] < 0 { return false }
        // Registration authority 1-9, A, N, Y; kind 1-5 or 9.
        let authority = b[0], kind = b[1]
        guard (authority >= 0x31 && authority <= 0x39) || authority == 0x41 || authority == 0x4E || authority == 0x59 else { return false }
        guard (kind >= 0x31 && kind <= 0x35) || kind == 0x39 else { return false }
        return isDigit(b[2]) && isDigit(b[3]) && provinces.contains(digit(b[2]) * 10 + digit(b[3]))
    }

    /// A unified social credit code with a correct check character.
    public static func uscc(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard looksLikeUSCC(b) else { return false }
        return usccCheck(b) == b[17]
    }

    // MARK: Bank card

    /// Luhn over 13–19 digits.
    public static func bankCard(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard (13...19).contains(b.count) else { return false }
        var sum = 0
        var double = false
        var i = b.count - 1
        while i >= 0 {
            let c = b[i]
            guard isDigit(c) else { return false }
            var d = digit(c)
            if double { d *= 2; if d > 9 { d -= 9 } }
            sum += d
            double.toggle()
            i -= 1
        }
        return sum % 10 == 0
    }

    // MARK: Phones

    /// The number without a `+86`/`86`/`0086` country prefix, when it has one of 13 digits.
    static func strippedCountryCode(_ b: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        if b.count == 14, b[0] == 0x2B, b[1] == 0x38, b[2] == 0x36 { return UnsafeBufferPointer(rebasing: b[3...]) }
        if b.count == 13, b[0] == 0x38, b[1] == 0x36 { return UnsafeBufferPointer(rebasing: b[2...]) }
        if b.count == 15, b[0] == 0x30, b[1] == 0x30, b[2] == 0x38, b[3] == 0x36 { return UnsafeBufferPointer(rebasing: b[4...]) }
        return b
    }

    /// A mainland mobile number `1[3-9]` + 9 digits, optionally `+86`/`86`-prefixed.
    public static func phone(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        let b = strippedCountryCode(raw)
        guard b.count == 11, b[0] == 0x31, b[1] >= 0x33 && b[1] <= 0x39 else { return false }
        for c in b where !isDigit(c) { return false }
        return true
    }

    /// A landline: area code `0` + 2–3 digits, then 7–8 digits (separators removed), optionally
    /// in parentheses `(025)83123456`.
    public static func landline(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        var digits = 0
        var b = raw
        if b.first == 0x28 { // (025)83…
            guard let close = b.firstIndex(of: 0x29) else { return false }
            b = UnsafeBufferPointer(rebasing: b[1..<close])
            for c in b where !isDigit(c) { return false }
            let rest = UnsafeBufferPointer(rebasing: raw[(close + 1)...])
            for c in rest where !isDigit(c) { return false }
            guard b.count >= 3 && b.count <= 4, b[0] == 0x30, b.count < 2 || b[1] != 0x30, (7...8).contains(rest.count) else { return false }
            return rest.first != 0x30
        }
        for c in b { guard isDigit(c) else { return false }; digits += 1 }
        guard b.first == 0x30, b.count > 1, b[1] != 0x30 else { return false }
        // Area codes: 3 digits for 01x/02x, else 4.
        let area = (b[1] == 0x31 || b[1] == 0x32) ? 3 : 4
        let local = digits - area
        return (7...8).contains(local) && b[area] != 0x30
    }

    // MARK: Email, IP

    /// A plausible address: local@domain.tld with allowed characters, no empty labels.
    public static func email(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count >= 6, b.count <= 254, let at = b.firstIndex(of: 0x40), at > 0, at < b.count - 4 else { return false }
        for i in 0..<at {
            let c = b[i]
            let ok = isDigit(c) || isUpper(c) || isLower(c) || c == 0x2E || c == 0x5F || c == 0x2D || c == 0x2B || c == 0x25
            if !ok { return false }
        }
        if b[0] == 0x2E || b[at - 1] == 0x2E { return false }
        var labelLen = 0
        var labels = 0
        var lastLabelAlpha = true
        for i in (at + 1)..<b.count {
            let c = b[i]
            if c == 0x2E {
                if labelLen == 0 { return false }
                labels += 1; labelLen = 0; lastLabelAlpha = true
                continue
            }
            guard isDigit(c) || isUpper(c) || isLower(c) || c == 0x2D else { return false }
            if !(isUpper(c) || isLower(c)) { lastLabelAlpha = false }
            labelLen += 1
        }
        return labels >= 1 && labelLen >= 2 && lastLabelAlpha
    }

    /// Dotted-quad IPv4 without leading zeros.
    public static func ipv4(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var parts = 0, value = 0, len = 0
        var lead: UInt8 = 0
        for c in b {
            if c == 0x2E {
                if len == 0 || value > 255 || (len > 1 && lead == 0x30) { return false }
                parts += 1; value = 0; len = 0
            } else if isDigit(c) {
                if len == 0 { lead = c }
                value = value * 10 + digit(c); len += 1
                if len > 3 { return false }
            } else { return false }
        }
        if len == 0 || value > 255 || (len > 1 && lead == 0x30) { return false }
        return parts == 3
    }

    /// IPv6 in any standard text form.
    public static func ipv6(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count >= 2, b.count <= 45, b.contains(0x3A) else { return false }
        var addr = in6_addr()
        let s = String(decoding: b, as: UTF8.self)
        return inet_pton(AF_INET6, s, &addr) == 1
    }

    // MARK: Plates, passports

    /// Province abbreviations that begin a mainland plate.
    static let plateProvinces: Set<Unicode.Scalar> = Set("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼".unicodeScalars)
    static let plateSuffixes: Set<Unicode.Scalar> = Set("学警港澳挂领试超".unicodeScalars)

    /// Whether the value starts with a plate province and a letter (what a plate claims).
    public static func looksLikePlate(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var it = String(decoding: b, as: UTF8.self).unicodeScalars.makeIterator()
        guard let p = it.next(), plateProvinces.contains(p), let l = it.next(), l.isASCII, (0x41...0x5A).contains(l.value) else { return false }
        return true
    }

    /// A mainland plate: province + authority letter + 5 symbols (ordinary, optional special
    /// suffix 学/警/挂…) or 6 (new energy: D/F first or last among them). No I or O.
    public static func licensePlate(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let scalars = Array(String(decoding: b, as: UTF8.self).unicodeScalars.filter { $0 != "·" && $0 != " " && $0 != "-" })
        guard scalars.count >= 7, scalars.count <= 8, plateProvinces.contains(scalars[0]) else { return false }
        let letter = scalars[1].value
        guard (0x41...0x5A).contains(letter), letter != 0x49, letter != 0x4F else { return false }
        var rest = Array(scalars[2...])
        var special = false
        if let last = rest.last, plateSuffixes.contains(last) { rest.removeLast(); special = true }
        for s in rest {
            let v = s.value
            let ok = (0x30...0x39).contains(v) || ((0x41...0x5A).contains(v) && v != 0x49 && v != 0x4F)
            if !ok { return false }
        }
        if special { return rest.count == 4 }
        if rest.count == 5 { return true }
        if rest.count == 6 {
            // New energy: small cars D/F + 5 (digits mostly), large cars 5 digits + D/F.
            let first = rest[0].value, last = rest[5].value
            let df: Set<UInt32> = [0x44, 0x46]
            if df.contains(first) { return rest[2...].allSatisfy { (0x30...0x39).contains($0.value) } }
            if df.contains(last) { return rest[..<5].allSatisfy { (0x30...0x39).contains($0.value) } }
            return false
        }
        return false
    }

    /// The shape of a passport number: one or two letters then digits, 9 characters.
    public static func looksLikePassport(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 9, isUpper(b[0]) || isLower(b[0]) else { return false }
        var digits = 0
        for i in 1..<9 where isDigit(b[i]) { digits += 1 }
        return digits >= 7
    }

    /// A PRC passport: `E` + 8 digits, `E` + a letter (not I, O) + 7 digits, or `G`/`D`/`S`/`P`
    /// + 8 digits (ordinary, diplomatic, service, public-affairs).
    public static func passport(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 9 else { return false }
        let first = b[0]
        let allDigits = { (from: Int) in (from..<9).allSatisfy { isDigit(b[$0]) } }
        if [0x45, 0x47, 0x44, 0x53, 0x50].contains(first), allDigits(1) { return true }
        if first == 0x45, isUpper(b[1]), b[1] != 0x49, b[1] != 0x4F, allDigits(2) { return true }
        return false
    }
}

extension Calendar {
    /// Whether y-m-d is a real Gregorian date.
    static func validDate(year: Int, month: Int, day: Int) -> Bool {
        guard month >= 1 && month <= 12, day >= 1 else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return day <= days[month - 1]
    }
}
