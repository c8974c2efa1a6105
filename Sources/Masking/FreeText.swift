import KaifangCore

/// Masks what identifies a person in free text written by users (a data request, a comment): each
/// run of ASCII letters, digits and `@._+-()` that the detector takes for a resident ID, passport,
/// phone or landline number, e-mail address or bank card number is replaced by `〔已脱敏〕`, and so
/// is a name in Chinese characters written after a label that introduces one (姓名, 联系人, 户主,
/// 名叫 …). A name standing alone in a sentence is not found: a text is masked by what it shows,
/// not by what a reader might infer.
public enum FreeText {
    public static let mark = "〔已脱敏〕"

    static let masked: Set<SemanticType> = [.resident_id, .passport, .phone, .landline, .email, .bank_card]

    /// Words after which a name follows.
    static let nameLabels: [[Character]] = ["姓名", "名叫", "叫做", "户主", "当事人", "患者", "联系人", "申请人", "家属", "监护人"].map(Array.init)
    /// Words that, right after a label, say it labels something other than a name (联系人电话).
    static let notNames: [[Character]] = ["电话", "手机", "邮箱", "地址", "信息", "身份", "证件", "单位", "姓名", "名称", "名单", "情况", "数据",
                                          "年龄", "性别", "数量", "人数", "所在", "的", "和", "及", "或", "等", "是否", "须", "需", "应"].map(Array.init)

    /// The text with each identifying run replaced, and whether any was.
    public static func mask(_ text: String) -> (text: String, masked: Bool) {
        let (ids, foundIDs) = maskIdentifiers(text)
        let (out, foundNames) = maskLabelledNames(ids)
        return (out, foundIDs || foundNames)
    }

    /// A run of up to four Chinese characters after a name label (skipping `：`, `:`, `是`, `为`,
    /// `叫` and spaces), cut where a word that is not a name starts, is masked when two or more
    /// characters remain; a longer run has its first three masked.
    static func maskLabelledNames(_ text: String) -> (String, Bool) {
        let chars = Array(text)
        func starts(_ word: [Character], at i: Int) -> Bool { i + word.count <= chars.count && Array(chars[i..<(i + word.count)]) == word }
        func isHan(_ c: Character) -> Bool {
            guard let u = c.unicodeScalars.first, c.unicodeScalars.count == 1 else { return false }
            return (0x4E00...0x9FFF).contains(u.value) || (0x3400...0x4DBF).contains(u.value) || c == "·"
        }
        var out: [Character] = []
        out.reserveCapacity(chars.count)
        var found = false, i = 0
        while i < chars.count {
            guard let label = nameLabels.first(where: { starts($0, at: i) }) else { out.append(chars[i]); i += 1; continue }
            out.append(contentsOf: label)
            i += label.count
            var skipped = 0
            while i < chars.count && skipped < 3 && "：:是为叫 ".contains(chars[i]) { out.append(chars[i]); i += 1; skipped += 1 }
            var end = i
            while end < chars.count && isHan(chars[end]) && !notNames.contains(where: { starts($0, at: end) }) && !nameLabels.contains(where: { starts($0, at: end) }) {
                end += 1
            }
            let run = end - i
            if run >= 2 {
                out.append(contentsOf: mark)
                i += run <= 4 ? run : 3
                found = true
            }
        }
        return (found ? String(out) : text, found)
    }

    static func maskIdentifiers(_ text: String) -> (text: String, masked: Bool) {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var found = false
        var i = 0
        while i < bytes.count {
            guard isTokenByte(bytes[i]) else { out.append(bytes[i]); i += 1; continue }
            var j = i
            while j < bytes.count && isTokenByte(bytes[j]) { j += 1 }
            // Trailing punctuation (a full stop after a number) is not part of the token.
            var end = j
            while end > i && (bytes[end - 1] == 0x2E || bytes[end - 1] == 0x2D) { end -= 1 }
            let token = String(decoding: bytes[i..<end], as: UTF8.self)
            let digits = bytes[i..<end].filter { $0 >= 0x30 && $0 <= 0x39 }.count
            if (digits >= 6 || token.contains("@")), let type = Detector.detect(token).type, masked.contains(type) {
                out.append(contentsOf: mark.utf8)
                found = true
            } else {
                out.append(contentsOf: bytes[i..<end])
            }
            out.append(contentsOf: bytes[end..<j])
            i = j
        }
        return found ? (String(decoding: out, as: UTF8.self), true) : (text, false)
    }

    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x40, 0x2E, 0x5F, 0x2B, 0x2D, 0x28, 0x29: true
        default: false
        }
    }
}
