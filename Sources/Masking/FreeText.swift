import KaifangCore

/// Masks what identifies a person in free text written by users (a data request, a comment): each
/// run of ASCII letters, digits and `@._+-()` that the detector takes for a resident ID, passport,
/// phone or landline number, e-mail address or bank card number is replaced by `〔已脱敏〕`.
/// Names written in Chinese are not found this way: a text is masked by what it shows, not by
/// what a reader might infer.
public enum FreeText {
    public static let mark = "〔已脱敏〕"

    static let masked: Set<SemanticType> = [.resident_id, .passport, .phone, .landline, .email, .bank_card]

    /// The text with each identifying run replaced, and whether any was.
    public static func mask(_ text: String) -> (text: String, masked: Bool) {
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
