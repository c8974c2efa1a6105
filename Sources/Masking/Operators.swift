import Crypto
import Foundation
import KaifangCore

/// One compiled masking operation. Every operation fails closed: a value that does not fit its
/// rule is fully masked (masks) or nulled (generalizations, noise), never passed through.
public enum Operation: Sendable, Equatable {
    case keep
    case suppress
    /// Keeps `keepFirst` and `keepLast` characters, masks the rest with `*`.
    case maskChars(keepFirst: Int, keepLast: Int)
    case maskResidentID, maskPhone, maskLandline, maskName, maskBankCard, maskEmail, maskPlate, maskIP, maskAddress
    /// HMAC-SHA256 token with a type prefix (`pid_…`, see `TokenPrefix`).
    case pseudonymize
    /// A date to its month (`1990-02`) or year (`1990`).
    case generalizeDate(keepMonth: Bool)
    /// A datetime to its day.
    case generalizeDateTime
    /// An age to a 5-year band (`30-34`).
    case generalizeAge
    /// A number to its order-of-magnitude band (`400-500`).
    case generalizeNumber
    /// Coordinates to 2 decimals.
    case generalizeGeo
    /// An address to its district (`江苏省南京市玄武区`).
    case generalizeAddress
    /// Laplace noise of this scale, seeded per key and row.
    case noise(scale: Double)
    /// Keyed HMAC-SHA256, hex.
    case hash
    /// The number as stored, moved by at most one step toward the license's marks
    /// (`Fingerprint`): a value the policy keeps, served to a licensee.
    case fingerprint(Fingerprint)

    /// Whether the output differs from the input (for metrics and the "masked fields" list).
    public var changesValue: Bool { self != .keep }

    /// The operation's kernel: its case without payload, so that a loop dispatches on it with
    /// one jump (a switch over this enum, whose payload cases share their tag, takes two).
    var kernel: Kernel {
        switch self {
        case .keep: .keep
        case .suppress: .suppress
        case .maskChars: .maskChars
        case .maskResidentID: .maskResidentID
        case .maskPhone: .maskPhone
        case .maskLandline: .maskLandline
        case .maskName: .maskName
        case .maskBankCard: .maskBankCard
        case .maskEmail: .maskEmail
        case .maskPlate: .maskPlate
        case .maskIP: .maskIP
        case .maskAddress, .generalizeAddress: .maskAddress
        case .pseudonymize: .pseudonymize
        case .generalizeDate(let keepMonth): keepMonth ? .dateToMonth : .dateToYear
        case .generalizeDateTime: .dateTimeToDay
        case .generalizeAge: .ageBand
        case .generalizeNumber: .numberBand
        case .generalizeGeo: .geo
        case .noise: .noise
        case .hash: .hash
        case .fingerprint: .fingerprint
        }
    }

    /// Whether the output is a number of the field's own type (JSON writes it unquoted, a
    /// bundle keeps the field's type).
    public var keepsType: Bool {
        switch self {
        case .keep, .fingerprint: true
        default: false
        }
    }

    /// Where an operation's output bytes come from, which says when a CSV writer must look for
    /// bytes that force quoting (comma, quote, CR, LF) in it.
    public enum OutputBytes: Sendable {
        /// Only bytes the operation makes: stars, digits, ASCII letters, `-` `.` `:` `_`, or
        /// validated digits of the input. Never needs quoting.
        case generated
        /// Bytes of the input, unchanged: needs quoting only if the input held such a byte.
        case input
        /// Anything else, always checked: input after full-width folding (`，` becomes `,`), or
        /// a comma the operation writes itself (coordinates `32.06,118.80`).
        case any
    }

    /// Where this operation's output bytes come from.
    public var outputBytes: OutputBytes {
        switch self {
        // A masked name keeps only Han characters, middle dots, Latin letters, spaces, `.` `-`
        // `'` (anything else is fully masked); a masked IP only digits, dots, hex and colons.
        case .suppress, .maskResidentID, .maskPhone, .maskLandline, .maskBankCard, .pseudonymize, .hash,
             .generalizeAge, .generalizeNumber, .noise, .maskName, .maskIP, .fingerprint:
            return .generated
        case .keep, .maskChars, .generalizeDate, .generalizeDateTime:
            return .input
        case .maskEmail, .maskPlate, .maskAddress, .generalizeAddress, .generalizeGeo:
            return .any
        }
    }
}

/// One case per byte routine that implements an `Operation` (payloads stay in the operation).
enum Kernel: UInt8, Sendable {
    case keep, suppress, maskChars, maskResidentID, maskPhone, maskLandline, maskName, maskBankCard, maskEmail, maskPlate, maskIP,
         maskAddress, pseudonymize, hash, dateToMonth, dateToYear, dateTimeToDay, ageBand, numberBand, geo, noise, fingerprint
}

/// Reusable buffers for the byte loops, owned by one caller (no allocation per value).
public struct MaskScratch: ~Copyable {
    var folded = ByteBuilder()
    var compacted = ByteBuilder()
    public init() {}
}

/// A set of characters as 4 096 bits indexed by the low 12 bits of their scalar value: one
/// bit test rules out almost every other character of the CJK block (false positives are
/// possible, false negatives not, so a hit is confirmed by an exact test).
struct ScalarFilter: @unchecked Sendable {
    /// 64 words, allocated once per filter (filters are static constants) and never changed:
    /// read through a pointer, with no array or closure in the loops that test them.
    let words: UnsafePointer<UInt64>

    init(_ scalars: [UInt32]) {
        let w = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
        w.initialize(repeating: 0, count: 64)
        for v in scalars { w[Int(v >> 6 & 63)] |= 1 << UInt64(v & 63) }
        words = UnsafePointer(w)
    }

    @inline(__always) func mayContain(_ v: UInt32) -> Bool {
        test(UInt8(truncatingIfNeeded: v >> 6), UInt8(truncatingIfNeeded: v))
    }

    /// The test from a three-byte UTF-8 character's continuation bytes, which carry the low 12
    /// bits (no decoding).
    @inline(__always) func test(_ b1: UInt8, _ b2: UInt8) -> Bool {
        words[Int(b1 & 63)] >> UInt64(b2 & 63) & 1 != 0
    }
}

/// Applies operations to UTF-8 bytes.
enum Apply {
    static let star: UInt8 = 0x2A

    /// Appends `n` stars.
    @inline(__always) static func stars(_ n: Int, _ out: inout ByteBuilder) {
        out.append(repeating: star, count: n)
    }

    /// Number of Unicode scalars in valid UTF-8.
    @inline(__always) static func scalarCount(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var n = 0
        for c in b where c & 0xC0 != 0x80 { n += 1 }
        return n
    }

    /// Full mask: one star per character, at least three.
    @inline(__always) static func full(_ b: UnsafeBufferPointer<UInt8>, _ out: inout ByteBuilder) {
        stars(max(3, min(scalarCount(b), 32)), &out)
    }

    /// Byte offset of scalar `k` (or `b.count`).
    @inline(__always) static func offset(ofScalar k: Int, in b: UnsafeBufferPointer<UInt8>) -> Int {
        var seen = -1
        for i in 0..<b.count where b[i] & 0xC0 != 0x80 {
            seen += 1
            if seen == k { return i }
        }
        return b.count
    }

    static func maskChars(_ b: UnsafeBufferPointer<UInt8>, keepFirst: Int, keepLast: Int, _ out: inout ByteBuilder) {
        let n = scalarCount(b)
        if n <= keepFirst + keepLast || n < 3 { full(b, &out); return }
        let head = offset(ofScalar: keepFirst, in: b)
        let tail = offset(ofScalar: n - keepLast, in: b)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: b[0..<head]))
        stars(n - keepFirst - keepLast, &out)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: b[tail...]))
    }

    static func residentID(_ raw: UnsafeBufferPointer<UInt8>, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        Normalize.compact(raw, into: &s.compacted)
        do { let c = s.compacted.bytes
            if Validators.residentID18(c) {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: c[0..<6])); stars(8, &out)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: c[14..<17]))
                out.append(c[17] == 0x78 ? 0x58 : c[17])
            } else if Validators.residentID15(c) {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: c[0..<6])); stars(5, &out)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: c[11..<15]))
            } else {
                stars(18, &out)
            }
        }
    }

    static func phone(_ raw: UnsafeBufferPointer<UInt8>, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        // The common case, eleven ASCII digits in an allocated segment, is already compact: copied whole,
        // then the middle four starred.
        if raw.count == 11, let p = raw.baseAddress, p[0] == 0x31, Validators.mobileSegment(p[1], p[2]),
           SWAR.allDigits(SWAR.load(p)), SWAR.allDigits(SWAR.load(p + 3)) {
            let at = out.count
            out.append(contentsOf: raw)
            UnsafeMutableRawPointer(out.base + at + 3).storeBytes(of: 0x2A2A_2A2A, as: UInt32.self)
            return
        }
        Normalize.compact(raw, into: &s.compacted)
        do { let c = s.compacted.bytes
            guard Validators.phone(c) else { stars(11, &out); return }
            let local = Validators.strippedCountryCode(c)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: local[0..<3])); stars(4, &out)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: local[7..<11]))
        }
    }

    static func landline(_ raw: UnsafeBufferPointer<UInt8>, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        Normalize.compact(raw, into: &s.compacted)
        do { let c0 = s.compacted.bytes
            guard Validators.landline(c0) else { stars(8, &out); return }
            // Drop parentheses: (025)83123456 → 02583123456.
            var digits: [UInt8] = []
            digits.reserveCapacity(12)
            for ch in c0 where Validators.isDigit(ch) { digits.append(ch) }
            let area = (digits[1] == 0x31 || digits[1] == 0x32) ? 3 : 4
            out.append(contentsOf: digits[0..<area]); out.append(0x2D)
            stars(digits.count - area - 4, &out)
            out.append(contentsOf: digits[(digits.count - 4)...])
        }
    }

    static func bankCard(_ raw: UnsafeBufferPointer<UInt8>, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        Normalize.compact(raw, into: &s.compacted)
        do { let c = s.compacted.bytes
            guard Validators.bankCard(c) else { stars(16, &out); return }
            stars(c.count - 4, &out)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: c[(c.count - 4)...]))
        }
    }

    static func email(_ raw: UnsafeBufferPointer<UInt8>, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        Normalize.withFolded(raw, scratch: &s.folded) { f in
            guard Validators.email(f), let at = f.firstIndex(of: 0x40) else { stars(3, &out); return }
            out.append(f[0]); stars(3, &out)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: f[at...]))
        }
    }

    static func plate(_ raw: UnsafeBufferPointer<UInt8>, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        Normalize.fold(raw, into: &s.folded)
        do { let f = s.folded.bytes
            guard Validators.licensePlate(f) else { stars(3, &out); return }
            let n = scalarCount(f)
            let head = offset(ofScalar: 2, in: f)
            let tail = offset(ofScalar: n - 2, in: f)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: f[0..<head]))
            stars(n - 4, &out)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: f[tail...]))
        }
    }

    static func ip(_ raw: UnsafeBufferPointer<UInt8>, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        Normalize.fold(raw, into: &s.folded)
        do { let f = s.folded.bytes
            if Validators.ipv4(f) {
                var dots = 0
                for c in f {
                    if c == 0x2E { dots += 1; if dots == 2 { break } }
                    out.append(c)
                }
                out.append(contentsOf: Array(".*.*".utf8))
            } else if Validators.ipv6(f) {
                var addr = in6_addr()
                _ = inet_pton(AF_INET6, String(decoding: f, as: UTF8.self), &addr)
                let bytes = withUnsafeBytes(of: &addr) { Array($0) }
                let g1 = String(UInt16(bytes[0]) << 8 | UInt16(bytes[1]), radix: 16)
                let g2 = String(UInt16(bytes[2]) << 8 | UInt16(bytes[3]), radix: 16)
                out.append(contentsOf: Array("\(g1):\(g2):*".utf8))
            } else {
                stars(3, &out)
            }
        }
    }

    /// Compound surnames (复姓): the surname is two characters.
    /// Their two scalars as one key (first << 32 | second), sorted: a binary search per name
    /// costs a few compares, where a Set paid a SipHash.
    static let compoundSurnames: [UInt64] = compoundSurnameList.map { pair in
        let u = Array(pair.unicodeScalars)
        return UInt64(u[0].value) << 32 | UInt64(u[1].value)
    }.sorted()

    /// The first characters of the compound surnames: most names are ruled out by one bit test.
    static let compoundSurnameStarts = ScalarFilter(compoundSurnames.map { UInt32($0 >> 32) })

    @inline(__always) static func isCompoundSurname(_ key: UInt64) -> Bool {
        guard compoundSurnameStarts.mayContain(UInt32(key >> 32)) else { return false }
        let keys = compoundSurnames
        var lo = 0, hi = keys.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if keys[mid] < key { lo = mid + 1 } else { hi = mid }
        }
        return lo < keys.count && keys[lo] == key
    }

    static let compoundSurnameList: [String] = ["欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
                                                "夏侯", "轩辕", "令狐", "澹台", "端木", "独孤", "南宫", "西门", "百里", "呼延", "万俟", "单于",
                                                "申屠", "太史", "闻人", "钟离", "淳于", "濮阳", "赫连", "拓跋", "第五", "公冶", "宗政", "东郭",
                                                "左丘", "司空", "亓官", "仲孙", "鲜于", "段干", "呼衍"]

    @inline(__always) static func isHan(_ v: UInt32) -> Bool {
        (0x3400...0x9FFF).contains(v) || (0x20000...0x3134F).contains(v) || (0xF900...0xFAFF).contains(v)
    }

    /// `张*`, `张**`, `欧阳**`; names with a middle dot keep the first character; Latin names
    /// keep their first letter. Anything else (digits, symbols, over 30 characters) is fully masked.
    static func name(_ raw: UnsafeBufferPointer<UInt8>, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        // The common case: two to ten characters of U+4000…U+9FFF (Han, lead bytes E4–E9), well
        // formed, nothing to fold. The general loop below gives the same result, slower.
        let count = raw.count
        if count >= 6 && count <= 30, let p = raw.baseAddress {
            var i = 0
            while i &+ 2 < count && p[i] &- 0xE4 < 6 && p[i &+ 1] & 0xC0 == 0x80 && p[i &+ 2] & 0xC0 == 0x80 { i &+= 3 }
            if i == count {
                let chars = count / 3
                let first = UInt32(p[0] & 0x0F) << 12 | UInt32(p[1] & 0x3F) << 6 | UInt32(p[2] & 0x3F)
                let second = UInt32(p[3] & 0x0F) << 12 | UInt32(p[4] & 0x3F) << 6 | UInt32(p[5] & 0x3F)
                let compound = chars >= 3 && isCompoundSurname(UInt64(first) << 32 | UInt64(second))
                out.append(contentsOf: UnsafeBufferPointer(start: p, count: compound ? 6 : 3))
                stars(chars - (compound ? 2 : 1), &out)
                return
            }
        }
        Normalize.withFolded(raw, scratch: &s.folded) { f in
            var n = 0
            var allHan = true, allLatin = true
            var first: UInt32 = 0, second: UInt32 = 0
            var end1 = 0, end2 = 0
            var i = 0
            while i < f.count {
                let (v, len) = scalar(f, i)
                if v < 0x80 {
                    allHan = false
                    let letter = (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A
                    if !(letter || v == 0x20 || v == 0x2E || v == 0x2D || v == 0x27) { allLatin = false }
                } else {
                    allLatin = false
                    if !(isHan(v) || v == 0xB7 || v == 0x2022) { allHan = false }
                }
                if !allHan && !allLatin { break }   // fully masked whatever follows
                if n == 0 { first = v; end1 = i + len } else if n == 1 { second = v; end2 = i + len }
                n += 1
                i += len
                if n > 30 { break }
            }
            guard n >= 1, n <= 30, allHan || allLatin else { stars(3, &out); return }
            if n == 1 { stars(1, &out); return }
            if allLatin {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: f[0..<end1])); stars(3, &out); return
            }
            let compound = n >= 3 && isCompoundSurname(UInt64(first) << 32 | UInt64(second))
            out.append(contentsOf: UnsafeBufferPointer(rebasing: f[0..<(compound ? end2 : end1)]))
            stars(n - (compound ? 2 : 1), &out)
        }
    }

    /// 1 for a division word (省 市 区 县 旗 州 盟), 2 for a word that begins the part of an
    /// address below district level (路 街 巷 弄 号 道 镇 乡 村 组), else 0. A district whose
    /// name holds one (道里区) is cut coarser, at its city: safe.
    @inline(__always) static func addressClass(_ v: UInt32) -> UInt8 {
        switch v {
        case 0x7701, 0x5E02, 0x533A, 0x53BF, 0x65D7, 0x5DDE, 0x76DF: return 1
        case 0x8DEF, 0x8857, 0x5DF7, 0x5F04, 0x53F7, 0x9053, 0x9547, 0x4E61, 0x6751, 0x7EC4: return 2
        default: return 0
        }
    }

    /// The 17 words of `addressClass`.
    static let addressWordFilter = ScalarFilter([0x7701, 0x5E02, 0x533A, 0x53BF, 0x65D7, 0x5DDE, 0x76DF,
                                                 0x8DEF, 0x8857, 0x5DF7, 0x5F04, 0x53F7, 0x9053, 0x9547, 0x4E61, 0x6751, 0x7EC4])

    /// Decodes the scalar at `i` of valid UTF-8: (value, length).
    @inline(__always) static func scalar(_ f: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = f[i]
        if b0 < 0x80 { return (UInt32(b0), 1) }
        if b0 >= 0xE0 && b0 < 0xF0 && i + 2 < f.count {
            // The common case, a CJK character: three bytes.
            return (UInt32(b0 & 0x0F) << 12 | UInt32(f[i + 1] & 0x3F) << 6 | UInt32(f[i + 2] & 0x3F), 3)
        }
        var len = 2
        var v = UInt32(b0 & 0x1F)
        if b0 >= 0xF0 { len = 4; v = UInt32(b0 & 0x07) } else if b0 >= 0xE0 { len = 3; v = UInt32(b0 & 0x0F) }
        guard i + len <= f.count else { return (0xFFFD, f.count - i) }
        for j in 1..<len { v = (v << 6) | UInt32(f[i + j] & 0x3F) }
        return (v, len)
    }

    /// Cuts an address after its district (or city, or province) word, before any street,
    /// township, number or digit. An address with no division word is fully masked.
    static func address(_ raw: UnsafeBufferPointer<UInt8>, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        // Most addresses need no folding: cut the raw bytes, and fold only if a full-width form
        // (lead byte EF or E3) or a leading space comes before the cut's end.
        if let first = raw.first, first != 0x20, first != 0x09, let cut = addressCut(raw, stopAtFoldable: true) {
            if cut <= 0 { stars(3, &out) } else { out.append(contentsOf: UnsafeBufferPointer(rebasing: raw[0..<cut])) }
            return
        }
        Normalize.withFolded(raw, scratch: &s.folded) { f in
            let cut = addressCut(f, stopAtFoldable: false) ?? -1
            if cut <= 0 { stars(3, &out); return }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: f[0..<cut]))
        }
    }

    /// The byte offset after the last division word before the first digit or lower-level
    /// word (−1 when there is none); nil when `stopAtFoldable` and a byte that folding would
    /// change comes first.
    @inline(__always)
    static func addressCut(_ f: UnsafeBufferPointer<UInt8>, stopAtFoldable: Bool) -> Int? {
        var cut = -1
        var i = 0
        let n = f.count
        let filter = addressWordFilter
        while i < n {
            let b0 = f[i]
            if b0 &- 0xE4 < 6 && i &+ 2 < n {
                // The common case, a CJK character (U+4E00…U+9FFF, every division word is
                // one): the filter needs only its low 12 bits, the continuation bytes'.
                let b1 = f[i &+ 1], b2 = f[i &+ 2]
                if filter.test(b1, b2) {
                    let v = UInt32(b0 & 0x0F) << 12 | UInt32(b1 & 0x3F) << 6 | UInt32(b2 & 0x3F)
                    let cls = addressClass(v)
                    if cls == 2 { break }
                    // A division word ends the part kept, unless it is the first character.
                    if cls == 1 && i > 0 { cut = i &+ 3 }
                }
                i &+= 3
            } else if b0 < 0x80 {
                if Validators.isDigit(b0) { break }
                i &+= 1
            } else {
                if stopAtFoldable && (b0 == 0xEF || b0 == 0xE3) { return nil }
                i &+= scalar(f, i).1
            }
        }
        return cut
    }

    // MARK: generalizations

    @inline(__always)
    static func date(_ raw: UnsafeBufferPointer<UInt8>, keepMonth: Bool, _ out: inout ByteBuilder) -> Bool {
        let b = raw
        guard b.count >= 10, Validators.isDigit(b[0]), Validators.isDigit(b[3]), b[4] == 0x2D || b[4] == 0x2F,
              Validators.isDigit(b[5]), Validators.isDigit(b[6]) else { return false }
        let m = Validators.digit(b[5]) * 10 + Validators.digit(b[6])
        guard (1...12).contains(m) else { return false }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: b[0..<4]))
        if keepMonth { out.append(0x2D); out.append(b[5]); out.append(b[6]) }
        return true
    }

    static func dateTime(_ raw: UnsafeBufferPointer<UInt8>, _ out: inout ByteBuilder) -> Bool {
        guard raw.count >= 10, Validators.isDigit(raw[0]), raw[4] == 0x2D, raw[7] == 0x2D else { return false }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: raw[0..<10]))
        return true
    }

    static func parseNumber(_ raw: UnsafeBufferPointer<UInt8>) -> Double? {
        var s = 0, e = raw.count
        while s < e && (raw[s] == 0x20 || raw[s] == 0x09) { s += 1 }
        while e > s && (raw[e - 1] == 0x20 || raw[e - 1] == 0x09) { e -= 1 }
        guard e > s, e - s < 40 else { return nil }
        for i in s..<e {
            let c = raw[i]
            guard Validators.isDigit(c) || c == 0x2E || c == 0x2D || c == 0x2B || c == 0x65 || c == 0x45 else { return nil }
        }
        guard let v = Double(String(decoding: UnsafeBufferPointer(rebasing: raw[s..<e]), as: UTF8.self)), v.isFinite else { return nil }
        return v
    }

    static func age(_ raw: UnsafeBufferPointer<UInt8>, _ out: inout ByteBuilder) -> Bool {
        guard let v = parseNumber(raw), v >= 0, v < 1000 else { return false }
        let lo = Int(v) / 5 * 5
        out.append(contentsOf: Array("\(lo)-\(lo + 4)".utf8))
        return true
    }

    /// Parses `-?digits(.digits)?` without allocating; nil for anything else.
    @inline(__always) static func simpleDecimal(_ b: UnsafeBufferPointer<UInt8>) -> Double? {
        guard !b.isEmpty, b.count < 19 else { return nil }
        var i = 0
        var negative = false
        if b[0] == 0x2D { negative = true; i = 1 }
        var intPart: Int64 = 0, frac: Int64 = 0, scale: Int64 = 1
        var digits = 0
        var seenDot = false
        while i < b.count {
            let c = b[i]
            if c == 0x2E { if seenDot { return nil }; seenDot = true; i += 1; continue }
            let d = c &- 0x30
            guard d < 10 else { return nil }
            if seenDot { frac = frac * 10 + Int64(d); scale *= 10 } else { intPart = intPart * 10 + Int64(d) }
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        let v = Double(intPart) + Double(frac) / Double(scale)
        return negative ? -v : v
    }

    /// Appends an integer's decimal digits.
    @inline(__always) static func appendInt(_ v: Int64, _ out: inout ByteBuilder) { out.append(decimal: v) }

    static func numberBand(_ raw: UnsafeBufferPointer<UInt8>, _ out: inout ByteBuilder) -> Bool {
        if bandFromDigits(raw, &out) { return true }
        guard let v = simpleDecimal(raw) ?? parseNumber(raw) else { return false }
        return numberBand(value: v, &out)
    }

    /// The band of a plain non-negative decimal `d…d(.d…)` at least 1, written from its digits:
    /// the leading digit then zeros, to the leading digit plus one then zeros (`461.21` →
    /// `400-500`, `9.5` → `9-10`). Only for at most 15 digits, where a double holds the value
    /// exactly enough that `numberBand(value:)` gives the same band. False (nothing written)
    /// for anything else.
    @inline(__always)
    static func bandFromDigits(_ b: UnsafeBufferPointer<UInt8>, _ out: inout ByteBuilder) -> Bool {
        guard let shape = plainDecimalShape(b) else { return false }
        band(lead: b[0], intDigits: shape.intDigits, &out)
        return true
    }

    /// For a plain non-negative decimal `d…d(.d…)` at least 1 with at most 15 digits: how many
    /// digits its integer part has (it lies in [10^(k−1), 10^k)) and whether it has a fraction.
    @inline(__always)
    public static func plainDecimalShape(_ b: UnsafeBufferPointer<UInt8>) -> (intDigits: Int, fraction: Bool)? {
        let n = b.count
        guard n > 0, n <= 16 else { return nil }
        let lead = b[0] &- 0x30
        guard lead >= 1 && lead <= 9 else { return nil }
        var intDigits = 1
        while intDigits < n && Validators.isDigit(b[intDigits]) { intDigits += 1 }
        if intDigits == n { return n <= 15 ? (n, false) : nil }
        // A fraction: a dot and at least one digit, nothing else.
        guard b[intDigits] == 0x2E, intDigits + 1 < n, n - 1 <= 15 else { return nil }
        for j in (intDigits + 1)..<n where !Validators.isDigit(b[j]) { return nil }
        return (intDigits, true)
    }

    /// Writes the band of a plain decimal from its leading digit and integer digits.
    @inline(__always)
    public static func band(lead: UInt8, intDigits: Int, _ out: inout ByteBuilder) {
        out.append(lead)
        out.append(repeating: 0x30, count: intDigits - 1)
        out.append(0x2D)
        if lead == 0x39 { out.append(0x31); out.append(0x30) } else { out.append(lead + 1) }
        out.append(repeating: 0x30, count: intDigits - 1)
    }

    static func numberBand(value v: Double, _ out: inout ByteBuilder) -> Bool {
        guard v.isFinite else { return false }
        if v == 0 { out.append(0x30); return true }
        let a = abs(v)
        if a >= 1 && a < 1e15 {
            // In integers: the magnitude is the largest power of ten not above the integer part
            // (10^k ≤ a exactly when 10^k ≤ ⌊a⌋), and ⌊v / m⌋ is ⌊a⌋ / m for v > 0, minus that
            // rounded up for v < 0. No table, division of doubles or rounding per value.
            let whole = Int64(a)
            var mag: Int64 = 1
            while mag &* 10 <= whole { mag &*= 10 }
            var q = whole / mag
            if v < 0, q &* mag != whole || Double(whole) != a { q &+= 1 }
            let lo = v < 0 ? -q &* mag : q &* mag
            appendInt(lo, &out); out.append(0x2D); appendInt(lo &+ mag, &out)
            return true
        }
        let mag = pow(10, floor(log10(a)))
        let lo = floor(v / mag) * mag
        if mag >= 1, abs(lo) < 1e15 {
            appendInt(Int64(lo), &out); out.append(0x2D); appendInt(Int64(lo + mag), &out)
            return true
        }
        out.append(contentsOf: Array("\(Cell.format(lo))-\(Cell.format(lo + mag))".utf8))
        return true
    }

    static func geo(_ raw: UnsafeBufferPointer<UInt8>, _ out: inout ByteBuilder) -> Bool {
        let text = String(decoding: raw, as: UTF8.self)
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return false }
        var rendered: [String] = []
        for p in parts {
            guard let v = Double(p.trimmingCharacters(in: .whitespaces)), v.isFinite, abs(v) <= 180 else { return false }
            rendered.append(String(format: "%.2f", v))
        }
        out.append(contentsOf: Array(rendered.joined(separator: ",").utf8))
        return true
    }

    // MARK: keyed

    static func pseudonym(_ raw: UnsafeBufferPointer<UInt8>, prefix: [UInt8], semantic: SemanticType?, key: SymmetricKey,
                          _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        normalizedForKeying(raw, semantic: semantic, &s)
        var h = HMAC<SHA256>(key: key)
        h.update(data: Array((semantic?.rawValue ?? "text").utf8) + [0])
        h.update(data: UnsafeRawBufferPointer(s.compacted.bytes))
        let mac = h.finalize()
        out.append(contentsOf: prefix)
        Base32.append(mac.prefix(10), to: &out)
    }

    static func keyedHash(_ raw: UnsafeBufferPointer<UInt8>, semantic: SemanticType?, key: SymmetricKey, _ s: inout MaskScratch, _ out: inout ByteBuilder) {
        normalizedForKeying(raw, semantic: semantic, &s)
        var h = HMAC<SHA256>(key: key)
        h.update(data: Array("hash:".utf8))
        h.update(data: UnsafeRawBufferPointer(s.compacted.bytes))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for byte in h.finalize() { out.append(hex[Int(byte >> 4)]); out.append(hex[Int(byte & 15)]) }
    }

    /// The bytes that are keyed: identifiers compacted and upper-cased (`x` → `X`), text folded.
    static func normalizedForKeying(_ raw: UnsafeBufferPointer<UInt8>, semantic: SemanticType?, _ s: inout MaskScratch) {
        switch semantic {
        case .resident_id?, .phone?, .landline?, .bank_card?, .uscc?, .passport?, .license_plate?:
            Normalize.compact(raw, into: &s.compacted)
            for i in 0..<s.compacted.count where Validators.isLower(s.compacted[i]) { s.compacted[i] -= 0x20 }
            if semantic == .phone {
                let local = Array(Validators.strippedCountryCode(s.compacted.bytes))
                s.compacted.removeAll()
                s.compacted.append(contentsOf: local)
            }
        case .email?:
            Normalize.fold(raw, into: &s.compacted)
            for i in 0..<s.compacted.count where Validators.isUpper(s.compacted[i]) { s.compacted[i] += 0x20 }
        default:
            Normalize.fold(raw, into: &s.compacted)
        }
    }

    static func noise(_ raw: UnsafeBufferPointer<UInt8>, scale: Double, key: SymmetricKey, field: String, row: Int64, _ out: inout ByteBuilder) -> Bool {
        guard let v = parseNumber(raw) else { return false }
        var h = HMAC<SHA256>(key: key)
        h.update(data: Array("noise:\(field):\(row)".utf8))
        let mac = Array(h.finalize())
        var bits: UInt64 = 0
        for i in 0..<8 { bits = (bits << 8) | UInt64(mac[i]) }
        // Uniform in (-0.5, 0.5), then the inverse CDF of the Laplace distribution.
        let u = (Double(bits >> 11) + 0.5) / Double(1 << 53) - 0.5
        let x = v - scale * (u < 0 ? -1 : 1) * log(1 - 2 * abs(u))
        out.append(contentsOf: Array(String(format: "%.2f", x).utf8))
        return true
    }
}
