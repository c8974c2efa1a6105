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

    /// A birth date on the calendar, from 1900 to today (no resident ID was issued for earlier births).
    static func validBirth(year: Int, month: Int, day: Int, today: Int) -> Bool {
        guard year >= 1900, Calendar.validDate(year: year, month: month, day: day) else { return false }
        return year * 10000 + month * 100 + day <= today
    }

    /// Whether three digits from `at` are `000`: a sequence code that is never issued.
    @inline(__always) static func zeroSequence(_ b: UnsafeBufferPointer<UInt8>, at: Int) -> Bool {
        b[at] == 0x30 && b[at + 1] == 0x30 && b[at + 2] == 0x30
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

    /// An 18-digit resident ID: shape, province, a real birth date from 1900 to today, a
    /// sequence code other than 000, MOD 11-2 check (`X` or `x`).
    public static func residentID18(_ b: UnsafeBufferPointer<UInt8>, today: Int = Validators.today) -> Bool {
        guard looksLikeResidentID18(b), !zeroSequence(b, at: 14) else { return false }
        let y = digit(b[6]) * 1000 + digit(b[7]) * 100 + digit(b[8]) * 10 + digit(b[9])
        let m = digit(b[10]) * 10 + digit(b[11]), d = digit(b[12]) * 10 + digit(b[13])
        guard validBirth(year: y, month: m, day: d, today: today) else { return false }
        var last = b[17]
        if last == 0x78 { last = 0x58 }
        return residentIDCheck(b) == last
    }

    /// A 15-digit legacy resident ID (before 1999): province, real birth date 19YYMMDD, a
    /// sequence code other than 000, no check digit.
    public static func residentID15(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard looksLikeResidentID15(b), !zeroSequence(b, at: 12) else { return false }
        let y = 1900 + digit(b[6]) * 10 + digit(b[7])
        let m = digit(b[8]) * 10 + digit(b[9]), d = digit(b[10]) * 10 + digit(b[11])
        return validBirth(year: y, month: m, day: d, today: today)
    }

    // MARK: USCC (GB 32100-2015)

    /// The 31 symbols of a USCC, without I O S V Z.
    public static let usccAlphabet: [UInt8] = Array("0123456789ABCDEFGHJKLMNPQRTUWXY".utf8)
    /// Each symbol's value; lower-case letters count as their capitals (codes are often typed so).
    static let usccValue: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in usccAlphabet.enumerated() {
            t[Int(c)] = Int8(i)
            if isUpper(c) { t[Int(c + 0x20)] = Int8(i) }
        }
        return t
    }()

    @inline(__always) static func upper(_ c: UInt8) -> UInt8 { isLower(c) ? c - 0x20 : c }
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
        let authority = upper(b[0]), kind = b[1]
        guard (authority >= 0x31 && authority <= 0x39) || authority == 0x41 || authority == 0x4E || authority == 0x59 else { return false }
        guard (kind >= 0x31 && kind <= 0x35) || kind == 0x39 else { return false }
        return isDigit(b[2]) && isDigit(b[3]) && provinces.contains(digit(b[2]) * 10 + digit(b[3]))
    }

    /// A unified social credit code: its check character (GB 32100), and the check character of
    /// the organization code it embeds in symbols 9–17 (GB 11714). Letters in either case.
    public static func uscc(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard looksLikeUSCC(b), usccCheck(b) == upper(b[17]) else { return false }
        return organizationCodeCheck(UnsafeBufferPointer(rebasing: b[8..<16])) == upper(b[16])
    }

    /// GB 11714's weights: 2^(9−i) mod 11 for positions i = 1…8.
    static let orgWeights = [3, 7, 9, 10, 5, 8, 4, 2]

    /// The check character of an organization code's 8 symbols (digits, or letters worth
    /// A = 10 … Z = 35): 11 − Σ vᵢ·wᵢ mod 11, written X for 10 and 0 for 11.
    public static func organizationCodeCheck(_ body: UnsafeBufferPointer<UInt8>) -> UInt8? {
        guard body.count == 8 else { return nil }
        var s = 0
        for i in 0..<8 {
            let c = upper(body[i])
            let v: Int
            if isDigit(c) { v = digit(c) } else if isUpper(c) { v = Int(c - 0x41) + 10 } else { return nil }
            s += v * orgWeights[i]
        }
        let r = 11 - s % 11
        return r == 10 ? 0x58 : r == 11 ? 0x30 : UInt8(0x30 + r)
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

    /// The allocated mobile segments `1XY`, by X and Y (MIIT's numbering plan: 13x, 145–149,
    /// 150–153, 155–159, 162, 165–167, 170–178, 18x, 190–193, 195–199).
    static let mobileSegments: [Bool] = {
        var t = [Bool](repeating: false, count: 100)
        let allocated: [Int: [Int]] = [3: Array(0...9), 4: [5, 6, 7, 8, 9], 5: [0, 1, 2, 3, 5, 6, 7, 8, 9], 6: [2, 5, 6, 7],
                                       7: Array(0...8), 8: Array(0...9), 9: [0, 1, 2, 3, 5, 6, 7, 8, 9]]
        for (x, ys) in allocated { for y in ys { t[x * 10 + y] = true } }
        return t
    }()

    /// Whether the two digits after a mobile number's leading 1 name an allocated segment.
    @inline(__always) public static func mobileSegment(_ x: UInt8, _ y: UInt8) -> Bool {
        let a = x &- 0x30, b = y &- 0x30
        return a < 10 && b < 10 && mobileSegments[Int(a) * 10 + Int(b)]
    }

    /// A mainland mobile number: 11 digits in an allocated segment, optionally `+86`, `86` or
    /// `0086`-prefixed.
    public static func phone(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        let b = strippedCountryCode(raw)
        guard b.count == 11, b[0] == 0x31, mobileSegment(b[1], b[2]) else { return false }
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

    /// `atext` of RFC 5322: what a dot-atom local part is made of besides dots.
    @inline(__always) static func isAtext(_ c: UInt8) -> Bool {
        if isDigit(c) || isUpper(c) || isLower(c) { return true }
        switch c {
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2F, 0x3D, 0x3F, 0x5E, 0x5F, 0x60, 0x7B, 0x7C, 0x7D, 0x7E: return true
        default: return false
        }
    }

    /// An address as RFC 5321 lets it be sent: a local part of at most 64 octets — a dot-atom
    /// (atext, single dots not at either end) or a quoted string (printable ASCII, `\` quoting
    /// `"` and `\`) — then `@` and a domain of at most 253 octets: labels of 1–63 letters,
    /// digits and inner hyphens, the last alphabetic and at least 2 long. At most 254 in all.
    public static func email(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count >= 6, b.count <= 254, let at = b.lastIndex(of: 0x40), at > 0, at <= 64, b.count - at - 1 <= 253 else { return false }
        let local = UnsafeBufferPointer(rebasing: b[..<at])
        if local[0] == 0x22 {
            guard local.count >= 3, local[local.count - 1] == 0x22 else { return false }
            var i = 1
            while i < local.count - 1 {
                let c = local[i]
                if c == 0x5C {
                    guard i + 1 < local.count - 1, (0x20...0x7E).contains(local[i + 1]) else { return false }
                    i += 2
                    continue
                }
                guard (0x20...0x7E).contains(c), c != 0x22 else { return false }
                i += 1
            }
        } else {
            guard local[0] != 0x2E, local[local.count - 1] != 0x2E else { return false }
            var previousDot = false
            for c in local {
                if c == 0x2E {
                    if previousDot { return false }
                    previousDot = true
                } else {
                    guard isAtext(c) else { return false }
                    previousDot = false
                }
            }
        }
        var labelLen = 0, labels = 0
        var lastLabelAlpha = true
        var previous: UInt8 = 0x2E
        for i in (at + 1)..<b.count {
            let c = b[i]
            if c == 0x2E {
                if labelLen == 0 || previous == 0x2D { return false }
                labels += 1; labelLen = 0; lastLabelAlpha = true
                previous = c
                continue
            }
            guard isDigit(c) || isUpper(c) || isLower(c) || c == 0x2D else { return false }
            if c == 0x2D && labelLen == 0 { return false }
            if !(isUpper(c) || isLower(c)) { lastLabelAlpha = false }
            labelLen += 1
            if labelLen > 63 { return false }
            previous = c
        }
        return labels >= 1 && labelLen >= 2 && lastLabelAlpha && previous != 0x2D
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

    /// The address part of an IPv6 address with a zone id (`fe80::1%eth0`, RFC 4007): what
    /// precedes `%` when a zone of letters, digits, `.`, `_`, `-` or `~` follows; else all of it.
    static func withoutZone(_ b: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        guard let pct = b.firstIndex(of: 0x25) else { return b }
        let zone = b[(pct + 1)...]
        guard pct > 0, !zone.isEmpty, zone.count <= 64,
              zone.allSatisfy({ isDigit($0) || isUpper($0) || isLower($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D || $0 == 0x7E }) else { return nil }
        return UnsafeBufferPointer(rebasing: b[..<pct])
    }

    /// IPv6 in any standard text form, with an optional zone id.
    public static func ipv6(_ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let b = withoutZone(raw), b.count >= 2, b.count <= 45, b.contains(0x3A) else { return false }
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
        guard let p = it.next(), plateProvinces.contains(p), let l = it.next(), l.isASCII,
              (0x41...0x5A).contains(l.value) || (0x61...0x7A).contains(l.value) else { return false }
        return true
    }

    /// A mainland plate: province + authority letter + 5 symbols (ordinary, optional special
    /// suffix 学/警/挂…) or 6 (new energy: D/F first or last among them). No I or O.
    public static func licensePlate(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        // Letters in either case (plates are often typed in lower case).
        let scalars = Array(String(decoding: b, as: UTF8.self).unicodeScalars.filter { $0 != "·" && $0 != " " && $0 != "-" }
            .map { (0x61...0x7A).contains($0.value) ? Unicode.Scalar($0.value - 0x20)! : $0 })
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
    /// Letters in either case.
    public static func passport(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard b.count == 9 else { return false }
        let first = upper(b[0]), second = upper(b[1])
        let allDigits = { (from: Int) in (from..<9).allSatisfy { isDigit(b[$0]) } }
        if [0x45, 0x47, 0x44, 0x53, 0x50].contains(first), allDigits(1) { return true }
        if first == 0x45, isUpper(second), second != 0x49, second != 0x4F, allDigits(2) { return true }
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
