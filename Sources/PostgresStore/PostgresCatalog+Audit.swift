import Audit
import Foundation
import KaifangCore
import PostgresNIO
import Storage

/// The chain's head inside one write transaction, which locks the head row first (every write
/// that appends does, so the chain has one total order whichever replica writes).
struct ChainCursor {
    var seq: Int64
    var hash: String

    init(_ tx: PGTransaction) throws {
        guard let r = try tx.query("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE").first else {
            throw KaifangError.runtime("the store's audit chain has no head row: open the store once with this version to make it")
        }
        seq = try r.int64("seq")
        hash = try r.string("hash")
    }

    /// Appends one event after the head.
    @discardableResult
    mutating func append(_ tx: PGTransaction, actor: String, action: String, dataset: String?, detail: [String: JSONValue]) throws -> AuditEvent {
        let at = CatalogRules.now()
        _ = try appendMany(tx, [PendingAuditEvent(actor: actor, action: action, dataset: dataset, detail: detail)], at: at)
        return AuditEvent(seq: seq, at: at, actor: actor, action: action, dataset: dataset, detail: detail)
    }

    /// Appends events in order and moves the head, in one statement that also adds the reads
    /// among them to `read_counts`.
    /// - Returns: the change mark as the statement saw it (after the head was locked).
    @discardableResult
    mutating func appendMany(_ tx: PGTransaction, _ events: [PendingAuditEvent], at fixed: String? = nil) throws -> Int64 {
        let (chained, head) = ChainedEvents.make(events, after: (seq, hash), at: fixed)
        let rows = try tx.query(chained.statement(guardedBy: nil))
        (seq, hash) = head
        return try rows.first?.int64("mark") ?? 0
    }
}

/// Audit events as the columns one statement inserts them from (`unnest` of one array a
/// column): the batches a replica appends and the chain `store copy` moves.
struct AuditRows {
    var seqs: [Int64] = [], ats: [String] = [], actors: [String] = [], actions: [String] = [], datasets: [String] = []
    var details: [String] = [], prevs: [String] = [], hashes: [String] = []
    var count: Int { seqs.count }

    mutating func append(seq: Int64, at: String, actor: String, action: String, dataset: String?, detail: String, previous: String, hash: String) {
        seqs.append(seq); ats.append(at); actors.append(actor); actions.append(action); datasets.append(dataset ?? "")
        details.append(detail); prevs.append(previous); hashes.append(hash)
    }

    /// Binds the columns as parameters 1–8 (of `select`).
    func bind(_ b: inout PostgresBindings) {
        b.append(seqs); b.append(ats); b.append(actors); b.append(actions); b.append(datasets); b.append(details); b.append(prevs); b.append(hashes)
    }

    /// The rows, from the parameters `bind` gives, for `INSERT INTO audit_events (insertColumns) …`.
    static let insertColumns = "seq, at, actor, action, dataset_id, detail_json, prev_hash, hash"
    static let select = """
        SELECT s, a, ac, act, NULLIF(d, ''), dj, p, h
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS t(s, a, ac, act, d, dj, p, h)
        """
}

/// Events chained after a head, as the arrays one statement appends them from.
struct ChainedEvents {
    var rows = AuditRows()
    var days: [String] = [], readDatasets: [String] = [], reads: [Int64] = []
    var head: (seq: Int64, hash: String) = (0, "")

    /// The events after `previous`, each hashed on the one before; and the new head.
    static func make(_ events: [PendingAuditEvent], after previous: (seq: Int64, hash: String), at fixed: String?) -> (ChainedEvents, (Int64, String)) {
        var c = ChainedEvents()
        var (seq, hash) = previous
        var counts: [String: Int64] = [:]
        for e in events {
            let at = fixed ?? CatalogRules.now()
            let event = AuditEvent(seq: seq + 1, at: at, actor: e.actor, action: e.action, dataset: e.dataset, detail: [:])
            let h = AuditChain.hash(previous: hash, canonical: event.canonicalBytes(detail: e.canonicalDetail))
            c.rows.append(seq: seq + 1, at: at, actor: e.actor, action: e.action, dataset: e.dataset,
                          detail: String(decoding: e.canonicalDetail, as: UTF8.self), previous: hash, hash: h)
            seq += 1
            hash = h
            if let d = e.dataset, case let n = CatalogRules.readCount(e.action), n != 0 { counts["\(at.prefix(10))|\(d)", default: 0] += Int64(n) }
        }
        for (key, n) in counts.sorted(by: { $0.key < $1.key }) {
            c.days.append(String(key.prefix(10))); c.readDatasets.append(String(key.dropFirst(11))); c.reads.append(n)
        }
        c.head = (seq, hash)
        return (c, (seq, hash))
    }

    /// The call that appends the events, moves the head and counts the reads (the store's
    /// `audit_append`), answering `ok` (whether it did) and `mark` (the change mark). With
    /// `guardedBy`, it does so only if the head still is that one (no transaction needed: the
    /// head row's lock orders it against every other writer); without, the caller's
    /// transaction holds the head row.
    func statement(guardedBy expected: (seq: Int64, hash: String)?) -> PostgresQuery {
        var b = PostgresBindings()
        for p in parameters(guardedBy: expected) { b.append(p) }
        return PostgresQuery(unsafeSQL: Self.call, binds: b)
    }

    /// The call's fifteen parameters, in order.
    func parameters(guardedBy expected: (seq: Int64, hash: String)?) -> [PostgresData] {
        var p: [PostgresData] = [
            .encoded(rows.seqs), .encoded(rows.ats), .encoded(rows.actors), .encoded(rows.actions), .encoded(rows.datasets),
            .encoded(rows.details), .encoded(rows.prevs), .encoded(rows.hashes),
            .encoded(head.seq), .encoded(head.hash), .encoded(days), .encoded(readDatasets), .encoded(reads),
        ]
        if let expected {
            p += [.encoded(expected.seq), .encoded(expected.hash)]
        } else {
            p += [PostgresData(type: .int8), PostgresData(type: .text)]
        }
        return p
    }

    static let call = "SELECT ok, mark FROM audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
}

extension PostgresCatalog: AsyncBatchAppending {
    /// A batch with no thread held while it waits: the guess goes out on the append lane and
    /// is awaited; a miss takes the locked path on a store thread.
    public func appendBatchAsync(_ events: [PendingAuditEvent]) async throws -> Int64 {
        guard !events.isEmpty else { return lastSeenMark }
        if let guess = try sendGuess(events) {
            let rows: [PostgresRow]
            do {
                rows = try await guess.result.get()
            } catch {
                laneFailed(guess.lane)
                throw PGFailure(error)
            }
            if let mark = try settle(rows, guess.head) { return mark }
        }
        return try await StoreThreads.run { [self] in try lockedAppend(events) }
    }

    public func audit(actor: String, action: String, dataset: String?, detail: [String: JSONValue]) throws {
        try write(signal: false) { tx, chain in try chain.append(tx, actor: actor, action: action, dataset: dataset, detail: detail) }
    }

    /// Also reads the change mark inside the transaction (which holds the chain's lock, as every
    /// change does): a read recorded in this batch was served under that mark or an earlier one.
    ///
    /// A batch first goes optimistically, in one statement with no transaction, after the head
    /// this process expects (one round trip when no other replica appended meanwhile); when the
    /// head has moved, it goes again in a transaction that locks the head row first.
    @discardableResult
    public func audit(batch: [PendingAuditEvent]) throws -> Int64 {
        guard !batch.isEmpty else { return lastSeenMark }
        if let guess = try sendGuess(batch) {
            let rows: [PostgresRow]
            do {
                rows = try guess.result.wait()
            } catch {
                laneFailed(guess.lane)
                throw PGFailure(error)
            }
            if let mark = try settle(rows, guess.head) { return mark }
        }
        return try lockedAppend(batch)
    }

    /// Sends the optimistic statement of a batch: after the head this process expects, no
    /// transaction (the head row's lock orders it against every other writer). The expected
    /// head is the one the previous batch of this process will leave, even while that batch is
    /// still in flight: every guess goes out on one connection, the append lane, in the order
    /// the batches were chained, so each finds the head its predecessor left.
    /// Nil when guessing rests: while other replicas append too, the guess is mostly wrong and
    /// costs a round trip, so after a miss only every eighth batch guesses.
    func sendGuess(_ batch: [PendingAuditEvent]) throws -> (result: EventLoopFuture<[PostgresRow]>, lane: PostgresConnection, head: (seq: Int64, hash: String))? {
        let attempt = optimism.withLock { o -> Bool in
            o.batches &+= 1
            return o.misses == 0 || o.batches % 8 == 0
        }
        guard attempt else { return nil }
        return try appendLane.withLock { lane in
            guard let expected = knownHead.withLock({ $0 }) else { return nil }
            if lane == nil || lane!.connection.isClosed {
                if let broken = lane { client.checkinConnection(broken.connection, broken: true) }
                lane = nil
                lane = try AppendLane(client.checkoutConnection(), client: client)
            }
            let (chained, head) = ChainedEvents.make(batch, after: expected, at: nil)
            knownHead.withLock { $0 = head }
            return (lane!.prepared.execute(chained.parameters(guardedBy: expected)), lane!.connection, head)
        }
    }

    /// Drops a lane whose statement failed (the next guess opens another).
    func laneFailed(_ connection: PostgresConnection) {
        let dropped = appendLane.withLock { lane -> Bool in
            guard lane?.connection === connection else { return false }
            lane = nil
            return true
        }
        if dropped { client.checkinConnection(connection, broken: true) }
        knownHead.withLock { $0 = nil }
    }

    /// Gives the lane's connection back to the pool (when the store closes).
    func closeLane() {
        if let l = appendLane.withLock({ lane -> AppendLane? in defer { lane = nil }; return lane }) {
            client.checkinConnection(l.connection, broken: false)
        }
    }

    /// The change mark when the guess held (`ok`), nil when it missed.
    func settle(_ rows: [PostgresRow], _ head: (seq: Int64, hash: String)) throws -> Int64? {
        guard let r = rows.first.map({ PGRow($0.makeRandomAccess()) }), try r.preparedInt64("ok") == 1 else {
            guessMissed()
            return nil
        }
        let mark = try r.preparedInt64("mark")
        learned(head)
        optimism.withLock { $0.misses = 0 }
        appendPaths.withLock { $0.guessed += 1 }
        saw(mark)
        return mark
    }

    /// A miss means the heads expected after it are wrong too: the next locked append learns
    /// the real one.
    func guessMissed() {
        knownHead.withLock { $0 = nil }
        optimism.withLock { $0.misses += 1 }
    }

    /// A head the store confirmed, kept unless a later one is already expected.
    func learned(_ head: (seq: Int64, hash: String)) {
        knownHead.withLock { known in
            if known == nil || known!.seq < head.seq { known = head }
        }
    }

    /// A batch in a transaction that locks the head row first.
    func lockedAppend(_ batch: [PendingAuditEvent]) throws -> Int64 {
        let (mark, head) = try write(signal: false) { tx, chain -> (Int64, (Int64, String)) in
            let m = try chain.appendMany(tx, batch)
            return (m, (chain.seq, chain.hash))
        }
        appendPaths.withLock { $0.locked += 1 }
        learned(head)
        saw(mark)
        return mark
    }

    public func auditEvents(dataset: String?, actor: String?, limit: Int?) throws -> [(event: AuditEvent, previous: String, hash: String)] {
        var conds: [String] = []
        var binds = PostgresBindings()
        if let dataset { binds.append(dataset); conds.append("dataset_id = $\(binds.count)") }
        if let actor { binds.append(actor); conds.append("actor = $\(binds.count)") }
        let filter = conds.isEmpty ? "" : " WHERE " + conds.joined(separator: " AND ")
        var sql = "SELECT * FROM audit_events\(filter) ORDER BY seq"
        if let limit { sql = "SELECT * FROM (SELECT * FROM audit_events\(filter) ORDER BY seq DESC LIMIT \(max(0, limit))) last ORDER BY seq" }
        return try client.query(PostgresQuery(unsafeSQL: sql, binds: binds)).map { r in
            let detail = (try? JSONDecoder().decode([String: JSONValue].self, from: Data(try r.string("detail_json").utf8))) ?? [:]
            let event = AuditEvent(seq: try r.int64("seq"), at: try r.string("at"), actor: try r.string("actor"), action: try r.string("action"),
                                   dataset: try r.optString("dataset_id"), detail: detail)
            return (event, try r.string("prev_hash"), try r.string("hash"))
        }
    }

    /// Recomputes the whole chain, then checks it against anchors kept outside the database.
    public func verifyAudit(anchors: [(seq: Int64, hash: String)]) throws -> AuditChain.Verdict {
        try CatalogRules.verify(anchors: anchors.map { (source: "the given anchor", seq: $0.seq, hash: $0.hash) }) { verifier in
            // In pages of seq, so that a long chain never sits in memory whole.
            while true {
                let page = try client.query("""
                    SELECT seq, at, actor, action, dataset_id, detail_json, prev_hash, hash FROM audit_events
                    WHERE seq >= \(verifier.nextSeq) ORDER BY seq LIMIT 20000
                    """)
                for r in page {
                    if let broken = verifier.check(seq: try r.int64("seq"), at: try r.string("at"), actor: try r.string("actor"), action: try r.string("action"),
                                                   dataset: try r.optString("dataset_id"), detailJSON: Array(try r.string("detail_json").utf8),
                                                   previous: try r.string("prev_hash"), hash: try r.string("hash")) { return broken }
                }
                if page.count < 20000 { return nil }
            }
        }
    }

    public func auditHead() throws -> (seq: Int64, hash: String)? {
        try client.query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first.map { (try $0.int64("seq"), try $0.string("hash")) }
    }

    public func countEvents(actor: String, action: String, since: String) throws -> Int {
        try client.query("SELECT count(*) AS n FROM audit_events WHERE actor = \(actor) AND action = \(action) AND at >= \(since)").first?.int("n") ?? 0
    }
}

/// The append lane: one connection, with the store's append call prepared on it.
struct AppendLane {
    let connection: PostgresConnection
    let prepared: PreparedQuery

    init(_ connection: PostgresConnection, client: PGClient) throws {
        do {
            prepared = try connection.prepare(query: ChainedEvents.call).wait()
        } catch {
            client.checkinConnection(connection, broken: true)
            throw PGFailure(error)
        }
        self.connection = connection
    }
}

extension PostgresData {
    /// A value in the binary form its type encodes to.
    static func encoded<T: PostgresNonThrowingEncodable>(_ value: T) -> PostgresData {
        var buffer = ByteBuffer()
        value.encode(into: &buffer, context: .default)
        return PostgresData(type: T.psqlType, formatCode: T.psqlFormat, value: buffer)
    }
}
