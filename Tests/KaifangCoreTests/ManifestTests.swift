import Foundation
import KaifangCore
import Testing

/// The manifest of docs/steward-guide.md exactly: strict keys, defaults, validation messages that name the problem.
@Suite struct ManifestTests {
    static let residents = """
    {
      "id": "residents",
      "title": "居民服务记录 Resident service records",
      "description": "…", "department": "省民政厅", "topic": "social",
      "update_frequency": "monthly", "license": "…",
      "tier": "conditional", "should_open": true,
      "entity": "id_number",
      "fields": [
        {"name": "id_number", "title": "身份证号", "type": "string", "semantic": "resident_id", "level": "L4"},
        {"name": "phone", "type": "string", "semantic": "phone", "level": "L3"},
        {"name": "age", "type": "integer", "level": "L2", "qi": true, "min": 0, "max": 120},
        {"name": "district", "type": "string", "semantic": "category", "level": "L1", "qi": true},
        {"name": "note", "type": "string", "level": "L2", "action": "suppress"}
      ]
    }
    """

    func decode(_ json: String) throws -> DatasetManifest {
        try DatasetManifest.decode(Data(json.utf8), source: "dataset.json")
    }

    func message(_ json: String) -> String? {
        do { _ = try decode(json); return nil } catch let e as KaifangError {
            #expect(e.kind == .badInput)
            return e.message
        } catch { return "unexpected \(error)" }
    }

    @Test func theDesignExampleDecodesWithEveryKey() throws {
        let m = try decode(Self.residents)
        #expect(m.id == "residents")
        #expect(m.tier == .conditional)
        #expect(m.shouldOpen)
        #expect(m.entity == "id_number")
        #expect(m.fields.count == 5)
        #expect(m.fields[0].semantic == .resident_id && m.fields[0].level == .L4 && m.fields[0].title == "身份证号")
        #expect(m.fields[2].type == .integer && m.fields[2].qi && m.fields[2].min == 0 && m.fields[2].max == 120)
        #expect(m.fields[4].action == .suppress)
    }

    /// A fingerprint is declared on a number with a tolerance a licensee's copy may move by;
    /// anything else is refused by field and key, saying what to do.
    @Test func aFingerprintIsDeclaredOnANumberWithAWorkableTolerance() throws {
        func with(_ field: String, primaryKey: String = "") -> String {
            Self.residents.replacingOccurrences(of: #"{"name": "note", "type": "string", "level": "L2", "action": "suppress"}"#, with: field)
                .replacingOccurrences(of: #""entity": "id_number","#, with: #""entity": "id_number",\#(primaryKey)"#)
        }
        let ok = try decode(with(#"{"name": "amount", "type": "number", "level": "L2", "min": 0, "max": 100000, "fingerprint": {"tolerance": 0.01}}"#))
        #expect(ok.fields[4].fingerprint == FingerprintSpec(tolerance: 0.01))
        #expect(try DatasetManifest.decode(try ok.jsonData(), source: "again") == ok)
        #expect(try decode(with(#"{"name": "n", "type": "integer", "level": "L1", "fingerprint": {"tolerance": 2}}"#)).fields[4].fingerprint?.tolerance == 2)
        let refusals: [(String, String, String)] = [
            (#"{"name": "note", "type": "string", "level": "L2", "fingerprint": {"tolerance": 1}}"#, "", "fields[4] 'note': fingerprint applies to integer or number fields, not string"),
            (#"{"name": "amount", "type": "number", "level": "L2", "fingerprint": {"tolerance": 0}}"#, "", "tolerance 0 must be a positive number with at most 6 decimals"),
            (#"{"name": "amount", "type": "number", "level": "L2", "fingerprint": {"tolerance": -1}}"#, "", "tolerance -1 must be a positive number"),
            (#"{"name": "amount", "type": "number", "level": "L2", "fingerprint": {"tolerance": 0.0000001}}"#, "", "at most 6 decimals"),
            (#"{"name": "n", "type": "integer", "level": "L2", "fingerprint": {"tolerance": 0.5}}"#, "", "must be a whole number for an integer field"),
            (#"{"name": "n", "type": "integer", "level": "L2", "min": 0, "max": 3, "fingerprint": {"tolerance": 2}}"#, "", "more than half the field's range 0–3"),
            (#"{"name": "n", "type": "integer", "level": "L2", "fingerprint": {"tolerance": 1}}"#, #" "primary_key": ["n"],"#, "'n' is in primary_key, and a key is never altered"),
            (#"{"name": "amount", "type": "number", "level": "L2", "fingerprint": {"tolerence": 0.01}}"#, "", "tolerence"),
        ]
        for (field, key, expected) in refusals {
            let m = message(with(field, primaryKey: key))
            #expect(m?.contains(expected) == true, "\(field): \(m ?? "accepted")")
        }
    }

    @Test func encodingThenDecodingGivesTheSameManifest() throws {
        let m = try decode(Self.residents)
        let again = try DatasetManifest.decode(try m.jsonData(), source: "roundtrip")
        #expect(again == m)
    }

    @Test func everySampleManifestRoundTrips() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("datasets")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names.count >= 3)
        for name in names {
            let m = try DatasetManifest.load(path: folder.appendingPathComponent(name).appendingPathComponent("dataset.json").path)
            #expect(m.id == name)
            #expect(try DatasetManifest.decode(try m.jsonData(), source: name) == m)
        }
    }

    @Test func omittedOptionalKeysTakeTheirDefaults() throws {
        let m = try decode(#"{"id": "x", "title": "X", "fields": [{"name": "a", "level": "L1"}]}"#)
        #expect(m.description == "" && m.department == "" && m.updateFrequency == "irregular")
        #expect(m.tier == nil && m.shouldOpen == false && m.entity == nil)
        #expect(m.fields[0].type == .string && m.fields[0].qi == false && m.fields[0].action == nil)
    }

    @Test func anUnknownTopLevelKeyIsRefusedByName() {
        let msg = message(#"{"id": "x", "title": "X", "colour": "red", "fields": [{"name": "a", "level": "L1"}]}"#)
        #expect(msg?.contains("unknown key 'colour'") == true)
        #expect(msg?.hasPrefix("dataset.json:") == true)
    }

    @Test func anUnknownFieldKeyIsRefusedWithItsPath() {
        let msg = message(#"{"id": "x", "title": "X", "fields": [{"name": "a", "level": "L1"}, {"name": "b", "lvl": "L2", "level": "L1"}]}"#)
        #expect(msg?.contains("fields[1]") == true)
        #expect(msg?.contains("unknown key 'lvl'") == true)
    }

    @Test(arguments: [
        (#""level": "L5""#, "level 'L5' is not one of L1, L2, L3, L4"),
        (#""level": "L1", "type": "text""#, "type 'text' is not one of string"),
        (#""level": "L1", "semantic": "ssn""#, "semantic 'ssn' is not one of"),
        (#""level": "L1", "action": "shred""#, "action 'shred' is not one of"),
    ])
    func anUnknownEnumValueIsRefusedNamingIt(fragment: String, expected: String) {
        let msg = message(#"{"id": "x", "title": "X", "fields": [{"name": "a", "#+fragment+#"}]}"#)
        #expect(msg?.contains(expected) == true, "\(msg ?? "nil")")
        #expect(msg?.contains("fields[0]") == true)
    }

    @Test func aMissingLevelIsRefused() {
        #expect(message(#"{"id": "x", "title": "X", "fields": [{"name": "a"}]}"#)?.contains("has no 'level'") == true)
    }

    @Test func anUnknownTierIsRefused() {
        #expect(message(#"{"id": "x", "title": "X", "tier": "public", "fields": [{"name": "a", "level": "L1"}]}"#)?.contains("tier 'public' is not one of open, conditional, restricted") == true)
    }

    @Test func anEntityThatIsNotAFieldIsRefused() {
        #expect(message(#"{"id": "x", "title": "X", "entity": "pid", "fields": [{"name": "a", "level": "L1"}]}"#)?.contains("entity 'pid' is not one of the fields") == true)
    }

    @Test func duplicateFieldsAreRefused() {
        #expect(message(#"{"id": "x", "title": "X", "fields": [{"name": "a", "level": "L1"}, {"name": "A", "level": "L1"}]}"#)?.contains("declared twice") == true)
    }

    @Test(arguments: ["Residents", "-x", "", "a b", String(repeating: "a", count: 65), "数据"])
    func invalidIDsAreRefused(id: String) {
        #expect(message(#"{"id": "\#(id)", "title": "X", "fields": [{"name": "a", "level": "L1"}]}"#)?.contains("not a valid dataset id") == true)
    }

    @Test(arguments: ["身份证", "a-b", "1a", "a__b", "a b"])
    func invalidFieldNamesAreRefused(name: String) {
        #expect(message(#"{"id": "x", "title": "X", "fields": [{"name": "\#(name)", "level": "L1"}]}"#)?.contains("not a valid field name") == true)
    }

    @Test func boundsMustBeOrderedAndNumeric() {
        #expect(message(#"{"id": "x", "title": "X", "fields": [{"name": "a", "type": "integer", "level": "L1", "min": 5, "max": 1}]}"#)?.contains("min 5 is greater than max 1") == true)
        #expect(message(#"{"id": "x", "title": "X", "fields": [{"name": "a", "type": "string", "level": "L1", "min": 0}]}"#)?.contains("min/max apply to integer or number") == true)
    }

    @Test func aWrongJSONTypeNamesThePath() {
        #expect(message(#"{"id": "x", "title": "X", "should_open": "yes", "fields": [{"name": "a", "level": "L1"}]}"#)?.contains("should_open") == true)
        #expect(message("{not json")?.contains("not valid JSON") == true)
    }

    @Test func headersMatchByNameOrTitle() {
        let f = FieldSpec(name: "id_number", title: "身份证号", level: .L4)
        #expect(f.matches(header: "id_number"))
        #expect(f.matches(header: " 身份证号 "))
        #expect(!f.matches(header: "身份证"))
    }

    @Test func tiersAndLevelsAreOrderedByStrictness() {
        #expect(Tier.open < Tier.conditional && Tier.conditional < Tier.restricted)
        #expect(Level.L1 < Level.L4)
        #expect(SemanticType.resident_id.isDirectIdentifier && !SemanticType.category.isDirectIdentifier)
    }
}
