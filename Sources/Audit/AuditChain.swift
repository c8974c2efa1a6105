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
        var v = Verifier()
        for item in stored {
            if let broken = v.check(item.event, previous: item.previous, hash: item.hash) { return broken }
        }
        return v.verdict
    }

    /// Recomputes a chain one stored event at a time, in seq order, so that a store can stream
    /// its events through it; remembers the hashes at the seqs it is asked to (anchors).
    public struct Verifier: Sendable {
        public private(set) var previous = AuditChain.genesis
        public private(set) var nextSeq: Int64 = 1
        public private(set) var count = 0
        private let remember: Set<Int64>
        /// The stored hashes at the seqs given to `init`, as they were met.
        public private(set) var remembered: [Int64: String] = [:]

        public init(remembering seqs: Set<Int64> = []) { remember = seqs }

        public var verdict: Verdict { .intact(count: count, head: previous) }

        /// Checks the next stored event: nil when its link holds, the break otherwise.
        public mutating func check(_ event: AuditEvent, previous stored: String, hash: String) -> Verdict? {
            link(seq: event.seq, previous: stored, hash: hash) { AuditChain.hash(previous: $0, event: event) }
        }

        /// The same for an event as stored: its detail as the bytes the store kept. They are
        /// hashed as they are (the writers store the canonical bytes they hashed); only when that
        /// does not match is the detail parsed and put in canonical form again.
        public mutating func check(seq: Int64, at: String, actor: String, action: String, dataset: String?,
                                   detailJSON: [UInt8], previous stored: String, hash: String) -> Verdict? {
            link(seq: seq, previous: stored, hash: hash) { prev in
                let bare = AuditEvent(seq: seq, at: at, actor: actor, action: action, dataset: dataset, detail: [:])
                let asStored = AuditChain.hash(previous: prev, canonical: bare.canonicalBytes(detail: detailJSON))
                if asStored == hash { return asStored }
                guard let detail = try? JSONDecoder().decode([String: JSONValue].self, from: Data(detailJSON)) else { return asStored }
                return AuditChain.hash(previous: prev, canonical: bare.canonicalBytes(detail: JSONValue.object(detail).canonicalBytes))
            }
        }

        private mutating func link(seq: Int64, previous stored: String, hash: String, recompute: (String) -> String) -> Verdict? {
            if seq != nextSeq {
                return .broken(seq: nextSeq, reason: "event \(nextSeq) is missing (the next stored event is \(seq)): an event was deleted")
            }
            if stored != previous {
                return .broken(seq: seq, reason: "event \(seq) does not point at the hash of event \(seq - 1)")
            }
            let h = recompute(previous)
            if h != hash {
                return .broken(seq: seq, reason: "event \(seq) was altered: its content no longer matches its hash")
            }
            if remember.contains(seq) { remembered[seq] = h }
            previous = h
            nextSeq += 1
            count += 1
            return nil
        }
    }

    /// A time as the chain writes it: ISO 8601 UTC with milliseconds (`2026-11-22T04:28:52.710Z`).
    /// Formatted by hand: a date formatter per call costs more than the rest of a read.
    /// The time a `timestamp` names (nil for text that is not one).
    public static func date(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }

    /// `date` to the millisecond below it. A time read back from a timestamp (`date(_:)`) can
    /// land a hair under its millisecond in binary floating point: a microsecond of slack gives
    /// that millisecond back, so timestamp → date → timestamp is the identity.
    public static func timestamp(_ date: Date = Date()) -> String {
        let total = Int64((date.timeIntervalSince1970 * 1000 + 0.001).rounded(.down))
        let seconds = total >= 0 ? total / 1000 : (total - 999) / 1000
        var out: [UInt8] = []
        out.reserveCapacity(24)
        UTCTimestamp.append(seconds: seconds, milliseconds: Int(total - seconds * 1000), into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
