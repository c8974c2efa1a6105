import Foundation
import KaifangCore

/// A department (省级部门, a city, a county's bureau): it owns the datasets whose manifest names
/// it in `department`, and its publishers and reviewers act on those alone. A department may sit
/// under a parent (province → city → county); the parent is for grouping, not for authority.
public struct DepartmentRecord: Sendable, Equatable {
    /// The name as manifests write it in `department` (for example 省民政厅).
    public var name: String
    public var parent: String?
    public var createdAt: String
    public var createdBy: String

    package init(name: String, parent: String?, createdAt: String, createdBy: String) {
        self.name = name; self.parent = parent; self.createdAt = createdAt; self.createdBy = createdBy
    }
}

/// The upload a version answers: the key that sent it and the `Idempotency-Key` it carried. A
/// second upload with the same pair gets the first one's version instead of making another.
public struct UploadKey: Sendable, Equatable {
    public var keyID: String
    public var idempotencyKey: String

    public init(keyID: String, idempotencyKey: String) {
        self.keyID = keyID; self.idempotencyKey = idempotencyKey
    }
}

extension CatalogRules {
    /// A department's name, trimmed: 1–100 characters, no control characters.
    /// - Throws: `KaifangError.badInput` saying what a name may be.
    package static func departmentName(_ name: String, what: String = "the department's name") throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.count <= 100, !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw KaifangError.badInput("\(what) must be 1–100 characters without control characters, as manifests write it in \"department\" (for example 省民政厅)")
        }
        return trimmed
    }

    /// Checks that a key's role and department go together: publishers and reviewers name one,
    /// no other role does.
    /// - Throws: `KaifangError.badInput` saying which option to give or drop.
    package static func checkKeyDepartment(role: Role, department: String?) throws {
        if role.isDepartmental && department == nil {
            throw KaifangError.badInput("a \(role.rawValue)'s key belongs to a department: give --department NAME (`kaifang department list` shows them)")
        }
        if !role.isDepartmental && department != nil {
            throw KaifangError.badInput("only publishers' and reviewers' keys belong to a department: drop --department for a \(role.rawValue)'s key")
        }
    }

    package static func unknownDepartment(_ name: String) -> KaifangError {
        KaifangError.notFound("no department '\(name)': `kaifang department list` shows them, `kaifang department add NAME` makes one")
    }

    package static func duplicateDepartment(_ name: String) -> KaifangError {
        KaifangError.conflict("department '\(name)' exists already: `kaifang department list` shows it")
    }

    /// An `Idempotency-Key`: 1–200 visible ASCII characters.
    /// - Throws: `KaifangError.badInput`.
    package static func idempotencyKey(_ key: String) throws -> String {
        guard (1...200).contains(key.utf8.count), key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw KaifangError.badInput("Idempotency-Key must be 1–200 visible ASCII characters (a UUID is usual); send the same one when you retry the upload")
        }
        return key
    }

    package static func uploadKeyUsed(_ key: UploadKey, version: Int) -> KaifangError {
        KaifangError.conflict("Idempotency-Key '\(key.idempotencyKey)' of this key already made version \(version)")
    }
}
