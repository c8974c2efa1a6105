import ArgumentParser
import Foundation
import KaifangCore
import Storage

struct ApplicationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "application", abstract: "Review applications for conditional data (有条件开放).",
                                                    subcommands: [List.self, Approve.self, Reject.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List applications, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only pending, approved or rejected.") var status: String?

        func run() throws {
            let apps = try openCatalog(global).applications(status: status)
            if global.json {
                try printJSON(apps.map { ["id": String($0.id), "dataset": $0.dataset, "key_id": $0.keyID, "purpose": $0.purpose, "fields": $0.fields.joined(separator: ","),
                                          "use": $0.use.rawValue, "duration_days": String($0.durationDays), "status": $0.status, "license": $0.licenseID ?? "", "created_at": $0.createdAt] })
                return
            }
            if apps.isEmpty { print("No applications\(status.map { " with status \($0)" } ?? "")."); return }
            printTable(["id", "status", "dataset", "key", "use", "days", "fields", "purpose"], apps.map {
                [String($0.id), $0.status, $0.dataset, $0.keyID, $0.use.rawValue, String($0.durationDays), $0.fields.isEmpty ? "all" : $0.fields.joined(separator: ","), String($0.purpose.prefix(40))]
            })
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "approve", abstract: "Approve an application and grant its license.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The application id.") var id: Int64
        @Option(help: "Last day of the license, YYYY-MM-DD (default: the requested duration from now).") var expires: String?
        @Option(help: "Grant only these fields, comma-separated (default: those requested).") var fields: String?
        @Option(help: "rows or sandbox (default: as requested).") var use: String?

        func validate() throws {
            if let use, LicenseUse(rawValue: use) == nil { throw ValidationError("--use must be rows or sandbox") }
            if let expires, Self.endOfDay(expires) == nil { throw ValidationError("--expires must be a date YYYY-MM-DD") }
        }

        static func endOfDay(_ s: String) -> Date? {
            let f = DateFormatter()
            f.dateFormat = "yyyy-MM-dd"
            f.timeZone = TimeZone(identifier: "Asia/Shanghai")
            guard let d = f.date(from: s) else { return nil }
            return d.addingTimeInterval(86_399)
        }

        func run() throws {
            let l = try openCatalog(global).approve(application: id, expires: expires.flatMap(Self.endOfDay),
                                                    fields: fields.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } },
                                                    use: use.flatMap(LicenseUse.init(rawValue:)), actor: cliActor)
            if global.json { try printJSON(["license": l.id, "dataset": l.dataset, "key_id": l.keyID, "expires_at": l.expiresAt]); return }
            print("Approved application \(id): license \(l.id) lets key \(l.keyID) \(l.use == .rows ? "read" : "run sandbox jobs over") \(l.dataset) (\(l.fields.isEmpty ? "all fields" : l.fields.joined(separator: ", "))) until \(l.expiresAt).")
        }
    }

    struct Reject: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reject", abstract: "Reject an application with a reason the applicant sees.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The application id.") var id: Int64
        @Option(help: "Why (shown to the applicant).") var reason: String

        func run() throws {
            try openCatalog(global).reject(application: id, reason: reason, actor: cliActor)
            if global.json { try printJSON(["application": String(id), "status": "rejected"]) } else { print("Rejected application \(id).") }
        }
    }
}

struct LicenseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "license", abstract: "List, grant and revoke licenses.", subcommands: [List.self, Grant.self, Revoke.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List licenses, newest first.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let ls = try openCatalog(global).licenses()
            let now = AuditNow.string
            if global.json {
                try printJSON(ls.map { ["id": $0.id, "dataset": $0.dataset, "key_id": $0.keyID, "use": $0.use.rawValue, "fields": $0.fields.joined(separator: ","),
                                        "expires_at": $0.expiresAt, "revoked_at": $0.revokedAt ?? "", "active": String($0.isActive(at: now))] })
                return
            }
            if ls.isEmpty { print("No licenses."); return }
            printTable(["id", "dataset", "key", "use", "fields", "expires", "state"], ls.map {
                [$0.id, $0.dataset, $0.keyID, $0.use.rawValue, $0.fields.isEmpty ? "all" : $0.fields.joined(separator: ","), $0.expiresAt,
                 $0.revokedAt != nil ? "revoked" : ($0.isActive(at: now) ? "active" : "expired")]
            })
        }
    }

    struct Grant: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "grant", abstract: "Grant a license directly (an application approved at once, e.g. after an offline agreement).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The key id (kf_…'s id part) that receives the license.") var key: String
        @Option(help: "The dataset id.") var dataset: String
        @Option(help: "rows or sandbox.") var use: String
        @Option(help: "What the data is for (at least 10 characters; recorded).") var purpose: String
        @Option(help: "Only these fields, comma-separated (default: all).") var fields: String?
        @Option(help: "Days the license lasts (1–366).") var days: Int = 90

        func validate() throws {
            if LicenseUse(rawValue: use) == nil { throw ValidationError("--use must be rows or sandbox") }
        }

        func run() throws {
            let catalog = try openCatalog(global)
            let list = fields.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            let app = try catalog.createApplication(keyID: key, dataset: dataset, purpose: purpose, fields: list, use: LicenseUse(rawValue: use)!, durationDays: days)
            let l = try catalog.approve(application: app.id, actor: cliActor)
            if global.json { try printJSON(["license": l.id, "dataset": l.dataset, "key_id": l.keyID, "use": l.use.rawValue, "expires_at": l.expiresAt]); return }
            print("Granted license \(l.id): key \(l.keyID) may \(l.use == .rows ? "read" : "run sandbox jobs over") \(l.dataset) (\(l.fields.isEmpty ? "all fields" : l.fields.joined(separator: ", "))) until \(l.expiresAt).")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a license; it stops working on the next request.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The license id (lic_…).") var id: String

        func run() throws {
            try openCatalog(global).revokeLicense(id, actor: cliActor)
            if global.json { try printJSON(["license": id, "revoked": "true"]) } else { print("Revoked license \(id).") }
        }
    }
}

import Audit
enum AuditNow { static var string: String { AuditChain.timestamp() } }
