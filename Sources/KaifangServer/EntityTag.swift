import Crypto
import Foundation
import KaifangCore
import Storage

/// Conditional reads (RFC 9110): strong entity tags of served content and `If-None-Match`.
///
/// A tag is a hash of everything the bytes of a response depend on, so that two responses with
/// the same tag are the same bytes on every replica: the server's version, the published
/// version's content hash, the dataset's publication (its policy and tier change its
/// `updated_at`), the caller's view and license (granted fields), and the request's
/// parameters. Nothing secret goes in, and the tag reveals nothing but equality.
enum EntityTag {
    /// The tag of a response of `kind` (`rows`, `export`…) through `access` for `request`
    /// (the parameters that shape the response, in the order the client sent them).
    static func of(_ kind: String, _ access: Access, request: [String]) -> String {
        of(kind, parts: parts(access) + request)
    }

    /// What a response through `access` depends on beyond its request.
    static func parts(_ access: Access) -> [String] {
        parts(access.dataset) + [access.version.sha256, access.view.rawValue,
                                 access.license.map { $0.id + ":" + $0.fields.sorted().joined(separator: ",") } ?? "-"]
    }

    /// What a response about `dataset` depends on: its publication (policy and tier change
    /// `updated_at`) and the version it serves.
    static func parts(_ dataset: DatasetRecord) -> [String] {
        [dataset.id, dataset.updatedAt, dataset.tier?.rawValue ?? "-", String(dataset.publishedVersion ?? 0)]
    }

    /// The tag of a response of `kind` that depends on `parts` (and the server's version).
    static func of(_ kind: String, parts: [String]) -> String {
        var h = SHA256()
        // Length-prefixed, so that no two lists of parts hash alike.
        for part in [kind, kaifangVersion] + parts {
            withUnsafeBytes(of: UInt32(part.utf8.count).littleEndian) { h.update(bufferPointer: $0) }
            h.update(data: Array(part.utf8))
        }
        return "\"" + kind.prefix(1) + Array(h.finalize()).prefix(16).hexString + "\""
    }

    /// The tag of a response of `kind` whose content is `value` (encoded with its keys sorted):
    /// for metadata, which is small and changes with anything in it.
    static func ofContent<T: Encodable>(_ kind: String, _ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return of(kind, parts: [String(decoding: try encoder.encode(value), as: UTF8.self)])
    }

    /// Whether `If-None-Match` names `tag` (weak comparison, as RFC 9110 asks of this header:
    /// a `W/` prefix is ignored) or is `*`.
    static func matches(_ header: String?, _ tag: String) -> Bool {
        guard let header, !header.isEmpty else { return false }
        for part in header.split(separator: ",") {
            var t = part.trimmingCharacters(in: .whitespaces)
            if t == "*" { return true }
            if t.hasPrefix("W/") { t.removeFirst(2) }
            if t == tag { return true }
        }
        return false
    }

    /// `Cache-Control` of a read: a cache must ask again before each reuse (so every read
    /// reaches the server and its audit log); `private` unless the response is the public view.
    static func cacheControl(_ view: View) -> String {
        cacheControl(private: view != .public)
    }

    /// `Cache-Control` of a response for one caller (`private`) or for anyone.
    static func cacheControl(private: Bool) -> String {
        `private` ? "private, no-cache" : "no-cache"
    }
}
