import Foundation
import KaifangCore
import Masking

/// Infers a manifest for a CSV that comes without one: storage types from a sample of values,
/// semantic types, levels and quasi-identifiers from the Masking classifier. The steward
/// reviews it (`kaifang dataset show`) and adjusts it (`kaifang dataset field`).
public enum SchemaInference {
    /// Reads the header and up to `sample` rows and proposes a manifest.
    /// - Throws: `KaifangError.badInput` for an empty file or a malformed CSV.
    public static func infer(reader: CSVReader, id: String, sample: Int = 1000) throws -> DatasetManifest {
        guard try reader.next() else { throw KaifangError.badInput("\(reader.fileName): the file is empty: it needs a header line") }
        let headers = reader.strings().map { $0.trimmingCharacters(in: .whitespaces) }
        var columns = Array(repeating: [String](), count: headers.count)
        var n = 0
        while n < sample, try reader.next() {
            for i in 0..<min(reader.fieldCount, headers.count) { columns[i].append(reader.string(i)) }
            n += 1
        }
        var used = Set<String>()
        var fields: [FieldSpec] = []
        for (i, header) in headers.enumerated() {
            var name = DatasetManifest.isValidFieldName(header) ? header : asciiName(header)
            if name.isEmpty || used.contains(name.lowercased()) { name = "field_\(i + 1)" }
            used.insert(name.lowercased())
            let type = inferType(columns[i])
            var field = FieldSpec(name: name, title: header == name ? nil : header, type: type, level: .L2)
            let proposal = ColumnClassifier.propose(field: field, samples: columns[i])
            field.semantic = proposal.semantic
            // Unknown columns are L2 at least: a steward lowers them on purpose, never by default.
            field.level = max(proposal.level, .L2)
            if proposal.semantic == .category && !proposal.qi { field.level = proposal.level }
            field.qi = proposal.qi
            fields.append(field)
        }
        return DatasetManifest(id: id, title: id, description: "Schema inferred from \(reader.fileName); review the levels.", fields: fields)
    }

    /// Letters and digits of a header, lower-cased, `_` elsewhere; empty for non-ASCII headers.
    static func asciiName(_ header: String) -> String {
        var out = ""
        for u in header.unicodeScalars {
            if u.isASCII && (CharacterSet.alphanumerics.contains(u)) { out.unicodeScalars.append(u) } else if !out.hasSuffix("_") && !out.isEmpty { out += "_" }
        }
        while out.hasSuffix("_") { out.removeLast() }
        out = out.lowercased()
        if let f = out.first, f.isNumber { out = "f_" + out }
        return DatasetManifest.isValidFieldName(out) ? out : ""
    }

    /// The narrowest type every non-empty value parses as.
    static func inferType(_ values: [String]) -> FieldType {
        let present = values.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard !present.isEmpty else { return .string }
        func all(_ test: (UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
            present.allSatisfy { v in var c = v; return c.withUTF8 { test($0) } }
        }
        // Identifiers that look numeric (IDs, phones, codes with leading zeros) stay strings.
        let longOrZeroPadded = present.contains { $0.count >= 11 || ($0.count > 1 && $0.hasPrefix("0") && !$0.hasPrefix("0.")) }
        if !longOrZeroPadded && all({ ValueParser.integer($0) != nil }) { return .integer }
        if !longOrZeroPadded && all({ ValueParser.number($0) != nil }) { return .number }
        let booleans: Set<String> = ["true", "false", "yes", "no", "是", "否"]
        if present.allSatisfy({ booleans.contains($0.lowercased()) }) { return .boolean }
        if all({ ValueParser.date($0) != nil }) && present.allSatisfy({ $0.count <= 10 }) { return .date }
        if all({ ValueParser.datetime($0) != nil }) { return .datetime }
        return .string
    }
}
