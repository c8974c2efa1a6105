import KaifangCore

/// A place in the submitted SQL text (1-based line and column, columns counted in characters).
public struct SQLPosition: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
    public var description: String { "line \(line), column \(column)" }
}

/// Why a job's SQL was refused: the rule broken, where, and what to do.
public struct SQLRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// A short rule name (`syntax`, `one-statement`, `function`, `table`, `rule-1` … `rule-8`, `dp`).
    public var rule: String
    public var position: SQLPosition?
    public var message: String

    public init(_ rule: String, _ position: SQLPosition?, _ message: String) {
        self.rule = rule; self.position = position; self.message = message
    }

    public var description: String {
        if let position { return "\(position): \(message) [\(rule)]" }
        return "\(message) [\(rule)]"
    }

    /// As a `KaifangError` (bad input), for the CLI and the API.
    public var asError: KaifangError { .badInput("sandbox SQL refused: \(description)") }
}

// MARK: - Tokens

enum TokenKind: Equatable {
    case identifier(String)          // unquoted, as written
    case quotedIdentifier(String)    // "…", unescaped
    case string(String)              // '…', unescaped
    case number(String)
    case symbol(String)              // = == != <> < <= > >= + - * / % || ( ) , . ;
    case end
}

struct Token {
    var kind: TokenKind
    var position: SQLPosition

    /// The keyword this token spells (upper case), if it is an unquoted identifier.
    var keyword: String? {
        if case .identifier(let s) = kind { return s.uppercased() }
        return nil
    }
}

/// Splits SQL into tokens. Only ASCII is accepted outside string literals: full-width letters,
/// homoglyphs and invisible spaces are refused with their position, so what the checker sees is
/// what SQLite would see.
enum SQLLexer {
    static func tokenize(_ text: String) throws(SQLRefusal) -> [Token] {
        let chars = Array(text.unicodeScalars)
        var tokens: [Token] = []
        var i = 0, line = 1, lineStart = 0
        func pos(_ at: Int) -> SQLPosition { SQLPosition(line: line, column: at - lineStart + 1) }
        func isIdentStart(_ c: Unicode.Scalar) -> Bool { (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" }
        func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
        while i < chars.count {
            let c = chars[i]
            if c == "\n" { i += 1; line += 1; lineStart = i; continue }
            if c == " " || c == "\t" || c == "\r" { i += 1; continue }
            let start = pos(i)
            if c == "-" && i + 1 < chars.count && chars[i + 1] == "-" {
                while i < chars.count && chars[i] != "\n" { i += 1 }
                continue
            }
            if c == "/" && i + 1 < chars.count && chars[i + 1] == "*" {
                i += 2
                var closed = false
                while i < chars.count {
                    if chars[i] == "\n" { line += 1; lineStart = i + 1 }
                    if chars[i] == "*" && i + 1 < chars.count && chars[i + 1] == "/" { i += 2; closed = true; break }
                    i += 1
                }
                if !closed { throw SQLRefusal("syntax", start, "unterminated /* comment: close it with */") }
                continue
            }
            if c == "'" || c == "\"" {
                let quote = c
                var value = String.UnicodeScalarView()
                i += 1
                var closed = false
                while i < chars.count {
                    let d = chars[i]
                    if d == quote {
                        if i + 1 < chars.count && chars[i + 1] == quote { value.append(quote); i += 2; continue }
                        i += 1; closed = true; break
                    }
                    if d == "\n" { line += 1; lineStart = i + 1 }
                    if d.value == 0 { throw SQLRefusal("syntax", start, "NUL character inside a quoted text") }
                    value.append(d)
                    i += 1
                }
                if !closed {
                    throw SQLRefusal("syntax", start, quote == "'" ? "unterminated string literal: close it with '" : "unterminated quoted identifier: close it with \"")
                }
                let s = String(value)
                tokens.append(Token(kind: quote == "'" ? .string(s) : .quotedIdentifier(s), position: start))
                continue
            }
            if isIdentStart(c) {
                var j = i
                while j < chars.count && (isIdentStart(chars[j]) || isDigit(chars[j])) { j += 1 }
                let word = String(String.UnicodeScalarView(chars[i..<j]))
                if (word == "x" || word == "X") && j < chars.count && chars[j] == "'" {
                    throw SQLRefusal("syntax", start, "blob literals (X'…') are not allowed")
                }
                tokens.append(Token(kind: .identifier(word), position: start))
                i = j
                continue
            }
            if isDigit(c) || (c == "." && i + 1 < chars.count && isDigit(chars[i + 1])) {
                var j = i
                if c == "0" && j + 1 < chars.count && (chars[j + 1] == "x" || chars[j + 1] == "X") {
                    throw SQLRefusal("syntax", start, "hexadecimal numbers are not allowed: write the number in decimal")
                }
                while j < chars.count && isDigit(chars[j]) { j += 1 }
                if j < chars.count && chars[j] == "." { j += 1; while j < chars.count && isDigit(chars[j]) { j += 1 } }
                if j < chars.count && (chars[j] == "e" || chars[j] == "E") {
                    var k = j + 1
                    if k < chars.count && (chars[k] == "+" || chars[k] == "-") { k += 1 }
                    if k < chars.count && isDigit(chars[k]) {
                        j = k
                        while j < chars.count && isDigit(chars[j]) { j += 1 }
                    }
                }
                if j < chars.count && isIdentStart(chars[j]) {
                    throw SQLRefusal("syntax", start, "a number runs into a name: put a space between them")
                }
                tokens.append(Token(kind: .number(String(String.UnicodeScalarView(chars[i..<j]))), position: start))
                i = j
                continue
            }
            let two: String? = i + 1 < chars.count ? String(String.UnicodeScalarView([c, chars[i + 1]])) : nil
            if let two, ["==", "!=", "<>", "<=", ">=", "||"].contains(two) {
                tokens.append(Token(kind: .symbol(two), position: start))
                i += 2
                continue
            }
            if "=<>+-*/%(),.;".unicodeScalars.contains(c) {
                tokens.append(Token(kind: .symbol(String(c)), position: start))
                i += 1
                continue
            }
            if c.value > 127 {
                let hex = String(c.value, radix: 16, uppercase: true)
                throw SQLRefusal("syntax", start, "character U+\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex) outside a string literal: only ASCII is accepted there (full-width letters, look-alike characters and invisible spaces are refused; retype it)")
            }
            switch c {
            case "?", ":", "@", "$":
                throw SQLRefusal("syntax", start, "parameters are not allowed: write the value as a literal")
            case "`", "[":
                throw SQLRefusal("syntax", start, "quote names with double quotes (\"name\"), not ` or [ ]")
            default:
                throw SQLRefusal("syntax", start, "unexpected character '\(c)'")
            }
        }
        tokens.append(Token(kind: .end, position: pos(i)))
        return tokens
    }
}

// MARK: - Syntax tree

/// A literal value.
public enum SQLLiteral: Sendable, Equatable {
    case null
    case integer(String)
    case real(String)
    case string(String)
}

/// An expression of the supported subset.
public indirect enum SQLExpr: Sendable, Equatable {
    case literal(SQLLiteral, SQLPosition)
    /// A column, optionally qualified by a table or alias.
    case column(table: String?, name: String, SQLPosition)
    case unary(op: String, SQLExpr, SQLPosition)
    case binary(op: String, SQLExpr, SQLExpr, SQLPosition)
    /// A function call; `star` for COUNT(*).
    case function(name: String, distinct: Bool, args: [SQLExpr], star: Bool, SQLPosition)
    case cast(SQLExpr, type: String, SQLPosition)
    case caseWhen(base: SQLExpr?, branches: [SQLCaseBranch], otherwise: SQLExpr?, SQLPosition)
    case inList(SQLExpr, [SQLExpr], negated: Bool, SQLPosition)
    case inSelect(SQLExpr, SQLQuery, negated: Bool, SQLPosition)
    case between(SQLExpr, SQLExpr, SQLExpr, negated: Bool, SQLPosition)
    case like(SQLExpr, SQLExpr, negated: Bool, SQLPosition)
    case isNull(SQLExpr, negated: Bool, SQLPosition)
    case exists(SQLQuery, SQLPosition)
    case subquery(SQLQuery, SQLPosition)

    public var position: SQLPosition {
        switch self {
        case .literal(_, let p), .column(_, _, let p), .unary(_, _, let p), .binary(_, _, _, let p),
             .function(_, _, _, _, let p), .cast(_, _, let p), .caseWhen(_, _, _, let p), .inList(_, _, _, let p),
             .inSelect(_, _, _, let p), .between(_, _, _, _, let p), .like(_, _, _, let p), .isNull(_, _, let p),
             .exists(_, let p), .subquery(_, let p):
            p
        }
    }

    /// The expressions directly under this one (not those inside its subqueries).
    public var children: [SQLExpr] {
        switch self {
        case .literal, .column, .exists, .subquery: []
        case .unary(_, let x, _), .cast(let x, _, _), .isNull(let x, _, _), .inSelect(let x, _, _, _): [x]
        case .binary(_, let l, let r, _), .like(let l, let r, _, _): [l, r]
        case .function(_, _, let args, _, _): args
        case .caseWhen(let base, let branches, let otherwise, _):
            (base.map { [$0] } ?? []) + branches.flatMap { [$0.when, $0.then] } + (otherwise.map { [$0] } ?? [])
        case .inList(let x, let items, _, _): [x] + items
        case .between(let x, let lo, let hi, _, _): [x, lo, hi]
        }
    }

    /// The queries directly under this one (EXISTS, IN (SELECT …), a scalar subquery).
    var subqueries: [SQLQuery] {
        switch self {
        case .exists(let q, _), .subquery(let q, _), .inSelect(_, let q, _, _): [q]
        default: []
        }
    }
}

public struct SQLCaseBranch: Sendable, Equatable {
    public var when: SQLExpr
    public var then: SQLExpr
}

/// One output column of a SELECT.
public struct SQLResultColumn: Sendable, Equatable {
    public var expr: SQLExpr
    public var alias: String?
}

/// A table in FROM: a dataset (or CTE) by name, or a subquery.
public indirect enum SQLTableRef: Sendable, Equatable {
    case named(String, alias: String?, SQLPosition)
    case subquery(SQLQuery, alias: String, SQLPosition)
}

/// A join step: `kind` is "," "JOIN" "LEFT JOIN" or "CROSS JOIN".
public struct SQLJoin: Sendable, Equatable {
    public var kind: String
    public var table: SQLTableRef
    public var on: SQLExpr?
}

public struct SQLOrder: Sendable, Equatable {
    public var expr: SQLExpr
    public var descending: Bool
}

/// One SELECT core.
public struct SQLSelect: Sendable, Equatable {
    public var distinct: Bool
    public var columns: [SQLResultColumn]
    public var from: SQLTableRef?
    public var joins: [SQLJoin]
    public var whereClause: SQLExpr?
    public var groupBy: [SQLExpr]
    public var having: SQLExpr?
    public var position: SQLPosition
}

public struct SQLCTE: Sendable, Equatable {
    public var name: String
    public var query: SQLQuery
    public var position: SQLPosition
}

/// A whole query: WITH, one SELECT, ORDER BY, LIMIT.
public struct SQLQuery: Sendable, Equatable {
    public var with: [SQLCTE]
    public var select: SQLSelect
    public var orderBy: [SQLOrder]
    public var limit: Int?
    public var offset: Int?
}

// MARK: - Parser

/// A recursive-descent parser for the SELECT subset of docs/sandbox-guide.md. Anything outside the subset is
/// refused with its position and the reason, never passed through.
public struct SQLParser {
    private var tokens: [Token]
    private var i = 0
    /// How many queries and expressions the parser is inside (parentheses, subqueries, arguments):
    /// bounds its recursion.
    private var depth = 0

    /// The deepest query tree accepted, counting each query and each expression node as a level,
    /// however it was written: `a - b - c` is as deep as `((a - b) - c)`. The checker and the
    /// printer recurse over the tree, and the printed text of an accepted query must parse again.
    public static let maxTreeDepth = 64
    /// The deepest recursion of the parser itself: above any printed accepted query, which opens
    /// at most two levels (a parenthesis and a list item or CASE part) per tree level.
    static let maxNesting = 2 * maxTreeDepth + 32

    /// Parses exactly one SELECT statement (a trailing `;` is accepted).
    public static func parse(_ text: String) throws(SQLRefusal) -> SQLQuery {
        var p = SQLParser(tokens: try SQLLexer.tokenize(text))
        if case .end = p.peek.kind { throw SQLRefusal("syntax", p.peek.position, "the SQL is empty: write one SELECT statement") }
        let q = try p.query()
        if p.isSymbol(";") { p.i += 1 }
        if case .end = p.peek.kind {
            try treeDepth(q, 1)
            return q
        }
        if p.tokens[p.i - 1].kind == .symbol(";") {
            throw SQLRefusal("one-statement", p.peek.position, "only one statement is allowed: remove everything after the first ';'")
        }
        throw SQLRefusal("syntax", p.peek.position, "unexpected \(p.describe(p.peek)) after the end of the query")
    }

    private init(tokens: [Token]) { self.tokens = tokens }

    private var peek: Token { tokens[i] }
    private func isSymbol(_ s: String) -> Bool { tokens[i].kind == .symbol(s) }
    private func isKeyword(_ k: String) -> Bool { tokens[i].keyword == k }
    private func isKeyword(_ k: String, at offset: Int) -> Bool { i + offset < tokens.count && tokens[i + offset].keyword == k }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case .identifier(let s): "'\(s)'"
        case .quotedIdentifier(let s): "\"\(s)\""
        case .string: "a string literal"
        case .number(let n): "'\(n)'"
        case .symbol(let s): "'\(s)'"
        case .end: "the end of the SQL"
        }
    }

    private mutating func expectSymbol(_ s: String, _ context: String) throws(SQLRefusal) {
        guard isSymbol(s) else { throw SQLRefusal("syntax", peek.position, "expected '\(s)' \(context), found \(describe(peek))") }
        i += 1
    }

    private mutating func expectKeyword(_ k: String, _ context: String) throws(SQLRefusal) {
        guard isKeyword(k) else { throw SQLRefusal("syntax", peek.position, "expected \(k) \(context), found \(describe(peek))") }
        i += 1
    }

    /// Keywords that end an expression or cannot be names.
    static let reserved: Set<String> = ["SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "LIMIT", "OFFSET", "AND", "OR",
                                        "NOT", "AS", "ON", "JOIN", "LEFT", "INNER", "CROSS", "OUTER", "RIGHT", "FULL", "NATURAL",
                                        "UNION", "INTERSECT", "EXCEPT", "WITH", "CASE", "WHEN", "THEN", "ELSE", "END", "IN", "IS",
                                        "BETWEEN", "LIKE", "GLOB", "MATCH", "REGEXP", "ESCAPE", "DISTINCT", "ALL", "EXISTS", "NULL",
                                        "CAST", "ASC", "DESC", "USING", "WINDOW", "COLLATE", "ISNULL", "NOTNULL", "VALUES",
                                        "INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER", "ATTACH", "DETACH", "PRAGMA",
                                        "REPLACE", "VACUUM", "REINDEX", "ANALYZE", "BEGIN", "COMMIT", "ROLLBACK", "RECURSIVE", "OVER",
                                        "FILTER", "INDEXED", "NULLS"]

    /// A name: an unquoted non-reserved identifier or a quoted one.
    private mutating func name(_ what: String) throws(SQLRefusal) -> String {
        switch peek.kind {
        case .identifier(let s) where !Self.reserved.contains(s.uppercased()):
            i += 1; return s
        case .quotedIdentifier(let s):
            i += 1; return s
        default:
            throw SQLRefusal("syntax", peek.position, "expected \(what), found \(describe(peek))")
        }
    }

    private mutating func enter() throws(SQLRefusal) {
        depth += 1
        if depth > Self.maxNesting {
            throw SQLRefusal("syntax", peek.position, "the query nests too deeply (more than \(Self.maxNesting) parentheses, subqueries and arguments inside each other)")
        }
    }

    /// Refuses a tree deeper than `maxTreeDepth`; recurses at most that deep.
    private static func treeDepth(_ q: SQLQuery, _ level: Int) throws(SQLRefusal) {
        guard level <= maxTreeDepth else { throw tooDeep(q.select.position) }
        for cte in q.with { try treeDepth(cte.query, level + 1) }
        let s = q.select
        for table in [s.from].compactMap({ $0 }) + s.joins.map(\.table) {
            if case .subquery(let sub, _, _) = table { try treeDepth(sub, level + 1) }
        }
        let exprs = s.columns.map(\.expr) + s.joins.compactMap(\.on) + [s.whereClause, s.having].compactMap { $0 }
            + s.groupBy + q.orderBy.map(\.expr)
        for e in exprs { try treeDepth(e, level + 1) }
    }

    private static func treeDepth(_ e: SQLExpr, _ level: Int) throws(SQLRefusal) {
        guard level <= maxTreeDepth else { throw tooDeep(e.position) }
        for c in e.children { try treeDepth(c, level + 1) }
        for q in e.subqueries { try treeDepth(q, level + 1) }
    }

    private static func tooDeep(_ at: SQLPosition) -> SQLRefusal {
        SQLRefusal("syntax", at, "the query nests too deeply (more than \(maxTreeDepth) levels of queries and operators, counting a chain like a + b + c as one level per operator): split it with a CTE or shorten the chain")
    }

    mutating func query() throws(SQLRefusal) -> SQLQuery {
        try enter(); defer { depth -= 1 }
        if let k = peek.keyword, ["INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER", "REPLACE", "VACUUM", "REINDEX", "ANALYZE",
                                  "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"].contains(k) {
            throw SQLRefusal("read-only", peek.position, "\(k) is not allowed: the sandbox runs one read-only SELECT")
        }
        if let k = peek.keyword, ["ATTACH", "DETACH", "PRAGMA", "EXPLAIN"].contains(k) {
            throw SQLRefusal("read-only", peek.position, "\(k) is not allowed: the sandbox opens the licensed datasets for you; write one SELECT")
        }
        var ctes: [SQLCTE] = []
        if isKeyword("WITH") {
            i += 1
            if isKeyword("RECURSIVE") {
                throw SQLRefusal("recursive", peek.position, "WITH RECURSIVE is not allowed: recursive queries can run without bound")
            }
            repeat {
                if !ctes.isEmpty { i += 1 }
                let pos = peek.position
                let n = try name("a name for the WITH query")
                if isSymbol("(") { throw SQLRefusal("syntax", peek.position, "column lists on WITH queries are not supported: name the columns with AS inside") }
                try expectKeyword("AS", "after the WITH query's name")
                if isKeyword("MATERIALIZED") || isKeyword("NOT") { throw SQLRefusal("syntax", peek.position, "MATERIALIZED hints are not supported") }
                try expectSymbol("(", "to open the WITH query")
                let q = try query()
                try expectSymbol(")", "to close the WITH query")
                if ctes.contains(where: { $0.name.lowercased() == n.lowercased() }) {
                    throw SQLRefusal("syntax", pos, "the WITH query '\(n)' is defined twice")
                }
                ctes.append(SQLCTE(name: n, query: q, position: pos))
            } while isSymbol(",")
        }
        guard isKeyword("SELECT") else {
            if isKeyword("VALUES") { throw SQLRefusal("syntax", peek.position, "VALUES is not supported: write a SELECT") }
            throw SQLRefusal("syntax", peek.position, "expected SELECT, found \(describe(peek))")
        }
        let select = try selectCore()
        if let k = peek.keyword, ["UNION", "INTERSECT", "EXCEPT"].contains(k) {
            throw SQLRefusal("compound", peek.position, "\(k) is not supported: write one SELECT (compound queries combine outputs past the disclosure checks)")
        }
        var order: [SQLOrder] = []
        if isKeyword("ORDER") {
            i += 1
            try expectKeyword("BY", "after ORDER")
            repeat {
                if !order.isEmpty { i += 1 }
                let e = try expr()
                var desc = false
                if isKeyword("ASC") { i += 1 } else if isKeyword("DESC") { i += 1; desc = true }
                if isKeyword("NULLS") { throw SQLRefusal("syntax", peek.position, "NULLS FIRST/LAST is not supported") }
                order.append(SQLOrder(expr: e, descending: desc))
            } while isSymbol(",")
        }
        var limit: Int?, offset: Int?
        if isKeyword("LIMIT") {
            i += 1
            limit = try integerLiteral("LIMIT")
            if isKeyword("OFFSET") { i += 1; offset = try integerLiteral("OFFSET") }
            else if isSymbol(",") { throw SQLRefusal("syntax", peek.position, "write LIMIT n OFFSET m, not LIMIT m, n") }
        }
        return SQLQuery(with: ctes, select: select, orderBy: order, limit: limit, offset: offset)
    }

    private mutating func integerLiteral(_ what: String) throws(SQLRefusal) -> Int {
        guard case .number(let n) = peek.kind, let v = Int(n), v >= 0 else {
            throw SQLRefusal("syntax", peek.position, "\(what) takes a whole number literal")
        }
        i += 1
        return v
    }

    private mutating func selectCore() throws(SQLRefusal) -> SQLSelect {
        let pos = peek.position
        try expectKeyword("SELECT", "")
        var distinct = false
        if isKeyword("DISTINCT") { i += 1; distinct = true } else if isKeyword("ALL") { i += 1 }
        var columns: [SQLResultColumn] = []
        repeat {
            if !columns.isEmpty { i += 1 }
            if isSymbol("*") || (isSymbol(".") == false && i + 2 < tokens.count && tokens[i + 1].kind == .symbol(".") && tokens[i + 2].kind == .symbol("*")) {
                throw SQLRefusal("select-star", peek.position, "SELECT * is not allowed: name the columns (or aggregates) you need")
            }
            let e = try expr()
            var alias: String?
            if isKeyword("AS") { i += 1; alias = try name("a column alias after AS") }
            else if case .identifier(let s) = peek.kind, !Self.reserved.contains(s.uppercased()) { alias = s; i += 1 }
            else if case .quotedIdentifier(let s) = peek.kind { alias = s; i += 1 }
            else if case .string = peek.kind { throw SQLRefusal("syntax", peek.position, "a column alias must be a name, not a string literal") }
            columns.append(SQLResultColumn(expr: e, alias: alias))
        } while isSymbol(",")
        var from: SQLTableRef?
        var joins: [SQLJoin] = []
        if isKeyword("FROM") {
            i += 1
            from = try tableRef()
            while true {
                var kind: String
                if isSymbol(",") { i += 1; kind = "," }
                else if isKeyword("JOIN") { i += 1; kind = "JOIN" }
                else if isKeyword("INNER") { i += 1; try expectKeyword("JOIN", "after INNER"); kind = "JOIN" }
                else if isKeyword("CROSS") { i += 1; try expectKeyword("JOIN", "after CROSS"); kind = "CROSS JOIN" }
                else if isKeyword("LEFT") {
                    i += 1
                    if isKeyword("OUTER") { i += 1 }
                    try expectKeyword("JOIN", "after LEFT"); kind = "LEFT JOIN"
                } else if let k = peek.keyword, ["RIGHT", "FULL", "NATURAL"].contains(k) {
                    throw SQLRefusal("syntax", peek.position, "\(k) joins are not supported: use JOIN … ON or LEFT JOIN … ON")
                } else { break }
                let t = try tableRef()
                var on: SQLExpr?
                if isKeyword("ON") { i += 1; on = try expr() }
                else if isKeyword("USING") { throw SQLRefusal("syntax", peek.position, "USING is not supported: write ON a.x = b.x") }
                joins.append(SQLJoin(kind: kind, table: t, on: on))
            }
        }
        var whereClause: SQLExpr?
        if isKeyword("WHERE") { i += 1; whereClause = try expr() }
        var groupBy: [SQLExpr] = []
        if isKeyword("GROUP") {
            i += 1
            try expectKeyword("BY", "after GROUP")
            repeat {
                if !groupBy.isEmpty { i += 1 }
                groupBy.append(try expr())
            } while isSymbol(",")
        }
        var having: SQLExpr?
        if isKeyword("HAVING") { i += 1; having = try expr() }
        if isKeyword("WINDOW") { throw SQLRefusal("function", peek.position, "window functions are not allowed") }
        return SQLSelect(distinct: distinct, columns: columns, from: from, joins: joins, whereClause: whereClause,
                         groupBy: groupBy, having: having, position: pos)
    }

    private mutating func tableRef() throws(SQLRefusal) -> SQLTableRef {
        let pos = peek.position
        if isSymbol("(") {
            i += 1
            guard isKeyword("SELECT") || isKeyword("WITH") else {
                throw SQLRefusal("syntax", peek.position, "parenthesized joins are not supported: write a subquery (SELECT …) AS name")
            }
            let q = try query()
            try expectSymbol(")", "to close the subquery")
            if isKeyword("AS") { i += 1 }
            let alias = try name("a name for the subquery (… ) AS name")
            return .subquery(q, alias: alias, pos)
        }
        let n = try name("a dataset name")
        if isSymbol(".") {
            throw SQLRefusal("table", pos, "schema-qualified names ('\(n).…') are not allowed: name the dataset alone")
        }
        if isSymbol("(") { throw SQLRefusal("function", pos, "table-valued functions are not allowed") }
        var alias: String?
        if isKeyword("AS") { i += 1; alias = try name("an alias after AS") }
        else if case .identifier(let s) = peek.kind, !Self.reserved.contains(s.uppercased()) { alias = s; i += 1 }
        else if case .quotedIdentifier(let s) = peek.kind { alias = s; i += 1 }
        if isKeyword("INDEXED") || (isKeyword("NOT") && isKeyword("INDEXED", at: 1)) {
            throw SQLRefusal("syntax", peek.position, "INDEXED BY is not supported")
        }
        return .named(n, alias: alias, pos)
    }

    // Expressions, lowest precedence first.

    mutating func expr() throws(SQLRefusal) -> SQLExpr {
        try enter(); defer { depth -= 1 }
        return try orExpr()
    }

    private mutating func orExpr() throws(SQLRefusal) -> SQLExpr {
        var left = try andExpr()
        while isKeyword("OR") {
            let pos = peek.position; i += 1
            left = .binary(op: "OR", left, try andExpr(), pos)
        }
        return left
    }

    private mutating func andExpr() throws(SQLRefusal) -> SQLExpr {
        var left = try notExpr()
        while isKeyword("AND") {
            let pos = peek.position; i += 1
            left = .binary(op: "AND", left, try notExpr(), pos)
        }
        return left
    }

    private mutating func notExpr() throws(SQLRefusal) -> SQLExpr {
        var nots: [SQLPosition] = []
        while isKeyword("NOT") && !isKeyword("EXISTS", at: 1) { nots.append(peek.position); i += 1 }
        var e = try comparison()
        for pos in nots.reversed() { e = .unary(op: "NOT", e, pos) }
        return e
    }

    private mutating func comparison() throws(SQLRefusal) -> SQLExpr {
        var left = try relational()
        while true {
            let pos = peek.position
            if case .symbol(let s) = peek.kind, ["=", "==", "!=", "<>"].contains(s) {
                i += 1
                left = .binary(op: s == "==" ? "=" : (s == "!=" ? "<>" : s), left, try relational(), pos)
                continue
            }
            var negated = false
            if isKeyword("NOT"), let next = tokens[i + 1].keyword, ["IN", "BETWEEN", "LIKE", "GLOB", "MATCH", "REGEXP", "NULL"].contains(next) {
                negated = true; i += 1
            }
            if isKeyword("IS") {
                i += 1
                var neg = false
                if isKeyword("NOT") { i += 1; neg = true }
                if isKeyword("DISTINCT") { throw SQLRefusal("syntax", peek.position, "IS DISTINCT FROM is not supported") }
                if isKeyword("NULL") { i += 1; left = .isNull(left, negated: neg, pos); continue }
                throw SQLRefusal("syntax", peek.position, "IS is supported only as IS NULL / IS NOT NULL: use = to compare values")
            }
            if isKeyword("ISNULL") { i += 1; left = .isNull(left, negated: false, pos); continue }
            if isKeyword("NOTNULL") { i += 1; left = .isNull(left, negated: true, pos); continue }
            if negated && isKeyword("NULL") { i += 1; left = .isNull(left, negated: true, pos); continue }
            if isKeyword("IN") {
                i += 1
                try expectSymbol("(", "after IN")
                if isKeyword("SELECT") || isKeyword("WITH") {
                    let q = try query()
                    try expectSymbol(")", "to close IN (SELECT …)")
                    left = .inSelect(left, q, negated: negated, pos)
                } else {
                    var items: [SQLExpr] = []
                    if !isSymbol(")") {
                        repeat {
                            if !items.isEmpty { i += 1 }
                            items.append(try expr())
                        } while isSymbol(",")
                    }
                    try expectSymbol(")", "to close the IN list")
                    if items.isEmpty { throw SQLRefusal("syntax", pos, "IN () needs at least one value") }
                    left = .inList(left, items, negated: negated, pos)
                }
                continue
            }
            if isKeyword("BETWEEN") {
                i += 1
                let low = try relational()
                try expectKeyword("AND", "in BETWEEN … AND …")
                let high = try relational()
                left = .between(left, low, high, negated: negated, pos)
                continue
            }
            if isKeyword("LIKE") {
                i += 1
                let pattern = try relational()
                if isKeyword("ESCAPE") { throw SQLRefusal("syntax", peek.position, "LIKE … ESCAPE is not supported") }
                left = .like(left, pattern, negated: negated, pos)
                continue
            }
            if let k = peek.keyword, ["GLOB", "MATCH", "REGEXP"].contains(k) {
                throw SQLRefusal("function", peek.position, "\(k) is not allowed: use LIKE 'prefix%'")
            }
            if negated { throw SQLRefusal("syntax", pos, "unexpected NOT") }
            return left
        }
    }

    private mutating func relational() throws(SQLRefusal) -> SQLExpr {
        var left = try additive()
        while case .symbol(let s) = peek.kind, ["<", "<=", ">", ">="].contains(s) {
            let pos = peek.position; i += 1
            left = .binary(op: s, left, try additive(), pos)
        }
        return left
    }

    private mutating func additive() throws(SQLRefusal) -> SQLExpr {
        var left = try multiplicative()
        while case .symbol(let s) = peek.kind, s == "+" || s == "-" {
            let pos = peek.position; i += 1
            left = .binary(op: s, left, try multiplicative(), pos)
        }
        return left
    }

    private mutating func multiplicative() throws(SQLRefusal) -> SQLExpr {
        var left = try concatenation()
        while case .symbol(let s) = peek.kind, s == "*" || s == "/" || s == "%" {
            let pos = peek.position; i += 1
            left = .binary(op: s, left, try concatenation(), pos)
        }
        return left
    }

    private mutating func concatenation() throws(SQLRefusal) -> SQLExpr {
        var left = try unary()
        while isSymbol("||") {
            let pos = peek.position; i += 1
            left = .binary(op: "||", left, try unary(), pos)
        }
        return left
    }

    private mutating func unary() throws(SQLRefusal) -> SQLExpr {
        var signs: [(String, SQLPosition)] = []
        while case .symbol(let s) = peek.kind, s == "-" || s == "+" { signs.append((s, peek.position)); i += 1 }
        var e = try primary()
        if isKeyword("COLLATE") { throw SQLRefusal("syntax", peek.position, "COLLATE is not supported") }
        for (s, pos) in signs.reversed() {
            if s == "-", case .literal(.integer(let n), _) = e, !n.hasPrefix("-") { e = .literal(.integer("-" + n), pos); continue }
            if s == "-", case .literal(.real(let n), _) = e, !n.hasPrefix("-") { e = .literal(.real("-" + n), pos); continue }
            e = .unary(op: s, e, pos)
        }
        return e
    }

    private mutating func primary() throws(SQLRefusal) -> SQLExpr {
        let t = peek
        let pos = t.position
        switch t.kind {
        case .number(let n):
            i += 1
            return .literal(n.contains(".") || n.contains("e") || n.contains("E") ? .real(n) : .integer(n), pos)
        case .string(let s):
            i += 1
            return .literal(.string(s), pos)
        case .symbol("("):
            i += 1
            if isKeyword("SELECT") || isKeyword("WITH") {
                let q = try query()
                try expectSymbol(")", "to close the subquery")
                return .subquery(q, pos)
            }
            let e = try expr()
            if isSymbol(",") { throw SQLRefusal("syntax", peek.position, "row values (a, b) are not supported") }
            try expectSymbol(")", "to close the parenthesis")
            return e
        case .identifier(let word):
            let k = word.uppercased()
            switch k {
            case "NULL": i += 1; return .literal(.null, pos)
            case "TRUE": i += 1; return .literal(.integer("1"), pos)
            case "FALSE": i += 1; return .literal(.integer("0"), pos)
            case "CAST":
                i += 1
                try expectSymbol("(", "after CAST")
                let e = try expr()
                try expectKeyword("AS", "in CAST(… AS type)")
                let typePos = peek.position
                let type = try name("a type name").uppercased()
                guard ["INTEGER", "REAL", "TEXT", "NUMERIC", "INT"].contains(type) else {
                    throw SQLRefusal("syntax", typePos, "CAST to \(type) is not supported: use INTEGER, REAL, TEXT or NUMERIC")
                }
                try expectSymbol(")", "to close CAST")
                return .cast(e, type: type == "INT" ? "INTEGER" : type, pos)
            case "CASE":
                i += 1
                var base: SQLExpr?
                if !isKeyword("WHEN") { base = try expr() }
                var branches: [SQLCaseBranch] = []
                while isKeyword("WHEN") {
                    i += 1
                    let w = try expr()
                    try expectKeyword("THEN", "after CASE … WHEN …")
                    branches.append(SQLCaseBranch(when: w, then: try expr()))
                }
                if branches.isEmpty { throw SQLRefusal("syntax", peek.position, "CASE needs at least one WHEN … THEN …") }
                var otherwise: SQLExpr?
                if isKeyword("ELSE") { i += 1; otherwise = try expr() }
                try expectKeyword("END", "to close CASE")
                return .caseWhen(base: base, branches: branches, otherwise: otherwise, pos)
            case "EXISTS":
                i += 1
                try expectSymbol("(", "after EXISTS")
                let q = try query()
                try expectSymbol(")", "to close EXISTS (…)")
                return .exists(q, pos)
            case "NOT":
                if isKeyword("EXISTS", at: 1) {
                    i += 1
                    return .unary(op: "NOT", try primary(), pos)
                }
            case "RAISE":
                throw SQLRefusal("function", pos, "RAISE is not allowed")
            default:
                break
            }
            if Self.reserved.contains(k) {
                throw SQLRefusal("syntax", pos, "unexpected \(k)")
            }
            fallthrough
        case .quotedIdentifier:
            let first = try name("a name")
            if isSymbol("(") , case .identifier = t.kind {
                return try functionCall(first, pos)
            }
            if isSymbol(".") {
                i += 1
                if isSymbol("*") { throw SQLRefusal("select-star", peek.position, "\(first).* is not allowed: name the columns you need") }
                let column = try name("a column name after '\(first).'")
                if isSymbol(".") { throw SQLRefusal("table", pos, "schema-qualified names are not allowed: write table.column") }
                return .column(table: first, name: column, pos)
            }
            return .column(table: nil, name: first, pos)
        default:
            throw SQLRefusal("syntax", pos, "expected a value, a column or a function, found \(describe(t))")
        }
    }

    private mutating func functionCall(_ name: String, _ pos: SQLPosition) throws(SQLRefusal) -> SQLExpr {
        try expectSymbol("(", "")
        var distinct = false, star = false
        var args: [SQLExpr] = []
        if isSymbol("*") {
            i += 1; star = true
        } else if !isSymbol(")") {
            if isKeyword("DISTINCT") { i += 1; distinct = true }
            repeat {
                if !args.isEmpty { i += 1 }
                args.append(try expr())
            } while isSymbol(",")
        }
        if isKeyword("ORDER") { throw SQLRefusal("function", peek.position, "ORDER BY inside an aggregate is not supported") }
        try expectSymbol(")", "to close \(name)(…)")
        if isKeyword("FILTER") || isKeyword("OVER") {
            throw SQLRefusal("function", peek.position, "window functions and FILTER clauses are not allowed")
        }
        return .function(name: name.lowercased(), distinct: distinct, args: args, star: star, pos)
    }
}

// MARK: - Printer

/// Prints a tree back to SQL with every name quoted and every operation parenthesized, so what
/// SQLite runs is exactly what the checker saw. `tableName` maps a named table to the text to
/// print for it (a dataset's attached file, or a WITH query's name).
struct SQLPrinter {
    var tableName: (String) -> String
    /// Extra output columns appended to a SELECT (hidden unit columns), keyed by the SELECT's position.
    var extraColumns: [String: [String]] = [:]

    static func quote(_ name: String) -> String { "\"" + doubling(name, "\"") + "\"" }

    /// `text` with every `quote` doubled, scalar by scalar: a quote followed by a combining mark
    /// is one Character to String's own search, but two scalars to the lexer and to SQLite.
    static func doubling(_ text: String, _ quote: Unicode.Scalar) -> String {
        var out = String.UnicodeScalarView()
        for c in text.unicodeScalars {
            out.append(c)
            if c == quote { out.append(c) }
        }
        return String(out)
    }

    static func literal(_ l: SQLLiteral) -> String {
        switch l {
        case .null: "NULL"
        case .integer(let s), .real(let s): s
        case .string(let s): "'" + doubling(s, "'") + "'"
        }
    }

    func query(_ q: SQLQuery) -> String {
        var out = ""
        if !q.with.isEmpty {
            out += "WITH " + q.with.map { Self.quote($0.name) + " AS (" + query($0.query) + ")" }.joined(separator: ", ") + " "
        }
        out += select(q.select)
        if !q.orderBy.isEmpty {
            out += " ORDER BY " + q.orderBy.map { expr($0.expr) + ($0.descending ? " DESC" : " ASC") }.joined(separator: ", ")
        }
        if let l = q.limit { out += " LIMIT \(l)" }
        if let o = q.offset { out += " OFFSET \(o)" }
        return out
    }

    func select(_ s: SQLSelect, columnsOverride: [String]? = nil, groupByOverride: [String]? = nil) -> String {
        var cols = columnsOverride ?? s.columns.map { c in expr(c.expr) + (c.alias.map { " AS " + Self.quote($0) } ?? "") }
        cols += extraColumns["\(s.position.line):\(s.position.column)"] ?? []
        var out = "SELECT " + (s.distinct ? "DISTINCT " : "") + cols.joined(separator: ", ")
        out += fromClause(s)
        if let w = s.whereClause { out += " WHERE " + expr(w) }
        let groups = groupByOverride ?? s.groupBy.map(expr)
        if !groups.isEmpty { out += " GROUP BY " + groups.joined(separator: ", ") }
        if let h = s.having { out += " HAVING " + expr(h) }
        return out
    }

    func fromClause(_ s: SQLSelect) -> String {
        guard let from = s.from else { return "" }
        var out = " FROM " + table(from)
        for j in s.joins {
            out += (j.kind == "," ? ", " : " \(j.kind) ") + table(j.table)
            if let on = j.on { out += " ON " + expr(on) }
        }
        return out
    }

    func table(_ t: SQLTableRef) -> String {
        switch t {
        case .named(let n, let alias, _): tableName(n) + " AS " + Self.quote(alias ?? n)
        case .subquery(let q, let alias, _): "(" + query(q) + ") AS " + Self.quote(alias)
        }
    }

    func expr(_ e: SQLExpr) -> String {
        switch e {
        case .literal(let l, _): return Self.literal(l)
        case .column(let t, let n, _): return (t.map { Self.quote($0) + "." } ?? "") + Self.quote(n)
        case .unary(let op, let x, _): return "(" + op + " " + expr(x) + ")"
        case .binary(let op, let l, let r, _): return "(" + expr(l) + " " + op + " " + expr(r) + ")"
        case .function(let name, let distinct, let args, let star, _):
            return name + "(" + (star ? "*" : (distinct ? "DISTINCT " : "") + args.map(expr).joined(separator: ", ")) + ")"
        case .cast(let x, let type, _): return "CAST(" + expr(x) + " AS " + type + ")"
        case .caseWhen(let base, let branches, let otherwise, _):
            var out = "(CASE"
            if let base { out += " " + expr(base) }
            for b in branches { out += " WHEN " + expr(b.when) + " THEN " + expr(b.then) }
            if let otherwise { out += " ELSE " + expr(otherwise) }
            return out + " END)"
        case .inList(let x, let items, let neg, _): return "(" + expr(x) + (neg ? " NOT IN (" : " IN (") + items.map(expr).joined(separator: ", ") + "))"
        case .inSelect(let x, let q, let neg, _): return "(" + expr(x) + (neg ? " NOT IN (" : " IN (") + query(q) + "))"
        case .between(let x, let lo, let hi, let neg, _):
            return "(" + expr(x) + (neg ? " NOT BETWEEN " : " BETWEEN ") + expr(lo) + " AND " + expr(hi) + ")"
        case .like(let x, let p, let neg, _): return "(" + expr(x) + (neg ? " NOT LIKE " : " LIKE ") + expr(p) + ")"
        case .isNull(let x, let neg, _): return "(" + expr(x) + (neg ? " IS NOT NULL)" : " IS NULL)")
        case .exists(let q, _): return "EXISTS (" + query(q) + ")"
        case .subquery(let q, _): return "(" + query(q) + ")"
        }
    }
}
