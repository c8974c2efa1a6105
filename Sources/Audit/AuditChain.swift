import Crypto
import KaifangCore
import Foundation

/// One audit event: who did what to which dataset, with details (never a raw data value).
public struct AuditEvent: Sendable, Equatable {
    /// Position in the chain, from 1, without gaps.
    public var seq: Int64
    /// When, ISO 8601 UTC with milliseconds.
    public var at: String
    /// Who: `key:<id>`, `cli:<user>`, `anonymous:<address>`, `system`.
    public var actor: String
    /// What: `dataset.import`, `dataset.publish`, `rows.read`, `key.create`, …
    public var action: String
    /// The dataset concerned, if any.
    public var dataset: String?
    /// Details: version, fields with actions, row count, request id, reasons.
    public var detail: [String: JSONValue]

    public init(seq: Int64, at: String, actor: String, action: String, dataset: String?, detail: [String: JSONValue]) {
        self.seq = seq; self.at = at; self.actor = actor; self.action = action; self.dataset = dataset; self.detail = detail
    }

    /// The canonical JSON that is hashed.
    public var canonicalJSON: String { String(decoding: canonicalBytes, as: UTF8.self) }

    /// `canonicalJSON` as UTF-8 bytes.
    public var canonicalBytes: [UInt8] { canonicalBytes(detail: JSONValue.object(detail).canonicalBytes) }

    /// The canonical bytes around an already serialized `detail` (the catalog stores those
    /// bytes too, so they are written once). Keys in UTF-8 order: action, actor, at, dataset,
    /// detail, seq — what `JSONValue.object(…).canonical` of the whole event gives.
    public func canonicalBytes(detail detailBytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(detailBytes.count + 160)
        out.append(contentsOf: #"{"action":"#.utf8); JSONValue.writeString(action, into: &out)
        out.append(contentsOf: #","actor":"#.utf8); JSONValue.writeString(actor, into: &out)
        out.append(contentsOf: #","at":"#.utf8); JSONValue.writeString(at, into: &out)
        out.append(contentsOf: #","dataset":"#.utf8)
        if let dataset { JSONValue.writeString(dataset, into: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","detail":"#.utf8); out.append(contentsOf: detailBytes)
        out.append(contentsOf: #","seq":"#.utf8); out.append(contentsOf: String(seq).utf8)
        out.append(0x7D)
        return out
    }
}

/// The hash chain: `hash(n) = sha256(hash(n-1) ‖ canonical JSON of event n)`, hex encoded.
public enum AuditChain {
    /// The `previous hash` of the first event.
    public static let genesis = String(repeating: "0", count: 64)

    /// The hash of `event` chained after `previous`.
    public static func hash(previous: String, event: AuditEvent) -> String {
        hash(previous: previous, canonical: event.canonicalBytes)
    }

    /// The hash of an event given its canonical bytes.
    public static func hash(previous: String, canonical: [UInt8]) -> String {
        var h = SHA256()
        h.update(data: Array(previous.utf8))
        h.update(data: canonical)
        return h.finalize().hexString
    }

    /// What verification found.
    public enum Verdict: Sendable, Equatable {
        /// Every link holds; `count` events, last hash `head`.
        case intact(count: Int, head: String)
        /// The first broken link: the event's seq and why.
        case broken(seq: Int64, reason: String)
    }

    /// Recomputes the chain over stored events `(event, prevHash, hash)` in seq order.
    public static func verify(_ stored: [(event: AuditEvent, previous: String, hash: String)]) -> Verdict {
        var expectedPrev = genesis
        var expectedSeq: Int64 = 1
        for item in stored {
            if item.event.seq != expectedSeq {
                return .broken(seq: expectedSeq, reason: "event \(expectedSeq) is missing (the next stored event is \(item.event.seq)): an event was deleted")
            }
            if item.previous != expectedPrev {
                return .broken(seq: item.event.seq, reason: "event \(item.event.seq) does not point at the hash of event \(item.event.seq - 1)")
            }
            let h = hash(previous: expectedPrev, event: item.event)
            if h != item.hash {
                return .broken(seq: item.event.seq, reason: "event \(item.event.seq) was altered: its content no longer matches its hash")
            }
            expectedPrev = h
            expectedSeq += 1
        }
        return .intact(count: stored.count, head: expectedPrev)
    }

    /// A time as the chain writes it: ISO 8601 UTC with milliseconds (`2026-11-22T04:28:52.710Z`).
    /// Formatted by hand: a date formatter per call costs more than the rest of a read.
    public static func timestamp(_ date: Date = Date()) -> String {
        let t = date.timeIntervalSince1970
        let seconds = floor(t)
        let millis = min(999, Int(((t - seconds) * 1000).rounded(.down)))
        var out: [UInt8] = []
        out.reserveCapacity(24)
        UTCTimestamp.append(seconds: Int64(seconds), milliseconds: millis, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
