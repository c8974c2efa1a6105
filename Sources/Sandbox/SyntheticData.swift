import Foundation
import KaifangCore
import Masking
import Storage
import VersionFormat

/// Schema-faithful fake rows for developing sandbox queries (docs/api-guide.md): every value is made up
/// — identifiers carry valid check digits, numbers stay inside the declared bounds, dates are
/// real calendar dates — and none is taken from the data, except the values of L1 category
/// fields, which are public anyway and which a query needs to group by.
public struct SyntheticGenerator {
    var rng: SeededGenerator
    let manifest: DatasetManifest
    let categories: [String: [String]]

    /// - Parameters:
    ///   - categories: for L1 category fields, the public values to draw from.
    ///   - seed: the same seed gives the same rows.
    public init(manifest: DatasetManifest, categories: [String: [String]], seed: UInt64) {
        self.manifest = manifest
        self.categories = categories
        self.rng = SeededGenerator(seed: seed &+ 0x9E37_79B9_7F4A_7C15)
    }

    mutating func next() -> UInt64 { rng.next() }

    mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(next() % UInt64(r.count)) }
    mutating func digits(_ n: Int) -> String { String((0..<n).map { _ in Character(String(int(0...9))) }) }
    mutating func pick<T>(_ a: [T]) -> T { a[int(0...(a.count - 1))] }

    /// Allocated mobile segments (what `Validators.phone` accepts).

    static let mobileSegments = ["130", "131", "133", "135", "136", "138", "139", "150", "151", "152", "155", "158", "159",

                                 "166", "173", "177", "180", "181", "186", "187", "189", "191", "198", "199"]

    static let regions = ["320102", "320104", "320105", "320106", "320111", "320505", "320508", "320213"]
    static let surnames = Array("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗").map(String.init) + ["欧阳", "司马"]
    static let given = Array("伟芳娜敏静丽强磊军洋勇艳杰涛明超霞平刚华").map(String.init)

    /// The public values of a version's L1 category fields (at most 200 each), so that synthetic
    /// rows can be grouped like real ones.
    public static func publicCategories(manifest: DatasetManifest, path: String) throws -> [String: [String]] {
        var categories: [String: [String]] = [:]
        let reader = try VersionReader(path: path)
        for f in manifest.fields where f.semantic == .category && f.level == .L1 {
            let values = try reader.query("SELECT DISTINCT \(quoteIdentifier(f.name)) FROM rows WHERE \(quoteIdentifier(f.name)) IS NOT NULL LIMIT 200")
            categories[f.name] = values.compactMap { $0.first?.text }
        }
        return categories
    }

    /// One synthetic row (cells in manifest order).
    public mutating func row() -> [Cell] {
        manifest.fields.map { value(for: $0) }
    }

    mutating func date(from: Int = 1940, to: Int = 2025) -> (Int, Int, Int) {
        (int(from...to), int(1...12), int(1...28))
    }

    mutating func value(for f: FieldSpec) -> Cell {
        func iso(_ d: (Int, Int, Int)) -> String { String(format: "%04d-%02d-%02d", d.0, d.1, d.2) }
        switch f.semantic {
        case .resident_id?:
            let d = date()
            let body = pick(Self.regions) + String(format: "%04d%02d%02d%03d", d.0, d.1, d.2, int(1...999))   // 000 is never issued
            let check = Array(body.utf8).withUnsafeBufferPointer { Validators.residentIDCheck($0) }
            return .text(body + String(UnicodeScalar(check)))
        case .phone?: return .text(pick(Self.mobileSegments) + digits(8))
        case .landline?: return .text("025-8" + digits(7))
        case .person_name?: return .text(pick(Self.surnames) + pick(Self.given) + (int(0...1) == 1 ? pick(Self.given) : ""))
        case .address?: return .text("江苏省南京市玄武区示例路\(int(1...300))号")
        case .email?: return .text("user\(int(1...99999))@example.com")
        case .bank_card?:
            let body = "62" + digits(16)
            var sum = 0
            for (i, ch) in body.reversed().enumerated() {
                var d = Int(String(ch))!
                if i % 2 == 0 { d *= 2; if d > 9 { d -= 9 } }
                sum += d
            }
            return .text(body + String((10 - sum % 10) % 10))
        case .uscc?:
            let alphabet = Array("0123456789ABCDEFGHJKLMNPQRTUWXY")
            let body = "91" + pick(Self.regions) + String((0..<9).map { _ in pick(alphabet) })
            let check = Array(body.utf8).withUnsafeBufferPointer { Validators.usccCheck($0) }!
            return .text(body + String(UnicodeScalar(check)))
        case .passport?: return .text("E" + digits(8))
        case .license_plate?: return .text("苏A" + String((0..<5).map { _ in pick(Array("0123456789ABCDEFGHJK")) }))
        case .ip?: return .text("10.\(int(0...255)).\(int(0...255)).\(int(1...254))")
        case .geo?: return .text(String(format: "%.6f,%.6f", 31.5 + Double(int(0...100_000)) / 100_000, 118.5 + Double(int(0...100_000)) / 100_000))
        case .category?:
            if let values = categories[f.name], !values.isEmpty { return .text(pick(values)) }
            return .text("类别\(["A", "B", "C", "D"][int(0...3)])")
        default: break
        }
        switch f.type {
        case .integer:
            let lo = Int(f.min ?? 0), hi = Int(f.max ?? 1000)
            return .integer(Int64(int(lo...max(lo, hi))))
        case .number:
            let lo = f.min ?? 0, hi = max(f.min ?? 0, f.max ?? 10_000)
            let v = lo + (hi - lo) * Double(next() % 1_000_000) / 1_000_000
            return .real((v * 100).rounded() / 100)
        case .boolean: return .integer(Int64(int(0...1)))
        case .date: return .text(iso(date(from: 1990, to: 2025)))
        case .datetime: return .text(iso(date(from: 2020, to: 2025)) + String(format: "T%02d:%02d:00", int(0...23), int(0...59)))
        case .string: return .text("示例\(int(1...999))")
        }
    }
}
