public import Foundation
public import TillCore

/// Where customer memory lives. The rules (`TillEventProcessor`, `CustomerDirectory`) speak
/// only this protocol and `CRMTransaction`; `SQLiteCRMStore` is the default, and a
/// PostgreSQL store can follow without touching them.
///
/// A transaction body is synchronous on purpose: the rules never wait for anything but the
/// store, and a store may run the body on a thread of its own (GRDB's writer queue; for
/// PostgreSQL, a thread that waits on postgres-nio futures, never an event loop).
public protocol CRMStore: Sendable {
    /// Runs `body` in a read-only snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (any CRMTransaction) throws -> T) async throws -> T
    /// Runs `body` in one transaction: everything it wrote commits, or nothing does.
    func write<T: Sendable>(_ body: @escaping @Sendable (any CRMTransaction) throws -> T) async throws -> T
    /// How many transactions so far were run again because another writer's won a race with
    /// them (0 for a store with one writer). The follower applies smaller batches while this
    /// grows: a lost race repeats the whole transaction, and a long one meets more of the
    /// others' writes.
    var racesLost: Int { get }
}

extension CRMStore {
    public var racesLost: Int { 0 }
}

/// One unit of work on the store. Methods name what the rules need, never how it is kept.
public protocol CRMTransaction {
    // MARK: the tilld cursor
    /// The last tilld seq whose effects are committed (0 before the first event).
    func cursor(_ name: String) throws -> Int64
    func setCursor(_ name: String, to seq: Int64) throws

    // MARK: sales, as the till reported them
    func sale(_ id: String) throws -> SaleRecord?
    /// The most recently completed sale with this receipt number.
    func latestSale(receipt: String) throws -> SaleRecord?
    /// Open sales started at or after `startedSinceMs`, newest first.
    func openSales(startedSinceMs: Int64) throws -> [SaleRecord]
    /// Inserts or replaces the sale.
    func save(_ sale: SaleRecord) throws

    // MARK: links between sales and customers
    /// The customer the sale is linked to now, if any.
    func linkedCustomer(ofSale sale: String) throws -> String?
    /// Links the sale to `customer`, ending any current link (kept, with its end time, for audit).
    func link(sale: String, to customer: String, method: LinkMethod, atMs: Int64) throws
    /// Every link a customer has had, oldest first, with what the till said about the sale.
    func links(ofCustomer customer: String) throws -> [SaleLink]

    // MARK: loyalty cards scanned during a sale, not yet enrolled
    func pendingCard(ofSale sale: String) throws -> CustomerIdentifier?
    func setPendingCard(_ card: CustomerIdentifier, sale: String, sourceSeq: Int64) throws
    func removePendingCard(ofSale sale: String) throws

    // MARK: customers and their identifiers
    func customer(_ id: String) throws -> CustomerRecord?
    /// Inserts or replaces the customer record.
    func save(_ customer: CustomerRecord) throws
    /// The active customer an identifier belongs to, following merges to the survivor
    /// (the first, if a household shares it).
    func owner(of identifier: CustomerIdentifier) throws -> String?
    /// Every record holding an identifier, merged ones included, oldest first. A loyalty card
    /// has one holder; a household may share an email or a phone.
    func holders(of identifier: CustomerIdentifier) throws -> [String]
    /// Adds an identifier to a record (idempotent per record); throws if another record holds
    /// the loyalty card.
    func add(_ identifier: CustomerIdentifier, to customer: String, sourceSeq: Int64?, atMs: Int64) throws
    /// The identifiers this record holds (not those of records merged into it).
    func identifiers(of customer: String) throws -> [CustomerIdentifier]
    /// Active customers one of whose identifiers starts with one of `identifierPrefixes` or
    /// contains one of `identifierParts`, or whose name contains `nameContaining`
    /// (case-insensitive), at most `limit`.
    func findCustomers(identifierPrefixes: [String], identifierParts: [String], nameContaining: String, limit: Int) throws -> [CustomerRecord]

    /// Every name the record was identified under, as given, oldest first.
    func names(of customer: String) throws -> [PersonName]
    /// Records that the record was identified under this name (idempotent; an empty name is ignored).
    func addName(_ name: PersonName, to customer: String, atMs: Int64) throws

    // MARK: merges (a merged record keeps its rows; it points to its survivor)
    /// The survivor a record resolves to: itself if active, else the end of its merge chain.
    func root(of customer: String) throws -> String
    /// A survivor and every record merged into it, directly or through another, root first.
    func members(of root: String) throws -> [String]
    /// Blocking keys (`MatchRecord.blockingKeys`) a record is found by; idempotent.
    func addMatchKeys(_ keys: [String], to customer: String) throws
    /// Records holding each key, at most `limitPerKey + 1` per key (so a caller can tell a key
    /// too common to block on).
    func records(withMatchKeys keys: [String], limitPerKey: Int) throws -> [String: [String]]
    /// Logs a merge; returns its id.
    func append(_ merge: MergeRecord) throws -> Int64
    /// Merges this record was part of (as survivor or absorbed), oldest first.
    func merges(involving customer: String) throws -> [MergeRecord]
    func markUndone(merge id: Int64, atMs: Int64, actor: String) throws

    // MARK: the review queue of possible duplicates
    /// Queues a pair unless it was queued before (whatever became of it: a dismissed pair is never asked again).
    func queue(_ review: ReviewRecord) throws
    func reviews(status: ReviewRecord.Status?) throws -> [ReviewRecord]
    func review(_ a: String, _ b: String) throws -> ReviewRecord?
    func setReviewStatus(_ a: String, _ b: String, to status: ReviewRecord.Status, actor: String, atMs: Int64) throws

    // MARK: imports
    /// The customer an imported row (by source and record id) became, if it was imported before.
    func importedCustomer(source: String, record: String) throws -> String?
    func recordImport(source: String, record: String, customer: String, atMs: Int64) throws
    /// Every row of a source imported before: record id → the customer it became.
    func importedRecords(source: String) throws -> [String: String]

    // MARK: many rows at once
    /// The same as `save`, `add`, `addName`, `addMatchKeys` and `recordImport` for each row, in as
    /// few statements as the store can (an import writes tens of thousands).
    func insert(_ rows: BulkRows) throws

    // MARK: consent (append-only; the current state is derived)
    func append(_ consent: ConsentRecord) throws
    /// Every consent record of a customer, oldest first.
    func consentHistory(of customer: String) throws -> [ConsentRecord]

    // MARK: the immutable timeline
    /// Appends an entry; returns false, writing nothing, if an entry with its source exists.
    @discardableResult
    func append(_ entry: TimelineEntry) throws -> Bool
    /// A customer's entries, newest first, at most `limit`.
    func timeline(of customer: String, limit: Int) throws -> [TimelineEntry]
    /// How many entries of `type` the customer has (with `payloadFlag` true, if given).
    func countEntries(of customer: String, type: TimelineEntry.Kind, payloadFlag: String?) throws -> Int
    /// Moves the entry with this source to another customer's timeline (a sale linked to the
    /// wrong person was corrected). Returns the customer it moved from, nil if there was none.
    func moveEntry(source: String, to customer: String) throws -> String?

    // MARK: moments worth a follow-up
    /// Keeps a moment; returns false, writing nothing, if one with its id exists.
    @discardableResult
    func add(_ moment: Moment) throws -> Bool
    func moment(_ id: String) throws -> Moment?
    /// Moments with one of `statuses` (all if empty), of `customers` (all if nil), due at or
    /// before `dueBeforeMs` (any if nil), soonest first, at most `limit`.
    func moments(statuses: [Moment.Status], customers: [String]?, dueBeforeMs: Int64?, limit: Int) throws -> [Moment]
    func setMoment(_ id: String, status: Moment.Status, snoozedUntilMs: Int64?, actor: String, atMs: Int64) throws
    /// A moment follows its purchase to another customer (a sale linked to the wrong person).
    func moveMoment(_ id: String, to customer: String) throws
    /// Moments not yet published, oldest first: those whose publishing is under way (or was
    /// cut off), or those not yet tried.
    func unpublishedMoments(underWay: Bool, stream: String?, limit: Int) throws -> [Moment]
    /// Notes that a moment is about to be published on the till of `stream` while its newest
    /// event is `seq`, so a restart can tell whether the publish reached that till's journal
    /// (it would be after `seq`); nil when it was looked for there and not found (it is
    /// published again). A follower settles the moments under way on its own stream, and
    /// those under way on none (marked before tilld named its stream).
    func markMomentPublishing(_ id: String, afterSeq seq: Int64?, stream: String?) throws
    func markMomentPublished(_ id: String, seq: Int64) throws
    /// When the customer (this record only) was active: purchases, refunds, services, conversations.
    func activity(of customer: String) throws -> [Int64]
    /// The followers' cursors: name → seq.
    func cursors() throws -> [String: Int64]
    /// Every customer with at least `minVisits` visits and some activity (their merged records
    /// gathered), with their visits, activity and money spent, streamed in one pass: the
    /// inactivity scan and the segments over all customers.
    func forEachCustomer(minVisits: Int, _ body: (CustomerSummary) throws -> Void) throws

    // MARK: erasure
    /// The secret that keys suppression hashes; made once, when the store was created.
    func suppressionKey() throws -> Data
    func isSuppressed(hash: String) throws -> Bool
    func suppress(hash: String, kind: CustomerIdentifier.Kind, reason: String, atMs: Int64) throws
    /// Deletes a customer's identifiers, consent, timeline and links; keeps the record as
    /// `erased` with no name, so the sales it made stay as anonymous totals.
    func erasePersonalData(of customer: String) throws
}

extension CRMTransaction {
    /// Moments not yet published; those under way only if they are under way on no stream.
    public func unpublishedMoments(underWay: Bool, limit: Int) throws -> [Moment] {
        try unpublishedMoments(underWay: underWay, stream: nil, limit: limit)
    }

    public func markMomentPublishing(_ id: String, afterSeq seq: Int64?) throws {
        try markMomentPublishing(id, afterSeq: seq, stream: nil)
    }
}

/// The cursor a follower of one till keeps: per stream of seqs (tilld's `hello` says which),
/// so the followers of many tills can keep theirs in one store. "tilld" for a tilld that does
/// not say (and for the follower of a single till before streams were named).
public func tilldCursorName(stream: String?) -> String {
    stream.map { "tilld/" + $0 } ?? "tilld"
}

extension CRMStore {
    /// The cursor for a till's stream. The first time a stream is seen, it takes over the
    /// unnamed "tilld" cursor if that is the only one (the same till, before tilld named its
    /// stream), so an upgrade neither replays nor skips anything.
    public func cursor(adopting stream: String?) async throws -> (name: String, seq: Int64) {
        let name = tilldCursorName(stream: stream)
        guard stream != nil else { return (name, try await cursor(name)) }
        let seq = try await write { transaction -> Int64 in
            let cursors = try transaction.cursors()
            if let seq = cursors[name] { return seq }
            guard let legacy = cursors["tilld"], !cursors.keys.contains(where: { $0.hasPrefix("tilld/") }) else { return 0 }
            try transaction.setCursor(name, to: legacy)
            return legacy
        }
        return (name, seq)
    }

    public func cursor(_ name: String = "tilld") async throws -> Int64 {
        try await read { try $0.cursor(name) }
    }

    /// Applies tilld events exactly once: the effects of every event in `events` above the
    /// cursor, and the cursor moved to the last of them, commit in one transaction. Events at
    /// or below the cursor (a replay after a crash) are skipped. Returns each applied event with
    /// what `effects` returned for it.
    public func apply<Outcome: Sendable>(
        _ events: [Event], cursor name: String = "tilld",
        _ effects: @escaping @Sendable (Event, any CRMTransaction) throws -> Outcome
    ) async throws -> [(event: Event, outcome: Outcome)] {
        guard !events.isEmpty else { return [] }
        return try await write { transaction in
            var current = try transaction.cursor(name)
            var applied: [(event: Event, outcome: Outcome)] = []
            // The batch's events change the same sales and customers again and again: what
            // they read is remembered, what they write goes to the store once, at the end.
            let batch = MemoizingTransaction(transaction)
            for event in events where event.seq > current {
                applied.append((event, try effects(event, batch)))
                current = event.seq
            }
            try batch.flush()
            if !applied.isEmpty { try transaction.setCursor(name, to: current) }
            return applied
        }
    }
}

/// The store cannot be reached at all (a database server down, the network to it gone), as
/// against a statement it refused. Nothing is wrong with the events: the follower waits for the
/// store and goes on from its cursor; tilld's journal keeps everything meanwhile.
public struct StoreUnreachable: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// An event the store could not apply. Events before it in its batch were committed
/// (`applied`); it and those after it were not, and are retried from the cursor.
public struct EventNotApplied<Outcome: Sendable>: Error, Sendable, CustomStringConvertible {
    public var event: Event
    public var underlying: any Error
    public var applied: [(event: Event, outcome: Outcome)]
    public var description: String { "event \(event.seq) (\(event.topic)) could not be applied: \(underlying)" }
}

extension CRMStore {
    /// `apply`, but a failing batch is retried one event at a time, so one event that cannot
    /// be applied holds back only itself and what follows it, never the events before it.
    public func applyIsolatingFailure<Outcome: Sendable>(
        _ events: [Event], cursor name: String = "tilld",
        _ effects: @escaping @Sendable (Event, any CRMTransaction) throws -> Outcome
    ) async throws -> [(event: Event, outcome: Outcome)] {
        do {
            return try await apply(events, cursor: name, effects)
        } catch let unreachable as StoreUnreachable {
            throw unreachable  // one at a time would fail alike
        } catch {
            var applied: [(event: Event, outcome: Outcome)] = []
            for event in events {
                do {
                    applied += try await apply([event], cursor: name, effects)
                } catch {
                    throw EventNotApplied(event: event, underlying: error, applied: applied)
                }
            }
            return applied
        }
    }
}

// MARK: - Records

public enum SaleState: String, Sendable, Hashable {
    case open, completed, voided
}

/// A sale as the till reported it, kept apart from who it is linked to.
public struct SaleRecord: Sendable, Hashable {
    public var id: String
    public var till: String?
    public var store: String?
    /// Who served (sale.started's `staff`).
    public var staff: String?
    public var receipt: String?
    public var state: SaleState
    public var total: String?
    public var currency: String?
    /// The `sale.line` event data, in the order the lines arrived.
    public var lines: [JSONValue]
    /// The `sale.tender` event data (method, amount), in order.
    public var tenders: [JSONValue]
    public var startedMs: Int64?
    public var completedMs: Int64?

    public init(
        id: String, till: String? = nil, store: String? = nil, staff: String? = nil, receipt: String? = nil, state: SaleState = .open,
        total: String? = nil, currency: String? = nil, lines: [JSONValue] = [], tenders: [JSONValue] = [],
        startedMs: Int64? = nil, completedMs: Int64? = nil
    ) {
        self.id = id
        self.till = till
        self.store = store
        self.staff = staff
        self.receipt = receipt
        self.state = state
        self.total = total
        self.currency = currency
        self.lines = lines
        self.tenders = tenders
        self.startedMs = startedMs
        self.completedMs = completedMs
    }
}

public enum CustomerStatus: String, Sendable, Hashable {
    case active, merged, erased
}

public struct CustomerRecord: Sendable, Hashable {
    public var id: String
    public var name: String?
    public var givenName: String?
    public var familyName: String?
    public var postcode: String?
    public var status: CustomerStatus
    public var mergedInto: String?
    public var firstSeenMs: Int64
    public var lastSeenMs: Int64
    /// Completed purchases linked to this customer.
    public var visits: Int

    public init(
        id: String, name: String? = nil, givenName: String? = nil, familyName: String? = nil, postcode: String? = nil,
        status: CustomerStatus = .active, mergedInto: String? = nil, firstSeenMs: Int64, lastSeenMs: Int64, visits: Int = 0
    ) {
        self.id = id
        self.name = name
        self.givenName = givenName
        self.familyName = familyName
        self.postcode = postcode
        self.status = status
        self.mergedInto = mergedInto
        self.firstSeenMs = firstSeenMs
        self.lastSeenMs = lastSeenMs
        self.visits = visits
    }
}

/// Rows written together (`CRMTransaction.insert`).
public struct BulkRows: Sendable {
    /// Inserted or replaced, as `save` does; before the other rows, which may refer to them.
    public var customers: [CustomerRecord] = []
    public var identifiers: [(customer: String, identifier: CustomerIdentifier, sourceSeq: Int64?, atMs: Int64)] = []
    public var names: [(customer: String, name: PersonName, atMs: Int64)] = []
    public var matchKeys: [(key: String, customer: String)] = []
    public var imports: [(source: String, record: String, customer: String, atMs: Int64)] = []

    public init() {}

    public var isEmpty: Bool { customers.isEmpty && identifiers.isEmpty && names.isEmpty && matchKeys.isEmpty && imports.isEmpty }
}

extension CRMTransaction {
    /// One row at a time: what a store without a faster way does.
    public func insertEachRow(_ rows: BulkRows) throws {
        for customer in rows.customers { try save(customer) }
        for row in rows.identifiers { try add(row.identifier, to: row.customer, sourceSeq: row.sourceSeq, atMs: row.atMs) }
        for row in rows.names { try addName(row.name, to: row.customer, atMs: row.atMs) }
        for row in rows.matchKeys { try addMatchKeys([row.key], to: row.customer) }
        for row in rows.imports { try recordImport(source: row.source, record: row.record, customer: row.customer, atMs: row.atMs) }
    }
}

/// A name as a person gave it: given and family apart, either may be missing.
public struct PersonName: Sendable, Hashable {
    public var given: String?
    public var family: String?

    public init(given: String?, family: String?) {
        self.given = given.flatMap { $0.isEmpty ? nil : $0 }
        self.family = family.flatMap { $0.isEmpty ? nil : $0 }
    }

    public var isEmpty: Bool { given == nil && family == nil }
}

/// One merge: `absorbed` now resolves to `survivor`. Kept after an unmerge (with `undoneMs`).
public struct MergeRecord: Sendable, Hashable {
    public var id: Int64?
    public var survivor: String
    public var absorbed: String
    /// True when the matcher merged on its own (score at or above the automatic threshold).
    public var automatic: Bool
    public var score: Double?
    /// The field comparisons behind the score, as shown to whoever merged.
    public var evidence: [String]
    /// Who merged: "till-crm" for automatic merges, else the person (`--actor`, or the login).
    public var actor: String
    public var reason: String
    public var mergedMs: Int64
    public var undoneMs: Int64?
    public var undoneBy: String?

    public init(
        id: Int64? = nil, survivor: String, absorbed: String, automatic: Bool, score: Double?, evidence: [String], actor: String,
        reason: String, mergedMs: Int64, undoneMs: Int64? = nil, undoneBy: String? = nil
    ) {
        self.id = id
        self.survivor = survivor
        self.absorbed = absorbed
        self.automatic = automatic
        self.score = score
        self.evidence = evidence
        self.actor = actor
        self.reason = reason
        self.mergedMs = mergedMs
        self.undoneMs = undoneMs
        self.undoneBy = undoneBy
    }
}

/// A pair the matcher thinks may be one person, for a person to decide. `a` < `b`.
public struct ReviewRecord: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable, CaseIterable { case open, merged, dismissed }
    public var a: String
    public var b: String
    public var score: Double
    public var evidence: [String]
    public var status: Status
    public var queuedMs: Int64
    public var decidedMs: Int64?
    public var decidedBy: String?

    public init(
        _ x: String, _ y: String, score: Double, evidence: [String], status: Status = .open, queuedMs: Int64, decidedMs: Int64? = nil,
        decidedBy: String? = nil
    ) {
        (a, b) = x < y ? (x, y) : (y, x)
        self.score = score
        self.evidence = evidence
        self.status = status
        self.queuedMs = queuedMs
        self.decidedMs = decidedMs
        self.decidedBy = decidedBy
    }
}

/// How a sale came to be linked to a customer.
public enum LinkMethod: String, Sendable, Hashable {
    case loyaltyScan = "loyalty_scan"
    case email, phone, loyalty
    case lateAttach = "late_attach"
    case manual
}

public struct SaleLink: Sendable, Hashable {
    public var sale: SaleRecord
    public var method: LinkMethod
    public var linkedMs: Int64
    /// Set when the sale was later linked to someone else.
    public var unlinkedMs: Int64?
}

public struct ConsentRecord: Sendable, Hashable {
    public enum Channel: String, Sendable, Hashable, CaseIterable { case email, sms, post, phone }
    public enum Purpose: String, Sendable, Hashable, CaseIterable { case marketing, transactional, profiling }
    public enum Basis: String, Sendable, Hashable, CaseIterable {
        case consent
        case softOptIn = "soft_opt_in"
        case contract
        case legitimateInterest = "legitimate_interest"
    }

    public var customer: String
    public var channel: Channel
    public var purpose: Purpose
    public var granted: Bool
    public var basis: Basis
    /// Who or what recorded it: "till", a staff member, "web form".
    public var source: String
    public var sale: String?
    public var sourceSeq: Int64?
    public var recordedMs: Int64

    public init(
        customer: String, channel: Channel, purpose: Purpose, granted: Bool, basis: Basis, source: String,
        sale: String? = nil, sourceSeq: Int64? = nil, recordedMs: Int64
    ) {
        self.customer = customer
        self.channel = channel
        self.purpose = purpose
        self.granted = granted
        self.basis = basis
        self.source = source
        self.sale = sale
        self.sourceSeq = sourceSeq
        self.recordedMs = recordedMs
    }

    /// The state in force: the newest record per channel and purpose (records arrive oldest first).
    public static func current(_ history: [ConsentRecord]) -> [ConsentRecord] {
        var newest: [String: ConsentRecord] = [:]
        for record in history { newest["\(record.channel.rawValue)/\(record.purpose.rawValue)"] = record }
        return newest.sorted { $0.key < $1.key }.map(\.value)
    }
}

/// One entry of a customer's immutable timeline. `source` is its idempotency key
/// (`purchase:SALE`, `refund:ID`, `tilld:SEQ`, `cli:UUID`): one source never lands twice.
public struct TimelineEntry: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case purchase, refund, exchange, note, conversation, opportunity, service, consent, merge, moment

        /// What counts as the customer being active (for a regular's habit and going quiet):
        /// buying, returning, a service, a conversation. A note staff add is not the customer.
        public static let activity: [Kind] = [.purchase, .refund, .exchange, .service, .conversation]
    }

    public var customer: String
    public var type: Kind
    public var source: String
    public var payload: JSONValue
    public var occurredMs: Int64
    public var recordedMs: Int64
    /// The person who added it by hand (a note's author); nil for what the till reported.
    public var actor: String?

    public init(customer: String, type: Kind, source: String, payload: JSONValue, occurredMs: Int64, recordedMs: Int64, actor: String? = nil) {
        self.customer = customer
        self.type = type
        self.source = source
        self.payload = payload
        self.occurredMs = occurredMs
        self.recordedMs = recordedMs
        self.actor = actor
    }
}

extension Date {
    /// Milliseconds since 1970, the unit the store keeps times in.
    public var milliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    public init(milliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
