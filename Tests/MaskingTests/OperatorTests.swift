import Crypto
import Foundation
import KaifangCore
import Masking
import Testing

/// Type-aware operators, each with its fail-closed behaviour.
@Suite struct OperatorTests {
    static let keys = PseudonymKeys(secret: SymmetricKey(data: Data(repeating: 7, count: 32)))

    func apply(_ value: String, semantic: SemanticType? = nil, type: FieldType = .string, level: Level = .L3,
               view: View = .public, action: ActionName? = nil, qi: Bool = false, name: String = "f",
               min: Double? = nil, max: Double? = nil) -> String? {
        let f = FieldSpec(name: name, type: type, semantic: semantic, level: level, qi: qi, min: min, max: max, action: action)
        let plan = MaskingPlan(manifest: DatasetManifest(id: "t", title: "T", fields: [f]), view: view, keys: Self.keys)
        return plan.apply(column: 0, value, row: 1)
    }

    @Test(arguments: [
        ("320102199003071239", "320102********1239"),
        ("11010519491231002x", "110105********002X"),
        ("３２０１０２１９９００３０７１２３９", "320102********1239"),
        ("320102830307123", "320102*****7123"),
        ("320102199003071238", "******************"),   // wrong check: fully masked
        ("32010219900307123", "******************"),    // wrong length
        ("not an id", "******************"),
    ])
    func residentIDs(value: String, expected: String) {
        #expect(apply(value, semantic: .resident_id, level: .L4, view: .licensed) == expected)
    }

    @Test(arguments: [
        ("13812341234", "138****1234"), ("+8613812341234", "138****1234"), ("138 1234 1234", "138****1234"),
        ("1381234123", "***********"), ("12812341234", "***********"), ("138-abcd-1234", "***********"),
    ])
    func phones(value: String, expected: String) {
        #expect(apply(value, semantic: .phone) == expected)
    }

    @Test(arguments: [
        ("张三", "张*"), ("王小明", "王**"), ("欧阳娜娜", "欧阳**"), ("司马懿", "司马*"), ("诸葛亮", "诸葛*"),
        ("欧阳", "欧*"), ("买买提·艾力", "买*****"), ("John Smith", "J***"), ("张", "*"), ("张3", "***"), ("<script>", "***"),
    ])
    func personNames(value: String, expected: String) {
        #expect(apply(value, semantic: .person_name) == expected)
    }

    /// Every compound surname the operator knows keeps both characters (and only those).
    /// The name mask's fast path (well-formed Han only) against the rule written over Unicode
    /// scalars: random names of Han, compound surnames, middle dots, Latin, digits and
    /// full-width forms.
    @Test func nameMaskMatchesTheRuleOverScalars() {
        let compound = ["欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
                        "夏侯", "轩辕", "令狐", "澹台", "端木", "独孤", "南宫", "西门", "百里", "呼延", "万俟", "单于",
                        "申屠", "太史", "闻人", "钟离", "淳于", "濮阳", "赫连", "拓跋", "第五", "公冶", "宗政", "东郭",
                        "左丘", "司空", "亓官", "仲孙", "鲜于", "段干", "呼衍"]
        let pieces = ["张", "王", "小", "明", "欧", "阳", "司", "马", "东", "方", "娜", "㐀", "·", "A", "b", " ", "'", "3", "３", "Ａ", "，", "😀", "鿿", "豈"]
        func isHan(_ v: UInt32) -> Bool { (0x3400...0x9FFF).contains(v) || (0x20000...0x3134F).contains(v) || (0xF900...0xFAFF).contains(v) }
        func reference(_ value: String) -> String {
            var folded = ByteBuilder()
            var copy = value
            copy.withUTF8 { Normalize.fold($0, into: &folded) }
            let scalars = Array(String(decoding: folded.bytes, as: UTF8.self).unicodeScalars)
            guard (1...30).contains(scalars.count) else { return "***" }
            let allHan = scalars.allSatisfy { isHan($0.value) || $0.value == 0xB7 || $0.value == 0x2022 }
            let allLatin = scalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || " .-'".unicodeScalars.contains($0) }
            guard allHan || allLatin else { return "***" }
            if scalars.count == 1 { return "*" }
            if allLatin { return String(scalars[0]) + "***" }
            let two = String(String.UnicodeScalarView(scalars[0..<2]))
            let kept = scalars.count >= 3 && compound.contains(two) ? 2 : 1
            return String(String.UnicodeScalarView(scalars[0..<kept])) + String(repeating: "*", count: scalars.count - kept)
        }
        var rng = SeededGenerator.announced(#function)
        var values = compound.map { $0 + "娜" } + compound
        for _ in 0..<4000 {
            values.append((0..<Int.random(in: 1...12, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined())
        }
        for value in values {
            #expect(apply(value, semantic: .person_name) == reference(value), "\(value)")
        }
    }

    @Test func everyCompoundSurnameKeepsItsTwoCharacters() {
        let list = ["欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
                    "夏侯", "轩辕", "令狐", "澹台", "端木", "独孤", "南宫", "西门", "百里", "呼延", "万俟", "单于",
                    "申屠", "太史", "闻人", "钟离", "淳于", "濮阳", "赫连", "拓跋", "第五", "公冶", "宗政", "东郭",
                    "左丘", "司空", "亓官", "仲孙", "鲜于", "段干", "呼衍"]
        for s in list {
            #expect(apply(s + "明", semantic: .person_name) == s + "*", "\(s)")
            #expect(apply(s + "小明", semantic: .person_name) == s + "**", "\(s)")
            // The same characters the other way round are no surname: one character kept.
            let reversed = String(s.reversed())
            if !list.contains(reversed) {
                #expect(apply(reversed + "明", semantic: .person_name) == String(reversed.first!) + "**", "\(reversed)")
            }
        }
    }

    @Test func bankCardsEmailsPlatesIPsLandlines() {
        #expect(apply("6222020200112233446", semantic: .bank_card) == "***************3446")
        #expect(apply("6222 0202 0011 2233 446", semantic: .bank_card) == "***************3446")
        #expect(apply("6222020200112233445", semantic: .bank_card) == "****************")
        #expect(apply("zhang.san@example.com", semantic: .email) == "z***@example.com")
        #expect(apply("not-an-email", semantic: .email) == "***")
        #expect(apply("苏A12345", semantic: .license_plate) == "苏A***45")
        #expect(apply("沪AD12345", semantic: .license_plate) == "沪A****45")
        #expect(apply("苏I12345", semantic: .license_plate) == "***")
        #expect(apply("192.168.10.21", semantic: .ip) == "192.168.*.*")
        #expect(apply("2001:db8::1", semantic: .ip) == "2001:db8:*")
        #expect(apply("999.1.1.1", semantic: .ip) == "***")
        #expect(apply("025-83123456", semantic: .landline) == "025-****3456")
        #expect(apply("(0512)65123456", semantic: .landline) == "0512-****3456")
    }

    @Test(arguments: [
        ("江苏省南京市玄武区中山路18号3栋501室", "江苏省南京市玄武区"),
        ("南京市鼓楼区汉中路1号", "南京市鼓楼区"),
        ("内蒙古自治区呼和浩特市新城区", "内蒙古自治区呼和浩特市新城区"),
        ("江苏省苏州市吴中区木渎镇中山路", "江苏省苏州市吴中区"),
        ("江苏省南京市中山路小区5栋", "江苏省南京市"),
        ("苏州工业园区星湖街328号", "苏州工业园区"),
        ("中山路18号", "***"),
        ("18号楼", "***"),
    ])
    func addressesAreCutToTheDistrict(value: String, expected: String) {
        #expect(apply(value, semantic: .address) == expected)
    }

    /// The address cut works on raw bytes and folds only when it meets a full-width form or a
    /// leading space: it must give what folding first and cutting by characters gives.
    @Test func addressCutOnRawBytesMatchesCuttingTheFoldedText() {
        let pieces = ["江苏省", "南京市", "玄武区", "中山路", "18号", "１８号", "３", "栋", "内蒙古", "自治区", "新城区", "镇", "村",
                      " ", "　", "Ａ", "，", "a", "-", "园区", "道里区", "县", "旗", "盟", "州", "😀", "é"]
        let divisions: Set<Unicode.Scalar> = ["省", "市", "区", "县", "旗", "州", "盟"]
        let below: Set<Unicode.Scalar> = ["路", "街", "巷", "弄", "号", "道", "镇", "乡", "村", "组"]
        func reference(_ value: String) -> String {
            var folded = ByteBuilder()
            var copy = value
            copy.withUTF8 { Normalize.fold($0, into: &folded) }
            let text = String(decoding: folded.bytes, as: UTF8.self)
            var cut: String.UnicodeScalarView.Index?
            for (k, i) in zip(0..., text.unicodeScalars.indices) {
                let c = text.unicodeScalars[i]
                if ("0"..."9").contains(c) || below.contains(c) { break }
                if k >= 1 && divisions.contains(c) { cut = text.unicodeScalars.index(after: i) }
            }
            guard let cut else { return "***" }
            return String(text.unicodeScalars[..<cut])
        }
        var rng = SeededGenerator.announced(#function)
        for _ in 0..<3000 {
            let value = (0..<Int.random(in: 1...7, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            #expect(apply(value, semantic: .address) == reference(value), "\(value)")
        }
    }

    @Test func genericMasksKeepTheEnds() {
        #expect(apply("ABCDEFG", semantic: .identifier, action: .mask) == "A*****G")
        #expect(apply("数据开放平台", semantic: .text, action: .mask) == "数****台")
        #expect(apply("AB", semantic: .identifier, action: .mask) == "***")
        #expect(apply("E12345678", semantic: .passport, action: .mask) == "E******78")
    }

    @Test func generalizations() {
        #expect(apply("1990-03-07", type: .date, level: .L2) == "1990-03")
        #expect(apply("1990-03-07", type: .date, level: .L2, qi: true) == "1990")
        #expect(apply("2026-06-01T08:30:00", type: .datetime, level: .L2) == "2026-06-01")
        #expect(apply("37", type: .integer, level: .L2, name: "age") == "35-39")
        #expect(apply("461.21", type: .number, level: .L2) == "400-500")
        #expect(apply("1234", type: .integer, level: .L2) == "1000-2000")
        #expect(apply("-35", type: .number, level: .L2) == "-40--30")
        #expect(apply("0", type: .number, level: .L2) == "0")
        #expect(apply("32.060312,118.796877", semantic: .geo, level: .L2) == "32.06,118.80")
        #expect(apply("江苏省南京市玄武区中山路18号", semantic: .address, level: .L2) == "江苏省南京市玄武区")
    }

    /// A plan whose one column, a number at L2, is banded in the public view.
    static let bandingPlan = MaskingPlan(manifest: DatasetManifest(id: "t", title: "T", fields: [FieldSpec(name: "amount", type: .number, level: .L2)]),
                                         view: .public, keys: keys)

    /// The rows API bands REAL cells from the number itself; it must give what banding the
    /// stored text gives, and fail closed on what is not a finite number.
    @Test func numberBandFromTheNumberMatchesTheText() {
        let plan = Self.bandingPlan
        for v in [461.21, 0, -35, 1234.5, 0.0042, 99.99, 1e20, -0.5, 7] {
            var out = ByteBuilder()
            let kept = plan.applyNumber(column: 0, v, into: &out)
            let text = plan.apply(column: 0, Cell.format(v), row: 1)
            #expect(kept == (text != nil), "\(v)")
            #expect(String(decoding: out.bytes, as: UTF8.self) == (text ?? ""), "\(v)")
        }
        var out = ByteBuilder()
        let infinite = plan.applyNumber(column: 0, .infinity, into: &out)
        let notANumber = plan.applyNumber(column: 0, .nan, into: &out)
        #expect(infinite == false)
        #expect(notANumber == false)
        let kept = MaskingPlan(manifest: DatasetManifest(id: "t", title: "T", fields: [FieldSpec(name: "amount", type: .number, level: .L1)]), view: .public, keys: Self.keys)
        let onText = kept.applyNumber(column: 0, 5, into: &out)
        #expect(onText == nil, "keep works on text")
    }

    /// The band of v is [lo, lo + m) with m the power of ten of v's integer part and lo a
    /// multiple of m: checked over random values of every magnitude from 1 to 1e15, powers of
    /// ten and their neighbours, negative ones included.
    @Test func numberBandsHoldTheirValueAtEveryMagnitude() {
        let plan = Self.bandingPlan
        var rng = SeededGenerator.announced(#function)
        var values: [Double] = []
        for k in 0..<15 {
            let p = pow(10, Double(k))
            values += [p, p.nextUp, p.nextDown, p * 9.999999, p * 5.5, -p, -p * 3.7]
            for _ in 0..<200 { values.append(Double.random(in: p..<(p * 10), using: &rng) * (Bool.random(using: &rng) ? 1 : -1)) }
        }
        var wrong: [String] = []
        for v in values where abs(v) >= 1 && abs(v) < 1e15 {
            var out = ByteBuilder()
            guard plan.applyNumber(column: 0, v, into: &out) == true else { wrong.append("\(v): null"); continue }
            let text = String(decoding: out.bytes, as: UTF8.self)
            // "lo-hi", either may be negative: split at the '-' that follows a digit.
            let chars = Array(text)
            guard let dash = chars.indices.first(where: { $0 > 0 && chars[$0] == "-" && chars[$0 - 1].isNumber }),
                  let lo = Double(String(chars[..<dash])), let hi = Double(String(chars[(dash + 1)...])) else { wrong.append("\(v): \(text)"); continue }
            let m = hi - lo
            let magnitude = pow(10, Double(String(Int64(abs(v))).count - 1))
            if m != magnitude || !(lo <= v && v < hi) || lo.truncatingRemainder(dividingBy: m) != 0 { wrong.append("\(v): \(text)") }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    /// Bands are computed in integers; they must be the bands of the definition in doubles,
    /// ⌊v / m⌋·m to ⌊v / m⌋·m + m with m = 10^⌊log10 |v|⌋, for every magnitude and sign,
    /// exact multiples and fractions just beside them included.
    @Test func numberBandsAreTheBandsOfTheDefinition() {
        let plan = Self.bandingPlan
        var rng = SeededGenerator.announced(#function)
        var values: [Double] = []
        for k in 0..<15 {
            let p = pow(10, Double(k))
            for m in [1.0, 2, 5, 9, 9.5] { values += [p * m, (p * m).nextUp, (p * m).nextDown, -p * m, (-p * m).nextUp, (-p * m).nextDown] }
            for _ in 0..<300 {
                let v = Bool.random(using: &rng) ? Double.random(in: p..<(p * 10), using: &rng) : Double(Int64.random(in: Int64(p)..<Int64(p * 10), using: &rng))
                values.append(Bool.random(using: &rng) ? v : -v)
            }
        }
        var wrong: [String] = []
        for v in values where abs(v) >= 1 && abs(v) < 1e15 {
            // The magnitude by counting, not log10 (which rounds near powers of ten).
            var m = 1.0
            while m * 10 <= abs(v) { m *= 10 }
            let lo = (v / m).rounded(.down) * m
            let expected = "\(Int64(lo))-\(Int64(lo + m))"
            var out = ByteBuilder()
            _ = plan.applyNumber(column: 0, v, into: &out)
            let got = String(decoding: out.bytes, as: UTF8.self)
            if got != expected { wrong.append("\(v): \(got) vs \(expected)") }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    /// Decimal text is banded from its digits (no double): the same band as the number gives,
    /// for every split of up to 15 significant digits between integer part and fraction.
    @Test func numberBandFromTheDigitsMatchesTheNumber() {
        let plan = Self.bandingPlan
        var rng = SeededGenerator.announced(#function)
        var wrong: [String] = []
        for intDigits in 1...15 {
            for fracDigits in 0...(15 - intDigits) {
                for round in 0..<40 {
                    // Leading 9s and trailing 9s find the carries; random digits the rest.
                    let digit = { (i: Int) -> Character in
                        round % 4 == 0 ? "9" : Character(String(Int.random(in: (i == 0 ? 1 : 0)...9, using: &rng)))
                    }
                    var text = String((0..<intDigits).map(digit))
                    if fracDigits > 0 { text += "." + String((0..<fracDigits).map { _ in digit(1) }) }
                    var out = ByteBuilder()
                    _ = plan.applyNumber(column: 0, Double(text)!, into: &out)
                    let fromNumber = String(decoding: out.bytes, as: UTF8.self)
                    let fromText = plan.apply(column: 0, text, row: 1)
                    if fromText != fromNumber { wrong.append("\(text): \(fromText ?? "null") vs \(fromNumber)") }
                }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    @Test func generalizationsFailClosedToNull() {
        #expect(apply("garbage", type: .date, level: .L2) == nil)
        #expect(apply("2026-13-01", type: .date, level: .L2) == nil)
        #expect(apply("12abc", type: .number, level: .L2) == nil)
        #expect(apply("north", semantic: .geo, level: .L2) == nil)
        // Generalizing free text has nothing to act on: suppressed.
        #expect(apply("hello", semantic: .text, level: .L2, action: .generalize) == nil)
    }

    @Test func suppressionAndTheDefaultMatrix() {
        #expect(apply("320102199003071239", semantic: .resident_id, level: .L4, view: .public) == nil)
        #expect(apply("13812341234", semantic: .phone, level: .L1) == "13812341234")
        #expect(apply("13812341234", semantic: .phone, level: .L3, view: .steward) == "13812341234")
    }

    @Test func noiseIsSeededPerKeyAndRowAndCentredOnTheValue() {
        let a = apply("100", type: .number, level: .L2, action: .noise, min: 0, max: 1000)
        let b = apply("100", type: .number, level: .L2, action: .noise, min: 0, max: 1000)
        #expect(a == b)
        #expect(a != "100.00")
        #expect(abs(Double(a!)! - 100) < 200)
    }

    @Test func keyedOperationsWithoutKeysFailClosed() {
        let f = FieldSpec(name: "p", type: .string, semantic: .phone, level: .L3)
        let plan = MaskingPlan(manifest: DatasetManifest(id: "t", title: "T", fields: [f]), view: .licensed, keys: nil)
        #expect(plan.columns[0].operation == .suppress)
        #expect(plan.apply(column: 0, "13812341234") == nil)
    }
}

/// Pseudonyms: stable within a license, unlinkable across, not a plain hash.
@Suite struct PseudonymTests {
    let keys = PseudonymKeys(secret: SymmetricKey(data: Data((0..<32).map { UInt8($0) })))
    let manifest = DatasetManifest(id: "t", title: "T", fields: [
        FieldSpec(name: "pid", type: .string, semantic: .resident_id, level: .L3),
        FieldSpec(name: "phone", type: .string, semantic: .phone, level: .L3),
    ])

    func token(_ value: String, license: String, column: Int = 0) -> String? {
        MaskingPlan(manifest: manifest, view: .licensed, grant: LicenseGrant(licenseID: license), keys: keys).apply(column: column, value)
    }

    @Test func stableForOneLicenseAndTypePrefixed() {
        let a = token("320102199003071239", license: "L1")
        #expect(a == token("320102199003071239", license: "L1"))
        #expect(a?.hasPrefix("pid_") == true && a?.count == 4 + 16)
        #expect(token("13812341234", license: "L1", column: 1)?.hasPrefix("tel_") == true)
    }

    @Test func normalizedFormsGetTheSameToken() {
        #expect(token("11010519491231002x", license: "L1") == token("11010519491231002X", license: "L1"))
        #expect(token("+86 138 1234 1234", license: "L1", column: 1) == token("13812341234", license: "L1", column: 1))
    }

    @Test func differentAcrossLicensesAndValues() {
        let v = "320102199003071239"
        #expect(token(v, license: "L1") != token(v, license: "L2"))
        #expect(token(v, license: "L1") != token("320102199003071247", license: "L1"))
    }

    @Test func notAPlainHashOfTheValue() {
        let v = "320102199003071239"
        let t = token(v, license: "L1")!
        let body = String(t.dropFirst(4))
        let plainHex = SHA256.hash(data: Array(v.utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(!plainHex.contains(body))
        // Without the platform secret the token cannot be recomputed: another secret gives another token.
        let other = PseudonymKeys(secret: SymmetricKey(data: Data(repeating: 0, count: 32)))
        let t2 = MaskingPlan(manifest: manifest, view: .licensed, grant: LicenseGrant(licenseID: "L1"), keys: other).apply(column: 0, v)
        #expect(t2 != t)
    }

    @Test func aLicenseSeesOnlyItsGrantedFields() {
        let plan = MaskingPlan(manifest: manifest, view: .licensed, grant: LicenseGrant(licenseID: "L1", fields: ["phone"]), keys: keys)
        #expect(plan.columns.map(\.included) == [false, true])
        #expect(plan.apply(row: [.text("320102199003071239"), .text("13812341234")])[0] == .null)
        #expect(plan.maskedFields == ["phone"])
    }
}
