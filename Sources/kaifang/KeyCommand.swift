import ArgumentParser
import Foundation
import KaifangCore
import Storage

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "key", abstract: "Create, list and revoke API keys.",
                                                    subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an API key; it is shown once and only its hash is stored.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "developer, partner, steward (the platform's administrator), publisher or reviewer (of a department), or security.") var role: String
        @Option(help: "Who the key is for (a person or an organization), or the application it serves.") var name: String
        @Option(help: "The account that holds the key (`kaifang account list`); its tier sets the key's limits.") var account: String?
        @Option(help: "The department a publisher's or reviewer's key acts for (`kaifang department list`).") var department: String?

        func validate() throws {
            guard Role(rawValue: role) != nil else {
                throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            let catalog = try openCatalog(global)
            let (record, key) = try catalog.createKey(role: Role(rawValue: role)!, name: name, account: account, department: department, actor: cliActor)
            if global.json {
                try printJSON(["id": record.id, "role": role, "name": record.name, "department": record.department ?? "", "key": key])
            } else {
                print(key)
                let of = record.department.map { " of \($0)" } ?? ""
                FileHandle.standardError.write(Data("Created \(role) key \(record.id)\(of) for \(record.name). This is the only time the key is shown: store it now.\nUse it as: curl -H 'Authorization: Bearer \(key)' …\n".utf8))
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List keys (ids, roles, names; never secrets).")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let keys = try openCatalog(global).keys()
            if global.json {
                try printJSON(keys.map { ["id": $0.id, "role": $0.role.rawValue, "name": $0.name, "account": $0.accountID ?? "", "department": $0.department ?? "",
                                          "created_at": $0.createdAt, "revoked_at": $0.revokedAt ?? ""] })
                return
            }
            printTable(["id", "role", "name", "account", "department", "created", "revoked"],
                       keys.map { [$0.id, $0.role.rawValue, $0.name, $0.accountID ?? "", $0.department ?? "", $0.createdAt, $0.revokedAt ?? ""] })
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a key; it fails from its next request on.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The key id (the 8 hex characters after kf_).") var id: String

        func run() throws {
            try openCatalog(global).revokeKey(id, actor: cliActor)
            if global.json { try printJSON(["id": id, "revoked": "true"]) } else { print("Revoked key \(id).") }
        }
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Verify and read the hash-chained audit log.",
                                                    subcommands: [Verify.self, Head.self, Tail.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "verify", abstract: "Recompute the hash chain and check it against its anchors; exit 1 naming the first broken event.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "A head kept outside the data directory, as printed by `audit head`: SEQ:HASH (repeatable).") var anchor: [String] = []

        func run() throws {
            let anchors = try anchor.map { a throws -> (seq: Int64, hash: String) in
                let parts = a.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, let seq = Int64(parts[0]), parts[1].count == 64 else {
                    throw KaifangError.badInput("--anchor must be SEQ:HASH as `kaifang audit head` prints it, e.g. 42:9f86d0…")
                }
                return (seq, String(parts[1]))
            }
            switch try openCatalog(global).verifyAudit(anchors: anchors) {
            case .intact(let count, let head):
                if global.json { try printJSON(["status": "intact", "events": String(count), "head": head]) }
                else { print("Audit chain intact: \(count) events, head \(head.prefix(16))….") }
            case .broken(let seq, let reason):
                if global.json { try printJSON(["status": "broken", "seq": String(seq), "reason": reason]) }
                throw KaifangError.runtime("audit chain broken at event \(seq): \(reason)")
            }
        }
    }

    struct Head: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "head", abstract: "Print the chain's head (SEQ:HASH): keep it outside the data directory and pass it to `audit verify --anchor`.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            guard let head = try openCatalog(global).auditHead() else { throw KaifangError.notFound("the audit log is empty") }
            if global.json { try printJSON(["seq": String(head.seq), "hash": head.hash]) } else { print("\(head.seq):\(head.hash)") }
        }
    }

    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tail", abstract: "Show the newest audit events.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only events about this dataset.") var dataset: String?
        @Option(help: "Only events by this key id.") var key: String?
        @Option(name: .shortAndLong, help: "How many events.") var n: Int = 20

        func run() throws {
            let events = try openCatalog(global).auditEvents(dataset: dataset, actor: key.map { "key:\($0)" }, limit: max(1, n))
            for e in events {
                let line = "\(e.event.seq)  \(e.event.at)  \(e.event.actor)  \(e.event.action)  \(e.event.dataset ?? "-")  \(Audit.JSONValue.object(e.event.detail).canonical)"
                print(line)
            }
        }
    }
}

import Audit
