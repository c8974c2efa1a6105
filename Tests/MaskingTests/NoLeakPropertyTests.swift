import Crypto
import Foundation
import Ingest
import KaifangCore
import Masking
import Testing

/// No output of a `public` or `licensed` view holds a value that validates as a resident ID,
/// phone, bank card or email in a field the manifest marks L3 or L4, whatever the values are.
@Suite struct NoLeakPropertyTests {
    static let keys = PseudonymKeys(secret: SymmetricKey(data: Data(repeating: 3, count: 32)))
    static let dangerous: Set<SemanticType> = [.resident_id, .phone, .bank_card, .email]

    /// The e-mail mask's own output (`z***@example.com`): `*` is a legal character of an
    /// address (RFC 5322 atext), so the mask's form validates; it keeps one character of the
    /// local part and is not the person's address.
    static func isMaskedEmail(_ value: String) -> Bool {
        guard let at = value.firstIndex(of: "@") else { return false }
        let local = value[..<at]
        return local.count >= 2 && local.dropFirst().allSatisfy { $0 == "*" }
    }

    static func leaks(_ value: String) -> Bool {
        let d = Detector.detect(value)
        if let t = d.type, d.valid, dangerous.contains(t), !(t == .email && isMaskedEmail(value)) { return true }
        // Also look inside longer text, token by token.
        for token in value.split(whereSeparator: { " ,;:|/()\t".contains($0) }) where token.count >= 11 {
            let d = Detector.detect(String(token))
            if let t = d.type, d.valid, dangerous.contains(t), !(t == .email && isMaskedEmail(String(token))) { return true }
        }
        return false
    }

    /// A value of a random personal format, often dressed up (spaces, full width, +86).
    static func messyValue(_ rng: inout Vectors.Rng) -> String {
        switch rng.int(0...9) {
        case 0: return Vectors.residentID(&rng)
        case 1: return Vectors.fullWidth(Vectors.residentID(&rng))
        case 2: return Vectors.phone(&rng)
        case 3: return "+86 " + Vectors.phone(&rng)
        case 4: return Vectors.bankCard(&rng, length: 19)
        case 5: let c = Vectors.bankCard(&rng, length: 16); return stride(from: 0, to: 16, by: 4).map { String(Array(c)[$0..<($0 + 4)]) }.joined(separator: " ")
        case 6: return "user\(rng.int(1...999))@example.com"
        case 7: return "联系人 \(Vectors.phone(&rng)) 身份证 \(Vectors.residentID(&rng))"
        case 8: return ""
        default: return "张三"
        }
    }

    @Test func randomRowsThroughEveryL3L4ColumnKind() {
        var rng = Vectors.Rng(state: 99)
        let semantics: [SemanticType?] = [.resident_id, .phone, .bank_card, .email, .person_name, .address, .text, .identifier,
                                          .landline, .passport, .license_plate, .ip, .category, nil]
        var fields: [FieldSpec] = []
        for (i, s) in semantics.enumerated() {
            for level in [Level.L3, .L4] {
                fields.append(FieldSpec(name: "f\(i)_\(level.rawValue)", type: .string, semantic: s, level: level))
            }
        }
        let manifest = DatasetManifest(id: "p", title: "P", fields: fields)
        var checked = 0
        for view in [View.public, .licensed] {
            for grant in [nil, LicenseGrant(licenseID: "lic-1")] {
                let plan = MaskingPlan(manifest: manifest, view: view, grant: grant, keys: Self.keys)
                for row in 0..<500 {
                    let cells = fields.map { _ in Cell.text(Self.messyValue(&rng)) }
                    for (i, out) in plan.apply(row: cells, rowID: Int64(row)).enumerated() {
                        if case .text(let s) = out {
                            #expect(!Self.leaks(s), "\(view) \(fields[i].name): a value that validates leaked")
                            checked += 1
                        }
                    }
                }
            }
        }
        #expect(checked > 20_000)
    }

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Masks a CSV file into memory through `CSVMasker` (the `kaifang mask` path).
    static func maskFile(_ csv: URL, manifest: DatasetManifest, view: View) throws -> [[String]] {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mask-\(UUID().uuidString).csv")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let fd = open(out.path, O_WRONLY)
        defer { close(fd) }
        let plan = MaskingPlan(manifest: manifest, view: view, grant: view == .licensed ? LicenseGrant(licenseID: "lic-test") : nil, keys: keys)
        let reader = CSVReader(source: try FileByteSource(path: csv.path), fileName: csv.lastPathComponent)
        try CSVMasker.run(reader: reader, plan: plan, manifest: manifest, sink: ByteSink(fileDescriptor: fd))
        let back = CSVReader(source: try FileByteSource(path: out.path), fileName: "out.csv")
        var rows: [[String]] = []
        while try back.next() { rows.append(back.strings()) }
        return rows
    }

    @Test(arguments: ["residents", "enterprises", "air-quality"])
    func everySampleDatasetInBothViews(name: String) throws {
        let folder = Self.repo.appendingPathComponent("datasets/\(name)")
        let manifest = try DatasetManifest.load(path: folder.appendingPathComponent("dataset.json").path)
        let sensitive = Set(manifest.fields.filter { $0.level >= .L3 }.map(\.name))
        for view in [View.public, .licensed] {
            let rows = try Self.maskFile(folder.appendingPathComponent("\(name).csv"), manifest: manifest, view: view)
            let header = rows[0]
            #expect(rows.count > 1000)
            for row in rows.dropFirst() {
                for (i, value) in row.enumerated() where sensitive.contains(header[i]) {
                    #expect(!Self.leaks(value), "\(name) \(view) \(header[i]) leaked")
                }
            }
            // The public view drops nothing but suppresses L4 (an empty column), and masks L3.
            if view == .public, name == "residents" {
                let idColumn = try #require(header.firstIndex(of: "id_number"))
                #expect(rows.dropFirst().allSatisfy { $0[idColumn].isEmpty })
            }
        }
    }
}

@Suite struct KAnonymityTests {
    @Test func theSmallestClassOfTheServedQuasiIdentifiersIsK() {
        let manifest = DatasetManifest(id: "k", title: "K", fields: [
            FieldSpec(name: "birth", type: .date, level: .L2, qi: true),
            FieldSpec(name: "district", type: .string, semantic: .category, level: .L1, qi: true),
            FieldSpec(name: "x", type: .integer, level: .L1),
        ])
        let plan = MaskingPlan(manifest: manifest, view: .public, keys: nil)
        var counter = KAnonymityCounter(plan: plan)
        // Birth dates generalize to the year (qi): 1990 ×6 in A, 1991 ×2 in A, 1990 ×5 in B.
        for d in 1...6 { counter.add([.text("1990-01-0\(d)"), .text("A"), .integer(1)]) }
        for d in 1...2 { counter.add([.text("1991-05-0\(d)"), .text("A"), .integer(2)]) }
        for d in 1...5 { counter.add([.text("1990-12-1\(d)"), .text("B"), .integer(3)]) }
        let r = counter.report(threshold: 5)
        #expect(r.quasiIdentifiers == ["birth", "district"])
        #expect(r.rows == 13 && r.classes == 3 && r.k == 2 && r.rowsBelow == 2 && !r.passes)
        #expect(counter.report(threshold: 2).passes)
    }

    @Test func withoutQuasiIdentifiersThereIsNoK() {
        let plan = MaskingPlan(manifest: DatasetManifest(id: "k", title: "K", fields: [FieldSpec(name: "x", level: .L1)]), view: .public, keys: nil)
        var counter = KAnonymityCounter(plan: plan)
        counter.add([.text("a")])
        #expect(counter.report(threshold: 5).k == nil && counter.report(threshold: 5).passes)
    }
}

@Suite struct ClassifierTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func samples(_ dataset: String) throws -> (DatasetManifest, [[String]]) {
        let folder = Self.repo.appendingPathComponent("datasets/\(dataset)")
        let m = try DatasetManifest.load(path: folder.appendingPathComponent("dataset.json").path)
        let r = CSVReader(source: try FileByteSource(path: folder.appendingPathComponent("\(dataset).csv").path), fileName: "x")
        _ = try r.next()
        var columns = Array(repeating: [String](), count: m.fields.count)
        var n = 0
        while try r.next(), n < 500 { for i in 0..<r.fieldCount { columns[i].append(r.string(i)) }; n += 1 }
        return (m, columns)
    }

    @Test func theResidentsColumnsAreRecognizedFromHeadersAndValues() throws {
        let (m, columns) = try samples("residents")
        // Classify as if the steward had declared nothing but names and storage types.
        let proposals = zip(m.fields, columns).map { f, v in
            ColumnClassifier.propose(field: FieldSpec(name: f.name, title: f.title, type: f.type, level: .L1), samples: v)
        }
        let by = Dictionary(uniqueKeysWithValues: proposals.map { ($0.field, $0) })
        #expect(by["id_number"]?.semantic == .resident_id && by["id_number"]?.level == .L4 && (by["id_number"]?.confidence ?? 0) >= 0.99)
        #expect(by["phone"]?.semantic == .phone && by["phone"]?.level == .L3)
        #expect(by["name"]?.semantic == .person_name && by["name"]?.level == .L3)
        #expect(by["address"]?.semantic == .address && by["address"]?.level == .L3)
        #expect(by["birth_date"]?.semantic == .date && by["birth_date"]?.qi == true)
        #expect(by["gender"]?.qi == true && by["district"]?.qi == true)
        #expect(by["service_type"]?.semantic == .category && by["service_type"]?.level == .L1)
        #expect(by["benefit_amount"]?.semantic == .amount)
        // Reasons never quote a sampled value.
        for (p, values) in zip(proposals, columns) {
            let quoted = values.contains { $0.count >= 2 && p.reason.contains($0) }
            #expect(!quoted, "\(p.field)")
        }
    }

    @Test func valuesWinOverAMisleadingHeaderAndOrganizationsAreNotPeople() throws {
        let (_, columns) = try samples("enterprises")
        let uscc = ColumnClassifier.propose(field: FieldSpec(name: "code", level: .L1), samples: columns[0])
        #expect(uscc.semantic == .uscc && uscc.level == .L1 && uscc.confidence >= 0.99 - 0.2)
        let company = ColumnClassifier.propose(field: FieldSpec(name: "company_name", title: "企业名称", level: .L1), samples: columns[1])
        #expect(company.semantic != .person_name)
        let rep = ColumnClassifier.propose(field: FieldSpec(name: "legal_representative", title: "法定代表人", level: .L1), samples: columns[2])
        #expect(rep.semantic == .person_name && rep.level == .L3)
        let phones = ColumnClassifier.propose(field: FieldSpec(name: "remark", level: .L1), samples: (0..<50).map { "1390000\(String(format: "%04d", $0))" })
        #expect(phones.semantic == .phone && phones.confidence == 1)
    }
}
