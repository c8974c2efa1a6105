import CArchive
import Foundation
import KaifangCore

/// Data bundles (`.zip`, `.tar.gz`): a Frictionless `datapackage.json` plus CSV resources,
/// read and written with libarchive.
public enum Bundle {
    /// Whether a path names a bundle.
    public static func isBundle(_ path: String) -> Bool {
        let l = path.lowercased()
        return l.hasSuffix(".zip") || l.hasSuffix(".tar.gz") || l.hasSuffix(".tgz") || l.hasSuffix(".tar")
    }

    static func error(_ a: OpaquePointer?, _ what: String) -> KaifangError {
        let msg = archive_error_string(a).map { String(cString: $0) } ?? "unknown error"
        return KaifangError.badInput("\(what): \(msg)")
    }

    static func openReader(_ path: String) throws -> OpaquePointer {
        guard let a = archive_read_new() else { throw KaifangError.runtime("libarchive: out of memory") }
        archive_read_support_filter_all(a)
        archive_read_support_format_all(a)
        guard archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK else {
            let e = error(a, "\(path) is not a readable .zip or .tar.gz bundle")
            archive_read_free(a)
            throw e
        }
        return a
    }

    /// The `datapackage.json` of a bundle, parsed.
    /// - Throws: `KaifangError.badInput` when the bundle has none or it is not JSON.
    public static func descriptor(path: String) throws -> [String: Any] {
        let a = try openReader(path)
        defer { archive_read_free(a) }
        var entry: OpaquePointer?
        while archive_read_next_header(a, &entry) == ARCHIVE_OK {
            let name = String(cString: archive_entry_pathname(entry))
            guard (name as NSString).lastPathComponent == "datapackage.json" else { archive_read_data_skip(a); continue }
            var data = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
                if n < 0 { throw error(a, "\(path): reading datapackage.json") }
                if n == 0 { break }
                data += chunk[0..<n]
                if data.count > 16 << 20 { throw KaifangError.badInput("\(path): datapackage.json is larger than 16 MiB") }
            }
            guard let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
                throw KaifangError.badInput("\(path): datapackage.json is not a JSON object")
            }
            return object
        }
        throw KaifangError.badInput("\(path) holds no datapackage.json: a bundle is a Frictionless data package (datapackage.json plus CSV files)")
    }

    /// A manifest for the bundle's first tabular resource: the embedded Kaifang manifest when the
    /// bundle was exported by Kaifang, else its Table Schema (levels default to L2; classify after).
    /// - Throws: `KaifangError.badInput` for a descriptor without a CSV resource.
    public static func manifest(descriptor d: [String: Any], id: String) throws -> (DatasetManifest, resourcePath: String) {
        guard let resources = d["resources"] as? [[String: Any]], let r = resources.first(where: { ($0["path"] as? String)?.lowercased().hasSuffix(".csv") == true }),
              let path = r["path"] as? String else {
            throw KaifangError.badInput("datapackage.json has no resource whose path is a .csv file")
        }
        if let embedded = d["kaifang:manifest"], let data = try? JSONSerialization.data(withJSONObject: embedded) {
            var m = try DatasetManifest.decode(data, source: "datapackage.json kaifang:manifest")
            m.id = id
            return (m, path)
        }
        let fields = ((r["schema"] as? [String: Any])?["fields"] as? [[String: Any]]) ?? []
        guard !fields.isEmpty else { throw KaifangError.badInput("datapackage.json: resource '\(path)' has no schema fields") }
        let specs: [FieldSpec] = fields.enumerated().map { i, f in
            let name = f["name"] as? String ?? "field_\(i + 1)"
            let type: FieldType = switch f["type"] as? String {
            case "integer": .integer
            case "number": .number
            case "boolean": .boolean
            case "date": .date
            case "datetime": .datetime
            default: .string
            }
            let constraints = f["constraints"] as? [String: Any]
            let valid = DatasetManifest.isValidFieldName(name)
            return FieldSpec(name: valid ? name : "field_\(i + 1)", title: (f["title"] as? String) ?? (valid ? nil : name),
                             description: f["description"] as? String, type: type, level: .L2,
                             min: (constraints?["minimum"] as? NSNumber)?.doubleValue, max: (constraints?["maximum"] as? NSNumber)?.doubleValue)
        }
        // Frictionless's primaryKey: a field name or a list of them.
        let schema = r["schema"] as? [String: Any]
        let primaryKey = (schema?["primaryKey"] as? [String]) ?? (schema?["primaryKey"] as? String).map { [$0] }
        let m = DatasetManifest(id: id, title: d["title"] as? String ?? id, description: d["description"] as? String ?? "", fields: specs,
                                primaryKey: primaryKey)
        do { try m.validate() } catch let e as KaifangError { throw KaifangError.badInput("datapackage.json: \(e.message)") }
        return (m, path)
    }

    /// Streams one member of a bundle.
    public final class MemberSource: ByteSource {
        private let archive: OpaquePointer
        public private(set) var bytesRead: Int64 = 0

        /// Opens `member` (a path inside the bundle) for reading.
        /// - Throws: `KaifangError.badInput` when the bundle has no such member.
        public init(bundle path: String, member: String) throws {
            archive = try Bundle.openReader(path)
            var entry: OpaquePointer?
            while archive_read_next_header(archive, &entry) == ARCHIVE_OK {
                let name = String(cString: archive_entry_pathname(entry))
                if name == member || name == "./" + member || (name as NSString).lastPathComponent == member { return }
                archive_read_data_skip(archive)
            }
            archive_read_free(archive)
            throw KaifangError.badInput("\(path) has no member '\(member)' (named by datapackage.json)")
        }

        deinit { archive_read_free(archive) }

        public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            let n = archive_read_data(archive, buffer.baseAddress, buffer.count)
            if n < 0 { throw Bundle.error(archive, "reading the bundle") }
            bytesRead += Int64(n)
            return n
        }
    }

    /// Writes a bundle: `datapackage.json` first, then the files, as `.zip` or `.tar.gz` by extension.
    /// - Throws: `KaifangError.runtime` when the archive cannot be written.
    public static func write(path: String, members: [(name: String, file: String)], descriptor: Data) throws {
        guard let a = archive_write_new() else { throw KaifangError.runtime("libarchive: out of memory") }
        defer { archive_write_free(a) }
        if path.lowercased().hasSuffix(".zip") {
            archive_write_set_format_zip(a)
        } else {
            archive_write_set_format_pax_restricted(a)
            archive_write_add_filter_gzip(a)
        }
        guard archive_write_open_filename(a, path) == ARCHIVE_OK else { throw KaifangError.runtime("cannot create \(path): \(String(cString: archive_error_string(a)))") }
        func add(_ name: String, size: Int64, _ body: () throws -> Void) throws {
            let e = archive_entry_new()
            defer { archive_entry_free(e) }
            archive_entry_set_pathname(e, name)
            archive_entry_set_size(e, size)
            archive_entry_set_filetype(e, kaifang_ae_ifreg())
            archive_entry_set_perm(e, 0o644)
            archive_entry_set_mtime(e, time(nil), 0)
            guard archive_write_header(a, e) == ARCHIVE_OK else { throw KaifangError.runtime("writing \(name): \(String(cString: archive_error_string(a)))") }
            try body()
        }
        try add("datapackage.json", size: Int64(descriptor.count)) {
            _ = descriptor.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
        }
        for m in members {
            let attrs = try FileManager.default.attributesOfItem(atPath: m.file)
            let size = (attrs[.size] as? NSNumber)?.int64Value ?? 0
            try add(m.name, size: size) {
                let src = try FileByteSource(path: m.file)
                var buf = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = try buf.withUnsafeMutableBytes { try src.read(into: $0) }
                    if n == 0 { break }
                    let w = buf.withUnsafeBytes { archive_write_data(a, $0.baseAddress, n) }
                    if w < 0 { throw KaifangError.runtime("writing \(m.name): \(String(cString: archive_error_string(a)))") }
                }
            }
        }
        guard archive_write_close(a) == ARCHIVE_OK else { throw KaifangError.runtime("closing \(path): \(String(cString: archive_error_string(a)))") }
    }
}
