import KaifangCore

/// A dataset a job may read: one published version, the fields its license grants, its policy.
public struct SandboxTable: Sendable {
    public var manifest: DatasetManifest
    public var version: Int
    public var path: String
    public var tier: Tier
    /// Granted fields; nil means all.
    public var granted: Set<String>?
    public var policy: SandboxPolicy

    public init(manifest: DatasetManifest, version: Int, path: String, tier: Tier, granted: Set<String>?, policy: SandboxPolicy) {
        self.manifest = manifest; self.version = version; self.path = path; self.tier = tier; self.granted = granted; self.policy = policy
    }

    public var id: String { manifest.id }
    /// A personal dataset names an entity: a person is the privacy unit (docs/sandbox-guide.md).
    public var isPersonal: Bool { manifest.entity != nil }

    /// How the sandbox treats a field.
    func fieldClass(_ f: FieldSpec) -> FieldClass {
        if isPersonal {
            if f.name == manifest.entity || (f.semantic?.isDirectIdentifier ?? false) || f.level == .L4 { return .identifier }
            if f.level == .L3 { return .sensitive }
            return .attribute
        }
        return f.level >= .L3 ? .identifier : .attribute
    }
}

enum FieldClass: Sendable {
    /// Only inside COUNT(DISTINCT …) or as an equality join key (rule 2).
    case identifier
    /// Only inside aggregates and predicates: never a grouping key or a bare output.
    case sensitive
    case attribute
}

struct FieldRef: Hashable, Sendable {
    var dataset: String
    var field: String
}

/// One check the runner applies to a SUM/AVG/TOTAL cell (rule 6).
public struct DominanceCheck: Codable, Sendable, Equatable {
    /// Output columns whose cells this check guards.
    public var columns: [Int]
    /// SQL returning (group keys…, unit, per-unit sum) rows.
    public var sql: String
}

/// A DP output column.
public enum DPColumn: Codable, Sendable, Equatable {
    case group(Int)
    case count
    case sum(Int, lower: Double, upper: Double)
    case avg(Int, lower: Double, upper: Double)
}

/// What the runner executes for a checked job, and what it applies to the output.
public struct QueryPlan: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable { case rows, aggregate, dp }
    public var mode: Mode
    /// The main SQL: user columns, then the hidden group keys, then one unit count per personal dataset.
    public var sql: String
    public var columns: [String]
    public var hiddenGroupKeys: Int
    /// Personal datasets whose distinct units are counted per output row (rule 5) and whose row sets are kept (rule 7).
    public var unitDatasets: [String]
    /// dataset → SQL returning the distinct units the query's FROM/WHERE selects.
    public var rowSetSQL: [String: String]
    public var dominance: [DominanceCheck]
    /// Output columns that are plain COUNTs (rounded when the policy says so).
    public var countColumns: [Int]
    /// DP mode: the per-unit SQL's output, and how output columns come from it.
    public var dpColumns: [DPColumn]
    public var dpSums: Int
    /// Attached schema name → version file path.
    public var attachments: [String: String]
    /// Rules the checker applied, for the job record.
    public var rules: [String]
    /// The main SQL with the rules' material computed in the same pass. Aggregate mode: after
    /// the user columns and hidden keys, `kaifang_units(k, unit)` per personal dataset (its
    /// distinct units, counted up to the policy's minimum, and its row set collected) and
    /// `kaifang_dominance(j, unit, argument)` per dominance check (1 when the group's top two
    /// units dominate). Nil when the query's LIMIT or OFFSET could stop the scan before every
    /// selected row was seen: then `sql`, `dominance` and `rowSetSQL` run as separate passes.
    /// dp mode: the per-unit statement with the row set collected by a trailing
    /// `kaifang_units(0, unit)`.
    public var fusedSQL: String? = nil
    /// `fusedSQL` with the GROUP BY keys kept out of index use (`+(key)`), for a query over one
    /// table: the runner runs it instead when SQLite's plan for `fusedSQL` walks a whole index in
    /// key order and looks every row up in the table (which costs more than scanning the table
    /// and sorting: 0.60 s against 0.42 s for a GROUP BY over 1 M rows). Same groups, same values.
    public var fusedScanSQL: String? = nil
    /// dp mode: the selected rows' unit, group keys and summed columns, for the runner's own
    /// per-unit pass (`PerUnitPass`), which the runner prefers to `fusedSQL` while the units fit
    /// its memory budget.
    public var dpScanSQL: String? = nil
}

/// The static check of docs/sandbox-guide.md: resolves names against the licensed datasets, enforces the
/// function allowlist and the output rules that can be decided from the SQL alone (1–4, and the
/// DP shape), and produces the rewritten SQL the runner executes.
public struct QueryChecker {
    public let tables: [SandboxTable]
    public let mode: String

    public init(tables: [SandboxTable], mode: String) {
        self.tables = tables; self.mode = mode
    }

    static let aggregates: Set<String> = ["count", "sum", "total", "avg", "min", "max"]
    static let scalars: Set<String> = ["round", "abs", "coalesce", "ifnull", "nullif", "substr", "length", "lower", "upper",
                                       "trim", "date", "strftime", "julianday"]
    static let refusedWhy: [String: String] = [
        "group_concat": "it concatenates individual values into the output",
        "string_agg": "it concatenates individual values into the output",
        "json_group_array": "it returns individual values", "json_group_object": "it returns individual values",
        "randomblob": "it allocates memory without bound", "zeroblob": "it allocates memory without bound",
        "printf": "it formats arbitrary text", "format": "it formats arbitrary text",
        "char": "it builds arbitrary text", "hex": "it exposes raw bytes", "unhex": "it exposes raw bytes",
        "load_extension": "it loads code into the database", "random": "results must be reproducible",
        "row_number": "window functions are not allowed", "rank": "window functions are not allowed",
        "dense_rank": "window functions are not allowed", "lag": "window functions are not allowed",
        "lead": "window functions are not allowed", "ntile": "window functions are not allowed",
        "first_value": "window functions are not allowed", "last_value": "window functions are not allowed",
        "nth_value": "window functions are not allowed", "sqlite_version": "it reads platform internals",
        "readfile": "it reads files", "writefile": "it writes files", "edit": "it runs programs",
        "fts3_tokenizer": "it can load code", "sqlite_compileoption_used": "it reads platform internals",
    ]

    /// A table is named by its dataset id; ids with `-` may also be written with `_` unquoted.
    func table(named n: String) -> SandboxTable? {
        let l = n.lowercased()
        return tables.first { $0.id.lowercased() == l || $0.id.lowercased().replacingOccurrences(of: "-", with: "_") == l }
    }

    /// Checks a query and plans its execution.
    public func check(_ sql: String) throws(SQLRefusal) -> QueryPlan {
        let query = try SQLParser.parse(sql)
        var a = Analysis(checker: self, query: query)
        return try a.run()
    }
}

/// A relation in scope: a dataset or a derived table (WITH query or subquery in FROM).
struct Relation {
    struct Column { var name: String; var lineage: Set<FieldRef>; var direct: Bool }
    var alias: String
    var columns: [Column]
    /// dataset → the column (of this relation) carrying its privacy unit.
    var units: [String: String]
    /// Whether the relation is a dataset read directly (join keys must be).
    var isBase: Bool
    var datasets: Set<String>
}

struct Analysis {
    let checker: QueryChecker
    let query: SQLQuery
    var personal = false
    var ctes: [String: Relation] = [:]
    var extraColumns: [String: [String]] = [:]
    var attachments: [String: String] = [:]
    var schemaOf: [String: String] = [:]
    var personalUses: [String: Int] = [:]
    var rules: Set<String> = []
    var classes: [FieldRef: FieldClass] = [:]
    var fieldSpecs: [FieldRef: FieldSpec] = [:]

    init(checker: QueryChecker, query: SQLQuery) {
        self.checker = checker; self.query = query
    }

    func key(_ s: SQLSelect) -> String { "\(s.position.line):\(s.position.column)" }

    var printer: SQLPrinter {
        let ctes = Set(ctes.keys)
        let schemaOf = schemaOf
        var p = SQLPrinter(tableName: { n in
            if ctes.contains(n.lowercased()) { return SQLPrinter.quote(n) }
            return SQLPrinter.quote(schemaOf[n.lowercased()] ?? n) + ".\"rows\""
        })
        p.extraColumns = extraColumns
        return p
    }

    // MARK: pre-pass: which datasets, personal or not

    mutating func collectTables(_ q: SQLQuery, cteNames: Set<String>, topLevel: Bool) throws(SQLRefusal) {
        if !topLevel, let c = q.with.first {
            throw SQLRefusal("syntax", c.position, "WITH is allowed only at the start of the query")
        }
        var names = cteNames
        for c in q.with {
            try collectTables(c.query, cteNames: names, topLevel: false)
            names.insert(c.name.lowercased())
        }
        try collectTables(q.select, cteNames: names)
        for o in q.orderBy { try collectTables(o.expr, cteNames: names) }
    }

    mutating func collectTables(_ s: SQLSelect, cteNames: Set<String>) throws(SQLRefusal) {
        var refs: [SQLTableRef] = []
        if let f = s.from { refs.append(f) }
        refs += s.joins.map(\.table)
        for r in refs {
            switch r {
            case .named(let n, _, let pos):
                if cteNames.contains(n.lowercased()) { continue }
                let lower = n.lowercased()
                if lower.hasPrefix("sqlite_") || lower == "rows" || lower.hasPrefix("kaifang_") {
                    throw SQLRefusal("table", pos, "'\(n)' is not a dataset: the sandbox exposes only the datasets you hold a sandbox license for, by id")
                }
                guard let t = checker.table(named: n) else {
                    let known = checker.tables.map(\.id).sorted().joined(separator: ", ")
                    throw SQLRefusal("table", pos, "'\(n)' is not a dataset you hold an active sandbox license for (yours: \(known.isEmpty ? "none" : known)); apply for one with POST /v1/applications (use: sandbox)")
                }
                if schemaOf[lower] == nil {
                    let schema = attachments.first(where: { $0.value == t.path })?.key ?? "d\(attachments.count)"
                    attachments[schema] = t.path
                    schemaOf[lower] = schema
                }
                if t.isPersonal { personal = true }
            case .subquery(let q, _, _):
                try collectTables(q, cteNames: cteNames, topLevel: false)
            }
        }
        var exprs = s.columns.map(\.expr) + s.groupBy + s.joins.compactMap(\.on)
        if let w = s.whereClause { exprs.append(w) }
        if let h = s.having { exprs.append(h) }
        for e in exprs { try collectTables(e, cteNames: cteNames) }
    }

    mutating func collectTables(_ e: SQLExpr, cteNames: Set<String>) throws(SQLRefusal) {
        switch e {
        case .inSelect(let x, let q, _, _):
            try collectTables(x, cteNames: cteNames); try collectTables(q, cteNames: cteNames, topLevel: false)
        case .exists(let q, _), .subquery(let q, _):
            try collectTables(q, cteNames: cteNames, topLevel: false)
        default:
            for c in e.children { try collectTables(c, cteNames: cteNames) }
        }
    }

    // MARK: the run

    mutating func run() throws(SQLRefusal) -> QueryPlan {
        try collectTables(query, cteNames: [], topLevel: true)
        let dp = checker.mode == "dp"
        if dp && !personal {
            throw SQLRefusal("dp", query.select.position, "dp mode is for personal datasets (with a privacy unit); over these datasets use aggregate mode")
        }
        for c in query.with {
            let rel = try derived(c.query, alias: c.name)
            ctes[c.name.lowercased()] = rel
        }
        if dp { return try planDP() }
        var scope = try fromScope(query.select)
        if !personal {
            try checkRowLevel(query.select, scope: &scope, outer: true)
            for o in query.orderBy { _ = try walk(o.expr, scope, aliases: query.select.columns) }
            rules.insert("function-allowlist"); rules.insert("rule-2")
            return QueryPlan(mode: .rows, sql: printer.query(query), columns: outputNames(query.select), hiddenGroupKeys: 0,
                             unitDatasets: [], rowSetSQL: [:], dominance: [], countColumns: [], dpColumns: [], dpSums: 0,
                             attachments: attachments, rules: rules.sorted())
        }
        return try planAggregate(scope)
    }

    func outputNames(_ s: SQLSelect) -> [String] {
        var seen: [String: Int] = [:]
        return s.columns.enumerated().map { i, c in
            var n = c.alias ?? {
                if case .column(_, let name, _) = c.expr { return name }
                return printer.expr(c.expr).replacingOccurrences(of: "\"", with: "")
            }()
            if let k = seen[n] { seen[n] = k + 1; n += "_\(k + 1)" } else { seen[n] = 1 }
            _ = i
            return n
        }
    }

    // MARK: scopes

    mutating func fromScope(_ s: SQLSelect) throws(SQLRefusal) -> [Relation] {
        var refs: [SQLTableRef] = []
        if let f = s.from { refs.append(f) }
        refs += s.joins.map(\.table)
        var scope: [Relation] = []
        for r in refs {
            let rel: Relation
            switch r {
            case .named(let n, let alias, let pos):
                if let c = ctes[n.lowercased()] {
                    var c2 = c
                    c2.alias = alias ?? n
                    rel = c2
                    for d in c.datasets where checker.table(named: d)?.isPersonal == true { try usePersonal(d, pos) }
                } else {
                    let t = checker.table(named: n)!
                    var units: [String: String] = [:]
                    if t.isPersonal, let e = t.manifest.entity { units[t.id] = e; try usePersonal(t.id, pos) }
                    var cols: [Relation.Column] = []
                    for f in t.manifest.fields where t.granted == nil || t.granted!.contains(f.name) || f.name == t.manifest.entity {
                        let ref = FieldRef(dataset: t.id, field: f.name)
                        classes[ref] = t.fieldClass(f)
                        fieldSpecs[ref] = f
                        if t.granted != nil && !t.granted!.contains(f.name) { continue }
                        cols.append(.init(name: f.name, lineage: [ref], direct: true))
                    }
                    rel = Relation(alias: alias ?? n, columns: cols, units: units, isBase: true, datasets: [t.id])
                }
            case .subquery(let q, let alias, _):
                rel = try derived(q, alias: alias)
            }
            if scope.contains(where: { $0.alias.lowercased() == rel.alias.lowercased() }) {
                throw SQLRefusal("syntax", s.position, "the name '\(rel.alias)' is used for two tables: give one an alias")
            }
            scope.append(rel)
        }
        return scope
    }

    mutating func usePersonal(_ d: String, _ pos: SQLPosition) throws(SQLRefusal) {
        personalUses[d, default: 0] += 1
        if personalUses[d]! > 1 {
            throw SQLRefusal("rule-2", pos, "the personal dataset '\(d)' may appear once per query: self-joins pair up people's records")
        }
    }

    /// A derived table (WITH query or subquery in FROM).
    mutating func derived(_ q: SQLQuery, alias: String) throws(SQLRefusal) -> Relation {
        var scope = try fromScope(q.select)
        let touchesPersonal = scope.contains { !$0.units.isEmpty }
        let s = q.select
        if touchesPersonal {
            if s.distinct || !s.groupBy.isEmpty || s.having != nil || q.limit != nil || s.columns.contains(where: { containsAggregate($0.expr) }) {
                throw SQLRefusal("rule-1", s.position, "over a personal dataset, aggregate in the outermost SELECT only: a WITH query or subquery may filter and bucket rows, not aggregate, group, DISTINCT or LIMIT them")
            }
            if !q.orderBy.isEmpty { throw SQLRefusal("syntax", s.position, "ORDER BY inside a WITH query or subquery has no effect: remove it") }
        }
        try checkRowLevel(s, scope: &scope, outer: false)
        var cols: [Relation.Column] = []
        let names = outputNames(s)
        for (i, c) in s.columns.enumerated() {
            let info = try walk(c.expr, scope, aliases: [])
            var isDirect = false
            if case .column = c.expr { isDirect = true }
            if touchesPersonal && !isDirect && info.lineage.contains(where: { classes[$0] == .identifier }) {
                throw SQLRefusal("rule-2", c.expr.position, "a direct identifier may not be transformed or renamed in a subquery or WITH query")
            }
            cols.append(.init(name: names[i], lineage: info.lineage, direct: false))
        }
        var units: [String: String] = [:]
        var extras: [String] = []
        for rel in scope {
            for (d, col) in rel.units.sorted(by: { $0.key < $1.key }) {
                let name = "__unit_\(d)"
                units[d] = name
                extras.append(SQLPrinter.quote(rel.alias) + "." + SQLPrinter.quote(col) + " AS " + SQLPrinter.quote(name))
            }
        }
        if !extras.isEmpty { extraColumns[key(s), default: []] += extras }
        return Relation(alias: alias, columns: cols, units: units, isBase: false, datasets: Set(scope.flatMap(\.datasets)))
    }

    func containsAggregate(_ e: SQLExpr) -> Bool {
        if case .function(let n, _, _, _, _) = e, QueryChecker.aggregates.contains(n) { return true }
        if case .subquery = e { return false }
        return e.children.contains(where: containsAggregate)
    }

    // MARK: expression walk

    struct Info {
        var lineage: Set<FieldRef> = []
        /// Columns referenced outside any aggregate.
        var bare: Set<FieldRef> = []
        var aggregate = false
    }

    func resolve(_ table: String?, _ name: String, _ scope: [Relation], _ pos: SQLPosition) throws(SQLRefusal) -> Relation.Column {
        if let table {
            guard let rel = scope.first(where: { $0.alias.lowercased() == table.lowercased() }) else {
                throw SQLRefusal("syntax", pos, "no table or alias '\(table)' in this SELECT (in scope: \(scope.map(\.alias).joined(separator: ", ")))")
            }
            guard let c = rel.columns.first(where: { $0.name.lowercased() == name.lowercased() }) else {
                throw SQLRefusal("column", pos, "'\(table)' has no column '\(name)' you may read (its columns: \(rel.columns.map(\.name).joined(separator: ", ")))")
            }
            return c
        }
        let hits = scope.compactMap { rel in rel.columns.first(where: { $0.name.lowercased() == name.lowercased() }).map { (rel, $0) } }
        if hits.count > 1 {
            throw SQLRefusal("column", pos, "'\(name)' is ambiguous: write \(hits.map { $0.0.alias + "." + name }.joined(separator: " or "))")
        }
        guard let hit = hits.first else {
            let all = scope.flatMap { r in r.columns.map(\.name) }
            throw SQLRefusal("column", pos, "no column '\(name)' you may read (columns: \(all.joined(separator: ", ")))")
        }
        return hit.1
    }

    /// Walks an expression: resolves columns, enforces the function allowlist, rule 2 (identifiers
    /// only inside COUNT(DISTINCT …)) and rule 3 (no MIN/MAX over people).
    func walk(_ e: SQLExpr, _ scope: [Relation], aliases: [SQLResultColumn], inAggregate: String? = nil,
              countDistinctArg: Bool = false) throws(SQLRefusal) -> Info {
        var info = Info()
        switch e {
        case .literal:
            break
        case .column(let t, let n, let pos):
            let c: Relation.Column
            do {
                c = try resolve(t, n, scope, pos)
            } catch {
                if t == nil, aliases.contains(where: { $0.alias?.lowercased() == n.lowercased() }) { return info }
                throw error
            }
            for f in c.lineage where classes[f] == .identifier && !countDistinctArg {
                throw SQLRefusal("rule-2", pos, "'\(n)' is a direct identifier (or an L3/L4 field): it may appear only inside COUNT(DISTINCT …) or as an equality join key between datasets")
            }
            info.lineage = c.lineage
            if inAggregate == nil { info.bare = c.lineage }
        case .function(let name, let distinct, let args, let star, let pos):
            if let why = QueryChecker.refusedWhy[name] {
                throw SQLRefusal("function", pos, "\(name)() is not allowed: \(why)")
            }
            let isAggregate = QueryChecker.aggregates.contains(name) && !(["min", "max"].contains(name) && args.count > 1)
            guard isAggregate || QueryChecker.scalars.contains(name) || ["min", "max"].contains(name) else {
                throw SQLRefusal("function", pos, "\(name)() is not in the allowlist: use \((QueryChecker.aggregates.union(QueryChecker.scalars)).sorted().joined(separator: ", "))")
            }
            if star && name != "count" { throw SQLRefusal("syntax", pos, "\(name)(*) is not valid: only COUNT(*)") }
            if distinct && name != "count" { throw SQLRefusal("function", pos, "DISTINCT is allowed inside COUNT only") }
            if distinct && args.count != 1 { throw SQLRefusal("syntax", pos, "COUNT(DISTINCT …) takes one argument") }
            if isAggregate {
                if let outer = inAggregate { throw SQLRefusal("syntax", pos, "\(name)() inside \(outer)(): aggregates do not nest") }
                if !star && args.count != 1 { throw SQLRefusal("syntax", pos, "\(name)() takes one argument") }
                info.aggregate = true
            }
            let countDistinct = name == "count" && distinct
            for a in args {
                var isBareColumn = false
                if case .column = a { isBareColumn = true }
                let sub = try walk(a, scope, aliases: aliases, inAggregate: isAggregate ? name : inAggregate,
                                   countDistinctArg: countDistinct && isBareColumn)
                info.lineage.formUnion(sub.lineage); info.bare.formUnion(sub.bare)
                info.aggregate = info.aggregate || sub.aggregate
            }
            if personal && isAggregate && (name == "min" || name == "max") && info.lineage.contains(where: { checker.table(named: $0.dataset)?.isPersonal == true }) {
                throw SQLRefusal("rule-3", pos, "\(name.uppercased())() over a personal dataset's field is not allowed: an extreme value is one person's value")
            }
            if personal && isAggregate {
                for a in args { try checkAggregateArgument(a) }
            }
        case .subquery(let q, let pos), .exists(let q, let pos):
            if personal { throw SQLRefusal("rule-4", pos, "subqueries in expressions are not allowed in a query over a personal dataset: use a subquery in FROM") }
            _ = try subqueryCheck(q)
        case .inSelect(let x, let q, _, let pos):
            if personal { throw SQLRefusal("rule-4", pos, "IN (SELECT …) is not allowed in a query over a personal dataset") }
            info = try walk(x, scope, aliases: aliases, inAggregate: inAggregate)
            _ = try subqueryCheck(q)
        default:
            for c in e.children {
                let sub = try walk(c, scope, aliases: aliases, inAggregate: inAggregate)
                info.lineage.formUnion(sub.lineage); info.bare.formUnion(sub.bare)
                info.aggregate = info.aggregate || sub.aggregate
            }
        }
        return info
    }

    /// A correlated or uncorrelated subquery in an expression (non-personal queries only): checked in its own scope.
    func subqueryCheck(_ q: SQLQuery) throws(SQLRefusal) -> Relation {
        var copy = self
        return try copy.derived(q, alias: "_subquery")
    }

    /// Inside an aggregate over people, the argument must not select a subset (CASE, comparisons,
    /// NULLIF): that subset would escape the unit count of its group (rule 4).
    func checkAggregateArgument(_ e: SQLExpr) throws(SQLRefusal) {
        switch e {
        case .literal, .column:
            return
        case .binary(let op, let l, let r, let pos):
            guard ["+", "-", "*", "/", "%"].contains(op) else {
                throw SQLRefusal("rule-4", pos, "'\(op)' inside an aggregate over a personal dataset selects a subset the unit count does not see: filter in WHERE instead")
            }
            try checkAggregateArgument(l); try checkAggregateArgument(r)
        case .unary(let op, let x, let pos):
            guard op == "-" || op == "+" else { throw SQLRefusal("rule-4", pos, "NOT inside an aggregate over a personal dataset is not allowed") }
            try checkAggregateArgument(x)
        case .cast(let x, _, _):
            try checkAggregateArgument(x)
        case .function(let n, _, let args, _, let pos):
            guard ["abs", "round", "coalesce", "ifnull", "length", "julianday"].contains(n) else {
                throw SQLRefusal("rule-4", pos, "\(n)() inside an aggregate over a personal dataset is not allowed (it can select a subset): use abs, round, coalesce, ifnull, length or julianday, and filter in WHERE")
            }
            for a in args { try checkAggregateArgument(a) }
        case .caseWhen(_, _, _, let pos):
            throw SQLRefusal("rule-4", pos, "CASE inside an aggregate over a personal dataset selects a subset the unit count does not see: filter in WHERE instead")
        default:
            throw SQLRefusal("rule-4", e.position, "this expression inside an aggregate over a personal dataset is not allowed: use columns, numbers and arithmetic")
        }
    }

    // MARK: row-level SELECTs (non-personal queries, and derived tables)

    mutating func checkRowLevel(_ s: SQLSelect, scope: inout [Relation], outer: Bool) throws(SQLRefusal) {
        for c in s.columns { _ = try walk(c.expr, scope, aliases: []) }
        if let w = s.whereClause { try predicate(w, scope, place: "WHERE") }
        for j in s.joins { if let on = j.on { try predicate(on, scope, place: "ON") } }
        for g in s.groupBy { _ = try walk(g, scope, aliases: s.columns) }
        if let h = s.having { _ = try walk(h, scope, aliases: s.columns) }
        if personal {
            for c in s.columns {
                let info = try walk(c.expr, scope, aliases: [])
                if case .column = c.expr { continue }
                if info.lineage.contains(where: { classes[$0] == .sensitive }) {
                    throw SQLRefusal("rule-2", c.expr.position, "an L3 field may be transformed only inside an aggregate of the outermost SELECT")
                }
            }
        }
    }

    /// WHERE / ON / HAVING. Over personal data: a positive conjunction of `term op literal`
    /// (rule 4) or equality join keys (ON); elsewhere any expression the walk accepts.
    func predicate(_ e: SQLExpr, _ scope: [Relation], place: String, aliases: [SQLResultColumn] = []) throws(SQLRefusal) {
        guard personal else {
            if place == "ON", case .binary("=", .column(let lt, let ln, let lp), .column(let rt, let rn, let rp), _) = e {
                _ = try resolve(lt, ln, scope, lp); _ = try resolve(rt, rn, scope, rp)
                return
            }
            _ = try walk(e, scope, aliases: aliases)
            return
        }
        for atom in conjuncts(e) { try checkAtom(atom, scope, place: place, aliases: aliases) }
    }

    func conjuncts(_ e: SQLExpr) -> [SQLExpr] {
        if case .binary("AND", let l, let r, _) = e { return conjuncts(l) + conjuncts(r) }
        return [e]
    }

    func isLiteral(_ e: SQLExpr) -> Bool {
        if case .literal(let l, _) = e, l != .null { return true }
        return false
    }

    func checkAtom(_ atom: SQLExpr, _ scope: [Relation], place: String, aliases: [SQLResultColumn]) throws(SQLRefusal) {
        let why = "predicates over a personal dataset must be an AND of column-op-literal tests (= < <= > >= IN BETWEEN LIKE 'prefix%'): complements and alternatives are the material of tracker attacks"
        switch atom {
        case .binary("OR", _, _, let pos):
            throw SQLRefusal("rule-4", pos, "OR in \(place): \(why)")
        case .unary("NOT", _, let pos):
            throw SQLRefusal("rule-4", pos, "NOT in \(place): \(why)")
        case .binary("<>", _, _, let pos):
            throw SQLRefusal("rule-4", pos, "<> in \(place): \(why)")
        case .inList(_, _, true, let pos), .inSelect(_, _, true, let pos):
            throw SQLRefusal("rule-4", pos, "NOT IN in \(place): \(why)")
        case .between(_, _, _, true, let pos), .like(_, _, true, let pos):
            throw SQLRefusal("rule-4", pos, "NOT in \(place): \(why)")
        case .exists(_, let pos), .inSelect(_, _, _, let pos), .subquery(_, let pos):
            throw SQLRefusal("rule-4", pos, "subqueries in \(place): \(why)")
        case .caseWhen(_, _, _, let pos):
            throw SQLRefusal("rule-4", pos, "CASE in \(place): \(why)")
        case .isNull(_, _, let pos):
            throw SQLRefusal("rule-4", pos, "IS NULL tests in \(place): \(why)")
        case .binary(let op, let l, let r, let pos) where ["=", "<", "<=", ">", ">="].contains(op):
            if place == "ON", case .column(let lt, let ln, let lp) = l, case .column(let rt, let rn, let rp) = r, op == "=" {
                try joinKey(lt, ln, lp, rt, rn, rp, scope)
                return
            }
            if isLiteral(r) { try term(l, scope, place: place, aliases: aliases); return }
            if isLiteral(l) { try term(r, scope, place: place, aliases: aliases); return }
            throw SQLRefusal("rule-4", pos, "\(place) compares two expressions: \(why)")
        case .inList(let x, let items, false, let pos):
            guard items.allSatisfy(isLiteral) else { throw SQLRefusal("rule-4", pos, "IN takes literals only here: \(why)") }
            try term(x, scope, place: place, aliases: aliases)
        case .between(let x, let lo, let hi, false, let pos):
            guard isLiteral(lo), isLiteral(hi) else { throw SQLRefusal("rule-4", pos, "BETWEEN takes literals only here: \(why)") }
            try term(x, scope, place: place, aliases: aliases)
        case .like(let x, let p, false, let pos):
            guard case .literal(.string(let pattern), _) = p, pattern.hasSuffix("%"),
                  !pattern.dropLast().contains("%"), !pattern.contains("_") else {
                throw SQLRefusal("rule-4", pos, "LIKE takes a 'prefix%' literal here (no other % or _): \(why)")
            }
            try term(x, scope, place: place, aliases: aliases)
        default:
            throw SQLRefusal("rule-4", atom.position, "this \(place) test is not allowed: \(why)")
        }
    }

    /// An equality join key between two datasets read directly (identifiers allowed here only).
    func joinKey(_ lt: String?, _ ln: String, _ lp: SQLPosition, _ rt: String?, _ rn: String, _ rp: SQLPosition,
                 _ scope: [Relation]) throws(SQLRefusal) {
        func owner(_ t: String?, _ n: String, _ p: SQLPosition) throws(SQLRefusal) -> (Relation, Relation.Column) {
            let c = try resolve(t, n, scope, p)
            let rel = scope.first { r in r.columns.contains { $0.name.lowercased() == n.lowercased() } && (t == nil || r.alias.lowercased() == t!.lowercased()) }!
            return (rel, c)
        }
        let (lrel, lc) = try owner(lt, ln, lp)
        let (rrel, rc) = try owner(rt, rn, rp)
        if lrel.alias == rrel.alias { throw SQLRefusal("rule-4", lp, "ON compares two columns of one table: \(ln) = \(rn)") }
        let identifier = (lc.lineage.union(rc.lineage)).contains { classes[$0] == .identifier }
        if identifier && (!lrel.isBase || !rrel.isBase) {
            throw SQLRefusal("rule-2", lp, "a direct identifier may be a join key only between datasets read directly, not through a WITH query or subquery")
        }
    }

    /// The left side of a predicate atom: a column or an allowlisted bucketing (WHERE, ON), or an
    /// aggregate or a grouping key (HAVING).
    func term(_ e: SQLExpr, _ scope: [Relation], place: String, aliases: [SQLResultColumn]) throws(SQLRefusal) {
        if place == "HAVING" {
            let info = try walk(e, scope, aliases: aliases)
            if info.aggregate && info.bare.isEmpty { return }
        }
        try bucket(e, scope, what: place == "HAVING" ? "a HAVING test" : "a \(place) test")
        let info = try walk(e, scope, aliases: aliases)
        _ = info
    }

    /// Rule 4's shapes: `col`, `substr(B, 1, n)`, `B / n * n`, `strftime('fmt', B)`, `CAST(B AS …)`,
    /// where B is itself such a shape over one column (coarsenings of one value, nothing that selects).
    func bucket(_ e: SQLExpr, _ scope: [Relation], what: String) throws(SQLRefusal) {
        func intLiteral(_ x: SQLExpr) -> Bool { if case .literal(.integer(let n), _) = x { return !n.hasPrefix("-") && n != "0" }; return false }
        func shape(_ x: SQLExpr) -> Bool {
            switch x {
            case .column: return true
            case .function("substr", false, let args, false, _) where args.count == 3:
                if case .literal(.integer("1"), _) = args[1], intLiteral(args[2]) { return shape(args[0]) }
                return false
            case .binary("*", .binary("/", let inner, let n1, _), let n2, _):
                guard case .literal(let a, _) = n1, case .literal(let b, _) = n2 else { return false }
                return intLiteral(n1) && a == b && shape(inner)
            case .function("strftime", false, let args, false, _) where args.count == 2:
                if case .literal(.string, _) = args[0] { return shape(args[1]) }
                return false
            case .cast(let inner, _, _):
                return shape(inner)
            default:
                return false
            }
        }
        if shape(e) { return }
        throw SQLRefusal("rule-4", e.position, "\(what) over a personal dataset must use a column or an allowed bucketing: col, substr(col, 1, n), col / n * n, strftime('%Y', col), CAST(… AS INTEGER)")
    }

    // MARK: aggregate mode

    /// Replaces `GROUP BY 2` and `GROUP BY alias` by the output column's expression.
    func expandGroupKey(_ g: SQLExpr, _ s: SQLSelect, _ scope: [Relation]) throws(SQLRefusal) -> SQLExpr {
        if case .literal(.integer(let n), let pos) = g {
            guard let i = Int(n), i >= 1, i <= s.columns.count else { throw SQLRefusal("syntax", pos, "GROUP BY \(n): there is no output column \(n)") }
            return s.columns[i - 1].expr
        }
        if case .column(nil, let n, let pos) = g, (try? resolve(nil, n, scope, pos)) == nil,
           let c = s.columns.first(where: { $0.alias?.lowercased() == n.lowercased() }) {
            return c.expr
        }
        return g
    }

    func groupBound(_ e: SQLExpr, _ keys: [SQLExpr]) -> Bool {
        let p = printer
        let printed = Set(keys.map(p.expr))
        func bound(_ x: SQLExpr) -> Bool {
            if printed.contains(p.expr(x)) { return true }
            switch x {
            case .column: return false
            case .literal: return true
            case .function(let n, _, _, _, _) where QueryChecker.aggregates.contains(n): return true
            default: return x.children.allSatisfy(bound)
            }
        }
        return bound(e)
    }

    func unitExpr(_ d: String, _ scope: [Relation]) -> String {
        let rel = scope.first { $0.units[d] != nil }!
        return SQLPrinter.quote(rel.alias) + "." + SQLPrinter.quote(rel.units[d]!)
    }

    mutating func planAggregate(_ scope: [Relation]) throws(SQLRefusal) -> QueryPlan {
        let s = query.select
        rules.formUnion(["function-allowlist", "rule-1", "rule-2", "rule-3", "rule-4", "rule-5", "rule-6", "rule-7", "rule-8"])
        if s.distinct { throw SQLRefusal("rule-1", s.position, "SELECT DISTINCT over a personal dataset lists individual values: use GROUP BY, whose groups are checked") }
        let keys = try s.groupBy.map { g throws(SQLRefusal) in try expandGroupKey(g, s, scope) }
        for c in s.columns { _ = try walk(c.expr, scope, aliases: []) }
        if keys.isEmpty && !s.columns.contains(where: { containsAggregate($0.expr) }) {
            throw SQLRefusal("rule-1", s.position, "a query over a personal dataset must aggregate: every output column an aggregate (COUNT, SUM, AVG, TOTAL) or a GROUP BY key")
        }
        for k in keys {
            try bucket(k, scope, what: "a GROUP BY key")
            let info = try walk(k, scope, aliases: [])
            if info.aggregate { throw SQLRefusal("syntax", k.position, "GROUP BY an aggregate is not valid") }
            if info.lineage.contains(where: { classes[$0] == .sensitive }) {
                throw SQLRefusal("rule-2", k.position, "an L3 field may not be a grouping key: its groups would single people out")
            }
        }
        for c in s.columns {
            _ = try walk(c.expr, scope, aliases: [])
            guard groupBound(c.expr, keys) else {
                throw SQLRefusal("rule-1", c.expr.position, "every output column must be an aggregate or a GROUP BY key: '\(printer.expr(c.expr).replacingOccurrences(of: "\"", with: ""))' is neither")
            }
        }
        if let w = s.whereClause { try predicate(w, scope, place: "WHERE") }
        for j in s.joins {
            guard let on = j.on else {
                if j.kind == "CROSS JOIN" || j.kind == "," { throw SQLRefusal("rule-4", s.position, "join a personal dataset with ON a.key = b.key, not a cross join") }
                continue
            }
            try predicate(on, scope, place: "ON")
        }
        if let h = s.having { try predicate(h, scope, place: "HAVING", aliases: s.columns) }
        for o in query.orderBy {
            if case .literal(.integer, _) = o.expr { continue }
            if case .column(nil, let n, _) = o.expr, s.columns.contains(where: { $0.alias?.lowercased() == n.lowercased() }) { continue }
            _ = try walk(o.expr, scope, aliases: s.columns)
            guard groupBound(o.expr, keys) else {
                throw SQLRefusal("rule-1", o.expr.position, "ORDER BY must use output columns, GROUP BY keys or aggregates")
            }
        }

        // The rewrite: user columns, hidden group keys, one distinct-unit count per personal dataset.
        let p = printer
        let units = scope.flatMap { $0.units.keys }.sorted()
        let with = query.with.isEmpty ? "" : "WITH " + query.with.map { SQLPrinter.quote($0.name) + " AS (" + p.query($0.query) + ")" }.joined(separator: ", ") + " "
        var cols = s.columns.map { c in p.expr(c.expr) + (c.alias.map { " AS " + SQLPrinter.quote($0) } ?? "") }
        let keySQL = keys.map(p.expr)
        cols += keySQL.enumerated().map { "\($1) AS \"__key\($0)\"" }
        cols += units.map { "COUNT(DISTINCT \(unitExpr($0, scope))) AS \"__units_\($0)\"" }
        var q2 = query
        q2.with = []
        // ORDER BY with the group keys after the user's terms: rows the user's order ties come in
        // key order, whichever plan SQLite or the runner chooses.
        let orderBy = q2.orderBy.isEmpty ? "" : " ORDER BY " + (q2.orderBy.map { p.expr($0.expr) + ($0.descending ? " DESC" : " ASC") }
            + keySQL.indices.map { "\"__key\($0)\"" }).joined(separator: ", ")
        var main = with + p.select(s, columnsOverride: cols, groupByOverride: keySQL) + orderBy
        if let l = q2.limit { main += " LIMIT \(l)" }
        if let o = q2.offset { main += " OFFSET \(o)" }
        let fromWhere = p.fromClause(s) + (s.whereClause.map { " WHERE " + p.expr($0) } ?? "")
        var rowSets: [String: String] = [:]
        for d in units { rowSets[d] = with + "SELECT DISTINCT \(unitExpr(d, scope))" + fromWhere }

        // Rule 6: per SUM/AVG/TOTAL in the output, the per-unit contributions of each group.
        var dominance: [DominanceCheck] = []
        var dominanceArguments: [(unit: String, argument: String)] = []
        var byArgument: [String: Int] = [:]
        for (i, c) in s.columns.enumerated() {
            for (name, arg) in sums(c.expr) where ["sum", "avg", "total"].contains(name) {
                let argSQL = p.expr(arg)
                if let k = byArgument[argSQL] { dominance[k].columns.append(i); continue }
                for d in units {
                    let u = unitExpr(d, scope)
                    let sel = (keySQL + [u, "TOTAL(\(argSQL))"]).joined(separator: ", ")
                    let sql = with + "SELECT \(sel)" + fromWhere + " GROUP BY " + (keySQL + [u]).joined(separator: ", ")
                    byArgument[argSQL] = dominance.count
                    dominance.append(DominanceCheck(columns: [i], sql: sql))
                    dominanceArguments.append((u, argSQL))
                }
            }
        }
        let counts = s.columns.enumerated().compactMap { i, c -> Int? in
            if case .function("count", _, _, _, _) = c.expr { return i }
            return nil
        }
        // The same pass with the rules' material as extra aggregates (not with LIMIT or OFFSET,
        // which may end the scan early and leave rows out of the row sets).
        var fused: String?
        var fusedScan: String?
        if q2.limit == nil && q2.offset == nil {
            var fusedCols = s.columns.map { c in p.expr(c.expr) + (c.alias.map { " AS " + SQLPrinter.quote($0) } ?? "") }
            fusedCols += keySQL.enumerated().map { "\($1) AS \"__key\($0)\"" }
            fusedCols += units.enumerated().map { k, d in "kaifang_units(\(k), \(unitExpr(d, scope))) AS \"__units_\(d)\"" }
            fusedCols += dominance.indices.map { j in "kaifang_dominance(\(j), \(dominanceArguments[j].unit), \(dominanceArguments[j].argument)) AS \"__dominated\(j)\"" }
            fused = with + p.select(s, columnsOverride: fusedCols, groupByOverride: keySQL) + orderBy
            if query.with.isEmpty && s.joins.isEmpty, case .named? = s.from, !keySQL.isEmpty {
                fusedScan = p.select(s, columnsOverride: fusedCols, groupByOverride: keySQL.map { "+(\($0))" }) + orderBy
            }
        }
        return QueryPlan(mode: .aggregate, sql: main, columns: outputNames(s), hiddenGroupKeys: keys.count, unitDatasets: units,
                         rowSetSQL: rowSets, dominance: dominance, countColumns: counts, dpColumns: [], dpSums: 0,
                         attachments: attachments, rules: rules.sorted(), fusedSQL: fused, fusedScanSQL: fusedScan)
    }

    func sums(_ e: SQLExpr) -> [(String, SQLExpr)] {
        if case .function(let n, _, let args, _, _) = e, QueryChecker.aggregates.contains(n) {
            return args.count == 1 ? [(n, args[0])] : []
        }
        return e.children.flatMap(sums)
    }

    // MARK: dp mode

    mutating func planDP() throws(SQLRefusal) -> QueryPlan {
        let s = query.select
        rules.formUnion(["function-allowlist", "rule-2", "rule-4", "dp-laplace", "dp-clamp", "dp-one-contribution", "dp-censor", "dp-budget"])
        guard query.with.isEmpty, s.joins.isEmpty, case .named(let n, _, _)? = s.from, let t = checker.table(named: n), t.isPersonal else {
            throw SQLRefusal("dp", s.position, "dp mode reads one personal dataset directly: no joins, WITH queries or subqueries")
        }
        if s.having != nil || !query.orderBy.isEmpty || query.limit != nil || s.distinct {
            throw SQLRefusal("dp", s.position, "dp mode does not take HAVING, ORDER BY, LIMIT or DISTINCT (they would act on true values): results come sorted by the grouping keys")
        }
        let scope = try fromScope(s)
        let keys = try s.groupBy.map { g throws(SQLRefusal) in try expandGroupKey(g, s, scope) }
        for k in keys {
            try bucket(k, scope, what: "a GROUP BY key")
            let info = try walk(k, scope, aliases: [])
            if info.lineage.contains(where: { classes[$0] == .sensitive }) {
                throw SQLRefusal("rule-2", k.position, "an L3 field may not be a grouping key")
            }
        }
        if let w = s.whereClause { try predicate(w, scope, place: "WHERE") }
        let p = printer
        let keySQL = keys.map(p.expr)
        var columns: [DPColumn] = []
        var sumArgs: [String] = []
        for c in s.columns {
            _ = try walk(c.expr, scope, aliases: [])
            if let k = keySQL.firstIndex(of: p.expr(c.expr)) { columns.append(.group(k)); continue }
            guard case .function(let fn, let distinct, let args, let star, let pos) = c.expr else {
                throw SQLRefusal("dp", c.expr.position, "dp mode outputs GROUP BY keys, COUNT(*), COUNT(DISTINCT \(t.manifest.entity!)), SUM(col) and AVG(col) only")
            }
            var argColumn: String?
            if args.count == 1, case .column(_, let col, _) = args[0] { argColumn = col }
            switch fn {
            case "count" where star:
                columns.append(.count)
            case "count" where distinct && argColumn?.lowercased() == t.manifest.entity!.lowercased():
                columns.append(.count)
            case "sum" where !distinct && argColumn != nil, "avg" where !distinct && argColumn != nil:
                let col = argColumn!
                guard let f = t.manifest.fields.first(where: { $0.name.lowercased() == col.lowercased() }),
                      f.type == FieldType.integer || f.type == FieldType.number else {
                    throw SQLRefusal("dp", pos, "\(fn.uppercased())(\(col)) needs a number column")
                }
                guard let lo = f.min, let hi = f.max, lo < hi else {
                    throw SQLRefusal("dp", pos, "'\(col)' has no declared bounds (min and max in the manifest): dp mode clamps values to them, so ask the steward to declare them")
                }
                let argSQL = p.expr(.column(table: nil, name: f.name, pos))
                let k = sumArgs.firstIndex(of: argSQL) ?? { sumArgs.append(argSQL); return sumArgs.count - 1 }()
                columns.append(fn == "sum" ? .sum(k, lower: lo, upper: hi) : .avg(k, lower: lo, upper: hi))
            default:
                throw SQLRefusal("dp", c.expr.position, "dp mode outputs GROUP BY keys, COUNT(*), COUNT(DISTINCT \(t.manifest.entity!)), SUM(col) and AVG(col) only")
            }
        }
        // Per unit: its group (one group per unit), and its total per summed column; then per group:
        // the number of units and the clamped per-unit totals.
        let unit = SQLPrinter.quote(scope[0].alias) + "." + SQLPrinter.quote(t.manifest.entity!)
        var inner = keySQL.enumerated().map { "\($1) AS \"__key\($0)\"" }
        inner += sumArgs.enumerated().map { "TOTAL(\($1)) AS \"__sum\($0)\"" }
        inner.append("\(unit) AS \"__unit\"")
        let innerSQL = "SELECT " + inner.joined(separator: ", ") + p.fromClause(s) + (s.whereClause.map { " WHERE " + p.expr($0) } ?? "") + " GROUP BY \(unit)"
        var outer = keys.indices.map { "\"__key\($0)\"" }
        outer.append("COUNT(*)")
        for (k, _) in sumArgs.enumerated() {
            guard let (lo, hi) = columns.lazy.compactMap({ c -> (Double, Double)? in
                switch c {
                case .sum(k, let lo, let hi), .avg(k, let lo, let hi): (lo, hi)
                default: nil
                }
            }).first else { continue }
            outer.append("TOTAL(min(max(\"__sum\(k)\", \(lo)), \(hi)))")
        }
        let groupBy = keys.isEmpty ? "" : " GROUP BY " + keys.indices.map { "\"__key\($0)\"" }.joined(separator: ", ") + " ORDER BY " + keys.indices.map { "\"__key\($0)\"" }.joined(separator: ", ")
        let sql = "SELECT " + outer.joined(separator: ", ") + " FROM (" + innerSQL + ")" + groupBy
        // The same with the row set collected from the per-unit rows (each unit once), in a
        // trailing column the release ignores.
        let fused = "SELECT " + (outer + ["kaifang_units(0, \"__unit\")"]).joined(separator: ", ") + " FROM (" + innerSQL + ")" + groupBy
        let fromWhere = p.fromClause(s) + (s.whereClause.map { " WHERE " + p.expr($0) } ?? "")
        let scan = "SELECT " + ([unit] + keySQL + sumArgs).joined(separator: ", ") + fromWhere
        return QueryPlan(mode: .dp, sql: sql, columns: outputNames(s), hiddenGroupKeys: keys.count, unitDatasets: [t.id],
                         rowSetSQL: [t.id: "SELECT DISTINCT \(unit)" + fromWhere], dominance: [], countColumns: [],
                         dpColumns: columns, dpSums: sumArgs.count, attachments: attachments, rules: rules.sorted(), fusedSQL: fused, dpScanSQL: scan)
    }
}
