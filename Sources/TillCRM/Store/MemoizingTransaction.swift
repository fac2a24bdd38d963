public import Foundation
import TillCore

/// A transaction that remembers what identification reads (customers, their identifiers and
/// names, who holds an identifier or a blocking key, merge chains, sales and their links) for
/// a long run of work inside one transaction: an import of a customer list, where the same
/// customers come up as candidates again and again, and a batch of till events, where each
/// `sale.line` changes the same sale. On PostgreSQL every statement is a round trip to the
/// server, so what is not asked twice is time saved. Every write updates what is remembered,
/// so a read after a write sees it, as it would from the store. New identifiers, names,
/// blocking keys and import rows, and changes to customers that move no merge chain, are
/// kept and written together by `flush()` (multi-row statements); what a read of the store
/// would miss meanwhile is added to what it returns.
///
/// Only for use inside one transaction of one store, by one caller, who calls `flush()`
/// before the transaction commits: nothing else writes there meanwhile, which is what makes
/// remembering safe.
public final class MemoizingTransaction: CRMTransaction {
    let base: any CRMTransaction
    private var customers: [String: CustomerRecord?] = [:]
    private var identifiersOf: [String: [CustomerIdentifier]] = [:]
    private var namesOf: [String: [PersonName]] = [:]
    /// By kind and normalised value: the raw text ("07911 123456", "+44 7911 123456") is not the key.
    private var holdersOf: [IdentifierKey: [String]] = [:]

    private struct IdentifierKey: Hashable {
        var kind: CustomerIdentifier.Kind
        var normalized: String
        init(_ identifier: CustomerIdentifier) {
            kind = identifier.kind
            normalized = identifier.normalized
        }
    }
    /// Records holding a blocking key; a list as long as the store's limit + 1 was cut short.
    private var keyHolders: [String: [String]] = [:]
    private var keyLimit: Int?
    private var roots: [String: String] = [:]
    private var membersOf: [String: [String]] = [:]

    /// Clusters as the matcher compares them (folded names, keys), by root, with the members
    /// they were built from; and for each member, the root whose entry it is part of.
    private var matchRecords: [String: (members: [String], record: MatchRecord)] = [:]
    private var matchRecordOf: [String: String] = [:]

    /// The cluster's match record, built by `build` when it is not remembered or one of its
    /// records changed since (an identifier, a name, a postcode).
    func matchRecord(of cluster: Cluster, build: () throws -> MatchRecord) rethrows -> MatchRecord {
        let ids = cluster.ids
        if let known = matchRecords[cluster.root.id], known.members == ids { return known.record }
        let record = try build()
        matchRecords[cluster.root.id] = (ids, record)
        for id in ids { matchRecordOf[id] = cluster.root.id }
        return record
    }

    private func changed(_ record: String) {
        if let root = matchRecordOf[record] { matchRecords[root] = nil }
    }

    /// Rows not yet written, and the same rows by what reads look them up by.
    private var pending = BulkRows()
    private var pendingHolders: [IdentifierKey: [String]] = [:]
    private var pendingIdentifiers: [String: [CustomerIdentifier]] = [:]
    private var pendingNames: [String: [PersonName]] = [:]
    private var pendingKeyHolders: [String: [String]] = [:]

    public init(_ base: any CRMTransaction) {
        self.base = base
    }

    private func forgetMerges() {
        roots.removeAll()
        membersOf.removeAll()
    }

    // MARK: remembered

    public func customer(_ id: String) throws -> CustomerRecord? {
        if let known = customers[id] { return known }
        let record = try base.customer(id)
        customers[id] = .some(record)
        return record
    }

    /// Customers saved but not yet written, new ones and changes of last visit, name or
    /// postcode alike (an import touches a regular's record on every row of theirs): they go
    /// to the store together, before anything else is written there that could refer to them.
    /// A change of status or merge is written at once, after them: the store's own queries
    /// (a merge chain) must see it. A record not yet written has no merge chain, and is read
    /// from here.
    private var unwritten: [String: CustomerRecord] = [:]

    public func save(_ customer: CustomerRecord) throws {
        if case .some(.none) = customers[customer.id], customer.status == .active, customer.mergedInto == nil {
            // New here (read as absent): no one is merged into it, it is its own root.
            roots[customer.id] = customer.id
            membersOf[customer.id] = [customer.id]
        }
        let before = customers[customer.id] ?? nil
        if before?.name != customer.name || before?.givenName != customer.givenName || before?.familyName != customer.familyName
            || before?.postcode != customer.postcode
        {
            changed(customer.id)
        }
        let movesNoChain = before.map { $0.status == customer.status && $0.mergedInto == customer.mergedInto }
            ?? (customer.status == .active && customer.mergedInto == nil)
        if movesNoChain {
            unwritten[customer.id] = customer
        } else {
            unwritten[customer.id] = nil
            try writeCustomers()
            try base.save(customer)
            if let before, before.status == .active, customer.status == .merged, let survivor = customer.mergedInto {
                // A merge: whatever resolved to the absorbed record resolves to the survivor's root.
                let root = roots[survivor] ?? survivor
                // (Collected first: changing a dictionary while iterating it copies it whole.)
                for record in roots.compactMap({ $0.value == customer.id ? $0.key : nil }) { roots[record] = root }
                roots[customer.id] = root
                membersOf[customer.id] = nil
                membersOf[root] = nil
                membersOf[survivor] = nil
            } else {
                forgetMerges()  // an unmerge, or a record not read before: any chain may change
            }
        }
        customers[customer.id] = .some(customer)
    }

    /// Writes the customers kept back, in one statement per few hundred.
    private func writeCustomers() throws {
        guard !unwritten.isEmpty else { return }
        var rows = BulkRows()
        rows.customers = unwritten.keys.sorted().map { unwritten[$0]! }
        unwritten.removeAll()
        try base.insert(rows)
    }

    // MARK: sales

    /// Sales read or saved, and those saved but not yet written. A sale is saved once per
    /// event that changes it (every `sale.line`, every tender), so a burst of events would
    /// read and write the same row again and again; it is written once, by `flush()` or
    /// before anything that reads sales another way or refers to them (a link).
    private var sales: [String: SaleRecord?] = [:]
    private var unwrittenSales: [String: SaleRecord] = [:]
    /// The customer each sale is linked to (nil: none), as read or linked here.
    private var linkOf: [String: String?] = [:]
    private var suppression: Data?

    /// Sales the store did not hold when this transaction asked: nothing links them, and no
    /// card waits on them, but what this transaction does.
    private var newSales: Set<String> = []
    private var cardOf: [String: CustomerIdentifier?] = [:]

    public func sale(_ id: String) throws -> SaleRecord? {
        if let known = sales[id] { return known }
        let sale = try base.sale(id)
        sales[id] = .some(sale)
        if sale == nil { newSales.insert(id) }
        return sale
    }

    public func save(_ sale: SaleRecord) throws {
        sales[sale.id] = .some(sale)
        unwrittenSales[sale.id] = sale
    }

    private func writeSales() throws {
        guard !unwrittenSales.isEmpty else { return }
        for id in unwrittenSales.keys.sorted() { try base.save(unwrittenSales[id]!) }
        unwrittenSales.removeAll()
    }

    public func linkedCustomer(ofSale sale: String) throws -> String? {
        try remembered(&linkOf, ofSale: sale) { try base.linkedCustomer(ofSale: sale) }
    }

    /// What `read` says of a sale, remembered in `cache`; nothing for a sale new here.
    private func remembered<T>(_ cache: inout [String: T?], ofSale sale: String, _ read: () throws -> T?) rethrows -> T? {
        if let known = cache[sale] { return known }
        if newSales.contains(sale) { return nil }
        let value = try read()
        cache[sale] = .some(value)
        return value
    }

    /// Writes what was kept back. Call before the transaction commits.
    public func flush() throws {
        try writeCustomers()
        try writeSales()
        if !pending.isEmpty {
            try base.insert(pending)
            pending = BulkRows()
            pendingHolders.removeAll()
            pendingIdentifiers.removeAll()
            pendingNames.removeAll()
            pendingKeyHolders.removeAll()
        }
    }

    private static func appending<T: Equatable>(_ list: [T], _ more: [T]?) -> [T] {
        guard let more else { return list }
        return list + more.filter { !list.contains($0) }
    }

    public func owner(of identifier: CustomerIdentifier) throws -> String? {
        guard let holder = try holders(of: identifier).first else { return nil }
        return try root(of: holder)
    }

    public func holders(of identifier: CustomerIdentifier) throws -> [String] {
        let key = IdentifierKey(identifier)
        if let known = holdersOf[key] { return known }
        let holders = Self.appending(try base.holders(of: identifier), pendingHolders[key])
        holdersOf[key] = holders
        return holders
    }

    public func add(_ identifier: CustomerIdentifier, to customer: String, sourceSeq: Int64?, atMs ms: Int64) throws {
        let key = IdentifierKey(identifier)
        let holders = try holders(of: identifier)
        if holders.contains(customer) { return }
        // The store holds a card once: refused here, as the store would, not at the flush.
        if identifier.kind == .loyaltyCard || identifier.kind == .external, let holder = holders.first {
            throw Merging.Refused(description: "\(identifier.kind.rawValue) \(identifier.normalized) is held by \(holder)")
        }
        pending.identifiers.append((customer, identifier, sourceSeq, ms))
        pendingHolders[key, default: []].append(customer)
        pendingIdentifiers[customer, default: []].append(identifier)
        holdersOf[key] = holders + [customer]
        changed(customer)
        if var known = identifiersOf[customer], !known.contains(where: { $0.kind == identifier.kind && $0.normalized == identifier.normalized }) {
            known.append(identifier)
            identifiersOf[customer] = known
        }
    }

    public func identifiers(of customer: String) throws -> [CustomerIdentifier] {
        if let known = identifiersOf[customer] { return known }
        let identifiers = try base.identifiers(of: customer) + (pendingIdentifiers[customer] ?? [])
        identifiersOf[customer] = identifiers
        return identifiers
    }

    public func names(of customer: String) throws -> [PersonName] {
        if let known = namesOf[customer] { return known }
        let names = Self.appending(try base.names(of: customer), pendingNames[customer])
        namesOf[customer] = names
        return names
    }

    public func addName(_ name: PersonName, to customer: String, atMs ms: Int64) throws {
        guard !name.isEmpty, try !names(of: customer).contains(name) else { return }
        pending.names.append((customer, name, ms))
        pendingNames[customer, default: []].append(name)
        namesOf[customer, default: []].append(name)
        changed(customer)
    }

    public func root(of customer: String) throws -> String {
        if let known = roots[customer] { return known }
        let root = try base.root(of: customer)
        roots[customer] = root
        return root
    }

    public func members(of root: String) throws -> [String] {
        if let known = membersOf[root] { return known }
        let members = try base.members(of: root)
        membersOf[root] = members
        return members
    }

    public func addMatchKeys(_ keys: [String], to customer: String) throws {
        // Identification looked every key up just before: most are held already.
        for key in keys where keyHolders[key]?.contains(customer) != true && pendingKeyHolders[key]?.contains(customer) != true {
            pending.matchKeys.append((key, customer))
            pendingKeyHolders[key, default: []].append(customer)
            if var known = keyHolders[key] {
                known.append(customer)
                keyHolders[key] = known
            }
        }
    }

    public func records(withMatchKeys keys: [String], limitPerKey: Int) throws -> [String: [String]] {
        if keyLimit != limitPerKey {
            keyHolders.removeAll()
            keyLimit = limitPerKey
        }
        var found: [String: [String]] = [:]
        var missing: [String] = []
        for key in keys {
            if let known = keyHolders[key] { found[key] = known } else { missing.append(key) }
        }
        if !missing.isEmpty {
            for (key, holders) in try base.records(withMatchKeys: missing, limitPerKey: limitPerKey) {
                let all = Array(Self.appending(holders, pendingKeyHolders[key]).prefix(limitPerKey + 1))
                keyHolders[key] = all
                found[key] = all
            }
        }
        return found
    }

    public func erasePersonalData(of customer: String) throws {
        try flush()
        try base.erasePersonalData(of: customer)
        sales.removeAll()
        newSales.removeAll()
        cardOf.removeAll()
        linkOf.removeAll()
        matchRecords.removeAll()
        customers.removeAll()
        identifiersOf.removeAll()
        namesOf.removeAll()
        holdersOf.removeAll()
        keyHolders.removeAll()
        forgetMerges()
    }

    // MARK: passed through

    public func cursor(_ name: String) throws -> Int64 { try base.cursor(name) }
    public func cursors() throws -> [String: Int64] { try base.cursors() }
    public func setCursor(_ name: String, to seq: Int64) throws { try base.setCursor(name, to: seq) }
    public func latestSale(receipt: String) throws -> SaleRecord? {
        try writeSales()
        return try base.latestSale(receipt: receipt)
    }
    public func openSales(startedSinceMs: Int64) throws -> [SaleRecord] {
        try writeSales()
        return try base.openSales(startedSinceMs: startedSinceMs)
    }
    public func link(sale: String, to customer: String, method: LinkMethod, atMs: Int64) throws {
        try writeCustomers()
        try writeSales()
        try base.link(sale: sale, to: customer, method: method, atMs: atMs)
        linkOf[sale] = .some(customer)
    }
    public func links(ofCustomer customer: String) throws -> [SaleLink] {
        try writeSales()
        return try base.links(ofCustomer: customer)
    }
    public func pendingCard(ofSale sale: String) throws -> CustomerIdentifier? {
        try remembered(&cardOf, ofSale: sale) { try base.pendingCard(ofSale: sale) }
    }
    public func setPendingCard(_ card: CustomerIdentifier, sale: String, sourceSeq: Int64) throws {
        try base.setPendingCard(card, sale: sale, sourceSeq: sourceSeq)
        cardOf[sale] = .some(card)
    }
    public func removePendingCard(ofSale sale: String) throws {
        if case .some(.none) = cardOf[sale] { return }
        if cardOf[sale] == nil, newSales.contains(sale) { return }
        try base.removePendingCard(ofSale: sale)
        cardOf[sale] = .some(nil)
    }
    public func findCustomers(identifierPrefixes: [String], identifierParts: [String], nameContaining: String, limit: Int) throws -> [CustomerRecord] {
        try flush()
        return try base.findCustomers(identifierPrefixes: identifierPrefixes, identifierParts: identifierParts, nameContaining: nameContaining, limit: limit)
    }
    public func append(_ merge: MergeRecord) throws -> Int64 {
        try writeCustomers()
        return try base.append(merge)
    }
    public func merges(involving customer: String) throws -> [MergeRecord] { try base.merges(involving: customer) }
    public func markUndone(merge id: Int64, atMs: Int64, actor: String) throws { try base.markUndone(merge: id, atMs: atMs, actor: actor) }
    public func queue(_ review: ReviewRecord) throws {
        try writeCustomers()
        try base.queue(review)
    }
    public func reviews(status: ReviewRecord.Status?) throws -> [ReviewRecord] { try base.reviews(status: status) }
    public func review(_ a: String, _ b: String) throws -> ReviewRecord? { try base.review(a, b) }
    public func setReviewStatus(_ a: String, _ b: String, to status: ReviewRecord.Status, actor: String, atMs: Int64) throws {
        try base.setReviewStatus(a, b, to: status, actor: actor, atMs: atMs)
    }
    public func importedCustomer(source: String, record: String) throws -> String? {
        if let row = pending.imports.last(where: { $0.source == source && $0.record == record }) { return row.customer }
        return try base.importedCustomer(source: source, record: record)
    }
    public func importedRecords(source: String) throws -> [String: String] {
        try flush()
        return try base.importedRecords(source: source)
    }
    public func recordImport(source: String, record: String, customer: String, atMs: Int64) throws {
        pending.imports.append((source, record, customer, atMs))
    }
    public func insert(_ rows: BulkRows) throws {
        try flush()
        try base.insert(rows)
    }
    public func append(_ consent: ConsentRecord) throws {
        try writeCustomers()
        try base.append(consent)
    }
    public func consentHistory(of customer: String) throws -> [ConsentRecord] { try base.consentHistory(of: customer) }
    @discardableResult
    public func append(_ entry: TimelineEntry) throws -> Bool {
        try writeCustomers()
        return try base.append(entry)
    }
    public func timeline(of customer: String, limit: Int) throws -> [TimelineEntry] { try base.timeline(of: customer, limit: limit) }
    public func countEntries(of customer: String, type: TimelineEntry.Kind, payloadFlag: String?) throws -> Int {
        try base.countEntries(of: customer, type: type, payloadFlag: payloadFlag)
    }
    public func moveEntry(source: String, to customer: String) throws -> String? {
        try writeCustomers()
        return try base.moveEntry(source: source, to: customer)
    }
    @discardableResult
    public func add(_ moment: Moment) throws -> Bool {
        try writeCustomers()
        return try base.add(moment)
    }
    public func moment(_ id: String) throws -> Moment? { try base.moment(id) }
    public func moments(statuses: [Moment.Status], customers: [String]?, dueBeforeMs: Int64?, limit: Int) throws -> [Moment] {
        try base.moments(statuses: statuses, customers: customers, dueBeforeMs: dueBeforeMs, limit: limit)
    }
    public func setMoment(_ id: String, status: Moment.Status, snoozedUntilMs: Int64?, actor: String, atMs: Int64) throws {
        try base.setMoment(id, status: status, snoozedUntilMs: snoozedUntilMs, actor: actor, atMs: atMs)
    }
    public func moveMoment(_ id: String, to customer: String) throws {
        try writeCustomers()
        try base.moveMoment(id, to: customer)
    }
    public func unpublishedMoments(underWay: Bool, stream: String?, limit: Int) throws -> [Moment] {
        try base.unpublishedMoments(underWay: underWay, stream: stream, limit: limit)
    }
    public func markMomentPublishing(_ id: String, afterSeq seq: Int64?, stream: String?) throws {
        try base.markMomentPublishing(id, afterSeq: seq, stream: stream)
    }
    public func markMomentPublished(_ id: String, seq: Int64) throws { try base.markMomentPublished(id, seq: seq) }
    public func activity(of customer: String) throws -> [Int64] { try base.activity(of: customer) }
    public func forEachCustomer(minVisits: Int, _ body: (CustomerSummary) throws -> Void) throws {
        try flush()
        try base.forEachCustomer(minVisits: minVisits, body)
    }
    public func suppressionKey() throws -> Data {
        if let key = suppression { return key }
        let key = try base.suppressionKey()
        suppression = key
        return key
    }
    public func isSuppressed(hash: String) throws -> Bool { try base.isSuppressed(hash: hash) }
    public func suppress(hash: String, kind: CustomerIdentifier.Kind, reason: String, atMs: Int64) throws {
        try base.suppress(hash: hash, kind: kind, reason: reason, atMs: atMs)
    }
}
