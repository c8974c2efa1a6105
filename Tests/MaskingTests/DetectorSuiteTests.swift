import Foundation
import KaifangCore
import Masking
import Testing

/// The table-driven detection suite: every case is labelled with what the value claims to be
/// and whether it passes; `pii scan`'s detector must reproduce every label (100 % precision
/// and recall per type).
@Suite struct DetectorSuiteTests {
    struct Case: CustomStringConvertible {
        let value: String
        let type: SemanticType?
        let valid: Bool
        let why: String
        var description: String { "\(why): \(type?.rawValue ?? "nil")/\(valid)" }
    }

    static let cases: [Case] = {
        var rng = Vectors.Rng(state: 20_261_122)
        var c: [Case] = []
        // Resident IDs (18): valid, x lower-case, wrong check, impossible dates, future, wrong length, full width, spaced.
        for _ in 0..<40 {
            let id = Vectors.residentID(&rng)
            c.append(Case(value: id, type: .resident_id, valid: true, why: "valid 18-digit ID"))
            c.append(Case(value: Vectors.withWrongCheck(id, &rng), type: .resident_id, valid: false, why: "wrong check character"))
        }
        for _ in 0..<30 {
            var id = Vectors.residentID(&rng)
            while id.last != "X" { id = Vectors.residentID(&rng) }
            c.append(Case(value: String(id.dropLast()) + "x", type: .resident_id, valid: true, why: "lower-case x check"))
            if c.filter({ $0.why == "lower-case x check" }).count >= 5 { break }
        }
        for (y, m, d) in [(1990, 2, 30), (1991, 2, 29), (2001, 4, 31), (1900, 2, 29), (1985, 6, 31), (2099, 1, 1)] {
            let body = "320102" + String(format: "%04d%02d%02d", y, m, d) + "123"
            c.append(Case(value: body + String(Vectors.idCheck(body)), type: .resident_id, valid: false, why: "impossible or future birth date"))
        }
        for _ in 0..<10 {
            let id = Vectors.residentID(&rng)
            c.append(Case(value: Vectors.fullWidth(id), type: .resident_id, valid: true, why: "full-width ID"))
            let spaced = String(id.prefix(6)) + " " + String(id.dropFirst(6).prefix(8)) + " " + String(id.suffix(4))
            c.append(Case(value: spaced, type: .resident_id, valid: true, why: "ID with spaces"))
        }
        for _ in 0..<10 {
            // 15-digit legacy IDs: province, 19YYMMDD, 3-digit sequence.
            let legacy = rng.pick(Vectors.regions) + String(format: "%02d%02d%02d", rng.int(30...98), rng.int(1...12), rng.int(1...28)) + rng.digits(3)
            c.append(Case(value: legacy, type: .resident_id, valid: true, why: "15-digit legacy ID"))
        }
        c.append(Case(value: "320102830230123", type: .resident_id, valid: false, why: "legacy ID on 30 February"))
        // Never issued: births before 1900, the sequence code 000 (18 and 15 digits).
        for y in [1899, 1850] {
            let body = "320102" + String(format: "%04d", y) + "0615" + "123"
            c.append(Case(value: body + String(Vectors.idCheck(body)), type: .resident_id, valid: false, why: "birth before 1900"))
        }
        for _ in 0..<5 {
            let id = Vectors.residentID(&rng)
            let body = String(id.prefix(14)) + "000"
            c.append(Case(value: body + String(Vectors.idCheck(body)), type: .resident_id, valid: false, why: "sequence 000"))
        }
        c.append(Case(value: "320102830215000", type: .resident_id, valid: false, why: "legacy sequence 000"))
        // USCC.
        for _ in 0..<30 {
            let u = Vectors.uscc(&rng)
            c.append(Case(value: u, type: .uscc, valid: true, why: "valid USCC"))
            let right = u.last!
            let wrong = Vectors.usccAlphabet.first { $0 != right && !$0.isNumber }!
            c.append(Case(value: String(u.dropLast()) + String(wrong), type: .uscc, valid: false, why: "USCC wrong check"))
        }
        for _ in 0..<10 {
            let u = Vectors.uscc(&rng)
            c.append(Case(value: u.lowercased(), type: .uscc, valid: true, why: "lower-case USCC"))
            c.append(Case(value: Vectors.usccWithWrongOrgCheck(&rng), type: .uscc, valid: false, why: "USCC whose organization code fails GB 11714"))
        }
        for bad in ["91320102MA1N2B3CIW", "91320102MA1N2B3COW", "91320102MA1N2B3CSW", "91320102MA1N2B3CZW"] {
            c.append(Case(value: bad, type: nil, valid: false, why: "USCC with a letter outside the alphabet"))
        }
        // Bank cards.
        for len in [16, 19] {
            for _ in 0..<15 {
                let card = Vectors.bankCard(&rng, length: len)
                c.append(Case(value: card, type: .bank_card, valid: true, why: "valid \(len)-digit card"))
                c.append(Case(value: Vectors.wrongLuhn(card), type: .bank_card, valid: false, why: "card failing Luhn"))
            }
        }
        for _ in 0..<5 {
            let card = Vectors.bankCard(&rng, length: 16)
            let grouped = stride(from: 0, to: 16, by: 4).map { i in String(Array(card)[i..<(i + 4)]) }.joined(separator: " ")
            c.append(Case(value: grouped, type: .bank_card, valid: true, why: "card in groups of four"))
        }
        // Mobile phones.
        for _ in 0..<30 { c.append(Case(value: Vectors.phone(&rng), type: .phone, valid: true, why: "valid mobile")) }
        for _ in 0..<5 {
            let p = Vectors.phone(&rng)
            c.append(Case(value: "+86" + p, type: .phone, valid: true, why: "+86 mobile"))
            c.append(Case(value: "86" + p, type: .phone, valid: true, why: "86 mobile"))
            c.append(Case(value: String(p.prefix(3)) + "-" + String(p.dropFirst(3).prefix(4)) + "-" + String(p.suffix(4)), type: .phone, valid: true, why: "hyphenated mobile"))
            c.append(Case(value: Vectors.fullWidth(p), type: .phone, valid: true, why: "full-width mobile"))
            c.append(Case(value: "0086" + p, type: .phone, valid: true, why: "0086 mobile"))
            c.append(Case(value: "+86 " + String(p.prefix(3)) + " " + String(p.dropFirst(3).prefix(4)) + " " + String(p.suffix(4)), type: .phone, valid: true, why: "+86 mobile in groups"))
            c.append(Case(value: "0086-" + p, type: .phone, valid: true, why: "0086- mobile"))
        }
        for segment in Vectors.unallocated {
            c.append(Case(value: segment + rng.digits(8), type: .phone, valid: false, why: "unallocated segment \(segment)"))
        }
        for second in ["0", "1", "2"] {
            for _ in 0..<3 { c.append(Case(value: "1" + second + rng.digits(9), type: .phone, valid: false, why: "mobile prefix 1\(second)")) }
        }
        // Landlines.
        for v in ["025-83123456", "010-62345678", "0512-65123456", "(025)83123456", "02583123456", "0755 2345 6789", "021-5123456"] {
            c.append(Case(value: v, type: .landline, valid: true, why: "landline"))
        }
        for v in ["025-0312345", "025-831234", "0512-651234567"] {
            c.append(Case(value: v, type: .landline, valid: false, why: "bad landline"))
        }
        // Email.
        for v in ["zhang.san@example.com", "li_si+news@gov.cn", "a1@mail.jiangsu.gov.cn", "WANG@EXAMPLE.ORG", "x-y@a-b.com.cn",
                  "ｔｅｓｔ＠ｅｘａｍｐｌｅ．ｃｏｍ"] {
            c.append(Case(value: v, type: .email, valid: true, why: "email"))
        }
        let local64 = String(repeating: "a", count: 64)
        for v in ["first.middle.last@example.com", "o'brien@example.ie", "user+tag@example.com", "\"john doe\"@example.com",
                  "\"a\\\"b@c\"@example.org", "x!#$%&*/=?^_`{|}~-@example.net", local64 + "@example.com", "u@" + String(repeating: "d", count: 63) + ".cn"] {
            c.append(Case(value: v, type: .email, valid: true, why: "email (RFC 5321)"))
        }
        for v in [local64 + "a@example.com", "a..b@example.com", ".a@example.com", "a.@example.com", "\"unclosed@example.com",
                  "u@" + String(repeating: "d", count: 64) + ".cn", "u@-bad.cn", "u@bad-.cn", "u@" + String(repeating: "a.", count: 130) + "cn"] {
            c.append(Case(value: v, type: .email, valid: false, why: "email over RFC 5321's limits or malformed"))
        }
        for v in ["zhang@example", "@example.com", "zhang..@example.com", "zhang@exa mple.com", "zhang@.com", "张三@example.com", "a@b.c1"] {
            c.append(Case(value: v, type: .email, valid: false, why: "bad email"))
        }
        // IP addresses.
        for v in ["192.168.1.1", "10.0.0.255", "8.8.8.8", "2001:db8::1", "::1", "fe80::1ff:fe23:4567:890a", "2001:0db8:0000:0000:0000:ff00:0042:8329"] {
            c.append(Case(value: v, type: .ip, valid: true, why: "ip"))
        }
        for v in ["fe80::1%eth0", "fe80::1ff:fe23:4567:890a%3", "fe80::a%en0.1"] {
            c.append(Case(value: v, type: .ip, valid: true, why: "IPv6 with a zone id"))
        }
        for v in ["256.1.1.1", "01.2.3.4", "1.2.3.999", "2001:db8:::1", "1:2:3:4:5:6:7:8:9"] {
            c.append(Case(value: v, type: .ip, valid: false, why: "bad ip"))
        }
        // Plates.
        for v in ["苏A12345", "京B8Q2M1", "沪AD12345", "粤B12345F", "苏A1234学", "苏E·12345", "川AF98765", "苏a12345", "京b8q2m1", "沪ad12345"] {
            c.append(Case(value: v, type: .license_plate, valid: true, why: "plate"))
        }
        for v in ["苏I12345", "苏A1234", "苏A123456", "苏AO2345", "苏AX12345"] {
            c.append(Case(value: v, type: .license_plate, valid: false, why: "bad plate"))
        }
        // Passports.
        for v in ["E12345678", "EA1234567", "G12345678", "D12345678", "S12345678", "P12345678", "e12345678", "ea1234567", "g12345678"] {
            c.append(Case(value: v, type: .passport, valid: true, why: "passport"))
        }
        for v in ["EI1234567", "X12345678", "EO1234567"] {
            c.append(Case(value: v, type: .passport, valid: false, why: "bad passport"))
        }
        // Not personal formats.
        for v in ["", "   ", "hello", "张三", "江苏省南京市玄武区", "2026-06-01", "100", "3.14", "12345", "abc123", "13812",
                  "123456789012", "N/A", "-"] {
            c.append(Case(value: v, type: nil, valid: false, why: "not a personal format"))
        }
        return c
    }()

    @Test func theSuiteHasAtLeast300CasesCoveringEveryFormat() {
        #expect(Self.cases.count >= 300)
        let types = Set(Self.cases.compactMap(\.type))
        #expect(types == [.resident_id, .uscc, .bank_card, .phone, .landline, .email, .ip, .license_plate, .passport])
        #expect(Self.cases.contains { !$0.valid && $0.type != nil })
    }

    @Test func everyCaseIsDetectedAsLabelled() {
        var wrong: [String] = []
        for c in Self.cases {
            let d = Detector.detect(c.value)
            if d.type != c.type || d.valid != c.valid {
                wrong.append("\(c) → got \(d.type?.rawValue ?? "nil")/\(d.valid)")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong:\n\(wrong.prefix(20).joined(separator: "\n"))")
    }

    @Test func precisionAndRecallAreOneForEveryType() {
        for type in SemanticType.allCases {
            var tp = 0, fp = 0, fn = 0
            for c in Self.cases {
                let d = Detector.detect(c.value)
                let predicted = d.type == type && d.valid
                let actual = c.type == type && c.valid
                if predicted && actual { tp += 1 } else if predicted { fp += 1 } else if actual { fn += 1 }
            }
            if tp + fn == 0 { continue }
            #expect(fp == 0 && fn == 0, "\(type): precision \(Double(tp) / Double(max(tp + fp, 1))), recall \(Double(tp) / Double(tp + fn))")
        }
    }

    @Test func isValidAgreesWithTheDetectorForValidValues() {
        for c in Self.cases where c.valid {
            #expect(Detector.isValid(c.value, as: c.type!), "\(c)")
        }
    }
}
