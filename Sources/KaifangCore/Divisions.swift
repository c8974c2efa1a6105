import Foundation

/// A Jiangsu administrative division (行政区划) by its GB/T 2260 code: the province (`320000`),
/// one of its 13 prefecture-level cities (`320100`…`321300`) or one of its 95 county-level
/// divisions (districts, county-level cities, counties). Datasets declare their spatial coverage
/// with these codes.
public struct Division: Sendable, Equatable, Hashable {
    /// The level of a division, read from its code's shape.
    public enum Level: String, Sendable, CaseIterable { case province, city, county }

    /// The six-digit code.
    public let code: String
    /// The official name (南京市, 江宁区).
    public let name: String

    /// Province (`xx0000`), city (`xxxx00`) or county.
    public var level: Level {
        if code.hasSuffix("0000") { return .province }
        return code.hasSuffix("00") ? .city : .county
    }

    /// The city a county lies in, or the city itself; nil for the province.
    public var cityCode: String? {
        switch level {
        case .province: return nil
        case .city: return code
        case .county: return String(code.prefix(4)) + "00"
        }
    }

    /// The codes this division lies within, nearest first (江宁区 → 南京市, 江苏省).
    public var ancestors: [String] {
        switch level {
        case .province: return []
        case .city: return [String(code.prefix(2)) + "0000"]
        case .county: return [String(code.prefix(4)) + "00", String(code.prefix(2)) + "0000"]
        }
    }
}

/// The GB/T 2260 codes Kaifang knows: Jiangsu province, its cities and its counties.
///
/// Source: the Ministry of Civil Affairs' list of county-level and higher divisions of April 2019
/// (中华人民共和国县以上行政区划代码, as transcribed in the cn/GB2260 data set, `mca/201904.tsv`),
/// with the State Council's 2020 change in Nantong applied: 港闸区 (320611) merged into 崇川区
/// (320602), 海门市 (320684) became 海门区 (320614). Codes of that change are kept in `retired`
/// so a manifest that still uses one is told the code that replaced it.
public enum Divisions {
    /// Every division, in code order.
    public static let all: [Division] = table.split(separator: "\n").map { line in
        let cells = line.split(separator: "\t")
        return Division(code: String(cells[0]), name: String(cells[1]))
    }

    /// Divisions by code.
    public static let byCode: [String: Division] = Dictionary(uniqueKeysWithValues: all.map { ($0.code, $0) })

    /// Codes no longer in use: code → (its name then, the year it went, the code that replaced it).
    public static let retired: [String: (name: String, year: Int, replacedBy: String)] = [
        "320611": ("港闸区", 2020, "320602"),
        "320684": ("海门市", 2020, "320614"),
    ]

    /// The division with this code, or nil.
    public static func named(_ code: String) -> Division? { byCode[code] }

    /// The cities, in code order.
    public static var cities: [Division] { all.filter { $0.level == .city } }

    /// The counties of a city, in code order.
    public static func counties(of city: String) -> [Division] {
        all.filter { $0.level == .county && $0.cityCode == city }
    }

    /// The division for `code`, or an error naming the code and what to use instead.
    /// - Throws: `KaifangError.badInput`.
    public static func require(_ code: String) throws -> Division {
        if let d = byCode[code] { return d }
        if let r = retired[code], let now = byCode[r.replacedBy] {
            throw KaifangError.badInput("'\(code)' (\(r.name)) is a GB/T 2260 code retired in \(r.year): use '\(now.code)' (\(now.name))")
        }
        throw KaifangError.badInput("'\(code)' is not a Jiangsu division code (GB/T 2260): `kaifang divisions` lists the province, city and county codes")
    }

    /// A filter's code, which must name a division of `level`.
    /// - Returns: the code.
    /// - Throws: `KaifangError.badInput` naming the parameter and what to pass instead.
    public static func require(_ code: String, level: Division.Level, parameter: String) throws -> String {
        let d: Division
        do { d = try require(code) } catch let e as KaifangError { throw KaifangError.badInput("\(parameter): \(e.message)") }
        guard d.level == level else {
            let instead: String
            switch d.level {
            case .province: instead = "leave \(parameter) out for the whole province"
            case .county: instead = "its city is \(d.cityCode ?? "")\(d.cityCode.flatMap { byCode[$0] }.map { " (\($0.name))" } ?? "")"
            case .city: instead = "filter by its city, or name one of its counties (`kaifang divisions --city \(code)` lists them)"
            }
            throw KaifangError.badInput("\(parameter) '\(code)' (\(d.name)) is a \(d.level.rawValue), not a \(level.rawValue): \(instead)")
        }
        return code
    }

    /// Code and name, one division a line, tab-separated.
    static let table = """
320000	江苏省
320100	南京市
320102	玄武区
320104	秦淮区
320105	建邺区
320106	鼓楼区
320111	浦口区
320113	栖霞区
320114	雨花台区
320115	江宁区
320116	六合区
320117	溧水区
320118	高淳区
320200	无锡市
320205	锡山区
320206	惠山区
320211	滨湖区
320213	梁溪区
320214	新吴区
320281	江阴市
320282	宜兴市
320300	徐州市
320302	鼓楼区
320303	云龙区
320305	贾汪区
320311	泉山区
320312	铜山区
320321	丰县
320322	沛县
320324	睢宁县
320381	新沂市
320382	邳州市
320400	常州市
320402	天宁区
320404	钟楼区
320411	新北区
320412	武进区
320413	金坛区
320481	溧阳市
320500	苏州市
320505	虎丘区
320506	吴中区
320507	相城区
320508	姑苏区
320509	吴江区
320581	常熟市
320582	张家港市
320583	昆山市
320585	太仓市
320600	南通市
320602	崇川区
320612	通州区
320614	海门区
320623	如东县
320681	启东市
320682	如皋市
320685	海安市
320700	连云港市
320703	连云区
320706	海州区
320707	赣榆区
320722	东海县
320723	灌云县
320724	灌南县
320800	淮安市
320803	淮安区
320804	淮阴区
320812	清江浦区
320813	洪泽区
320826	涟水县
320830	盱眙县
320831	金湖县
320900	盐城市
320902	亭湖区
320903	盐都区
320904	大丰区
320921	响水县
320922	滨海县
320923	阜宁县
320924	射阳县
320925	建湖县
320981	东台市
321000	扬州市
321002	广陵区
321003	邗江区
321012	江都区
321023	宝应县
321081	仪征市
321084	高邮市
321100	镇江市
321102	京口区
321111	润州区
321112	丹徒区
321181	丹阳市
321182	扬中市
321183	句容市
321200	泰州市
321202	海陵区
321203	高港区
321204	姜堰区
321281	兴化市
321282	靖江市
321283	泰兴市
321300	宿迁市
321302	宿城区
321311	宿豫区
321322	沭阳县
321323	泗阳县
321324	泗洪县
"""
}
