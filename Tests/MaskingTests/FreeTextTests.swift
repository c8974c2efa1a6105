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

    @Test func aTextWithoutIdentifiersIsReturnedAsItIs() {
        for text in ["企业名称、统一社会信用代码", "2025 年 1-12 月 PM2.5 日均值", "version 12, 共 123456 行", ""] {
            let (out, found) = FreeText.mask(text)
            #expect(!found && out == text)
        }
    }
}
