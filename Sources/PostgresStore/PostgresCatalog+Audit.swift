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
        var seqs: [Int64] = [], ats: [String] = [], actors: [String] = [], actions: [String] = [], datasets: [String] = []
        var details: [String] = [], prevs: [String] = [], hashes: [String] = []
        var reads: [String: Int64] = [:]
        for e in events {
            let at = fixed ?? CatalogRules.now()
            let event = AuditEvent(seq: seq + 1, at: at, actor: e.actor, action: e.action, dataset: e.dataset, detail: [:])
            let h = AuditChain.hash(previous: hash, canonical: event.canonicalBytes(detail: e.canonicalDetail))
            seqs.append(seq + 1); ats.append(at); actors.append(e.actor); actions.append(e.action)
            datasets.append(e.dataset ?? ""); details.append(String(decoding: e.canonicalDetail, as: UTF8.self))
            prevs.append(hash); hashes.append(h)
            seq += 1
            hash = h
            if let d = e.dataset, CatalogRules.isRead(e.action) { reads["\(at.prefix(10))|\(d)", default: 0] += 1 }
        }
        let counted = reads.sorted { $0.key < $1.key }
        let days = counted.map { String($0.key.prefix(10)) }, readDatasets = counted.map { String($0.key.dropFirst(11)) }, ns = counted.map(\.value)
        let rows = try tx.query("""
            WITH appended AS (
                INSERT INTO audit_events (seq, at, actor, action, dataset_id, detail_json, prev_hash, hash)
                SELECT s, a, ac, act, NULLIF(d, ''), dj, p, h
                FROM unnest(\(seqs)::bigint[], \(ats)::text[], \(actors)::text[], \(actions)::text[], \(datasets)::text[], \(details)::text[], \(prevs)::text[], \(hashes)::text[])
                    AS t(s, a, ac, act, d, dj, p, h)),
            head AS (UPDATE audit_head SET seq = \(seq), hash = \(hash) WHERE id = 1),
            counted AS (
                INSERT INTO read_counts (day, dataset_id, n) SELECT * FROM unnest(\(days)::text[], \(readDatasets)::text[], \(ns)::bigint[])
                ON CONFLICT (day, dataset_id) DO UPDATE SET n = read_counts.n + excluded.n)
            SELECT seq FROM catalog_changes WHERE id = 1
            """)
        return try rows.first?.int64("seq") ?? 0
    }
}

extension PostgresCatalog {
    public func audit(actor: String, action: String, dataset: String?, detail: [String: JSONValue]) throws {
        try write(signal: false) { tx, chain in try chain.append(tx, actor: actor, action: action, dataset: dataset, detail: detail) }
    }

    /// Also reads the change mark inside the transaction (which holds the chain's lock, as every
    /// change does): a read recorded in this batch was served under that mark or an earlier one.
    @discardableResult
    public func audit(batch: [PendingAuditEvent]) throws -> Int64 {
        guard !batch.isEmpty else { return lastSeenMark }
        let seq = try write(signal: false) { tx, chain -> Int64 in try chain.appendMany(tx, batch) }
        saw(seq)
        return seq
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
        let events = try auditEvents(dataset: nil, actor: nil, limit: nil)
        let verdict = AuditChain.verify(events)
        guard case .intact = verdict else { return verdict }
        let last = events.last?.event.seq ?? 0
        for a in anchors.sorted(by: { $0.seq < $1.seq }) {
            if a.seq > last {
                return .broken(seq: last + 1, reason: "events after \(last) were deleted: the given anchor records event \(a.seq)")
            }
            if let stored = events.first(where: { $0.event.seq == a.seq }), stored.hash != a.hash {
                return .broken(seq: a.seq, reason: "event \(a.seq)'s hash differs from the given anchor: the chain was rewritten at or before it")
            }
        }
        return verdict
    }

    public func auditHead() throws -> (seq: Int64, hash: String)? {
        try client.query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first.map { (try $0.int64("seq"), try $0.string("hash")) }
    }

    public func countEvents(actor: String, action: String, since: String) throws -> Int {
        try client.query("SELECT count(*) AS n FROM audit_events WHERE actor = \(actor) AND action = \(action) AND at >= \(since)").first?.int("n") ?? 0
    }
}
