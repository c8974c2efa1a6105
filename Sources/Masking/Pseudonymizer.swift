import Crypto
import Foundation
import KaifangCore

/// Keys for pseudonyms, keyed hashes and seeded noise, derived from the platform secret with
/// HKDF-SHA256, one per scope: `license:<id>` (so the same value gets the same token within
/// one license and unlinkable tokens across licenses) or `view:public`.
public struct PseudonymKeys: Sendable {
    private let secret: SymmetricKey

    /// Wraps the platform secret (`secret.key`).
    public init(secret: SymmetricKey) { self.secret = secret }

    /// The key of a scope.
    public func key(scope: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: secret, salt: Data("kaifang-pseudonym-v1".utf8),
                               info: Data(scope.utf8), outputByteCount: 32)
    }

    /// The scope of a view for a license (nil license: a steward preview of the view).
    public static func scope(view: View, licenseID: String?) -> String {
        if let licenseID { return "license:\(licenseID)" }
        return "view:\(view.rawValue)"
    }
}

/// Token prefixes by semantic type: a pseudonym says what it stands for.
public enum TokenPrefix {
    public static func of(_ semantic: SemanticType?) -> String {
        switch semantic {
        case .resident_id?: "pid_"
        case .phone?, .landline?: "tel_"
        case .person_name?: "name_"
        case .address?: "addr_"
        case .email?: "mail_"
        case .bank_card?: "card_"
        case .passport?: "pp_"
        case .license_plate?: "plate_"
        case .ip?: "ip_"
        case .uscc?: "org_"
        case .identifier?: "id_"
        default: "tok_"
        }
    }
}

enum Base32 {
    static let alphabet: [UInt8] = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// Appends the lower-case base32 (RFC 4648, no padding) of `bytes` to `out`.
    static func append<D: Sequence>(_ bytes: D, to out: inout ByteBuilder) where D.Element == UInt8 {
        var buffer: UInt32 = 0
        var bits = 0
        for b in bytes {
            buffer = (buffer << 8) | UInt32(b)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
    }
}
