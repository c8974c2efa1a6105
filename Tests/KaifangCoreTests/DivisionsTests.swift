import Foundation
import KaifangCore
import Testing

/// The GB/T 2260 table of Jiangsu and the manifest's coverage keys.
@Suite struct DivisionsTests {
    /// The province, 13 prefecture-level cities and 95 county-level divisions (Jiangsu since the
    /// 2020 change in Nantong), every code unique, six digits, in order, and every county inside
    /// a city of the table.
    @Test func theTableHoldsTheProvinceItsCitiesAndItsCounties() {
        let all = Divisions.all
        #expect(all.filter { $0.level == .province }.map(\.code) == ["320000"])
        #expect(Divisions.cities.count == 13)
        #expect(all.filter { $0.level == .county }.count == 95)
        #expect(all.map(\.code) == all.map(\.code).sorted() && Set(all.map(\.code)).count == all.count)
        for d in all {
            #expect(d.code.utf8.count == 6 && d.code.allSatisfy(\.isASCII) && Int(d.code) != nil && d.code.hasPrefix("32"), "\(d.code)")
            #expect(["省", "市", "区", "县"].contains(String(d.name.suffix(1))), "\(d.code) \(d.name)")
            if d.level == .county {
                #expect(Divisions.named(d.cityCode ?? "")?.level == .city, "\(d.code) lies in no city of the table")
                #expect(d.ancestors == [d.cityCode!, "320000"])
            }
        }
        #expect(Divisions.counties(of: "320100").count == 11)
        #expect(Divisions.named("320115")?.name == "江宁区" && Divisions.named("320614")?.name == "海门区")
        // Retired codes are not divisions any more, and each points at one that is.
        for (code, r) in Divisions.retired {
            #expect(Divisions.named(code) == nil && Divisions.named(r.replacedBy) != nil)
        }
    }

    /// The samples' resident ID numbers begin with the county of birth registration: every one
    /// is a county of the table (the generator draws them from the same codes).
    @Test func everySampleResidentIDBeginsWithACountyOfTheTable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("datasets/residents/residents.csv"), encoding: .utf8)
        let prefixes = Set(text.split(separator: "\n").dropFirst().map { String($0.prefix(6)) })
        #expect(!prefixes.isEmpty)
        for p in prefixes { #expect(Divisions.named(p)?.level == .county, "\(p)") }
    }

    func manifest(_ coverage: String) -> String {
        #"{"id": "x", "title": "X", "fields": [{"name": "a", "level": "L1"}], "# + coverage + "}"
    }

    func message(_ json: String) -> String? {
        do { _ = try DatasetManifest.decode(Data(json.utf8), source: "dataset.json"); return nil } catch let e as KaifangError {
            #expect(e.kind == .badInput)
            return e.message
        } catch { return "unexpected \(error)" }
    }

    @Test func coverageDecodesAndRoundTrips() throws {
        let m = try DatasetManifest.decode(Data(manifest(#""spatial": ["320100", "320213"], "temporal": {"start": "2020-01-01", "end": "2024-12-31"}"#).utf8), source: "t")
        #expect(m.spatial == ["320100", "320213"] && m.temporal == TemporalCoverage(start: "2020-01-01", end: "2024-12-31"))
        #expect(try DatasetManifest.decode(try m.jsonData(), source: "t") == m)
        let open = try DatasetManifest.decode(Data(manifest(#""temporal": {"start": "1995-01-01"}"#).utf8), source: "t")
        #expect(open.temporal?.end == nil && open.spatial == nil)
    }

    @Test func anUnknownDivisionIsRefusedByName() {
        #expect(message(manifest(#""spatial": ["320100", "330100"]"#)) == "dataset.json: spatial[1]: '330100' is not a Jiangsu division code (GB/T 2260): `kaifang divisions` lists the province, city and county codes")
        #expect(message(manifest(#""spatial": ["320684"]"#))?.contains("'320684' (海门市) is a GB/T 2260 code retired in 2020: use '320614' (海门区)") == true)
        #expect(message(manifest(#""spatial": ["南京市"]"#))?.contains("spatial[0]: '南京市' is not a Jiangsu division code") == true)
    }

    @Test func aDivisionInsideAnotherListedOneIsRefused() {
        #expect(message(manifest(#""spatial": ["320115", "320100"]"#)) == "dataset.json: spatial[0]: '320115' (江宁区) lies within '320100' (南京市), also listed: keep one of them")
        #expect(message(manifest(#""spatial": ["320000", "320200"]"#))?.contains("'320200' (无锡市) lies within '320000' (江苏省)") == true)
        #expect(message(manifest(#""spatial": ["320102", "320102"]"#))?.contains("'320102' (玄武区) is listed twice") == true)
        #expect(message(manifest(#""spatial": []"#))?.contains("spatial is empty") == true)
    }

    @Test func temporalCoverageMustBeRealOrderedDates() {
        #expect(message(manifest(#""temporal": {"start": "2023-02-29"}"#)) == "dataset.json: temporal.start '2023-02-29' is not a date: write it YYYY-MM-DD")
        #expect(message(manifest(#""temporal": {"start": "2024-01-01", "end": "2024/12/31"}"#))?.contains("temporal.end '2024/12/31' is not a date") == true)
        #expect(message(manifest(#""temporal": {"start": "2024-01-02", "end": "2024-01-01"}"#)) == "dataset.json: temporal.end 2024-01-01 is before temporal.start 2024-01-02")
        #expect(message(manifest(#""temporal": {"start": "2024-01-01", "until": "2025-01-01"}"#))?.contains("unknown key 'until'") == true)
        #expect(message(manifest(#""temporal": {"end": "2025-01-01"}"#))?.contains("temporal: missing key 'start'") == true)
    }

    @Test func filtersNameTheLevelTheyExpect() throws {
        #expect(try Divisions.require("320100", level: .city, parameter: "city") == "320100")
        #expect(throws: KaifangError.self) { try Divisions.require("320115", level: .city, parameter: "city") }
        do { _ = try Divisions.require("320100", level: .county, parameter: "county") } catch let e as KaifangError {
            #expect(e.message.hasPrefix("county '320100' (南京市) is a city, not a county"))
        }
        do { _ = try Divisions.require("320000", level: .city, parameter: "city") } catch let e as KaifangError {
            #expect(e.message.contains("leave city out for the whole province"))
        }
    }
}
