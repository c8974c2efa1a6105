import KaifangCore

/// A proposed classification of one column.
public struct ClassificationProposal: Sendable, Equatable {
    public var field: String
    public var semantic: SemanticType?
    public var level: Level
    public var qi: Bool
    /// 0…1: the share of sampled values that validate as the type, raised when the header agrees.
    public var confidence: Double
    /// Why, in words (never a sampled value).
    public var reason: String
}

/// Proposes semantic type, level and quasi-identifier flag for a column from its header (Chinese
/// and English hints) and its sampled values (validators with check digits).
public enum ColumnClassifier {
    /// Header hints: keyword → semantic type. Checked in order; the first match wins.
    static let hints: [(words: [String], type: SemanticType)] = [
        (["统一社会信用代码", "信用代码", "uscc", "credit_code", "social_credit"], .uscc),
        (["身份证", "证件号", "公民身份号码", "id_number", "idcard", "id_card", "resident_id", "sfzh"], .resident_id),
        (["护照", "passport"], .passport),
        (["银行卡", "银行账号", "卡号", "账号", "bank", "card_no", "account_no"], .bank_card),
        (["座机", "固定电话", "固话", "landline"], .landline),
        (["手机", "移动电话", "联系电话", "电话", "mobile", "phone", "cellphone", "tel"], .phone),
        (["邮箱", "电子邮件", "email", "e_mail", "mail"], .email),
        (["车牌", "号牌", "plate"], .license_plate),
        (["ip地址", "ip_address", "ip"], .ip),
        (["经纬度", "经度", "纬度", "坐标", "latitude", "longitude", "lat", "lng", "lon", "geo", "location"], .geo),
        (["住址", "地址", "居住地", "户籍地", "address", "addr"], .address),
        (["姓名", "法定代表人", "法人代表", "联系人", "负责人", "person_name", "full_name", "legal_representative", "contact"], .person_name),
        (["出生", "生日", "birth", "dob"], .date),
        (["金额", "补贴", "收入", "工资", "资本", "amount", "income", "salary", "capital", "price"], .amount),
        (["年龄", "age", "人数", "数量", "count"], .count),
        (["性别", "民族", "职业", "区县", "区域", "行政区", "街道", "类型", "类别", "行业", "gender", "sex", "ethnicity", "occupation",
          "district", "county", "region", "type", "category", "industry", "station"], .category),
        (["时间", "datetime", "timestamp", "_at"], .datetime),
        (["日期", "date"], .date),
    ]

    /// Header words that mark a quasi-identifier (combined, they re-identify people).
    static let qiWords = ["出生", "生日", "birth", "dob", "性别", "gender", "sex", "年龄", "age", "民族", "ethnicity", "职业", "occupation",
                          "区县", "district", "county", "邮编", "zip", "postcode", "籍贯", "婚姻", "marital"]

    /// Header words that say a "name" column names an organization or a thing, not a person.
    static let notPerson = ["企业", "公司", "单位", "机构", "站", "company", "org", "station", "dataset", "product"]

    static func normalizedHeader(_ s: String) -> String {
        s.lowercased().replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: " ", with: "_")
    }

    static func hint(for header: String) -> SemanticType? {
        let h = normalizedHeader(header)
        for (words, type) in hints {
            for w in words {
                let hit: Bool
                if w.unicodeScalars.allSatisfy(\.isASCII) && w.count <= 4 {
                    // Short English words must be whole tokens (`tel`, not `hotel`).
                    let tokens = h.split(whereSeparator: { $0 == "_" || $0 == "(" || $0 == ")" }).map(String.init)
                    hit = tokens.contains(w) || (w.hasPrefix("_") && h.hasSuffix(w))
                } else {
                    hit = h.contains(w)
                }
                if hit {
                    if type == .person_name && notPerson.contains(where: { h.contains($0) }) { continue }
                    return type
                }
            }
        }
        if h == "name" || h.hasSuffix("_name") && !notPerson.contains(where: { h.contains($0) }) { return .person_name }
        return nil
    }

    /// The default level of a semantic type (docs/policy.md).
    public static func level(for semantic: SemanticType?, qi: Bool) -> Level {
        switch semantic {
        case .resident_id?, .bank_card?, .passport?, .geo?: return .L4
        case .phone?, .landline?, .person_name?, .address?, .email?, .license_plate?, .ip?: return .L3
        case .date?, .datetime?, .amount?, .identifier?, .text?: return .L2
        case .count?, .category?: return qi ? .L2 : .L1
        case .uscc?: return .L1
        case nil: return .L2
        }
    }

    static let validatedTypes: [SemanticType] = [.resident_id, .uscc, .bank_card, .phone, .landline, .email, .ip, .license_plate, .passport]

    /// Proposes a classification for one column.
    /// - Parameters:
    ///   - field: the field as declared (name, title, type).
    ///   - samples: sampled raw values (empty ones are ignored).
    public static func propose(field: FieldSpec, samples: [String]) -> ClassificationProposal {
        let headerHint = hint(for: field.name) ?? field.title.flatMap(hint(for:))
        let headerText = normalizedHeader(field.name + " " + (field.title ?? ""))
        let qi = qiWords.contains { headerText.contains($0) }
        let values = samples.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        // Count what the values validate as.
        var valid: [SemanticType: Int] = [:]
        for v in values {
            let d = Detector.detect(v)
            if let t = d.type, d.valid { valid[t, default: 0] += 1 }
        }
        let n = max(values.count, 1)
        if let (type, count) = valid.max(by: { $0.value < $1.value }), Double(count) / Double(n) >= 0.8 {
            let share = Double(count) / Double(n)
            let agrees = headerHint == type
            let confidence = agrees ? max(share, 0.99) : share
            return ClassificationProposal(field: field.name, semantic: type, level: level(for: type, qi: qi), qi: qi,
                                          confidence: (confidence * 100).rounded() / 100,
                                          reason: "\(count) of \(values.count) sampled values validate as \(type.rawValue)\(agrees ? " and the header says so" : "")")
        }
        if let h = headerHint {
            // Types without a validator: check the values' shape.
            var share = 0.0
            var reason = "the header suggests \(h.rawValue)"
            switch h {
            case .person_name:
                let ok = values.filter { v in let s = v.unicodeScalars; return (2...4).contains(s.count) && s.allSatisfy { (0x3400...0x9FFF).contains($0.value) || $0 == "·" } }.count
                share = Double(ok) / Double(n)
                reason += "; \(ok) of \(values.count) values are 2–4 Chinese characters"
            case .address:
                let ok = values.filter { v in v.contains { "省市区县旗镇乡路街".contains($0) } }.count
                share = Double(ok) / Double(n)
                reason += "; \(ok) of \(values.count) values contain division or street words"
            case .date, .datetime:
                share = field.type == .date || field.type == .datetime ? 1 : 0.6
                if h == .date && field.type == .datetime { return ClassificationProposal(field: field.name, semantic: .datetime, level: level(for: .datetime, qi: qi), qi: qi, confidence: 0.9, reason: reason) }
            case .amount, .count:
                share = field.type == .integer || field.type == .number ? 0.9 : 0.5
            case .category:
                let distinct = Set(values).count
                share = values.isEmpty ? 0.5 : (distinct <= max(50, values.count / 10) ? 0.9 : 0.5)
                reason += "; \(distinct) distinct values in \(values.count)"
            default:
                share = values.isEmpty ? 0.6 : 0.5
                reason += ", but the values do not validate"
            }
            if values.isEmpty { share = min(share, 0.6) }
            let confidence = min(0.95, 0.5 + share * 0.45)
            return ClassificationProposal(field: field.name, semantic: h, level: level(for: h, qi: qi), qi: qi,
                                          confidence: (confidence * 100).rounded() / 100, reason: reason)
        }
        let fallback: SemanticType? = field.type == .date ? .date : field.type == .datetime ? .datetime : nil
        return ClassificationProposal(field: field.name, semantic: fallback ?? field.semantic, level: fallback != nil ? .L2 : max(field.level, level(for: field.semantic, qi: qi)),
                                      qi: qi, confidence: 0.5, reason: "no header hint and no validator matched most values")
    }
}
