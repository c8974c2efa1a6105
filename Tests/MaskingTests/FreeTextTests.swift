import KaifangCore
import Masking
import Testing

/// Identifying values inside users' free text (data requests, comments) are masked; ordinary
/// numbers and words are left as written.
@Suite struct FreeTextTests {
    @Test func identifiersInATextAreMaskedAndTheRestKept() {
        var rng = Vectors.Rng(state: 20_261_206)
        for _ in 0..<200 {
            let id = Vectors.residentID(&rng)
            let phone = "1" + rng.pick(["3", "5", "8"]) + rng.digits(9)
            let text = "申请人身份证\(id)，电话\(phone)。邮箱 zhang.san@example.cn, 2025年数据共12345条"
            let (masked, found) = FreeText.mask(text)
            #expect(found)
            #expect(!masked.contains(id) && !masked.contains(phone) && !masked.contains("zhang.san"))
            #expect(masked == "申请人身份证〔已脱敏〕，电话〔已脱敏〕。邮箱 〔已脱敏〕, 2025年数据共12345条")
        }
    }

    @Test func aNameAfterALabelIsMaskedAndTheLabelsOtherUsesAreNot() {
        let cases: [(String, String)] = [
            ("联系人张三电话13912345678", "联系人〔已脱敏〕电话〔已脱敏〕"),
            ("姓名：欧阳小明，户主是王五。", "姓名：〔已脱敏〕，户主是〔已脱敏〕。"),
            ("患者名叫李四的病历", "患者名叫〔已脱敏〕的病历"),
            ("申请人张三丰同意共享", "申请人〔已脱敏〕同意共享"),
            ("需要联系人电话、户主信息、申请人单位和患者姓名等数据项", "需要联系人电话、户主信息、申请人单位和患者姓名等数据项"),
            ("当事人（匿名）", "当事人（匿名）"),
        ]
        for (text, want) in cases {
            let (out, found) = FreeText.mask(text)
            #expect(out == want, "\(text)")
            #expect(found == (want != text))
        }
    }

    @Test func aTextWithoutIdentifiersIsReturnedAsItIs() {
        for text in ["企业名称、统一社会信用代码", "2025 年 1-12 月 PM2.5 日均值", "version 12, 共 123456 行", "", "企业联系人", "养老机构名录：机构名称、床位数"] {
            let (out, found) = FreeText.mask(text)
            #expect(!found && out == text)
        }
    }
}
