import Audit
import Foundation
import KaifangAPI
import KaifangCore
import Masking
import Mustache
import Publishing
import Sandbox
import Storage
import Yams
import VersionFormat

/// The web portal: server-rendered pages (Chinese with English), from the templates embedded
/// in the binary. Pages never show more than the API would give the same visitor: the preview
/// is the public view, the field examples show only masked output.
struct Portal: Sendable {
    let library: MustacheLibrary
    let catalog: any CatalogStore
    let stewardship: Stewardship
    let plans: PlanCache

    /// Loads the templates.
    /// - Throws: when a template does not parse (a build error, caught by the tests).
    static func templates() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (path, _) in EmbeddedFiles.base64 where path.hasPrefix("templates/") && path.hasSuffix(".mustache") {
            let name = String(path.dropFirst("templates/".count).dropLast(".mustache".count))
            let text = String(decoding: EmbeddedFiles.data(path) ?? Data(), as: UTF8.self)
            try library.register(text, named: name)
        }
        return library
    }

    func render(_ template: String, _ context: [String: Any]) -> String {
        var c = context
        c["version"] = kaifangVersion
        return library.render(c, withTemplate: template) ?? "<!doctype html><title>Kaifang</title><p>template \(template) missing"
    }

    static func tierLabel(_ tier: Tier?) -> String {
        guard let tier else { return "未发布 unpublished" }
        switch tier {
        case .open: return "无条件开放 open"
        case .conditional: return "有条件开放 conditional"
        case .restricted: return "不予开放 restricted"
        }
    }

    static func encode(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }

    static func day(_ iso: String?) -> String { iso.map { String($0.prefix(10)) } ?? "" }

    // MARK: pages

    func home() throws -> String {
        let stats = try catalog.stats(since: String(AuditTime.now(daysAgo: 30).prefix(10)))
        let figures = try Figures.of(catalog: catalog, today: APIHandler.today)
        let datasets = Dictionary(stats.byDepartment.map { ($0.value, $0.count) }, uniquingKeysWith: +)
        var popular: [[String: Any]] = []
        for r in stats.reads.prefix(5) {
            if let d = try catalog.dataset(r.value), d.isPublished { popular.append(["value": r.value, "count": r.count, "title": d.manifest.title]) }
        }
        let departments = Set(datasets.keys).union(figures.departments).sorted().map { name -> [String: Any] in
            var row = Self.figureContext(figures.of(department: name))
            row["value"] = name
            row["path"] = Self.pathComponent(name)
            row["count"] = datasets[name] ?? 0
            return row
        }
        return render("home", [
            "stats": ["published": stats.published],
            "platform": Self.figureContext(figures.of(department: "")),
            "tiers": stats.byTier.map { ["value": $0.value, "count": $0.count, "label": Self.tierLabel(Tier(rawValue: $0.value))] },
            "departments": departments, "hasDepartments": !departments.isEmpty,
            "popular": popular,
        ])
    }

    /// A department's (or the platform's) figures as pages show them.
    static func figureContext(_ f: (openItems: OpenItemFigures, demand: DemandFigures, feedback: FeedbackFigures, showcases: ShowcaseFigures)) -> [String: Any] {
        ["openRate": percent(f.openItems.openRate), "itemsOpened": f.openItems.itemsOpened, "items": f.openItems.items,
         "onDemandRate": percent(f.demand.onDemandRate), "delivered": f.demand.deliveredItems, "listed": f.demand.listedItems,
         "requests": f.demand.requests, "overdueRequests": f.demand.overdue > 0 ? f.demand.overdue : false, "requestsOnTime": percent(f.demand.onTimeRate),
         "reports": f.feedback.reports, "overdueReports": f.feedback.overdue > 0 ? f.feedback.overdue : false, "reportsOnTime": percent(f.feedback.onTimeRate),
         "ratings": f.feedback.ratings, "meanStars": f.feedback.meanStars.map { String(format: "%.1f", $0) } ?? "—",
         "showcases": f.showcases.approved]
    }

    /// Chinese and English names of the freshness states, for pages.
    static func freshnessLabel(_ f: Freshness) -> String {
        switch f {
        case .fresh: "按时更新 fresh"
        case .due: "待更新 due"
        case .overdue: "逾期 overdue"
        case .delinquent: "严重逾期 delinquent"
        case .unscheduled: "不定期 irregular"
        }
    }

    func catalogPage(q: String?, department: String?, tier: String?, topic: String?, freshness: String? = nil,
                     city: String? = nil, county: String? = nil, cursor: String?) throws -> String {
        let tierValue = tier.flatMap(Tier.init(rawValue:))
        let freshnessValue = freshness.flatMap(Freshness.init(rawValue:))
        let now = Date()
        let query = DatasetQuery(q: q, department: department, tier: tierValue, topic: topic, limit: 20, cursor: cursor, freshness: freshnessValue, now: now,
                                 city: try city.map { try Divisions.require($0, level: .city, parameter: "city") },
                                 county: try county.map { try Divisions.require($0, level: .county, parameter: "county") })
        let page = try catalog.search(query)
        // The page's filters as (name, value) in a fixed order; a facet link toggles one of them.
        let current: [(String, String?)] = [("q", q.flatMap { $0.isEmpty ? nil : $0 }), ("department", department), ("tier", tier), ("topic", topic),
                                            ("freshness", freshnessValue?.rawValue), ("city", city), ("county", county)]
        func link(toggling name: String? = nil, _ value: String? = nil, cursor: String? = nil) -> String {
            var items: [String] = []
            for (n, v) in current {
                let chosen = n == name ? (v == value ? nil : value) : v
                if let chosen { items.append("\(n)=\(Self.encode(chosen))") }
            }
            if let cursor { items.append("cursor=\(Self.encode(cursor))") }
            return "/datasets" + (items.isEmpty ? "" : "?" + items.joined(separator: "&"))
        }
        func entries(_ name: String, _ counts: [FacetCount], selected: String?, label: (String) -> String? = { _ in nil }) -> [[String: Any]] {
            counts.map { f in
                var e: [String: Any] = ["value": f.value, "count": f.count, "selected": f.value == selected, "href": link(toggling: name, f.value)]
                if let l = label(f.value) { e["label"] = l }
                return e
            }
        }
        let facets: [String: Any] = [
            "tier": entries("tier", page.tiers, selected: tier) { Self.tierLabel(Tier(rawValue: $0)) },
            "department": entries("department", page.departments, selected: department),
            "topic": entries("topic", page.topics, selected: topic),
            "freshness": entries("freshness", page.freshness, selected: freshnessValue?.rawValue) { Freshness(rawValue: $0).map(Self.freshnessLabel) },
            "city": entries("city", page.cities, selected: city) { Divisions.named($0)?.name },
            "county": entries("county", page.counties, selected: county) { Divisions.named($0)?.name },
        ]
        var context: [String: Any] = [
            "q": q ?? "", "total": page.total, "facets": facets,
            "filtered": current.contains { $0.1 != nil },
            "hasCities": !page.cities.isEmpty, "hasCounties": !page.counties.isEmpty,
            // The filters a new search keeps.
            "kept": current.dropFirst().compactMap { n, v in v.map { ["name": n, "value": $0] } },
            "datasets": page.datasets.map { item -> [String: Any] in
                let m = item.record.manifest
                var entry: [String: Any] = ["id": m.id, "title": m.title, "description": m.description, "department": m.department, "topic": m.topic,
                        "tier": item.record.tier?.rawValue ?? "unpublished", "tierLabel": Self.tierLabel(item.record.tier),
                        "updateFrequency": m.updateFrequency, "version": item.record.publishedVersion ?? 0,
                        "updatedAt": Self.day(item.updatedAt), "rows": item.rowCount]
                if item.record.isPublished, let at = item.updatedAt.flatMap(AuditChain.date) {
                    let f = Freshness.of(frequency: m.updateFrequency, updatedAt: at, now: now)
                    entry["freshness"] = f.rawValue
                    entry["freshnessLabel"] = Self.freshnessLabel(f)
                }
                return entry
            },
        ]
        if let next = page.nextCursor { context["next"] = link(cursor: next) }
        if cursor != nil { context["previous"] = link() }
        return render("catalog", context)
    }

    /// The dataset page as an anonymous visitor sees it, or nil when there is no such published dataset.
    func datasetPage(_ id: String, caller: Caller) throws -> String? {
        guard let d = try catalog.dataset(id), d.isPublished else { return nil }
        let m = d.manifest
        let anonymous = Caller(key: nil, requestID: caller.requestID, remote: caller.remote, rawQuery: "", baseURL: caller.baseURL)
        let access = try? Access.resolve(id, caller: anonymous, catalog: catalog, stewardship: stewardship, plans: plans)
        // Examples show only what the visitor's view makes of a synthetic value; never the input.
        // The visitor's plan is over the published version's fields; a policy field the version
        // lacks, or any field when the visitor may not read the rows, is not served.
        let plan = access?.plan
        let fields: [[String: Any]] = m.fields.map { f in
            let i = plan?.includedColumns[f.name]
            var example = ""
            if let plan, let i, let sample = SampleValues.sample(for: f) {
                example = plan.apply(column: i, sample, row: 1) ?? "（不提供 withheld）"
            }
            var action = plan.flatMap { p in i.map { p.columns[$0].action.rawValue } } ?? "不提供 not served"
            if let fp = f.fingerprint {
                action += "；许可副本带溯源标记 ±\(Cell.format(fp.tolerance)) (licensed copies fingerprinted)"
            }
            return ["name": f.name, "title": f.title ?? "", "semantic": f.semantic?.rawValue ?? f.type.rawValue, "level": f.level.rawValue,
                    "levelLabel": f.level.chinese, "action": action, "example": example]
        }
        let versions = try catalog.versions(id)
        let published = versions.first { $0.number == d.publishedVersion }
        var context: [String: Any] = [
            "id": m.id, "title": m.title, "description": m.description, "department": m.department, "departmentPath": Self.pathComponent(m.department), "topic": m.topic,
            "updateFrequency": m.updateFrequency, "license": m.license.isEmpty ? "—" : m.license, "rows": published?.rowCount ?? 0,
            "metadataScore": { let score = MetadataScore.of(d); return ["points": score.points, "max": score.max, "rating": score.rating] }(),
            "quality": (published.flatMap { try? QualityReport.of(id, $0.number, catalog: catalog) }).map { r -> [String: Any] in
                let mean = r.fields.isEmpty ? 1 : r.fields.map(\.completeness).reduce(0, +) / Double(r.fields.count)
                var q: [String: Any] = ["completeness": String(format: "%.1f", mean * 100), "version": r.version,
                                        "rejected": r.stats.rejectedRows.map(String.init) ?? "—"]
                if let k = r.primaryKey { q["duplicates"] = String(k.duplicateRows) }
                return q
            } ?? false,
            "freshness": published.flatMap { AuditChain.date($0.createdAt) }.map { Self.freshnessLabel(Freshness.of(frequency: m.updateFrequency, updatedAt: $0, now: Date())) } ?? "",
            "freshnessClass": published.flatMap { AuditChain.date($0.createdAt) }.map { Freshness.of(frequency: m.updateFrequency, updatedAt: $0, now: Date()).rawValue } ?? "",
            "nextDue": published.flatMap { AuditChain.date($0.createdAt) }.flatMap { Freshness.nextDue(frequency: m.updateFrequency, updatedAt: $0) }
                .map { String(AuditChain.timestamp($0).prefix(16)).replacingOccurrences(of: "T", with: " ") + " UTC" } ?? "",
            "coverage": (m.spatial == nil && m.temporal == nil) ? false : [
                // A city or county links to the catalog filtered to it; the province to the whole catalog.
                "places": (m.spatial ?? []).compactMap(Divisions.named).map { g -> [String: Any] in
                    ["code": g.level == .province ? "" : g.code, "name": g.name, "param": g.level == .county ? "county" : g.level == .city ? "city" : "q"]
                },
                "period": m.temporal.map { "\($0.start) – \($0.end ?? "至今 ongoing")" } ?? "",
            ] as [String: Any],
            "entity": m.entity ?? "每行一个 one row", "tier": d.tier?.rawValue ?? "unpublished", "tierLabel": Self.tierLabel(d.tier),
            "baseURL": caller.baseURL, "fields": fields, "canRead": access != nil,
            "restricted": d.tier == .restricted, "canApply": d.tier == .conditional || d.tier == .restricted,
            "applyUse": d.tier == .restricted ? "sandbox" : "rows",
            "accessNote": d.tier == .restricted
                ? "不予开放：数据不离开平台，获得许可的合作方可在沙箱中计算。Restricted: rows never leave; licensed partners compute in the sandbox."
                : "有条件开放：持有许可的密钥可通过授权视图读取。Conditional: keys holding a license read it through the licensed view.",
            "versions": versions.reversed().map { v in ["number": v.number, "createdAt": Self.day(v.createdAt), "rows": v.rowCount,
                                                        "published": v.number == d.publishedVersion, "shortHash": String(v.sha256.prefix(12))] as [String: Any] },
        ]
        // Feedback: the rating and the error reports, as the API shows them to an anonymous visitor.
        let ratings = try catalog.ratings(dataset: id)
        context["ratingCount"] = ratings.count
        context["ratingMean"] = ratings.isEmpty ? "—" : String(format: "%.1f", Double(ratings.map(\.stars).reduce(0, +)) / Double(ratings.count))
        context["ratingComments"] = ratings.compactMap { r in r.comment.map { ["stars": String(repeating: "★", count: r.stars), "text": FreeText.mask($0).text] } }.prefix(10).map { $0 }
        let today = String(AuditChain.timestamp().prefix(10))
        let reports = try catalog.errorReports(dataset: id, department: nil).filter { $0.status != .withdrawn }.map { r -> [String: Any] in
            let shown = APIHandler.report(r, for: anonymous, today: today)
            var c: [String: Any] = ["id": shown.id, "text": shown.text, "where": [shown.field, shown.version.map { "v\($0)" }, shown.row].compactMap { $0 }.joined(separator: " · "),
                                    "due": shown.due, "overdue": shown.overdue]
            switch r.resolution {
            case .fixed?: c["state"] = "已更正 fixed" + (r.fixedVersion.map { " (v\($0))" } ?? "")
            case .notAnError?: c["state"] = "非错误 not an error"
            case .wontFix?: c["state"] = "不予更正 won't fix"
            case nil: c["state"] = "处理中 open"
            }
            if let a = shown.answer { c["answer"] = a }
            return c
        }
        context["reports"] = reports
        context["hasReports"] = !reports.isEmpty
        if let access, let published {
            // The first rows, through the same plan the API uses for this visitor.
            let reader = try VersionReader(path: try catalog.localFile(published))
            let columns = access.plan.columns.indices.filter { access.plan.columns[$0].included }
            var rows: [[String: Any]] = []
            try reader.forEachRow(columns: columns.map { access.plan.columns[$0].field.name }, limit: 5) { rowID, cells in
                var full = Array(repeating: Cell.null, count: access.plan.columns.count)
                for (k, c) in columns.enumerated() { full[c] = cells[k] }
                let masked = access.plan.apply(row: full, rowID: rowID)
                rows.append(["cells": columns.map { masked[$0].text }])
            }
            context["hasPreview"] = !rows.isEmpty
            context["preview"] = rows
            context["previewCount"] = rows.count
            context["previewHeader"] = columns.map { access.plan.columns[$0].field.name }
        }
        return render("dataset", context)
    }

    /// Department scorecards: this month so far in a table, and one chart per rate over the kept
    /// months and this one (its label starred).
    func scorecardsPage(month: String, at: Date, current: [Scorecard]) throws -> String {
        let kept = try ScorecardSnapshots.history(catalog: catalog)
        let months = Array(Set(kept.map(\.month))).sorted()
        let labels = months + [month + "*"]
        let departments = Array(Set(kept.map(\.card.department) + current.map(\.department))).sorted()
        func percent(_ x: Double?) -> String { x.map { String(format: "%.1f\u{00A0}%%", $0 * 100) } ?? "—" }
        // Each department's card per month (the kept ones, then this one), looked up once.
        var cards: [String: [String: Scorecard]] = [:]
        for k in kept { cards[k.card.department, default: [:]][k.month] = k.card }
        for c in current { cards[c.department, default: [:]][month + "*"] = c }
        let charts: [[String: Any]] = Scorecard.rates.map { key, title in
            let series = departments.map { d in
                LineChart.Series(name: d, values: labels.map { cards[d]?[$0]?.rate(key) })
            }
            return ["title": title, "svg": LineChart.svg(title: title, labels: labels, series: series)]
        }
        return render("scorecards", [
            "month": month, "asOf": String(AuditChain.timestamp(at).prefix(16)).replacingOccurrences(of: "T", with: " "), "hasDepartments": !departments.isEmpty, "charts": charts, "keptMonths": months.count,
            "legend": departments.enumerated().map { ["name": $0.element, "swatch": LineChart.swatch($0.offset)] },
            "rows": current.map { c -> [String: Any] in
                ["department": c.department, "departmentPath": Self.pathComponent(c.department), "datasets": c.datasets, "items": "\(c.itemsOpened) / \(c.items)", "openRate": percent(c.openRate),
                 "timely": "\(c.timely) / \(c.published)", "timeliness": percent(c.timelinessRate),
                 "sharing": c.applicationsDecided == 0 ? "—" : "\(c.applicationsApproved) / \(c.applicationsDecided)", "sharingRate": percent(c.sharingRate),
                 "pending": c.applicationsPending, "completeness": percent(c.completeness),
                 "metadata": c.metadataScore.map { String(format: "%.0f", $0) } ?? "—"]
            },
        ])
    }

    func sandboxPage(policy: SandboxPolicy) throws -> String {
        let page = try catalog.search(DatasetQuery(limit: 100))
        return render("sandbox", [
            "policy": ["minUnitsPerRow": policy.minUnitsPerRow, "overlapMaxDifference": policy.overlapMaxDifference,
                       "maxOutputRows": policy.maxOutputRows, "maxEpsilonPerQuery": Cell.format(policy.maxEpsilonPerQuery),
                       "monthlyEpsilon": Cell.format(policy.monthlyEpsilon)],
            "dominancePercent": Cell.format(policy.dominanceShare * 100),
            "baseURL": Caller.current.baseURL,
            "datasets": page.datasets.map { ["id": $0.record.id, "title": $0.record.manifest.title] },
        ])
    }

    func apiDocsPage() throws -> String {
        let text = String(decoding: EmbeddedFiles.data("openapi.yaml") ?? Data(), as: UTF8.self)
        guard let spec = try Yams.load(yaml: text) as? [String: Any] else { return render("apidocs", ["title": "API"]) }
        let info = spec["info"] as? [String: Any] ?? [:]
        let components = (spec["components"] as? [String: Any])?["parameters"] as? [String: Any] ?? [:]
        var operations: [[String: Any]] = []
        let paths = spec["paths"] as? [String: Any] ?? [:]
        for path in paths.keys.sorted() {
            guard let ops = paths[path] as? [String: Any] else { continue }
            for method in ["get", "post", "put", "delete"] {
                guard let op = ops[method] as? [String: Any] else { continue }
                let params: [[String: Any]] = (op["parameters"] as? [[String: Any]] ?? []).map { p in
                    var p = p
                    if let ref = p["$ref"] as? String, let resolved = components[String(ref.split(separator: "/").last ?? "")] as? [String: Any] { p = resolved }
                    let schema = p["schema"] as? [String: Any] ?? [:]
                    var type = schema["type"] as? String ?? ""
                    if let e = schema["enum"] as? [Any] { type += " (" + e.map { "\($0)" }.joined(separator: ", ") + ")" }
                    return ["name": p["name"] as? String ?? "", "in": p["in"] as? String ?? "", "type": type,
                            "description": p["description"] as? String ?? "", "required": p["required"] as? Bool ?? false]
                }
                let responses = (op["responses"] as? [String: Any] ?? [:]).keys.sorted().map { ["code": $0] }
                operations.append(["operationId": op["operationId"] as? String ?? "", "method": method, "methodUpper": method.uppercased(),
                                   "path": path, "summary": op["summary"] as? String ?? "", "description": op["description"] as? String ?? "",
                                   "parameters": params, "hasParameters": !params.isEmpty, "responses": responses])
            }
        }
        return render("apidocs", ["title": info["title"] as? String ?? "API", "summary": info["summary"] as? String ?? "",
                                  "description": info["description"] as? String ?? "", "openapi": spec["openapi"] as? String ?? "",
                                  "version": info["version"] as? String ?? "", "operations": operations])
    }

    /// The sign-up page: the form (with what was typed and the error, after a refusal), or the
    /// new account and its key, shown once.
    func signupPage(created: (AccountRecord, String)? = nil, baseURL: String = "", error: String? = nil, closed: Bool = false,
                    email: String = "", name: String = "", organisation: String = "") -> String {
        var context: [String: Any] = ["closed": closed, "email": email, "name": name, "organisation": organisation, "baseURL": baseURL]
        if let error { context["error"] = error }
        if let (account, key) = created {
            context["created"] = true
            context["accountID"] = account.id
            context["tier"] = account.tier
            context["key"] = key
        }
        return render("signup", context)
    }

    /// A key holder's account, keys, limits and usage (what `GET /v1/me` and `/v1/me/usage` give).
    func accountPage(_ key: APIKeyRecord, limits: Components.Schemas.Limits) throws -> String {
        let account = try key.accountID.flatMap { try catalog.account($0) }
        let keys = try account.map { try catalog.keys(account: $0.id) } ?? [key]
        let today = String(AuditTime.now().prefix(10))
        let from = CatalogRules.usageStart(today: today)
        let (days, total) = UsageRow.grouped(try catalog.usage(keys: keys.map(\.id), dataset: nil, from: from, to: today)) { $0.keyID }
        func counts(_ r: UsageRow) -> [String: Any] {
            ["requests": r.requests, "rows": r.rows, "bytes": r.bytes, "exports": r.exports, "jobs": r.jobs, "epsilon": String(format: "%g", r.epsilon)]
        }
        var context: [String: Any] = [
            "shown": true, "from": from, "to": today,
            "limits": ["rate": String(format: "%g", limits.rate), "exports": limits.exportsPerDay == 0 ? "∞" : String(limits.exportsPerDay)],
            "keys": keys.map { ["id": $0.id, "name": $0.name, "created": Self.day($0.createdAt), "state": $0.isActive ? "有效 active" : "已吊销 revoked"] },
            "hasDays": !days.isEmpty,
            "days": days.reversed().map { d in counts(d.counts).merging(["day": d.day, "key": d.group]) { a, _ in a } },
            "total": counts(total),
        ]
        let hooks = try keys.flatMap { try catalog.webhooks(keyID: $0.id) }
        context["hasHooks"] = !hooks.isEmpty
        context["hooks"] = hooks.map {
            ["id": $0.id, "key": $0.keyID, "dataset": $0.dataset ?? "全部 all", "url": $0.url, "failures": $0.failures,
             "state": $0.isActive ? "有效 active" : "已停止 stopped: \($0.disabledReason ?? "")"] as [String: Any]
        }
        if let account {
            context["account"] = ["id": account.id, "name": account.name, "tier": account.tier, "suspended": account.isSuspended]
        }
        return render("account", context)
    }

    /// A department's page: its published datasets, its duty list (late entries marked) and how
    /// many proposals wait; nil for an unknown department.
    func departmentPage(_ name: String) throws -> String? {
        // A department the catalog names in datasets' manifests has a page even before a steward
        // registers it.
        let d = try catalog.departments().first { $0.name == name }
        let today = String(AuditChain.timestamp().prefix(10))
        var datasets: [[String: Any]] = []
        var cursor: String?
        repeat {
            let page = try catalog.search(DatasetQuery(department: name, limit: 100, cursor: cursor))
            for item in page.datasets {
                let tier = item.record.tier ?? .restricted
                datasets.append(["id": item.record.id, "title": item.record.manifest.title, "tier": tier.rawValue, "tierLabel": "\(tier.chinese) \(tier.rawValue)"])
            }
            cursor = page.nextCursor
        } while cursor != nil
        guard d != nil || !datasets.isEmpty, !name.isEmpty else { return nil }
        let list = try catalog.duties(department: name)
        let inCatalog = Set(try list.map(\.dataset).filter { try catalog.dataset($0) != nil })
        let duties = list.map { duty -> [String: Any] in
            let state = duty.state(today: today)
            let label: String = switch state {
            case .due: "未到期 due"
            case .late: "逾期 late"
            case .done: "已完成 done"
            case .doneLate: "逾期完成 done late"
            case .withdrawn: "已撤销 withdrawn: \(duty.withdrawnReason ?? "")"
            }
            return ["title": duty.title, "dataset": duty.dataset, "inCatalog": inCatalog.contains(duty.dataset),
                    "kind": duty.kind == .open ? "开放 open" : "共享 share", "due": duty.due, "state": label, "late": state == .late]
        }
        let pending = try catalog.proposals(department: name, status: .pending).count
        var context = Self.figureContext(try Figures.of(catalog: catalog, today: today).of(department: name))
        context.merge([
            "name": name, "path": Self.pathComponent(name), "today": today, "datasetCount": datasets.count, "datasets": datasets,
            "hasDatasets": !datasets.isEmpty, "duties": duties, "hasDuties": !duties.isEmpty, "pendingProposals": pending,
        ]) { _, new in new }
        if let parent = d?.parent { context["parent"] = parent; context["parentPath"] = Self.pathComponent(parent) }
        return render("department", context)
    }

    /// `text` percent-encoded for a URL path segment or query value.
    static func pathComponent(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-_.~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// A department's queue of proposals, as the key sees them (`GET /v1/proposals`), with the
    /// decisions the key may take.
    func reviewPage(_ key: APIKeyRecord, secret: String, notice: String?, error: String?, api: APIHandler) async throws -> String {
        guard case .ok(let ok) = try await api.listProposals(.init()), case .json(let body) = ok.body else {
            throw Problem(status: .forbidden, detail: "this key sees no proposals")
        }
        let pending = body.proposals.filter { $0.status == .pending }
        let decided = body.proposals.filter { $0.status != .pending }.prefix(50)
        let part: String? = key.role == .reviewer ? "reviewer" : key.role == .security ? "security" : nil
        let who = switch key.role {
        case .publisher: "发布员 Publisher · \(key.department ?? "")：本部门的申请 your department's proposals"
        case .reviewer: "审核员 Reviewer · \(key.department ?? "")：本部门的申请 your department's proposals"
        case .security: "安全审核员 Security reviewer：需要安全审核的申请 proposals that need a security review"
        default: "管理员 Steward：全部申请 every proposal"
        }
        var context: [String: Any] = [
            "shown": true, "who": who, "key": secret, "pendingCount": pending.count,
            "pending": pending.map { p -> [String: Any] in
                var row: [String: Any] = [
                    "id": p.id, "dataset": p.dataset, "version": p.version, "tier": p.tier.rawValue, "department": p.department,
                    "proposedBy": p.proposedBy, "proposedAt": Self.day(AuditChain.timestamp(p.proposedAt)),
                    "awaiting": p.awaiting.map(\.rawValue).joined(separator: " + "),
                    "canDecide": part.map { part in p.awaiting.contains { $0.rawValue == part } && p.proposedBy != key.id } ?? false,
                ]
                if let r = p.overrideReason { row["overrideReason"] = r }
                if let r = p.reviewedBy { row["reviewedBy"] = r }
                return row
            },
            "hasDecided": !decided.isEmpty,
            "decided": decided.map { p -> [String: Any] in
                ["id": p.id, "dataset": p.dataset, "version": p.version, "tier": p.tier.rawValue,
                 "outcome": p.status == .published ? "已发布 published" : p.status == .refused ? "已拒绝 refused: \(p.refusedReason ?? "")" : p.status.rawValue,
                 "decidedAt": p.decidedAt.map { Self.day(AuditChain.timestamp($0)) } ?? ""]
            },
        ]
        if let notice { context["notice"] = notice }
        if let error { context["error"] = error }
        return render("review", context)
    }

    func message(_ heading: String, _ message: String, back: String) -> String {
        render("message", ["heading": heading, "message": message, "back": back])
    }
}

extension Portal {
    static func statusLabel(_ s: Components.Schemas.RequestStatus) -> String {
        switch s {
        case .open: "待答复 open"
        case .accepted: "已采纳 accepted"
        case .fulfilled: "已满足 fulfilled"
        case .declined: "未采纳 declined"
        case .withdrawn: "已撤回 withdrawn"
        }
    }

    static func percent(_ x: Double?) -> String { x.map { String(format: "%.0f\u{00A0}%%", $0 * 100) } ?? "—" }

    /// What a page shows of a request: the API's view for the same caller (masked alike).
    static func requestContext(_ r: Components.Schemas.DataRequest) -> [String: Any] {
        var c: [String: Any] = [
            "id": r.id, "title": r.title, "items": r.items.joined(separator: "、"), "purpose": r.purpose, "department": r.department,
            "departmentPath": pathComponent(r.department), "statusLabel": statusLabel(r.status), "overdue": r.overdue, "votes": r.votes,
            "due": r.due, "filedAt": AuditChain.timestamp(r.filedAt).prefix(10),
        ]
        if let reply = r.reply { c["reply"] = reply }
        if let reason = r.reason { c["reason"] = reason }
        if let d = r.dataset { c["dataset"] = d; c["version"] = r.version ?? 0; c["delivered"] = (r.deliveredItems ?? []).joined(separator: "、") }
        return c
    }

    /// The board (`GET /v1/requests` as the visitor sees it), its figures and the filing form.
    func requestsPage(department: String?, status: String?, notice: String? = nil, error: String? = nil, api: APIHandler) async throws -> String {
        let wanted = status.flatMap(Components.Schemas.RequestStatus.init(rawValue:))
        guard case .ok(let ok) = try await api.listRequests(.init(query: .init(department: department, status: wanted))), case .json(let body) = ok.body else {
            return message("无法显示 Unavailable", "需求列表暂时无法显示。", back: "/")
        }
        let catalog = self.catalog
        let (departments, figures) = try await StoreThreads.run {
            (try catalog.departments(), DemandFigures.of(try catalog.dataRequests(department: nil, status: nil), today: APIHandler.today))
        }
        let f = figures.first { $0.department == (department ?? "") } ?? DemandFigures(department: department ?? "")
        let requests = body.requests.map(Self.requestContext)
        var context: [String: Any] = [
            "days": api.configuration.requestWorkingDays,
            "requests": requests, "hasRequests": !requests.isEmpty,
            "departments": departments.map { ["name": $0.name, "selected": $0.name == department] },
            "statuses": Components.Schemas.RequestStatus.allCases.map { ["value": $0.rawValue, "label": Self.statusLabel($0), "selected": $0 == wanted] },
            "onDemandRate": Self.percent(f.onDemandRate), "delivered": f.deliveredItems, "listed": f.listedItems,
            "onTimeRate": Self.percent(f.onTimeRate), "overdue": f.overdue,
        ]
        if let notice { context["notice"] = notice }
        if let error { context["error"] = error }
        return render("requests", context)
    }

    /// One request with its comments (`GET /v1/requests/{id}` as the visitor sees it); nil when there is none.
    func requestPage(_ id: Int64, notice: String? = nil, error: String? = nil, api: APIHandler) async throws -> String? {
        let answer: Operations.GetRequest.Output
        do { answer = try await api.getRequest(.init(path: .init(requestId: id))) } catch let p as Problem where p.status == 404 { return nil }
        guard case .ok(let ok) = answer, case .json(let body) = ok.body else { return nil }
        var c = Self.requestContext(body.request)
        c["comments"] = body.comments.map { ["at": AuditChain.timestamp($0.at).prefix(16).replacingOccurrences(of: "T", with: " "), "fromDepartment": $0.fromDepartment,
                                             "role": $0.role, "text": $0.text] }
        c["commentCount"] = body.comments.count
        if let notice { c["notice"] = notice }
        if let error { c["error"] = error }
        return render("request", c)
    }
}
