import Audit
import Foundation
import KaifangCore

/// Where a data request (数据需求) stands. A request is filed `open`; the department it is
/// addressed to accepts it onto its demand list (需求清单) or declines it with a reason, and
/// fulfils it by naming the published dataset that answers it. Its filer may withdraw it while it
/// is open or accepted. Nothing is deleted: every state stays, marked.
public enum RequestStatus: String, Sendable, CaseIterable, Codable {
    case open, accepted, fulfilled, declined, withdrawn

    /// Whether the request has been decided (it takes no further answer but comments).
    public var isClosed: Bool { self == .fulfilled || self == .declined || self == .withdrawn }

    /// Whether its data items are on the department's demand list (accepted, or fulfilled).
    public var isOnDemandList: Bool { self == .accepted || self == .fulfilled }
}

/// A data request as filed: what data, which data items (fields), what for, and which
/// department is asked.
public struct NewDataRequest: Sendable, Equatable {
    public var title: String
    public var items: [String]
    public var purpose: String
    public var department: String
    /// The day by which the department answers (`YYYY-MM-DD`).
    public var due: String
    public var filerKey: String

    public init(title: String, items: [String], purpose: String, department: String, due: String, filerKey: String) {
        self.title = title; self.items = items; self.purpose = purpose; self.department = department; self.due = due; self.filerKey = filerKey
    }
}

/// One request on the public board, with its votes and the department's answer.
public struct DataRequestRecord: Sendable, Equatable {
    public var id: Int64
    public var title: String
    public var items: [String]
    public var purpose: String
    public var department: String
    public var status: RequestStatus
    public var filedBy: String
    public var filedAt: String
    public var due: String
    /// The department's latest reply.
    public var reply: String?
    public var repliedAt: String?
    /// When it was first accepted, declined or fulfilled: the answer that `due` is for.
    public var answeredAt: String?
    public var closedAt: String?
    /// Why it was declined or withdrawn.
    public var reason: String?
    /// The dataset and version that fulfil it, and which of its items they deliver.
    public var dataset: String?
    public var version: Int?
    public var delivered: [String]
    public var votes: Int
    public var comments: Int

    package init(id: Int64, title: String, items: [String], purpose: String, department: String, status: RequestStatus, filedBy: String,
                 filedAt: String, due: String, reply: String?, repliedAt: String?, answeredAt: String?, closedAt: String?, reason: String?,
                 dataset: String?, version: Int?, delivered: [String], votes: Int, comments: Int) {
        self.id = id; self.title = title; self.items = items; self.purpose = purpose; self.department = department; self.status = status
        self.filedBy = filedBy; self.filedAt = filedAt; self.due = due; self.reply = reply; self.repliedAt = repliedAt
        self.answeredAt = answeredAt; self.closedAt = closedAt; self.reason = reason; self.dataset = dataset; self.version = version
        self.delivered = delivered; self.votes = votes; self.comments = comments
    }

    /// Still unanswered (open) after the end of its due day, as of `today` (`YYYY-MM-DD`).
    public func isOverdue(today: String) -> Bool { status == .open && today > due }

    /// Whether its answer came by the end of its due day (nil while unanswered).
    public var answeredOnTime: Bool? { answeredAt.map { String($0.prefix(10)) <= due } }
}

/// A comment on a request: from its department's people (`fromDepartment`) or from anyone with a key.
public struct RequestComment: Sendable, Equatable {
    public var id: Int64
    public var request: Int64
    public var keyID: String
    public var role: Role
    public var fromDepartment: Bool
    public var text: String
    public var at: String

    package init(id: Int64, request: Int64, keyID: String, role: Role, fromDepartment: Bool, text: String, at: String) {
        self.id = id; self.request = request; self.keyID = keyID; self.role = role; self.fromDepartment = fromDepartment; self.text = text; self.at = at
    }
}

/// What the addressed department (or a steward) does with a request, or its filer.
public enum RequestAnswer: Sendable, Equatable {
    /// A reply without a change of status.
    case reply(String)
    /// On the demand list; a reply may go with it.
    case accept(String?)
    case decline(reason: String)
    /// Answered by a published dataset (its published version when `version` is nil).
    case fulfil(dataset: String, version: Int?, reply: String?)
    /// By its filer only.
    case withdraw(reason: String?)

    public var action: String {
        switch self {
        case .reply: "reply"
        case .accept: "accept"
        case .decline: "decline"
        case .fulfil: "fulfil"
        case .withdraw: "withdraw"
        }
    }
}

extension CatalogRules {
    /// Limits of a request's texts, in characters.
    public static let requestTitleLimit = 200
    public static let requestItemLimit = 100
    public static let requestItemsLimit = 50
    public static let requestTextLimit = 2000

    /// Checks a text field: trimmed, 1…`limit` characters.
    /// - Throws: `KaifangError.badInput` naming the field and its limit.
    package static func requestText(_ text: String, what: String, limit: Int = requestTextLimit) throws -> String {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !t.isEmpty else { throw KaifangError.badInput("\(what) is empty: write 1–\(limit) characters") }
        guard t.count <= limit else { throw KaifangError.badInput("\(what) has \(t.count) characters: at most \(limit) are taken") }
        return t
    }

    /// Checks a new request, returning it trimmed (items without repeats, in order).
    /// - Throws: `KaifangError.badInput` naming the field.
    package static func checkRequest(_ r: NewDataRequest) throws -> NewDataRequest {
        var c = r
        c.title = try requestText(r.title, what: "title", limit: requestTitleLimit)
        c.purpose = try requestText(r.purpose, what: "purpose")
        guard !r.items.isEmpty, r.items.count <= requestItemsLimit else {
            throw KaifangError.badInput("items lists \(r.items.count) data items: name 1–\(requestItemsLimit) (the fields wanted, e.g. 统一社会信用代码)")
        }
        var seen = Set<String>()
        c.items = []
        for (i, item) in r.items.enumerated() {
            let t = try requestText(item, what: "items[\(i)]", limit: requestItemLimit)
            if seen.insert(t.lowercased()).inserted { c.items.append(t) }
        }
        try calendarDay(r.due, what: "due")
        return c
    }

    /// The day `workingDays` working days (Monday to Friday) after `day` (`YYYY-MM-DD`).
    public static func workingDaysAfter(_ day: String, _ workingDays: Int) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let f = DateFormatter()
        f.calendar = cal
        f.timeZone = cal.timeZone
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd"
        guard var date = f.date(from: String(day.prefix(10))) else { return day }
        var left = max(0, workingDays)
        while left > 0 {
            date = cal.date(byAdding: .day, value: 1, to: date)!
            let weekday = cal.component(.weekday, from: date)  // 1 Sunday … 7 Saturday
            if weekday != 1 && weekday != 7 { left -= 1 }
        }
        return f.string(from: date)
    }

    /// The request's data items that `manifest` delivers: those equal (ignoring case and
    /// surrounding space) to a field's name or title.
    public static func deliveredItems(_ items: [String], by manifest: DatasetManifest) -> [String] {
        var names = Set<String>()
        for f in manifest.fields {
            names.insert(f.name.lowercased())
            if let t = f.title?.trimmingCharacters(in: .whitespaces), !t.isEmpty { names.insert(t.lowercased()) }
        }
        return items.filter { names.contains($0.trimmingCharacters(in: .whitespaces).lowercased()) }
    }

    /// The status an answer moves a request to, after checking it may (the filer withdraws;
    /// the department answers; a closed request takes neither).
    /// - Throws: `KaifangError.conflict` saying why not.
    package static func requestTransition(_ r: DataRequestRecord, _ answer: RequestAnswer) throws -> RequestStatus {
        guard !r.status.isClosed else {
            throw KaifangError.conflict("request \(r.id) is \(r.status.rawValue) already: it takes comments only; file a new request for more")
        }
        switch answer {
        case .reply: return r.status
        case .accept:
            guard r.status == .open else { throw KaifangError.conflict("request \(r.id) is accepted already") }
            return .accepted
        case .decline: return .declined
        case .fulfil: return .fulfilled
        case .withdraw: return .withdrawn
        }
    }

    /// Checks an answer's texts, returning it trimmed.
    /// - Throws: `KaifangError.badInput` naming the field.
    package static func checkAnswer(_ a: RequestAnswer) throws -> RequestAnswer {
        func opt(_ t: String?) throws -> String? {
            guard let t, !t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return nil }
            return try requestText(t, what: "text")
        }
        switch a {
        case .reply(let t): return .reply(try requestText(t, what: "text"))
        case .accept(let t): return .accept(try opt(t))
        case .decline(let r): return .decline(reason: try requestText(r, what: "text (the reason for declining)"))
        case .fulfil(let d, let v, let t):
            guard DatasetManifest.isValidID(d) else { throw KaifangError.badInput("dataset '\(d)' is not a dataset id: 1–64 lower-case letters, digits, '-' or '_'") }
            return .fulfil(dataset: d, version: v, reply: try opt(t))
        case .withdraw(let r): return .withdraw(reason: try opt(r))
        }
    }

    package static func noPublishedDataset(_ id: String) -> KaifangError {
        .notFound("no published dataset '\(id)': a request is fulfilled by a dataset published at some tier (`GET /v1/datasets` lists them)")
    }

    /// The version that fulfils: the one given, which must exist and be no newer than the
    /// published one, or the published one.
    /// - Throws: `KaifangError.notFound` for a version not there, `.badInput` for one not yet published.
    package static func fulfillingVersion(_ dataset: String, given: Int?, published: Int?, exists: (Int) throws -> Bool) throws -> Int {
        guard let published else { throw noPublishedDataset(dataset) }
        guard let given else { return published }
        guard try exists(given) else { throw noVersion(dataset, given) }
        guard given <= published else {
            throw KaifangError.badInput("version \(given) of '\(dataset)' is not published (version \(published) is): publish it first, or name the published version")
        }
        return given
    }

    /// The request's items that the dataset delivers.
    /// - Throws: `KaifangError.badInput` when it delivers none, listing its fields.
    package static func delivered(_ r: DataRequestRecord, by manifest: DatasetManifest, dataset: String) throws -> [String] {
        let d = deliveredItems(r.items, by: manifest)
        guard !d.isEmpty else {
            let fields = manifest.fields.map { f in f.title.map { "\(f.name) (\($0))" } ?? f.name }.joined(separator: ", ")
            throw KaifangError.badInput("'\(dataset)' has none of the \(r.items.count) data items request \(r.id) asks for (a field's name or title must equal an item): its fields are \(fields)")
        }
        return d
    }

    /// A request after `answer`, with the detail of its audit event, checking who may give it
    /// and whether it may come now. `fulfilment` looks up a dataset the answer names: its
    /// manifest and the version that fulfils (`fulfillingVersion`).
    /// - Throws: `KaifangError.forbidden` (a withdrawal not by the filer), `.conflict` (closed),
    ///   `.notFound`/`.badInput` from the fulfilment.
    package static func answered(_ r: DataRequestRecord, _ answer: RequestAnswer, keyID: String, now: String,
                                 fulfilment: (_ dataset: String, _ version: Int?) throws -> (DatasetManifest, Int))
        throws -> (record: DataRequestRecord, detail: [String: JSONValue], dataset: String?) {
        if case .withdraw = answer, r.filedBy != keyID {
            throw KaifangError.forbidden("only the key that filed request \(r.id) withdraws it")
        }
        var n = r
        n.status = try requestTransition(r, answer)
        var detail: [String: JSONValue] = ["request": .int(r.id), "status": .string(n.status.rawValue)]
        func reply(_ text: String?) { if let text { n.reply = text; n.repliedAt = now } }
        switch answer {
        case .reply(let text): reply(text)
        case .accept(let text): reply(text)
        case .decline(let reason): n.reason = reason
        case .withdraw(let reason): n.reason = reason ?? n.reason
        case .fulfil(let dataset, let version, let text):
            let (manifest, number) = try fulfilment(dataset, version)
            n.dataset = dataset
            n.version = number
            n.delivered = try delivered(r, by: manifest, dataset: dataset)
            reply(text)
            detail["version"] = .int(Int64(number))
            detail["delivered"] = .int(Int64(n.delivered.count))
            detail["items"] = .int(Int64(r.items.count))
        }
        if n.status != r.status {
            if n.status != .withdrawn && n.answeredAt == nil { n.answeredAt = now }
            if n.status.isClosed { n.closedAt = now }
        }
        return (n, detail, n.dataset == r.dataset ? nil : n.dataset)
    }

    package static func unknownRequest(_ id: Int64) -> KaifangError {
        KaifangError.notFound("no data request \(id): `GET /v1/requests` (or `kaifang request list`) shows them")
    }

    /// The SQL of a request row with its votes and comments counted; the same text runs on both stores.
    package static let requestSelect = """
        SELECT r.*, (SELECT count(*) FROM request_votes v WHERE v.request_id = r.id) AS votes,
               (SELECT count(*) FROM request_comments c WHERE c.request_id = r.id) AS comments
        FROM data_requests r
        """

    /// A list of data items as stored (a JSON array of strings).
    package static func itemsJSON(_ items: [String]) -> String {
        String(decoding: try! JSONEncoder().encode(items), as: UTF8.self)
    }

    package static func items(fromJSON text: String?) -> [String] {
        guard let text else { return [] }
        return (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }
}

/// Data requests and their answers, for the platform (`department` "") or one department.
public struct DemandFigures: Sendable, Equatable {
    public var department: String
    /// Requests filed, withdrawn ones excluded.
    public var requests = 0
    /// Data items of accepted and fulfilled requests: the demand list (需求清单).
    public var listedItems = 0
    /// Of those, the items the fulfilling datasets deliver.
    public var deliveredItems = 0
    /// Requests accepted, declined or fulfilled, and of those, answered by their due day.
    public var answered = 0
    public var answeredOnTime = 0
    /// Still open after their due day.
    public var overdue = 0

    public init(department: String) { self.department = department }

    /// 按需共享率: delivered items over listed items; nil when nothing is listed.
    public var onDemandRate: Double? { listedItems == 0 ? nil : Double(deliveredItems) / Double(listedItems) }
    /// Answered on time over answered and overdue; nil when both are 0.
    public var onTimeRate: Double? { answered + overdue == 0 ? nil : Double(answeredOnTime) / Double(answered + overdue) }

    /// The platform's figures first, then each department's (by name), as of `today` (`YYYY-MM-DD`).
    public static func of(_ requests: [DataRequestRecord], today: String) -> [DemandFigures] {
        var all = DemandFigures(department: "")
        var by: [String: DemandFigures] = [:]
        for r in requests where r.status != .withdrawn {
            var d = by[r.department] ?? DemandFigures(department: r.department)
            for i in 0..<2 {
                var f = i == 0 ? all : d
                f.requests += 1
                if r.status.isOnDemandList { f.listedItems += r.items.count }
                if r.status == .fulfilled { f.deliveredItems += r.delivered.count }
                if let onTime = r.answeredOnTime {
                    f.answered += 1
                    if onTime { f.answeredOnTime += 1 }
                } else if r.isOverdue(today: today) {
                    f.overdue += 1
                }
                if i == 0 { all = f } else { d = f }
            }
            by[r.department] = d
        }
        return [all] + by.keys.sorted().map { by[$0]! }
    }
}
