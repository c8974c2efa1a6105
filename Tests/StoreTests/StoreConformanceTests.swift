import Audit
import Foundation
import KaifangCore
import Storage
import Testing
import VersionFormat

/// The same behaviour from both stores: every case runs against the embedded store and, when a
/// PostgreSQL server is given, the shared store.
@Suite struct StoreConformanceTests {
    @Test func postgresIsThereWhenRequired() {
        if ProcessInfo.processInfo.environment["KAIFANG_REQUIRE_POSTGRES"] == "1" {
            #expect(StoreKind.adminURL != nil, "KAIFANG_REQUIRE_POSTGRES=1 but no KAIFANG_TEST_POSTGRES: run the tests through scripts/with-postgres.sh")
        }
    }

    @Test(arguments: StoreKind.available)
    func departmentsOwnKeysAndUploadsAnswerOnce(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let province = try s.createDepartment(name: " 江苏省 ", parent: nil, actor: "cli:test")
        #expect(province.name == "江苏省" && province.parent == nil)
        _ = try s.createDepartment(name: "南京市民政局", parent: "江苏省", actor: "cli:test")
        #expect(try s.departments().map(\.name) == ["南京市民政局", "江苏省"].sorted())
        #expect(try s.departments().first { $0.name == "南京市民政局" }?.parent == "江苏省")
        #expect { try s.createDepartment(name: "南京市民政局", parent: nil, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect { try s.createDepartment(name: "X", parent: "无此部门", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        #expect { try s.createDepartment(name: "  ", parent: nil, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        // Publishers and reviewers belong to an existing department; no other role names one.
        let (publisher, secret) = try s.createKey(role: .publisher, name: "发布员", account: nil, department: "南京市民政局", actor: "cli:test")
        #expect(try s.authenticate(secret)?.department == "南京市民政局")
        #expect(try s.authenticate(secret)?.role == .publisher)
        #expect { try s.createKey(role: .reviewer, name: "r", account: nil, department: nil, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createKey(role: .security, name: "s", account: nil, department: "江苏省", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createKey(role: .reviewer, name: "r", account: nil, department: "无此部门", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        let (security, _) = try s.createKey(role: .security, name: "安全审核", account: nil, department: nil, actor: "cli:test")
        #expect(security.department == nil)
        // An upload's key makes one version; a second commit under it writes nothing.
        let m = StoreFixture.manifest("people", department: "南京市民政局")
        try f.importVersion(m, rows: 2)
        let upload = UploadKey(keyID: publisher.id, idempotencyKey: "u-1")
        #expect(try s.uploadedVersion(upload) == nil)
        func commit() throws -> VersionRecord {
            let path = s.directory.temporaryFile(suffix: ".sqlite")
            let w = try VersionWriter(path: path, manifest: m)
            try w.append([.text("张"), .integer(1), .real(1)])
            return try s.commitVersion(manifest: m, temporaryFile: path, rowCount: 1, sha256: try w.finish(), source: "upload.csv",
                                       actor: "key:\(publisher.id)", rejected: 0, upload: upload)
        }
        let v = try commit()
        #expect(v.number == 2)
        #expect(try s.uploadedVersion(upload) == v)
        #expect { try commit() } throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect(try s.versions("people").count == 2)
        #expect(try s.uploadedVersion(UploadKey(keyID: publisher.id, idempotencyKey: "u-2")) == nil)
        let actions = try s.auditEvents(dataset: nil, actor: nil, limit: nil).map(\.event.action)
        #expect(actions.filter { $0 == "department.create" }.count == 2)
        guard case .intact = try s.verifyAudit(anchors: []) else { Issue.record("the audit chain is broken"); return }
    }

    @Test(arguments: StoreKind.available)
    func aDatasetIsRegisteredBeforeItsFirstVersion(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let m = StoreFixture.manifest("elderly", department: "南京市民政局")
        let d = try s.registerDataset(m, actor: "key:pub1")
        #expect(d.manifest == m && d.tier == nil && d.publishedVersion == nil)
        #expect(try s.versions("elderly").isEmpty && (try s.publishedVersion("elderly")) == nil)
        #expect { try s.registerDataset(m, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        // Stewards find it among the unpublished; its first version follows.
        #expect(try s.search(DatasetQuery(includeUnpublished: true)).datasets.map(\.record.id).contains("elderly"))
        #expect(try s.search(DatasetQuery()).datasets.isEmpty)
        #expect(try f.importVersion(m, rows: 2).number == 1)
        #expect(try s.auditEvents(dataset: "elderly", actor: nil, limit: nil).map(\.event.action) == ["dataset.register", "dataset.import"])
    }

    @Test(arguments: StoreKind.available)
    func aRequestIsVotedAnsweredAndFulfilledByAPublishedDataset(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        _ = try s.createDepartment(name: "南京市民政局", parent: nil, actor: "t")
        let today = String(CatalogRules.now().prefix(10))
        let due = CatalogRules.workingDaysAfter(today, 20)
        let r = try s.createRequest(NewDataRequest(title: " 低保对象年龄分布 ", items: ["age", "姓名", "AGE", "收入"], purpose: "研究", department: "南京市民政局",
                                                   due: due, filerKey: "k1"), actor: "key:k1")
        // Trimmed, repeats (ignoring case) dropped, open, nothing counted yet.
        #expect(r.title == "低保对象年龄分布" && r.items == ["age", "姓名", "收入"] && r.status == .open && r.votes == 0 && r.comments == 0)
        #expect(!r.isOverdue(today: today) && r.isOverdue(today: "2999-01-01"))
        #expect(try s.voteRequest(r.id, keyID: "k2", actor: "key:k2").votes == 1)
        #expect { try s.voteRequest(r.id, keyID: "k2", actor: "key:k2") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        let c = try s.commentRequest(r.id, keyID: "k3", role: .reviewer, fromDepartment: true, text: " 已收到 ", actor: "key:k3")
        #expect(c.text == "已收到" && c.fromDepartment && c.role == .reviewer)
        #expect(try s.requestComments(r.id) == [c])
        // Only the filer withdraws; a reply keeps the status.
        #expect { try s.answerRequest(r.id, .withdraw(reason: nil), keyID: "k2", actor: "key:k2") } throws: { ($0 as? KaifangError)?.kind == .forbidden }
        let replied = try s.answerRequest(r.id, .reply("正在梳理"), keyID: "k3", actor: "key:k3")
        #expect(replied.status == .open && replied.reply == "正在梳理" && replied.answeredAt == nil)
        let accepted = try s.answerRequest(r.id, .accept(nil), keyID: "k3", actor: "key:k3")
        #expect(accepted.status == .accepted && accepted.answeredOnTime == true && accepted.reply == "正在梳理")
        #expect { try s.answerRequest(r.id, .accept(nil), keyID: "k3", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        // Fulfilment needs a published dataset that delivers at least one item.
        #expect { try s.answerRequest(r.id, .fulfil(dataset: "people", version: nil, reply: nil), keyID: "k3", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        let m = StoreFixture.manifest("people", department: "南京市民政局")
        try f.importVersion(m, rows: 3)
        #expect { try s.answerRequest(r.id, .fulfil(dataset: "people", version: nil, reply: nil), keyID: "k3", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        try s.publish(dataset: "people", tier: .restricted, actor: "cli:test")
        try f.importVersion(m, rows: 4)
        #expect { try s.answerRequest(r.id, .fulfil(dataset: "people", version: 2, reply: nil), keyID: "k3", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.answerRequest(r.id, .fulfil(dataset: "people", version: 9, reply: nil), keyID: "k3", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        let other = try s.createRequest(NewDataRequest(title: "企业", items: ["注册资本"], purpose: "p", department: "南京市民政局", due: "2000-01-03", filerKey: "k1"), actor: "t")
        #expect { try s.answerRequest(other.id, .fulfil(dataset: "people", version: nil, reply: nil), keyID: "k3", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        let done = try s.answerRequest(r.id, .fulfil(dataset: "people", version: nil, reply: "已开放"), keyID: "k3", actor: "key:k3")
        // "age" is a field's name, "姓名" a field's title; 收入 is not there.
        #expect(done.status == .fulfilled && done.dataset == "people" && done.version == 1 && done.delivered == ["age", "姓名"] && done.reply == "已开放")
        #expect(done.closedAt != nil && done.answeredAt == accepted.answeredAt)
        #expect { try s.answerRequest(r.id, .reply("again"), keyID: "k3", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        // Comments still come once it is closed.
        _ = try s.commentRequest(r.id, keyID: "k1", role: .developer, fromDepartment: false, text: "谢谢", actor: "key:k1")
        #expect(try s.dataRequest(r.id)?.comments == 2)
        // The other request is overdue; the figures count items, not requests.
        let figures = DemandFigures.of(try s.dataRequests(department: nil, status: nil), today: today)
        #expect(figures.map(\.department) == ["", "南京市民政局"])
        #expect(figures[0].requests == 2 && figures[0].listedItems == 3 && figures[0].deliveredItems == 2 && figures[0].onDemandRate == 2.0 / 3)
        #expect(figures[0].answered == 1 && figures[0].answeredOnTime == 1 && figures[0].overdue == 1 && figures[0].onTimeRate == 0.5)
        let declined = try s.answerRequest(other.id, .decline(reason: "不属于本部门职责"), keyID: "k3", actor: "t")
        #expect(declined.status == .declined && declined.answeredOnTime == false && declined.reason == "不属于本部门职责")
        #expect(try s.dataRequests(department: "南京市民政局", status: .declined).map(\.id) == [other.id])
        #expect(try s.dataRequests(department: nil, status: nil).map(\.id) == [other.id, r.id])
        // Bad input writes nothing.
        #expect { try s.createRequest(NewDataRequest(title: "", items: ["a"], purpose: "p", department: "南京市民政局", due: due, filerKey: "k"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createRequest(NewDataRequest(title: "t", items: [], purpose: "p", department: "南京市民政局", due: due, filerKey: "k"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createRequest(NewDataRequest(title: "t", items: ["a"], purpose: String(repeating: "长", count: 2001), department: "南京市民政局", due: due, filerKey: "k"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createRequest(NewDataRequest(title: "t", items: ["a"], purpose: "p", department: "无此部门", due: due, filerKey: "k"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        #expect { try s.voteRequest(999, keyID: "k", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        #expect(try s.dataRequests(department: nil, status: nil).count == 2)
        let actions = try s.auditEvents(dataset: nil, actor: nil, limit: nil).map(\.event.action).filter { $0.hasPrefix("request.") }
        #expect(actions == ["request.create", "request.vote", "request.comment", "request.reply", "request.accept", "request.create", "request.fulfil",
                            "request.comment", "request.decline"])
    }

    @Test(arguments: StoreKind.available)
    func anErrorReportIsClosedWithAResolutionAndARatingIsChangedNotAdded(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let m = StoreFixture.manifest("people")
        try f.importVersion(m, rows: 3)
        let due = "2099-01-01"
        // Only a published dataset takes reports and ratings.
        #expect { try s.createReport(NewErrorReport(dataset: "people", field: nil, version: nil, row: nil, text: "t", due: due, filerKey: "k1"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        #expect { try s.rate(dataset: "people", keyID: "k1", stars: 4, comment: nil, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        try s.publish(dataset: "people", tier: .open, actor: "t")
        // A field by its title, a row of a version.
        let r = try s.createReport(NewErrorReport(dataset: "people", field: "姓名", version: 1, row: " #2 ", text: " 姓名有错别字 ", due: due, filerKey: "k1"), actor: "key:k1")
        #expect(r.field == "name" && r.row == "#2" && r.text == "姓名有错别字" && r.department == "省民政厅" && r.status == .open && r.closedOnTime == nil)
        #expect { try s.createReport(NewErrorReport(dataset: "people", field: "income", version: nil, row: nil, text: "t", due: due, filerKey: "k1"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createReport(NewErrorReport(dataset: "people", field: nil, version: 7, row: nil, text: "t", due: due, filerKey: "k1"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        #expect { try s.createReport(NewErrorReport(dataset: "people", field: nil, version: nil, row: "#1", text: "t", due: due, filerKey: "k1"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createReport(NewErrorReport(dataset: "people", field: nil, version: nil, row: nil, text: " ", due: due, filerKey: "k1"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        // A fix names a later version that exists.
        #expect { try s.closeReport(r.id, .resolve(.fixed, answer: "已更正", fixedVersion: 2), keyID: "k2", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        try f.importVersion(m, rows: 3)
        #expect { try s.closeReport(r.id, .resolve(.fixed, answer: "已更正", fixedVersion: 1), keyID: "k2", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.closeReport(r.id, .resolve(.fixed, answer: "已更正", fixedVersion: nil), keyID: "k2", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.closeReport(r.id, .withdraw, keyID: "k2", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .forbidden }
        let fixed = try s.closeReport(r.id, .resolve(.fixed, answer: "已更正", fixedVersion: 2), keyID: "k2", actor: "key:k2")
        #expect(fixed.status == .closed && fixed.resolution == .fixed && fixed.fixedVersion == 2 && fixed.closedOnTime == true && fixed.closedBy == "key:k2")
        #expect(try s.errorReport(r.id) == fixed)
        #expect { try s.closeReport(r.id, .resolve(.wontFix, answer: "x", fixedVersion: nil), keyID: "k2", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        let late = try s.createReport(NewErrorReport(dataset: "people", field: nil, version: nil, row: nil, text: "过期", due: "2000-01-03", filerKey: "k3"), actor: "t")
        let gone = try s.createReport(NewErrorReport(dataset: "people", field: nil, version: nil, row: nil, text: "撤回", due: due, filerKey: "k3"), actor: "t")
        #expect(try s.closeReport(gone.id, .withdraw, keyID: "k3", actor: "t").status == .withdrawn)
        #expect(try s.errorReports(dataset: "people", department: nil).map(\.id) == [gone.id, late.id, r.id])
        #expect(try s.errorReports(dataset: nil, department: "苏州").isEmpty)
        // Ratings: one per key, changed in place; outside 1–5 refused.
        #expect(try s.rate(dataset: "people", keyID: "k1", stars: 2, comment: " 字段说明不清 ", actor: "t").created)
        let changed = try s.rate(dataset: "people", keyID: "k1", stars: 4, comment: nil, actor: "t")
        #expect(!changed.created && changed.0.stars == 4 && changed.0.comment == nil)
        _ = try s.rate(dataset: "people", keyID: "k2", stars: 5, comment: "好", actor: "t")
        #expect { try s.rate(dataset: "people", keyID: "k3", stars: 6, comment: nil, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.rate(dataset: "people", keyID: "k3", stars: 0, comment: nil, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect(try s.ratings(dataset: "people").map(\.stars).sorted() == [4, 5])
        // The figures: one closed on time, one overdue, the withdrawn one nowhere; mean 4.5 stars.
        let today = String(CatalogRules.now().prefix(10))
        let figures = FeedbackFigures.of(try s.errorReports(dataset: nil, department: nil), ratings: try s.ratings(dataset: nil),
                                         departmentOf: { $0 == "people" ? "省民政厅" : nil }, today: today)
        #expect(figures.map(\.department) == ["", "省民政厅"])
        #expect(figures[1].reports == 2 && figures[1].closed == 1 && figures[1].closedOnTime == 1 && figures[1].overdue == 1 && figures[1].onTimeRate == 0.5)
        #expect(figures[1].ratings == 2 && figures[1].meanStars == 4.5)
        let actions = try s.auditEvents(dataset: "people", actor: nil, limit: nil).map(\.event.action).filter { $0.hasPrefix("report.") || $0.hasPrefix("rating.") }
        #expect(actions == ["report.create", "report.close", "report.create", "report.create", "report.withdraw", "rating.create", "rating.change", "rating.create"])
    }

    @Test(arguments: StoreKind.available)
    func aShowcaseNamesPublishedDatasetsAndItsOwnLicensesAndWaitsForApproval(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        try f.importVersion(StoreFixture.manifest("people"), rows: 3)
        try f.importVersion(StoreFixture.manifest("firms", department: "省市场监督管理局"), rows: 3)
        #expect { try s.createShowcase(NewShowcase(title: "t", description: "d", url: nil, datasets: ["people"], licenses: [], filerKey: "k"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        try s.publish(dataset: "people", tier: .conditional, actor: "t")
        try s.publish(dataset: "firms", tier: .open, actor: "t")
        let (key, _) = try s.createKey(role: .partner, name: "伙伴", actor: "t")
        let (otherKey, _) = try s.createKey(role: .partner, name: "别人", actor: "t")
        let app = try s.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况的统计分析", fields: [], use: .rows, durationDays: 30)
        let license = try s.approve(application: app.id, actor: "t").id
        let new = NewShowcase(title: " 救助地图 ", description: "按区县展示", url: "https://example.org/map", datasets: ["people", "firms", "people"],
                              licenses: [license], filerKey: key.id)
        let made = try s.createShowcase(new, actor: "key:\(key.id)")
        #expect(made.title == "救助地图" && made.datasets == ["people", "firms"] && made.licenses == [license] && made.status == .pending)
        // Someone else's license, a license on a dataset not listed, a bad address: refused.
        var other = new
        other.filerKey = otherKey.id
        #expect { try s.createShowcase(other, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        var unlisted = new
        unlisted.datasets = ["firms"]
        #expect { try s.createShowcase(unlisted, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        var badURL = new
        badURL.url = "javascript:alert(1)"
        #expect { try s.createShowcase(badURL, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        var none = new
        none.datasets = []
        #expect { try s.createShowcase(none, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        // Decided once; only the filer withdraws.
        #expect { try s.decideShowcase(made.id, .withdraw, keyID: otherKey.id, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .forbidden }
        #expect { try s.decideShowcase(made.id, .refuse(reason: " "), keyID: "s", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        let approved = try s.decideShowcase(made.id, .approve, keyID: "s", actor: "cli:steward")
        #expect(approved.status == .approved && approved.decidedBy == "cli:steward")
        #expect(try s.showcase(made.id) == approved)
        #expect { try s.decideShowcase(made.id, .refuse(reason: "x"), keyID: "s", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        let second = try s.createShowcase(NewShowcase(title: "企业图谱", description: "d", url: nil, datasets: ["firms"], licenses: [], filerKey: otherKey.id), actor: "t")
        #expect(try s.showcases(status: .pending).map(\.id) == [second.id])
        #expect(try s.showcases(status: nil).map(\.id) == [second.id, made.id])
        let figures = ShowcaseFigures.of(try s.showcases(status: nil), departmentOf: { ["people": "省民政厅", "firms": "省市场监督管理局"][$0] })
        #expect(figures == [ShowcaseFigures(department: "").with(approved: 1, pending: 1), ShowcaseFigures(department: "省市场监督管理局").with(approved: 1, pending: 1),
                            ShowcaseFigures(department: "省民政厅").with(approved: 1, pending: 0)])
        #expect(try s.decideShowcase(second.id, .withdraw, keyID: otherKey.id, actor: "t").status == .withdrawn)
        let actions = try s.auditEvents(dataset: nil, actor: nil, limit: nil).map(\.event.action).filter { $0.hasPrefix("showcase.") }
        #expect(actions == ["showcase.create", "showcase.approve", "showcase.create", "showcase.withdraw"])
    }

    @Test func aRequestIsDueTwentyWorkingDaysLater() {
        // 2026-12-04 is a Friday: 20 working days on, past four weekends, is Friday 2027-01-01.
        #expect(CatalogRules.workingDaysAfter("2026-12-04", 20) == "2027-01-01")
        #expect(CatalogRules.workingDaysAfter("2026-12-05", 1) == "2026-12-07")
        #expect(CatalogRules.workingDaysAfter("2026-12-07", 5) == "2026-12-14")
    }

    @Test(arguments: StoreKind.available)
    func dutiesAreFulfilledByTheFirstPublicationAtATierOfTheirKind(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        _ = try s.createDepartment(name: "南京市民政局", parent: nil, actor: "t")
        let m = StoreFixture.manifest("people", department: "南京市民政局")
        try f.importVersion(m, rows: 3)
        let today = String(CatalogRules.now().prefix(10))
        let open = try s.createDuty(department: "南京市民政局", dataset: "people", kind: .open, title: " 低保对象名录 ", due: "2099-12-31", actor: "cli:test")
        let share = try s.createDuty(department: "南京市民政局", dataset: "people", kind: .share, title: "共享", due: "2000-01-01", actor: "cli:test")
        let later = try s.createDuty(department: "南京市民政局", dataset: "not-yet", kind: .open, title: "尚未编目", due: "2000-01-01", actor: "cli:test")
        #expect(open.title == "低保对象名录" && open.fulfilledAt == nil && open.state(today: today) == .due)
        #expect(share.state(today: today) == .late && later.state(today: today) == .late)
        // Restricted fulfils a duty to share, not one to open; conditional fulfils both.
        try s.publish(dataset: "people", tier: .restricted, actor: "cli:test")
        var byID = Dictionary(uniqueKeysWithValues: try s.duties(department: "南京市民政局").map { ($0.id, $0) })
        #expect(byID[open.id]?.fulfilledAt == nil)
        #expect(byID[share.id]?.state(today: today) == .doneLate)
        #expect(byID[share.id]?.state(today: "1999-12-31") == .due)
        try s.publish(dataset: "people", tier: .conditional, actor: "cli:test")
        byID = Dictionary(uniqueKeysWithValues: try s.duties(department: nil).map { ($0.id, $0) })
        #expect(byID[open.id]?.state(today: today) == .done)
        #expect(byID[later.id]?.state(today: today) == .late)
        // Bad input and unknown departments write nothing.
        #expect { try s.createDuty(department: "南京市民政局", dataset: "x", kind: .open, title: "t", due: "2027-02-29", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createDuty(department: "南京市民政局", dataset: "Bad Id", kind: .open, title: "t", due: "2027-02-28", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createDuty(department: "无此部门", dataset: "x", kind: .open, title: "t", due: "2027-02-28", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        #expect(try s.duties(department: nil).count == 3 && (try s.duties(department: "苏州")).isEmpty)
        // Withdrawn, kept, marked; once.
        let w = try s.withdrawDuty(later.id, reason: "机构调整 reorganised", actor: "cli:test")
        #expect(w.state(today: today) == .withdrawn && w.withdrawnReason == "机构调整 reorganised")
        #expect { try s.withdrawDuty(later.id, reason: "again", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect { try s.withdrawDuty(999, reason: "none", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        let actions = try s.auditEvents(dataset: nil, actor: nil, limit: nil).map(\.event.action)
        #expect(actions.filter { $0.hasPrefix("duty.") } == ["duty.create", "duty.create", "duty.create", "duty.withdraw"])
    }

    @Test(arguments: StoreKind.available)
    func aProposalPublishesOnlyWithItsApprovals(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let m = StoreFixture.manifest("people", department: "南京市民政局")
        try f.importVersion(m, rows: 3)
        try f.importVersion(m, rows: 4)
        let p = try s.createProposal(NewProposal(dataset: "people", version: 1, tier: .open, overrideReason: nil, needsSecurity: true, proposerKey: "pub1"),
                                     actor: "key:pub1")
        #expect(p.status == .pending && p.version == 1 && p.department == "南京市民政局" && p.awaiting == [.reviewer, .security])
        // One pending proposal per dataset; unknown datasets and versions are refused.
        #expect { try s.createProposal(NewProposal(dataset: "people", version: nil, tier: .conditional, overrideReason: nil, needsSecurity: false, proposerKey: "pub1"), actor: "t") }
            throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect { try s.createProposal(NewProposal(dataset: "nobody", version: nil, tier: .open, overrideReason: nil, needsSecurity: false, proposerKey: "pub1"), actor: "t") }
            throws: { ($0 as? KaifangError)?.kind == .notFound }
        // The proposer never approves; the reviewer's approval alone does not publish.
        #expect { try s.approveProposal(p.id, part: .reviewer, keyID: "pub1", actor: "t", publishDetail: [:]) } throws: { ($0 as? KaifangError)?.kind == .forbidden }
        let reviewed = try s.approveProposal(p.id, part: .reviewer, keyID: "rev1", actor: "key:rev1", publishDetail: [:])
        #expect(reviewed.status == .pending && reviewed.awaiting == [.security] && reviewed.reviewedBy == "rev1")
        #expect(try s.publishedVersion("people") == nil)
        #expect { try s.approveProposal(p.id, part: .reviewer, keyID: "rev2", actor: "t", publishDetail: [:]) } throws: { ($0 as? KaifangError)?.kind == .conflict }
        // One person does not give both approvals.
        #expect { try s.approveProposal(p.id, part: .security, keyID: "rev1", actor: "t", publishDetail: [:]) } throws: { ($0 as? KaifangError)?.kind == .forbidden }
        let done = try s.approveProposal(p.id, part: .security, keyID: "sec1", actor: "key:sec1", publishDetail: ["k": .int(7)])
        #expect(done.status == .published && done.awaiting.isEmpty && done.decidedAt != nil)
        let (d, v) = try #require(try s.publishedVersion("people"))
        #expect(d.tier == .open && v.number == 1)
        let publish = try #require(try s.auditEvents(dataset: "people", actor: nil, limit: nil).map(\.event).last { $0.action == "dataset.publish" })
        #expect(publish.detail["proposal"] == .string(p.id) && publish.detail["k"] == .int(7) && publish.actor == "key:sec1")
        #expect { try s.refuseProposal(p.id, keyID: "rev1", reason: "late", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        // A second proposal, refused: nothing changes.
        let q = try s.createProposal(NewProposal(dataset: "people", version: 2, tier: .conditional, overrideReason: nil, needsSecurity: false, proposerKey: "pub1"),
                                     actor: "key:pub1")
        #expect(q.awaiting == [.reviewer])
        #expect { try s.refuseProposal(q.id, keyID: "rev1", reason: "  ", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        let refused = try s.refuseProposal(q.id, keyID: "rev1", reason: "质量报告有缺失 quality gaps", actor: "key:rev1")
        #expect(refused.status == .refused && refused.refusedReason == "质量报告有缺失 quality gaps")
        #expect { try s.approveProposal(q.id, part: .reviewer, keyID: "rev2", actor: "t", publishDetail: [:]) } throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect(try s.publishedVersion("people")?.1.number == 1)
        #expect(Set(try s.proposals(department: "南京市民政局", status: nil).map(\.id)) == [q.id, p.id])
        #expect(try s.proposals(department: "苏州市民政局", status: nil).isEmpty)
        #expect(try s.proposals(department: nil, status: .refused).map(\.id) == [q.id])
        #expect(try s.proposal(q.id) == refused)
        // A policy change: the same fields, applied with the last approval.
        var lowered = try #require(try s.dataset("people")).manifest
        lowered.fields[0].level = .L2
        lowered.fields[0].action = .mask
        var removed = lowered
        removed.fields.removeLast()
        #expect { try s.createProposal(NewProposal(policy: removed, needsSecurity: false, proposerKey: "pub1"), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        let policy = try s.createProposal(NewProposal(policy: lowered, needsSecurity: false, proposerKey: "pub1"), actor: "key:pub1")
        #expect(policy.kind == .policy && policy.tier == .open && policy.version == 2 && policy.manifest == lowered && policy.awaiting == [.reviewer])
        #expect(try s.dataset("people")?.manifest.fields[0].level == .L3)
        let applied = try s.approveProposal(policy.id, part: .reviewer, keyID: "rev1", actor: "key:rev1", publishDetail: [:])
        #expect(applied.status == .applied && applied.manifest == lowered)
        #expect(try s.dataset("people")?.manifest.fields[0].level == .L2 && (try s.dataset("people"))?.manifest.fields[0].action == .mask)
        #expect(try s.auditEvents(dataset: "people", actor: nil, limit: nil).map(\.event).last?.detail["proposal"] == .string(policy.id))
        // Only its proposer withdraws a pending proposal.
        let r = try s.createProposal(NewProposal(dataset: "people", version: 2, tier: .restricted, overrideReason: nil, needsSecurity: false, proposerKey: "pub1"),
                                     actor: "key:pub1")
        #expect { try s.withdrawProposal(r.id, keyID: "rev1", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .forbidden }
        #expect(try s.withdrawProposal(r.id, keyID: "pub1", actor: "key:pub1").status == .withdrawn)
        #expect { try s.withdrawProposal(r.id, keyID: "pub1", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect { try s.withdrawProposal(q.id, keyID: "pub1", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        let actions = try s.auditEvents(dataset: "people", actor: nil, limit: nil).map(\.event.action)
        #expect(actions.filter { $0.hasPrefix("proposal.") } == ["proposal.create", "proposal.approve", "proposal.approve", "proposal.create", "proposal.refuse",
                                                                  "proposal.create", "proposal.approve", "proposal.create", "proposal.withdraw"])
        #expect(actions.contains("dataset.policy"))
    }

    @Test(arguments: StoreKind.available)
    func versionsArePublishedWithdrawnAndStayReadable(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let m = StoreFixture.manifest("people")
        let v1 = try f.importVersion(m, rows: 3)
        try f.importVersion(m, rows: 4)
        #expect(v1.number == 1)
        #expect(try s.dataset("people")?.isPublished == false)
        #expect(try s.publishedVersion("people") == nil)
        try s.publish(dataset: "people", version: 1, tier: .conditional, actor: "cli:test")
        var (d, v) = try #require(try s.publishedVersion("people"))
        #expect(d.tier == .conditional && v.number == 1 && v.rowCount == 3 && v.manifest == m)
        try s.publish(dataset: "people", tier: .open, actor: "cli:test")
        (d, v) = try #require(try s.publishedVersion("people"))
        #expect(d.tier == .open && v.number == 2)
        // Every version's file opens, holding its rows, with the content hash it was committed with.
        for n in [1, 2] {
            let version = try #require(try s.version("people", n))
            let reader = try VersionReader(path: try s.localFile(version))
            #expect(try reader.rowCount() == n + 2)
        }
        try s.withdraw(dataset: "people", actor: "cli:test")
        #expect(try s.publishedVersion("people") == nil)
        // Publications and withdrawals in order, newest first (the feeds, webhooks).
        let events = try s.datasetEvents(dataset: "people", limit: 10)
        #expect(events.map(\.kind) == ["withdrawn", "published", "published"] && events.map(\.version) == [nil, 2, 1])
        #expect(events.map(\.tier) == [nil, .open, .conditional] && events[0].seq > events[1].seq)
        #expect(try s.datasetEvents(dataset: nil, limit: 2).map(\.seq) == events.prefix(2).map(\.seq))
        #expect(try s.datasetEvents(dataset: "ghost", limit: 10).isEmpty)
        #expect(try s.versions("people").map(\.number) == [1, 2])
        #expect(try s.datasetCount() == 1)
        // What does not exist is refused by name.
        #expect { try s.publish(dataset: "nope", tier: .open, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        #expect { try s.publish(dataset: "people", version: 9, tier: .open, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        #expect { try s.requireDataset("ghost") } throws: { ($0 as? KaifangError)?.kind == .notFound }
    }

    @Test(arguments: StoreKind.available)
    func fieldPolicyChangesKeepTheFieldSet(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        var m = StoreFixture.manifest("people")
        try f.importVersion(m, rows: 2)
        m.fields[1].level = .L3
        m.fields[1].action = .suppress
        try f.store.updateManifest(m, actor: "cli:test", action: "dataset.field", detail: ["field": .string("age")])
        #expect(try f.store.dataset("people")?.manifest.fields[1].action == .suppress)
        var wrong = m
        wrong.fields.removeLast()
        #expect { try f.store.updateManifest(wrong, actor: "t", action: "dataset.field", detail: [:]) } throws: { ($0 as? KaifangError)?.kind == .badInput }
    }

    @Test(arguments: StoreKind.available)
    func searchFindsWordsFacetsAndPagesWithACursor(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        for i in 0..<7 {
            let m = StoreFixture.manifest("d\(i)", department: i < 4 ? "省民政厅" : "省生态环境厅", topic: i % 2 == 0 ? "social" : "environment",
                                          title: i == 5 ? "空气质量小时数据 Air" : nil)
            try f.importVersion(m, rows: 1)
            if i != 6 { try s.publish(dataset: m.id, tier: i < 3 ? .open : .conditional, actor: "t") }
        }
        let all = try s.search(DatasetQuery(limit: 100))
        #expect(all.total == 6)
        #expect(all.departments == [FacetCount(value: "省民政厅", count: 4), FacetCount(value: "省生态环境厅", count: 2)])
        #expect(all.tiers == [FacetCount(value: "conditional", count: 3), FacetCount(value: "open", count: 3)])
        #expect(try s.search(DatasetQuery(limit: 100, includeUnpublished: true)).total == 7)
        #expect(try s.search(DatasetQuery(q: "空气")).datasets.map(\.record.id) == ["d5"])      // two characters
        #expect(try s.search(DatasetQuery(q: "空气质")).datasets.map(\.record.id) == ["d5"])    // three
        #expect(try s.search(DatasetQuery(q: "air 小时")).datasets.map(\.record.id) == ["d5"])  // case, two words
        #expect(try s.search(DatasetQuery(q: "姓名")).total == 6)                              // field titles
        #expect(try s.search(DatasetQuery(q: "空气质\u{0}")).datasets.map(\.record.id) == ["d5"])
        #expect(try s.search(DatasetQuery(q: "100%")).total == 0)
        let filtered = try s.search(DatasetQuery(department: "省民政厅", tier: .open))
        #expect(filtered.total == 3)
        #expect(filtered.tiers.first { $0.value == "conditional" }?.count == 1)
        #expect(filtered.datasets.first?.rowCount == 1)
        var seen: [String] = []
        var cursor: String?
        repeat {
            let page = try s.search(DatasetQuery(limit: 4, cursor: cursor))
            seen += page.datasets.map(\.record.id)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(seen == ["d0", "d1", "d2", "d3", "d4", "d5"])
        #expect { try s.search(DatasetQuery(cursor: "garbage!")) } throws: { ($0 as? KaifangError)?.kind == .badInput }
    }

    /// A change made through another store on the same data (another process, another replica)
    /// shows in cached lookups at once; read events do not move the caches.
    @Test(arguments: StoreKind.available)
    func cachedLookupsSeeChangesFromAnotherStoreAtOnce(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let m = StoreFixture.manifest("people")
        try f.importVersion(m, rows: 3)
        try f.importVersion(m, rows: 4)
        let other = try f.another()
        #expect(try s.publicationStamp("people")?.hasSuffix("|-|-") == true)
        try other.publish(dataset: "people", version: 1, tier: .conditional, actor: "cli:test")
        #expect(try s.publicationStamp("people")?.hasSuffix("|conditional|1") == true)
        try s.audit(batch: [PendingAuditEvent(actor: "anonymous", action: "rows.read", dataset: "people", detail: [:])])
        try other.publish(dataset: "people", version: 2, tier: .open, actor: "cli:test")
        #expect(try s.publicationStamp("people")?.hasSuffix("|open|2") == true)
        #expect(try s.publicationStamp("ghost") == nil)

        let (key, secret) = try s.createKey(role: .partner, name: "伙伴", actor: "cli:test")
        #expect(try s.authenticate(secret)?.id == key.id)
        #expect(try other.authenticate(secret)?.id == key.id)
        #expect(try s.authenticate(String(secret.dropLast()) + (secret.hasSuffix("0") ? "1" : "0")) == nil)
        #expect(try s.authenticate("kf_nonsense") == nil)
        let app = try s.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况的统计分析", fields: ["name"], use: .rows, durationDays: 30)
        #expect(app.status == "pending" && app.fields == ["name"])
        let license = try other.approve(application: app.id, actor: "cli:steward")
        #expect(try s.activeLicense(keyID: key.id, dataset: "people", use: .rows)?.id == license.id)
        #expect(try s.license(license.id)?.fields == ["name"])
        #expect(try s.application(app.id)?.licenseID == license.id)
        try other.revokeLicense(license.id, actor: "cli:steward")
        #expect(try s.activeLicense(keyID: key.id, dataset: "people", use: .rows) == nil)
        // A license that expires while cached is not served.
        let app2 = try s.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况的统计分析", fields: [], use: .rows, durationDays: 30)
        _ = try other.approve(application: app2.id, expires: Date().addingTimeInterval(1.2), fields: nil, use: nil, actor: "cli:steward")
        #expect(try s.activeLicense(keyID: key.id, dataset: "people", use: .rows) != nil)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try s.activeLicense(keyID: key.id, dataset: "people", use: .rows) == nil)
        try other.revokeKey(key.id, actor: "cli:steward")
        #expect(try s.authenticate(secret) == nil)
        #expect { try s.revokeKey(key.id, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
    }

    @Test(arguments: StoreKind.available)
    func applicationsAreCheckedAndDecidedOnce(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        try f.importVersion(StoreFixture.manifest("people"), rows: 3)
        let (key, _) = try s.createKey(role: .developer, name: "d", actor: "t")
        #expect { try s.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况", fields: [], use: .rows, durationDays: 30) } throws: {
            ($0 as? KaifangError)?.kind == .notFound   // not published
        }
        try s.publish(dataset: "people", tier: .restricted, actor: "t")
        #expect { try s.createApplication(keyID: key.id, dataset: "people", purpose: "short", fields: [], use: .sandbox, durationDays: 30) } throws: {
            ($0 as? KaifangError)?.kind == .badInput
        }
        #expect { try s.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况", fields: ["nope"], use: .sandbox, durationDays: 30) } throws: {
            ($0 as? KaifangError)?.message.contains("'nope'") == true
        }
        #expect { try s.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况", fields: [], use: .rows, durationDays: 30) } throws: {
            ($0 as? KaifangError)?.message.contains("restricted") == true
        }
        let a = try s.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况", fields: [], use: .sandbox, durationDays: 30)
        let b = try s.createApplication(keyID: key.id, dataset: "people", purpose: "研究全省社会救助覆盖情况 again", fields: [], use: .sandbox, durationDays: 30)
        #expect(b.id > a.id)
        try s.reject(application: b.id, reason: "不符合用途", actor: "cli:steward")
        #expect { try s.reject(application: b.id, reason: "again", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect { try s.reject(application: a.id, reason: "  ", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        let l = try s.approve(application: a.id, actor: "cli:steward")
        #expect(l.use == .sandbox && l.keyID == key.id)
        #expect { try s.approve(application: a.id, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect(try s.applications(status: "pending").isEmpty)
        #expect(try s.applications().map(\.status) == ["rejected", "approved"])
        #expect(try s.licenses(keyID: key.id).map(\.id) == [l.id])
        #expect(try s.keyName(key.id) == "d")
    }

    /// Every change is an event of one intact chain, whichever store instance wrote it; batches of
    /// read events are counted per dataset and day; tampering is named.
    @Test(arguments: StoreKind.available)
    func everyChangeIsChainedAndReadsAreCounted(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let other = try f.another()
        try f.importVersion(StoreFixture.manifest("people"), rows: 2)
        try other.publish(dataset: "people", tier: .open, actor: "cli:other")
        _ = try s.createKey(role: .developer, name: "d", actor: "cli:test")
        let batch = (0..<5).map { i in PendingAuditEvent(actor: "anonymous:\(i)", action: i < 4 ? "rows.read" : "export.read", dataset: "people", detail: ["rows": .int(Int64(i))]) }
        try s.audit(batch: batch)
        try other.audit(batch: [PendingAuditEvent(actor: "anonymous", action: "rows.read", dataset: "people", detail: [:])])
        try s.audit(actor: "cli:test", action: "note", dataset: nil, detail: ["x": .string("是")])
        let events = try s.auditEvents()
        #expect(events.map(\.event.action) == ["dataset.import", "dataset.publish", "key.create", "rows.read", "rows.read", "rows.read", "rows.read", "export.read", "rows.read", "note"])
        #expect(events.map(\.event.seq) == Array(1...10))
        guard case .intact(let count, let head) = try s.verifyAudit() else { Issue.record("chain not intact"); return }
        #expect(count == 10 && head == events.last?.hash)
        #expect(try other.auditHead()?.seq == 10)
        #expect(try s.auditEvents(dataset: "people", actor: nil, limit: 2).map(\.event.seq) == [8, 9])
        #expect(try s.auditEvents(dataset: nil, actor: "anonymous:2", limit: nil).count == 1)
        #expect(try s.stats(since: "2000-01-01").reads == [FacetCount(value: "people", count: 6)])
        #expect(try s.countEvents(actor: "anonymous:4", action: "export.read", since: "2000-01-01") == 1)
        // An anchor kept elsewhere catches a chain cut short or rewritten.
        let anchor = (seq: Int64(10), hash: try #require(events.last?.hash))
        guard case .intact = try s.verifyAudit(anchors: [anchor]) else { Issue.record("anchor refused"); return }
        guard case .broken(let seq, _) = try s.verifyAudit(anchors: [(seq: 12, hash: "x")]) else { Issue.record("a missing tail was not caught"); return }
        #expect(seq == 11)
    }

    @Test(arguments: StoreKind.available)
    func statsCountTiersAndTheOpenRate(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        for (i, tier) in [Tier.open, .conditional, .restricted].enumerated() {
            var m = StoreFixture.manifest("d\(i)", department: i == 0 ? "甲" : "乙")
            m.shouldOpen = i < 2
            try f.importVersion(m, rows: 1)
            try f.store.publish(dataset: m.id, tier: tier, actor: "t")
        }
        var m = StoreFixture.manifest("d3")
        m.shouldOpen = true
        try f.importVersion(m, rows: 1)
        let st = try f.store.stats(since: "2000-01-01")
        #expect(st.datasets == 4 && st.published == 3 && st.shouldOpen == 3 && st.opened == 2)
        #expect(abs(st.openRate - 2.0 / 3.0) < 1e-12)
        #expect(st.byDepartment == [FacetCount(value: "乙", count: 2), FacetCount(value: "甲", count: 1)])
    }

    /// Jobs: claimed by one worker at a time with a lease, renewed by their worker only, a
    /// verdict written only by the worker that holds the job, files kept for every worker.
    @Test(arguments: StoreKind.available)
    func accountsHoldKeysWithinTheirTierAndSuspensionReachesEveryProcess(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let other = try f.another()
        let (account, first, secret) = try s.createAccount(email: " Zhang.San@Example.ORG ", name: "张三", organisation: "南京大学", tier: nil,
                                                           keyName: "first app", actor: "anonymous:127.0.0.1")
        #expect(account.email == "zhang.san@example.org" && account.tier == AccountTier.signupTier && !account.isSuspended)
        #expect(first.accountID == account.id && first.role == .developer)
        let basic = try #require(try s.tiers().first { $0.name == "basic" })
        #expect(first.limits == KeyLimits(rate: basic.rate, burst: basic.burst, exportsPerDay: basic.exportsPerDay))
        #expect(try other.authenticate(secret)?.accountID == account.id)
        // One account per address, compared lower-cased; malformed input is refused by field.
        #expect { try other.createAccount(email: "zhang.san@example.org", name: "x", organisation: "", tier: nil, keyName: "k", actor: "t") } throws: {
            ($0 as? KaifangError)?.kind == .conflict
        }
        for (email, name) in [("no-at-sign", "x"), ("a@b", "x"), ("a@b.cn", ""), ("a@b.cn", String(repeating: "名", count: 101))] {
            #expect { try s.createAccount(email: email, name: name, organisation: "", tier: nil, keyName: "k", actor: "t") } throws: {
                ($0 as? KaifangError)?.kind == .badInput
            }
        }
        #expect { try s.createAccount(email: "x@y.cn", name: "x", organisation: "", tier: "gold", keyName: "k", actor: "t") } throws: {
            ($0 as? KaifangError)?.kind == .notFound
        }
        #expect(try s.accounts().map(\.id) == [account.id])
        // Keys up to the tier's number; a revoked one frees its place.
        try s.putTier(AccountTier(name: "basic", rate: 5, burst: 10, exportsPerDay: 3, maxKeys: 2), actor: "cli:steward")
        let (second, _) = try other.createKey(role: .developer, name: "second app", account: account.id, actor: "t")
        #expect(second.limits == KeyLimits(rate: 5, burst: 10, exportsPerDay: 3))
        #expect { try s.createKey(role: .developer, name: "third", account: account.id, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        try s.revokeKey(second.id, actor: "t")
        _ = try s.createKey(role: .developer, name: "third", account: account.id, actor: "t")
        #expect(try s.keys(account: account.id).count == 3)
        #expect(try s.authenticate(secret)?.limits?.rate == 5)
        #expect { try s.createKey(role: .developer, name: "k", account: "acct_nope", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        // Suspension is seen by the other process from its next lookup, with its reason; reinstating undoes it.
        try other.setSuspended(account: account.id, reason: "批量抓取 bulk scraping", actor: "cli:steward")
        #expect(try s.authenticate(secret)?.suspension == "批量抓取 bulk scraping")
        #expect { try s.setSuspended(account: account.id, reason: "again", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect { try s.createKey(role: .developer, name: "k", account: account.id, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        try s.setSuspended(account: account.id, reason: nil, actor: "cli:steward")
        #expect(try other.authenticate(secret)?.accountSuspended == false)
        #expect { try s.setSuspended(account: account.id, reason: nil, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        #expect { try s.setSuspended(account: "acct_nope", reason: "x", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        #expect(try other.setTier(account: account.id, tier: "standard", actor: "cli:steward").tier == "standard")
        #expect(try s.authenticate(secret)?.limits?.exportsPerDay == 100)
        #expect { try s.putTier(AccountTier(name: "bad name", rate: 1, burst: 1, exportsPerDay: 1, maxKeys: 1), actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        // Every change is an audit event; the address and name are not in them.
        let events = try s.auditEvents().map(\.event)
        #expect(events.map(\.action).filter { $0.hasPrefix("account.") } == ["account.create", "account.suspend", "account.reinstate", "account.tier"])
        #expect(!events.contains { Audit.JSONValue.object($0.detail).canonical.contains("zhang.san") || Audit.JSONValue.object($0.detail).canonical.contains("张三") })
    }

    @Test(arguments: StoreKind.available)
    func usageAddsUpPerDayKeyAndDatasetWithJobsAndEpsilon(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let other = try f.another()
        let (key, _) = try s.createKey(role: .partner, name: "p", actor: "t")
        let (quiet, _) = try s.createKey(role: .developer, name: "q", actor: "t")
        try s.addUsage([UsageEntry(day: "2026-11-30", keyID: key.id, dataset: "people", requests: 2, rows: 40, bytes: 1000, exports: 0),
                        UsageEntry(day: "2026-12-01", keyID: key.id, dataset: "", requests: 1, bytes: 10),
                        UsageEntry(day: "2026-12-01", keyID: "", dataset: "people", requests: 5, rows: 50, bytes: 500)], pruneBefore: nil)
        // Another process adds to the same counters.
        try other.addUsage([UsageEntry(day: "2026-11-30", keyID: key.id, dataset: "people", requests: 1, rows: 7, bytes: 70, exports: 1)], pruneBefore: nil)
        let job = JobRecord(id: "job_u", keyID: key.id, sql: "SELECT 1", mode: "dp", epsilon: 0.25, purpose: "", status: .queued, detail: JobDetail(),
                            createdAt: "2026-12-01T08:00:00.000Z", startedAt: nil, finishedAt: nil, attempts: 0, dryRun: false,
                            datasets: [JobDataset(id: "people", version: 1, tier: .conditional)])
        try s.insertJob(job, spend: [("people", nil, 1.0)])
        let mine = try other.usage(keys: [key.id], dataset: nil, from: "2026-11-01", to: "2026-12-31")
        #expect(mine == [
            UsageRow(day: "2026-11-30", keyID: key.id, dataset: "people", requests: 3, rows: 47, bytes: 1070, exports: 1),
            UsageRow(day: "2026-12-01", keyID: key.id, dataset: "", requests: 1, bytes: 10, jobs: 1),
            UsageRow(day: "2026-12-01", keyID: key.id, dataset: "people", epsilon: 0.25),
        ])
        #expect(try s.usage(keys: [quiet.id], dataset: nil, from: "2026-11-01", to: "2026-12-31").isEmpty)
        #expect(try s.usage(keys: [], dataset: nil, from: "2026-11-01", to: "2026-12-31").isEmpty)
        let people = try s.usage(keys: nil, dataset: "people", from: "2026-12-01", to: "2026-12-01")
        #expect(people.map(\.keyID) == ["", key.id] && people[0].rows == 50)
        let (days, total) = UsageRow.grouped(try s.usage(keys: nil, dataset: nil, from: "2026-11-01", to: "2026-12-31")) { $0.dataset }
        #expect(days.map(\.group) == ["people", "", "people"] && total.requests == 9 && total.rows == 97 && total.jobs == 1 && total.epsilon == 0.25)
        // Pruning forgets the days before the cut, nothing after it.
        try s.addUsage([], pruneBefore: "2026-12-01")
        #expect(try s.usage(keys: nil, dataset: nil, from: "2026-11-01", to: "2026-11-30").isEmpty)
        #expect(try s.usage(keys: nil, dataset: "people", from: "2026-12-01", to: "2026-12-01").count == 2)
    }

    @Test func usageIsKeptForTheCurrentMonthAndTheTwelveBefore() {
        #expect(CatalogRules.usageStart(today: "2026-12-05") == "2025-12-01")
        #expect(CatalogRules.usageStart(today: "2026-01-31") == "2025-01-01")
        #expect(CatalogRules.usageStart(today: "2024-02-29") == "2023-02-01")
    }

    @Test(arguments: StoreKind.available)
    func jobsAreClaimedOnceAndFencedByTheirWorker(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let (key, _) = try s.createKey(role: .partner, name: "p", actor: "t")
        func job(_ id: String, at: String) -> JobRecord {
            JobRecord(id: id, keyID: key.id, sql: "SELECT 1", mode: "dp", epsilon: 0.5, purpose: "", status: .queued, detail: JobDetail(),
                      createdAt: at, startedAt: nil, finishedAt: nil, attempts: 0, dryRun: false, datasets: [JobDataset(id: "people", version: 1, tier: .conditional)])
        }
        let now = CatalogRules.now()
        try s.insertJob(job("job_a", at: now), spend: [("people", nil, 1.2)])
        try s.insertJob(job("job_b", at: now + "z"), spend: [("people", nil, 1.2)])
        #expect { try s.insertJob(job("job_c", at: now), spend: [("people", nil, 1.2)]) } throws: { ($0 as? KaifangError)?.kind == .forbidden }
        #expect(try s.epsilonUsed(keyID: key.id, dataset: "people", month: JobRecord.month(now)) == 1.0)
        #expect(try s.job("job_c") == nil)
        let other = try f.another()
        let first = try #require(try s.claimJob(nil, worker: "w1", lease: 30))
        let second = try #require(try other.claimJob(nil, worker: "w2", lease: 30))
        #expect(first.id == "job_a" && second.id == "job_b" && first.status == .running && first.attempts == 1)
        #expect(try s.claimJob(nil, worker: "w3", lease: 30) == nil)
        #expect(try s.claimJob("job_a", worker: "w3", lease: 30) == nil)
        #expect(try s.renewLease(job: "job_a", worker: "w1", lease: 30))
        #expect(try !s.renewLease(job: "job_a", worker: "w2", lease: 30))
        var d = JobDetail()
        d.outputRows = 3
        #expect(try !s.updateJob("job_a", status: .released, detail: d, from: [.running], worker: "w2", actor: "kaifang", audit: "sandbox.verdict", auditDetail: [:]))
        #expect(try s.updateJob("job_a", status: .released, detail: d, from: [.running], worker: "w1", actor: "kaifang", audit: "sandbox.verdict", auditDetail: [:]))
        #expect(try !s.updateJob("job_a", status: .released, detail: d, from: [.running], worker: "w1", actor: "kaifang", audit: "sandbox.verdict", auditDetail: [:]))
        #expect(try s.job("job_a")?.detail.outputRows == 3)
        #expect(try s.jobs(keyID: key.id).map(\.id) == ["job_b", "job_a"])
        #expect(try s.jobs(keyID: nil, status: .running, limit: 10).map(\.id) == ["job_b"])
        try s.putJobFile(job: "job_a", name: "result.json", data: Data("{\"rows\":[]}".utf8))
        try s.putJobFile(job: "job_a", name: "result.json", data: Data("{\"rows\":[1]}".utf8))
        #expect(try other.jobFile(job: "job_a", name: "result.json") == Data("{\"rows\":[1]}".utf8))
        #expect(try other.jobFile(job: "job_a", name: "nope") == nil)
        try s.recordRowSet(job: "job_a", keyID: key.id, dataset: "people", units: 40, sha256: "abc")
        try s.recordRowSet(job: "job_b", keyID: key.id, dataset: "people", units: 44, sha256: "abc")   // the same set: kept once
        #expect(try s.rowSets(keyID: key.id, dataset: "people", units: 42, slack: 5).map(\.job) == ["job_a"])
        let events = try s.auditEvents().map(\.event.action)
        #expect(events.filter { $0 == "sandbox.submit" }.count == 2 && events.contains("sandbox.verdict"))
    }

    /// A worker that stops loses its job: the embedded store recovers every running job at
    /// start; the shared store those whose lease ran out, once, then fails them.
    @Test(arguments: StoreKind.available)
    func aStoppedWorkersJobIsRecoveredOnceThenFailed(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let (key, _) = try s.createKey(role: .partner, name: "p", actor: "t")
        try s.insertJob(JobRecord(id: "job_x", keyID: key.id, sql: "SELECT 1", mode: "aggregate", epsilon: nil, purpose: "", status: .queued,
                                  detail: JobDetail(), createdAt: CatalogRules.now(), startedAt: nil, finishedAt: nil, attempts: 0, dryRun: false,
                                  datasets: []), spend: [])
        for attempt in 1...2 {
            let claimed = try #require(try s.claimJob(nil, worker: "w\(attempt)", lease: 0.5))
            #expect(claimed.attempts == attempt)
            if s.isShared {
                #expect(try s.recoverJobs(maxAttempts: 2).requeued.isEmpty)   // the lease holds
                Thread.sleep(forTimeInterval: 0.8)
            }
            let r = try s.recoverJobs(maxAttempts: 2)
            #expect(attempt == 1 ? r.requeued == ["job_x"] : r.failed == ["job_x"])
            #expect(try !s.renewLease(job: "job_x", worker: "w\(attempt)", lease: 30))
        }
        #expect(try s.job("job_x")?.status == .failed)
        #expect(try s.auditEvents().filter { $0.event.action == "sandbox.recover" }.count == 2)
    }

    @Test(arguments: StoreKind.available)
    func rateLimitsAdmitABurstThenTheRate(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let other = try f.another()
        // A burst of 5 at 2 a second, taken alternately through two stores: 5 admitted.
        var admitted = 0
        var waits: [Double] = []
        for i in 0..<8 {
            let s = i % 2 == 0 ? f.store : other
            if let wait = try s.takeToken(bucket: "k:test", rate: 2, burst: 5) { waits.append(wait) } else { admitted += 1 }
        }
        if kind == .postgres { #expect(admitted == 5) } else { #expect(admitted >= 5) }   // the embedded store serves one process
        #expect(waits.allSatisfy { $0 > 0 && $0 <= 0.5 + 0.05 })
        #expect(try f.store.takeToken(bucket: "k:other", rate: 2, burst: 5) == nil)
        Thread.sleep(forTimeInterval: 0.6)
        #expect(try f.store.takeToken(bucket: "k:test", rate: 2, burst: 5) == nil)
        #expect(try f.store.takeToken(bucket: "k:off", rate: 0, burst: 0) == nil)
    }

    @Test(arguments: StoreKind.available)
    func harvestSourcesAreCheckedAndRecorded(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        #expect { try s.addSource(dataset: "people", url: "https://example.org/a.csv", intervalSeconds: 3600, publish: true, actor: "t") } throws: {
            ($0 as? KaifangError)?.kind == .notFound
        }
        try f.importVersion(StoreFixture.manifest("people"), rows: 1)
        #expect { try s.addSource(dataset: "people", url: "ftp://example.org/a.csv", intervalSeconds: 3600, publish: true, actor: "t") } throws: {
            ($0 as? KaifangError)?.kind == .badInput
        }
        try s.addSource(dataset: "people", url: "https://example.org/a.csv", intervalSeconds: 3600, publish: true, actor: "t")
        #expect(try s.sources(dueAt: CatalogRules.now()).map(\.dataset) == ["people"])
        try s.recordFetch(dataset: "people", etag: "\"v1\"", lastModified: nil, contentSHA256: "abc", error: nil, nextDue: Date().addingTimeInterval(3600))
        #expect(try s.sources(dueAt: CatalogRules.now()).isEmpty)
        try s.recordFetch(dataset: "people", etag: nil, lastModified: nil, contentSHA256: nil, error: "HTTP 500", nextDue: Date())
        let src = try #require(try s.source("people"))
        #expect(src.etag == "\"v1\"" && src.failures == 1 && src.lastError == "HTTP 500" && src.publish)
    }

    /// The webhook outbox: filled in the publishing transaction for the active webhooks of keys
    /// in force, claimed under a lease by one worker of any process, retried, given up, and a
    /// webhook stopped after its failures in a row.
    @Test(arguments: StoreKind.available)
    func webhookDeliveriesAreQueuedClaimedAndFinished(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store, other = try f.another()
        try f.importVersion(StoreFixture.manifest("people"), rows: 2)
        try f.importVersion(StoreFixture.manifest("places"), rows: 2)
        let (k1, _) = try s.createKey(role: .developer, name: "a", account: nil, actor: "t")
        let (k2, _) = try s.createKey(role: .developer, name: "b", account: nil, actor: "t")
        #expect { try s.createWebhook(keyID: k1.id, url: "ftp://example.org/h", dataset: nil, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .badInput }
        #expect { try s.createWebhook(keyID: k1.id, url: "https://example.org/h", dataset: "nobody", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .notFound }
        let people = try s.createWebhook(keyID: k1.id, url: "https://example.org/people", dataset: "people", actor: "t")
        let all = try s.createWebhook(keyID: k2.id, url: "https://example.org/all", dataset: nil, actor: "t")
        let revoked = try s.createWebhook(keyID: k2.id, url: "https://example.org/later", dataset: "people", actor: "t")
        #expect(try s.webhooks(keyID: k1.id).map(\.id) == [people.id])
        for i in 2..<CatalogRules.webhooksPerKey { _ = try s.createWebhook(keyID: k2.id, url: "https://example.org/\(i)", dataset: "places", actor: "t") }
        #expect { try s.createWebhook(keyID: k2.id, url: "https://example.org/x", dataset: nil, actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }
        for w in try s.webhooks(keyID: k2.id) where w.dataset == "places" { try s.disableWebhook(w.id, reason: "test", actor: "t") }
        try s.disableWebhook(revoked.id, reason: CatalogRules.removedByHolder, actor: "t")
        #expect { try s.disableWebhook(revoked.id, reason: "again", actor: "t") } throws: { ($0 as? KaifangError)?.kind == .conflict }

        try s.publish(dataset: "people", version: nil, tier: .open, actor: "t", reason: nil, detail: [:])
        try s.publish(dataset: "places", version: nil, tier: .open, actor: "t", reason: nil, detail: [:])
        #expect(try s.webhookDeliveries(webhook: people.id, limit: 10).map(\.event.dataset) == ["people"])
        #expect(try s.webhookDeliveries(webhook: all.id, limit: 10).map(\.event.dataset) == ["places", "people"])
        #expect(try s.webhookDeliveries(webhook: revoked.id, limit: 10).isEmpty)

        // Claimed once, by whichever process asks first; the lease keeps the others away.
        let longAgo = AuditChain.timestamp(Date().addingTimeInterval(-86_400))
        let first = try s.claimDeliveries(limit: 10, lease: 60, giveUpBefore: longAgo)
        #expect(first.count == 3 && Set(first.map(\.delivery.id)).count == 3)
        #expect(try other.claimDeliveries(limit: 10, lease: 60, giveUpBefore: longAgo).isEmpty)
        let p = try #require(first.first { $0.webhook.id == people.id })
        #expect(p.delivery.event.kind == "published" && p.delivery.event.version == 1 && p.delivery.status == "pending")

        // A failure retried later; two in a row stop the webhook (maxFailures 2) and its queue.
        let later = AuditChain.timestamp(Date().addingTimeInterval(3600))
        try s.finishDelivery(p.delivery.id, outcome: .failed(status: 500, error: "answered HTTP 500", retryAt: later), maxFailures: 2, actor: "webhooks")
        var log = try s.webhookDeliveries(webhook: people.id, limit: 10)
        #expect(log.first?.status == "pending" && log.first?.attempts == 1 && log.first?.lastStatus == 500 && log.first?.nextAt == later)
        #expect(try s.webhook(people.id)?.failures == 1)
        #expect(try other.claimDeliveries(limit: 10, lease: 60, giveUpBefore: longAgo).isEmpty, "not due before its retry time")
        try s.finishDelivery(p.delivery.id, outcome: .failed(status: nil, error: "connection refused", retryAt: later), maxFailures: 2, actor: "webhooks")
        let stopped = try #require(try s.webhook(people.id))
        #expect(!stopped.isActive && stopped.disabledReason == CatalogRules.disabledAfter(2))
        log = try s.webhookDeliveries(webhook: people.id, limit: 10)
        #expect(log.first?.status == "failed" && log.first?.attempts == 2 && log.first?.lastError?.contains("connection refused") == true)
        #expect(try s.auditEvents(dataset: nil, actor: "webhooks", limit: nil).map(\.event.action) == ["webhook.disable"])

        // Delivered: the failures in a row start again from 0; a finished delivery stays finished.
        let a = first.filter { $0.webhook.id == all.id }
        try s.finishDelivery(a[0].delivery.id, outcome: .failed(status: 502, error: "answered HTTP 502", retryAt: later), maxFailures: 5, actor: "webhooks")
        try s.finishDelivery(a[1].delivery.id, outcome: .delivered(status: 204), maxFailures: 5, actor: "webhooks")
        try s.finishDelivery(a[1].delivery.id, outcome: .failed(status: 500, error: "late", retryAt: nil), maxFailures: 5, actor: "webhooks")
        #expect(try s.webhook(all.id)?.failures == 0)
        #expect(try s.webhookDeliveries(webhook: all.id, limit: 10).first { $0.id == a[1].delivery.id }?.status == "delivered")

        // Past the window a pending delivery is given up; a revoked key gets no new events.
        _ = try s.claimDeliveries(limit: 10, lease: 60, giveUpBefore: AuditChain.timestamp(Date().addingTimeInterval(1)))
        #expect(try s.webhookDeliveries(webhook: all.id, limit: 10).allSatisfy { $0.status != "pending" })
        try s.revokeKey(k2.id, actor: "t")
        try s.withdraw(dataset: "places", actor: "t")
        #expect(try s.webhookDeliveries(webhook: all.id, limit: 10).count == 2)
    }

    /// The city and county facets count each dataset once under every city (county) its declared
    /// divisions lie in; the filters return what the facet counted; republishing a manifest with
    /// another coverage moves the dataset; a province-wide dataset is under no city.
    @Test(arguments: StoreKind.available)
    func datasetsAreFilteredAndCountedByCityAndCounty(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        let coverage: [(String, [String]?)] = [
            ("nanjing-whole", ["320100"]),                      // 南京市
            ("jiangning", ["320115"]),                          // 江宁区 (南京市)
            ("two-cities", ["320115", "320213", "320508"]),     // 江宁区, 梁溪区 (无锡市), 姑苏区 (苏州市)
            ("province", ["320000"]),
            ("nowhere", nil),
            ("hidden", ["320213"]),
        ]
        for (id, spatial) in coverage {
            var m = StoreFixture.manifest(id)
            m.spatial = spatial
            try f.importVersion(m, rows: 1)
            if id != "hidden" { try s.publish(dataset: id, version: nil, tier: .open, actor: "t", reason: nil, detail: [:]) }
        }
        func counts(_ facets: [FacetCount]) -> [String: Int] { Dictionary(uniqueKeysWithValues: facets.map { ($0.value, $0.count) }) }
        let page = try s.search(DatasetQuery(limit: 100))
        #expect(counts(page.cities) == ["320100": 3, "320200": 1, "320500": 1])
        #expect(counts(page.counties) == ["320115": 2, "320213": 1, "320508": 1])
        func ids(city: String? = nil, county: String? = nil, topic: String? = nil) throws -> [String] {
            try s.search(DatasetQuery(topic: topic, limit: 100, city: city, county: county)).datasets.map(\.record.id).sorted()
        }
        #expect(try ids(city: "320100") == ["jiangning", "nanjing-whole", "two-cities"])
        #expect(try ids(city: "320200") == ["two-cities"])
        #expect(try ids(county: "320115") == ["jiangning", "two-cities"])
        #expect(try ids(city: "320100", county: "320508") == ["two-cities"])
        #expect(try ids(city: "320300") == [])
        // Each facet is counted over the other filters: within 无锡市 the counties are those of two-cities.
        let wuxi = try s.search(DatasetQuery(limit: 100, city: "320200"))
        #expect(wuxi.total == 1 && counts(wuxi.counties) == ["320115": 1, "320213": 1, "320508": 1] && wuxi.cities.count == 3)
        #expect(try ids(city: "320100", topic: "economy") == [])
        // A new manifest replaces the dataset's divisions.
        var moved = StoreFixture.manifest("jiangning")
        moved.spatial = ["320300"]
        try f.importVersion(moved, rows: 1)
        #expect(try ids(county: "320115") == ["two-cities"] && ids(city: "320300") == ["jiangning"])
        #expect(try s.dataset("jiangning")?.manifest.spatial == ["320300"])
    }

    /// Freshness is judged from the published version's time and the frequency, at the query's
    /// clock: the filter and the facet agree with `Freshness.of` on both stores.
    @Test(arguments: StoreKind.available)
    func datasetsAreFilteredAndCountedByFreshness(_ kind: StoreKind) throws {
        let f = try StoreFixture(kind)
        let s = f.store
        var made: [String: Date] = [:]
        for (id, frequency) in [("hourly-1", "hourly"), ("daily-1", "daily"), ("daily-2", "daily"), ("monthly-1", "monthly"), ("whenever", "irregular"), ("hidden", "daily")] {
            var m = StoreFixture.manifest(id)
            m.updateFrequency = frequency
            let v = try f.importVersion(m, rows: 1)
            made[id] = try #require(AuditChain.date(v.createdAt))
            if id != "hidden" { try s.publish(dataset: id, version: nil, tier: .open, actor: "t", reason: nil, detail: [:]) }
        }
        let base = made.values.max()!
        func facet(_ now: Date) throws -> [String: Int] {
            Dictionary(uniqueKeysWithValues: try s.search(DatasetQuery(limit: 100, now: now)).freshness.map { ($0.value, $0.count) })
        }
        func ids(_ state: Freshness, _ now: Date) throws -> [String] {
            try s.search(DatasetQuery(limit: 100, freshness: state, now: now)).datasets.map(\.record.id).sorted()
        }
        // A second after the imports: everything fresh but the irregular one; the unpublished one is not counted.
        #expect(try facet(base.addingTimeInterval(1)) == ["fresh": 4, "unscheduled": 1])
        // Two hours on: the hourly one is due; 25 hours: daily ones due, hourly delinquent.
        #expect(try ids(.due, base.addingTimeInterval(2 * 3600)) == ["hourly-1"])
        let dayOn = base.addingTimeInterval(25 * 3600)
        #expect(try ids(.due, dayOn) == ["daily-1", "daily-2"] && ids(.delinquent, dayOn) == ["hourly-1"] && ids(.fresh, dayOn) == ["monthly-1"])
        #expect(try facet(dayOn) == ["due": 2, "delinquent": 1, "fresh": 1, "unscheduled": 1])
        // The facet of the other filters still counts every state; a filter combines with the others.
        let page = try s.search(DatasetQuery(limit: 100, freshness: .due, now: dayOn))
        #expect(page.total == 2 && page.freshness.count == 4)
        #expect(try s.search(DatasetQuery(q: "daily-2", limit: 100, freshness: .due, now: dayOn)).datasets.map(\.record.id) == ["daily-2"])
        // The same answer as Freshness.of for each dataset, at a few times.
        for hours: Double in [0.5, 2, 30, 80, 200, 24 * 40, 24 * 100] {
            let now = base.addingTimeInterval(hours * 3600)
            for state in Freshness.allCases {
                let expected = try made.filter { $0.key != "hidden" }
                    .filter { id, at in Freshness.of(frequency: try s.dataset(id)?.manifest.updateFrequency ?? "", updatedAt: at, now: now) == state }
                    .map(\.key).sorted()
                #expect(try ids(state, now) == expected, "\(state) after \(hours) h")
            }
        }
    }
}

extension ShowcaseFigures {
    func with(approved: Int, pending: Int) -> ShowcaseFigures {
        var f = self
        f.approved = approved
        f.pending = pending
        return f
    }
}
