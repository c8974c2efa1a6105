import Audit
import Crypto
import Foundation
import KaifangCore

/// Everything Kaifang persists, behind one interface with two implementations: the embedded
/// store (`CatalogDatabase`: one SQLite file and version files in a data directory) and the
/// shared store (`PostgresCatalog`: PostgreSQL, for several stateless replicas). The server,
/// the CLI and the sandbox use nothing else, so the two cannot drift; the store conformance
/// tests run the same cases against both.
///
/// Calls are synchronous and may block the calling thread for a round trip (as SQLite's own
/// I/O does); they are never made on a network event loop. Every write is one transaction that
/// also appends its audit event, so no action happens unrecorded.
public protocol CatalogStore: Sendable {
    /// The local working directory: temporary files, the rejects of imports, sandbox jobs'
    /// working folders and (with a shared store) the cache of version files.
    var directory: DataDirectory { get }

    /// Which implementation this is, for logs and `/healthz` (`embedded` or `postgres`).
    var kind: String { get }

    /// Whether several processes (replicas) share this store: then stopped workers' jobs are
    /// recovered by lease, at any time, instead of all at once at start.
    var isShared: Bool { get }

    /// A number that moves with every committed change but read events (a shared store's
    /// `catalog_changes`; the embedded store answers 0 and keeps its own signal).
    func changeMark() throws -> Int64

    /// The latest change mark this process has seen (from a read or a committed batch), without
    /// asking the store.
    var lastSeenMark: Int64 { get }

    /// The platform secret that pseudonym keys derive from.
    /// - Throws: `KaifangError.runtime` when it is missing or damaged.
    func pseudonymSecret() throws -> SymmetricKey

    /// A local path of a committed version's file, verified against the version's SHA-256
    /// before it is first opened (a shared store fetches it into the local cache first).
    /// - Throws: `KaifangError.runtime` when the file cannot be had or fails verification.
    func localFile(_ version: VersionRecord) throws -> String

    // MARK: Datasets and versions

    func dataset(_ id: String) throws -> DatasetRecord?
    func versions(_ id: String) throws -> [VersionRecord]
    func version(_ id: String, _ number: Int) throws -> VersionRecord?
    /// What changes when a dataset is republished or its policy edited; callers cache records by it.
    func publicationStamp(_ id: String) throws -> String?
    func publishedVersion(_ id: String) throws -> (DatasetRecord, VersionRecord)?
    /// Makes a finished version file visible: stores it and records the dataset (metadata from
    /// `manifest`) and the version in one transaction.
    /// With `upload`, the version also answers that upload: when the pair already made a version
    /// nothing is committed and the call throws `.conflict` (`uploadedVersion` then gives it).
    func commitVersion(manifest: DatasetManifest, temporaryFile: String, rowCount: Int, sha256: String,
                       source: String, actor: String, rejected: Int, upload: UploadKey?) throws -> VersionRecord
    /// The version an upload made, when it made one.
    func uploadedVersion(_ upload: UploadKey) throws -> VersionRecord?
    @discardableResult
    func publish(dataset id: String, version: Int?, tier: Tier, actor: String, reason: String?,
                 detail: [String: JSONValue]) throws -> DatasetRecord
    func updateManifest(_ manifest: DatasetManifest, actor: String, action: String, detail: [String: JSONValue]) throws
    /// Records a new dataset from its manifest before its first version (its department's
    /// publishers then upload that); unpublished until a publication is approved.
    /// - Throws: `KaifangError.conflict` when the id is taken, `.badInput` for an invalid manifest.
    func registerDataset(_ manifest: DatasetManifest, actor: String) throws -> DatasetRecord
    func withdraw(dataset id: String, actor: String) throws
    /// A report derived from version `number` (as JSON), when it was computed: its changes from
    /// the version before (`VersionDiff`), its quality report (`QualityReport`).
    func versionReport(_ id: String, _ number: Int, _ kind: VersionReportKind) throws -> String?
    /// Keeps a report computed for a version (derived from the immutable files, so not an
    /// audited change; computing it again gives the same).
    func recordVersionReport(_ id: String, _ number: Int, _ kind: VersionReportKind, json: String) throws
    /// Publications and withdrawals, newest first: of one dataset, or of all.
    func datasetEvents(dataset: String?, limit: Int) throws -> [DatasetEvent]
    func datasetCount() throws -> Int
    func search(_ query: DatasetQuery) throws -> DatasetPage

    // Department scorecards: one row per month and department, kept forever.
    /// Stores `month`'s figures (JSON per department) unless the month is kept already, with an
    /// audit event when stored.
    /// - Returns: the rows stored (0 when another process kept the month first).
    func recordScorecards(month: String, figures: [(department: String, json: String)], actor: String) throws -> Int
    /// The kept months (all when `month` is nil), oldest first, departments in order.
    func scorecards(month: String?) throws -> [ScorecardSnapshot]
    func stats(since: String) throws -> CatalogStats

    // MARK: Keys

    /// Makes a key, for `account` when given (within its tier's number of keys); a publisher's or
    /// reviewer's key belongs to `department`, which must exist (no other role's may name one).
    /// - Throws: `KaifangError.notFound` for an unknown account or department, `.conflict` for a
    ///   suspended or full account, `.badInput` for a role and department that do not go together.
    func createKey(role: Role, name: String, account: String?, department: String?, actor: String) throws -> (APIKeyRecord, String)
    /// The unrevoked key matching a presented secret, or nil; a revocation counts from the next
    /// call. The record says whether its account is suspended (the caller refuses it then).
    func authenticate(_ presented: String) throws -> APIKeyRecord?
    /// Keys newest first: all, or those of one account.
    func keys(account: String?) throws -> [APIKeyRecord]
    func revokeKey(_ id: String, actor: String) throws
    func keyName(_ id: String) throws -> String?

    // MARK: Departments

    /// Adds a department, under `parent` when given (which must exist).
    /// - Throws: `KaifangError.badInput` for a malformed name, `.notFound` for an unknown parent,
    ///   `.conflict` when the name exists.
    func createDepartment(name: String, parent: String?, actor: String) throws -> DepartmentRecord
    /// Every department, by name.
    func departments() throws -> [DepartmentRecord]

    // MARK: Duty lists (责任清单)

    /// Puts a dataset on a department's duty list, due on `due` (`YYYY-MM-DD`).
    /// - Throws: `KaifangError.badInput` (a field), `.notFound` (department).
    func createDuty(department: String, dataset: String, kind: DutyKind, title: String, due: String, actor: String) throws -> DutyRecord
    /// Duty entries by department, dataset and id; one department's when given.
    func duties(department: String?) throws -> [DutyRecord]
    /// Takes an entry off the list with a reason; it stays, marked.
    /// - Throws: `KaifangError.notFound`, `.conflict` (withdrawn already).
    func withdrawDuty(_ id: Int64, reason: String, actor: String) throws -> DutyRecord

    // MARK: Data requests (数据需求)

    /// Files a request to the department it names (which must exist), with the key's id as filer.
    /// - Throws: `KaifangError.badInput` (a field), `.notFound` (department).
    func createRequest(_ r: NewDataRequest, actor: String) throws -> DataRequestRecord
    func dataRequest(_ id: Int64) throws -> DataRequestRecord?
    /// Requests newest first; of one department and in one status when given.
    func dataRequests(department: String?, status: RequestStatus?) throws -> [DataRequestRecord]
    /// One vote per key and request.
    /// - Throws: `KaifangError.notFound`, `.conflict` (the key voted already).
    func voteRequest(_ id: Int64, keyID: String, actor: String) throws -> DataRequestRecord
    /// - Throws: `KaifangError.notFound`, `.badInput` (empty or too long).
    func commentRequest(_ id: Int64, keyID: String, role: Role, fromDepartment: Bool, text: String, actor: String) throws -> RequestComment
    /// A request's comments, oldest first.
    func requestComments(_ id: Int64) throws -> [RequestComment]
    /// Records an answer (who may give it is the caller's check; a withdrawal's `keyID` must be
    /// the filer's). A fulfilment names a published dataset, and records which of the request's
    /// items its fields deliver (at least one).
    /// - Throws: `KaifangError.notFound` (request, dataset, version), `.conflict` (closed),
    ///   `.forbidden` (not the filer), `.badInput` (text, or a dataset delivering no item).
    func answerRequest(_ id: Int64, _ answer: RequestAnswer, keyID: String, actor: String) throws -> DataRequestRecord

    // MARK: Error reports (纠错) and ratings (好差评)

    /// Files an error report on a published dataset, for its department to answer.
    /// - Throws: `KaifangError.notFound` (dataset not published, version), `.badInput` (a field).
    func createReport(_ r: NewErrorReport, actor: String) throws -> ErrorReportRecord
    func errorReport(_ id: Int64) throws -> ErrorReportRecord?
    /// Reports newest first; of one dataset and one department when given.
    func errorReports(dataset: String?, department: String?) throws -> [ErrorReportRecord]
    /// Closes a report with a resolution, or withdraws it (its filer's `keyID` only).
    /// - Throws: `KaifangError.notFound`, `.conflict` (closed), `.forbidden`, `.badInput`.
    func closeReport(_ id: Int64, _ closing: ReportClosing, keyID: String, actor: String) throws -> ErrorReportRecord
    /// Records or changes the key's rating of a published dataset.
    /// - Returns: the rating, and whether it is the key's first of the dataset.
    /// - Throws: `KaifangError.notFound` (dataset not published), `.badInput` (stars, comment).
    func rate(dataset: String, keyID: String, stars: Int, comment: String?, actor: String) throws -> (RatingRecord, created: Bool)
    /// Ratings, most recently changed first; of one dataset when given.
    func ratings(dataset: String?) throws -> [RatingRecord]

    // MARK: Showcases (应用场景)

    /// Registers a showcase, pending a steward's approval.
    /// - Throws: `KaifangError.badInput` (a field, a license not the filer's), `.notFound` (a dataset not published).
    func createShowcase(_ s: NewShowcase, actor: String) throws -> ShowcaseRecord
    func showcase(_ id: Int64) throws -> ShowcaseRecord?
    /// Showcases newest first; in one status when given.
    func showcases(status: ShowcaseStatus?) throws -> [ShowcaseRecord]
    /// Approves or refuses a pending showcase (the caller checks for a steward), or withdraws it (its filer's `keyID`).
    /// - Throws: `KaifangError.notFound`, `.conflict` (decided), `.forbidden`, `.badInput` (a reason).
    func decideShowcase(_ id: Int64, _ decision: ShowcaseDecision, keyID: String, actor: String) throws -> ShowcaseRecord

    // MARK: Proposals (two-person rule)

    /// Files a proposal to publish a version (nil: the newest) at a tier, as its dataset's
    /// department; one pending proposal per dataset.
    /// - Throws: `KaifangError.notFound` (dataset, version), `.conflict` (one is pending).
    func createProposal(_ p: NewProposal, actor: String) throws -> ProposalRecord
    func proposal(_ id: String) throws -> ProposalRecord?
    /// Proposals newest first; of one department and in one status when given.
    func proposals(department: String?, status: ProposalStatus?) throws -> [ProposalRecord]
    /// Records `part` of a proposal's approval by `keyID` (`CatalogRules.approvalRefusal` says
    /// who may not). When it was the last approval needed, the version is published in the same
    /// transaction, with `publishDetail` and the proposal in its audit event.
    /// - Throws: `KaifangError.notFound`, `.conflict`, `.forbidden`.
    func approveProposal(_ id: String, part: ReviewPart, keyID: String, actor: String, publishDetail: [String: JSONValue]) throws -> ProposalRecord
    /// Refuses a pending proposal with a reason; it never takes effect.
    func refuseProposal(_ id: String, keyID: String, reason: String, actor: String) throws -> ProposalRecord
    /// Withdraws a pending proposal; only its proposer (`keyID`) does.
    /// - Throws: `KaifangError.notFound`, `.forbidden` (not the proposer), `.conflict` (decided).
    func withdrawProposal(_ id: String, keyID: String, actor: String) throws -> ProposalRecord

    // MARK: Accounts and usage

    /// Opens an account on `tier` (nil: `AccountTier.signupTier`) with its first key (a
    /// developer's), in one transaction.
    /// - Throws: `KaifangError.badInput` for a malformed address or name, `.conflict` when the
    ///   address already has an account, `.notFound` for an unknown tier.
    func createAccount(email: String, name: String, organisation: String, tier: String?, keyName: String,
                       actor: String) throws -> (AccountRecord, APIKeyRecord, String)
    func account(_ id: String) throws -> AccountRecord?
    /// Every account, newest first.
    func accounts() throws -> [AccountRecord]
    /// Suspends an account (`reason` given) or reinstates it (nil): its keys are refused, or
    /// accepted again, from the next request.
    /// - Throws: `KaifangError.notFound`, or `.conflict` when it already is in that state.
    @discardableResult
    func setSuspended(account id: String, reason: String?, actor: String) throws -> AccountRecord
    /// Moves an account to another tier (its keys' limits change from the next request).
    @discardableResult
    func setTier(account id: String, tier: String, actor: String) throws -> AccountRecord
    func tiers() throws -> [AccountTier]
    /// Adds or changes a tier.
    func putTier(_ tier: AccountTier, actor: String) throws
    /// Adds counted usage (one transaction; not an audited change: the reads it counts are
    /// audited one by one), and forgets usage before `pruneBefore` when given.
    func addUsage(_ entries: [UsageEntry], pruneBefore: String?) throws
    /// Usage of `keys` (nil: everyone's, anonymous as key "") on days `from`–`to` (inclusive,
    /// `YYYY-MM-DD`), per day, key and dataset, with sandbox jobs and ε (`CatalogRules.usageSQL`).
    func usage(keys: [String]?, dataset: String?, from: String, to: String) throws -> [UsageRow]

    // MARK: Webhooks

    /// Registers a webhook for a key (the URL's form is checked here; where its host resolves,
    /// by the server).
    /// - Throws: `KaifangError.badInput` for a malformed URL, `.notFound` for an unknown dataset,
    ///   `.conflict` when the key already has `CatalogRules.webhooksPerKey` active ones.
    func createWebhook(keyID: String, url: String, dataset: String?, actor: String) throws -> WebhookRecord
    /// A key's webhooks (nil: everyone's), newest first.
    func webhooks(keyID: String?) throws -> [WebhookRecord]
    func webhook(_ id: String) throws -> WebhookRecord?
    /// Stops a webhook: its pending deliveries fail; the record and its log stay.
    /// - Throws: `KaifangError.notFound`, or `.conflict` when it is already stopped.
    func disableWebhook(_ id: String, reason: String, actor: String) throws
    /// A webhook's deliveries, newest first.
    func webhookDeliveries(webhook: String, limit: Int) throws -> [WebhookDelivery]
    /// Claims up to `limit` due deliveries of active webhooks whose key is in force, for `lease`
    /// seconds (no other worker of any process gets them meanwhile); first fails the pending
    /// ones made before `giveUpBefore`.
    func claimDeliveries(limit: Int, lease: Double, giveUpBefore: String) throws -> [DueDelivery]
    /// Records an attempt: the webhook's failures in a row are reset or counted, and at
    /// `maxFailures` the webhook is disabled (an audit event by `actor`).
    func finishDelivery(_ id: Int64, outcome: DeliveryOutcome, maxFailures: Int, actor: String) throws

    // MARK: Applications and licenses

    func createApplication(keyID: String, dataset: String, purpose: String, fields: [String], use: LicenseUse,
                           durationDays: Int) throws -> ApplicationRecord
    func application(_ id: Int64) throws -> ApplicationRecord?
    func applications(status: String?) throws -> [ApplicationRecord]
    func approve(application id: Int64, expires: Date?, fields: [String]?, use: LicenseUse?, actor: String) throws -> LicenseRecord
    func reject(application id: Int64, reason: String, actor: String) throws
    func licenses(keyID: String?) throws -> [LicenseRecord]
    func license(_ id: String) throws -> LicenseRecord?
    /// The key's license in force for a dataset and use; a revocation counts from the next call.
    func activeLicense(keyID: String, dataset: String, use: LicenseUse) throws -> LicenseRecord?
    func revokeLicense(_ id: String, actor: String) throws

    // MARK: Audit

    func audit(actor: String, action: String, dataset: String?, detail: [String: JSONValue]) throws
    /// Appends several events in one transaction (group commit of concurrent reads).
    /// - Returns: the change mark (`changeMark`) as the committing transaction saw it.
    @discardableResult
    func audit(batch: [PendingAuditEvent]) throws -> Int64
    func auditEvents(dataset: String?, actor: String?, limit: Int?) throws -> [(event: AuditEvent, previous: String, hash: String)]
    /// Recomputes the whole chain and checks it against the anchors kept outside it.
    func verifyAudit(anchors: [(seq: Int64, hash: String)]) throws -> AuditChain.Verdict
    func auditHead() throws -> (seq: Int64, hash: String)?
    /// How many events of `action` by `actor` happened since `since` (an ISO prefix such as a day).
    func countEvents(actor: String, action: String, since: String) throws -> Int

    // MARK: Rate limits

    /// Takes one token from bucket `bucket` (GCRA: `rate` a second, bursts of `burst`), shared
    /// by every process of the store.
    /// - Returns: nil when admitted, else the seconds until a token is available.
    func takeToken(bucket: String, rate: Double, burst: Double) throws -> Double?

    // MARK: Sandbox jobs

    func epsilonUsed(keyID: String, dataset: String, month: String) throws -> Double
    func insertJob(_ job: JobRecord, spend: [(dataset: String, licenseID: String?, monthly: Double)]) throws
    func job(_ id: String) throws -> JobRecord?
    func jobs(keyID: String?, status: JobStatus?, limit: Int) throws -> [JobRecord]
    /// Claims a queued job — `id`, or the oldest when nil — for `worker` with a lease of `lease`
    /// seconds: it moves to running, and no other worker can claim it while the lease is renewed.
    /// Nil when there is none (or another worker took it).
    func claimJob(_ id: String?, worker: String, lease: Double) throws -> JobRecord?
    /// Renews the lease of a job `worker` runs; false when the job is no longer that worker's.
    func renewLease(job: String, worker: String, lease: Double) throws -> Bool
    /// Moves a job to `status` if it is in one of `from` (and, when `worker` is given, still
    /// that worker's), recording `detail` and, when `action` is given, the audit event.
    /// - Returns: false when the guard did not hold.
    @discardableResult
    func updateJob(_ id: String, status: JobStatus, detail: JobDetail, from: [JobStatus], worker: String?, actor: String,
                   audit action: String?, auditDetail: [String: JSONValue]) throws -> Bool
    /// Jobs left running or checking by a worker that stopped (its lease ran out; with the
    /// embedded store: every such job at start) are queued again once, or failed.
    func recoverJobs(maxAttempts: Int) throws -> (requeued: [String], failed: [String])
    func recordRowSet(job: String, keyID: String, dataset: String, units: Int, sha256: String) throws
    func rowSets(keyID: String, dataset: String, units: Int, slack: Int) throws -> [(job: String, units: Int)]
    /// Keeps a file of a job (its spec, result, row sets) where every worker can read it.
    func putJobFile(job: String, name: String, data: Data) throws
    func jobFile(job: String, name: String) throws -> Data?

    // MARK: Harvested sources

    func addSource(dataset: String, url: String, intervalSeconds: Int, publish: Bool, actor: String) throws
    func source(_ dataset: String) throws -> SourceRecord?
    func sources(dueAt now: String?) throws -> [SourceRecord]
    func recordFetch(dataset: String, etag: String?, lastModified: String?, contentSHA256: String?, error: String?, nextDue: Date) throws
}

/// A store that appends batches without blocking a thread while it waits on the network.
public protocol AsyncBatchAppending: Sendable {
    func appendBatchAsync(_ events: [PendingAuditEvent]) async throws -> Int64
}

/// One audit event waiting for its batch, its detail already in canonical form (serialized by
/// the request that made it, not inside the batch's transaction).
public struct PendingAuditEvent: Sendable {
    public var actor: String
    public var action: String
    public var dataset: String?
    public var canonicalDetail: [UInt8]
    public init(actor: String, action: String, dataset: String?, detail: [String: JSONValue]) {
        self.init(actor: actor, action: action, dataset: dataset, canonicalDetail: JSONValue.object(detail).canonicalBytes)
    }
    /// `canonicalDetail` must be a JSON object in `JSONValue.canonicalBytes`' form.
    public init(actor: String, action: String, dataset: String?, canonicalDetail: [UInt8]) {
        self.actor = actor; self.action = action; self.dataset = dataset; self.canonicalDetail = canonicalDetail
    }
}

extension CatalogStore {
    /// One dataset, or a not-found error that says how to list them.
    /// - Throws: `KaifangError.notFound`.
    public func requireDataset(_ id: String) throws -> DatasetRecord {
        guard let d = try dataset(id) else {
            throw KaifangError.notFound("no dataset '\(id)' in the catalog: `kaifang dataset list` shows the ids")
        }
        return d
    }

    public func commitVersion(manifest: DatasetManifest, temporaryFile: String, rowCount: Int, sha256: String,
                              source: String, actor: String, rejected: Int = 0) throws -> VersionRecord {
        try commitVersion(manifest: manifest, temporaryFile: temporaryFile, rowCount: rowCount, sha256: sha256, source: source, actor: actor,
                          rejected: rejected, upload: nil)
    }

    public func createKey(role: Role, name: String, account: String?, actor: String) throws -> (APIKeyRecord, String) {
        try createKey(role: role, name: name, account: account, department: nil, actor: actor)
    }

    @discardableResult
    public func publish(dataset id: String, version: Int? = nil, tier: Tier, actor: String, reason: String? = nil) throws -> DatasetRecord {
        try publish(dataset: id, version: version, tier: tier, actor: actor, reason: reason, detail: [:])
    }

    public func createKey(role: Role, name: String, actor: String) throws -> (APIKeyRecord, String) {
        try createKey(role: role, name: name, account: nil, actor: actor)
    }

    public func keys() throws -> [APIKeyRecord] { try keys(account: nil) }

    /// The changes of version `number` from the one before it (`VersionDiff` as JSON), when
    /// they were computed.
    public func versionChanges(_ id: String, _ number: Int) throws -> String? { try versionReport(id, number, .changes) }

    public func recordVersionChanges(_ id: String, _ number: Int, json: String) throws { try recordVersionReport(id, number, .changes, json: json) }

    public func applications() throws -> [ApplicationRecord] { try applications(status: nil) }
    public func licenses() throws -> [LicenseRecord] { try licenses(keyID: nil) }

    public func approve(application id: Int64, actor: String) throws -> LicenseRecord {
        try approve(application: id, expires: nil, fields: nil, use: nil, actor: actor)
    }

    public func auditEvents() throws -> [(event: AuditEvent, previous: String, hash: String)] {
        try auditEvents(dataset: nil, actor: nil, limit: nil)
    }

    public func verifyAudit() throws -> AuditChain.Verdict { try verifyAudit(anchors: []) }

    public func jobs(keyID: String? = nil, status: JobStatus? = nil) throws -> [JobRecord] {
        try jobs(keyID: keyID, status: status, limit: 100)
    }

    public func jobs(limit: Int) throws -> [JobRecord] { try jobs(keyID: nil, status: nil, limit: limit) }

    @discardableResult
    public func updateJob(_ id: String, status: JobStatus, detail: JobDetail, from: [JobStatus], actor: String) throws -> Bool {
        try updateJob(id, status: status, detail: detail, from: from, worker: nil, actor: actor, audit: nil, auditDetail: [:])
    }

    public func recoverJobs() throws -> (requeued: [String], failed: [String]) { try recoverJobs(maxAttempts: 2) }

    public func sources() throws -> [SourceRecord] { try sources(dueAt: nil) }
}

/// Runs blocking store calls (a shared store's network round trips) on threads of their own, so
/// that the concurrency pool's threads — one per core — never wait for the database.
public enum StoreThreads {
    private static let queue = DispatchQueue(label: "kaifang.store", qos: .userInitiated, attributes: .concurrent)

    /// `body`'s result, computed on a store thread.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

extension CatalogStore {
    /// Appends a batch of read events from an async context: the embedded store commits on the
    /// calling thread (a local commit is short); a shared store does not hold a thread of the
    /// concurrency pool while it waits on the network.
    /// - Returns: the change mark the batch committed under.
    public func appendBatch(_ events: [PendingAuditEvent]) async throws -> Int64 {
        if let shared = self as? any AsyncBatchAppending { return try await shared.appendBatchAsync(events) }
        guard isShared else { return try audit(batch: events) }
        return try await StoreThreads.run { [self] in try audit(batch: events) }
    }

    /// Gives a request's scope its change mark up front; nothing for the embedded store. A read
    /// whose audit event is committed before it is answered (`deferred`: rows, exports) takes the
    /// last mark this process saw, and is checked against the mark its event's batch commits
    /// under (`CatalogReadScope.confirm`); any other request reads the store's mark on a store thread.
    public func prepareRequest(deferred: Bool) async throws {
        guard isShared, let scope = CatalogReadScope.current else { return }
        if deferred {
            scope.set(lastSeenMark)
            return
        }
        let store = self
        _ = try await StoreThreads.run { try scope.mark { try store.changeMark() } }
    }

    /// Whether the request's lookups were made under the store's current change mark: always
    /// with the embedded store; with a shared store, the mark is read now, and when it moved the
    /// scope takes it (lookups made again read what changed). A read answered without being
    /// recorded (a 304) learns of changes no other way.
    public func confirmCurrent() async throws -> Bool {
        guard isShared, let scope = CatalogReadScope.current else { return true }
        let store = self
        let now = try await StoreThreads.run { try store.changeMark() }
        return scope.confirm(now)
    }
}

/// One request's view of a shared store's change mark: lookups a store caches between changes
/// (publication stamps, keys, licenses) ask the store for its mark once per scope instead of
/// once per lookup. The server opens a scope per request; without one, every lookup asks.
public final class CatalogReadScope: @unchecked Sendable {
    @TaskLocal public static var current: CatalogReadScope?
    private let lock = NSLock()
    private var mark: Int64?

    public init() {}

    /// The mark read once in this scope (`read` is called the first time only).
    package func mark(_ read: () throws -> Int64) rethrows -> Int64 {
        lock.lock()
        if let mark { lock.unlock(); return mark }
        lock.unlock()
        let value = try read()
        lock.lock()
        mark = value
        lock.unlock()
        return value
    }

    /// Forgets the mark (after a write in this scope).
    package func invalidate() {
        lock.lock()
        mark = nil
        lock.unlock()
    }

    /// Sets the mark the scope's lookups are trusted under.
    public func set(_ value: Int64) {
        lock.lock()
        mark = value
        lock.unlock()
    }

    /// Whether the scope's lookups were made under `committed` (the mark a batch holding this
    /// request's audit event committed under); if not, the scope takes that mark, so lookups
    /// made again read what has changed.
    public func confirm(_ committed: Int64) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if mark == committed { return true }
        mark = committed
        return false
    }
}
