/// A customer as people see it: the surviving record and every record merged into it. Rows
/// (identifiers, timeline, consent, links) stay with the record they were written to, so an
/// unmerge gives each person back exactly what is theirs; reads gather the cluster.
public struct Cluster: Sendable, Hashable {
    public var root: CustomerRecord
    /// The root first, then the records merged into it.
    public var members: [CustomerRecord]

    public var ids: [String] { members.map(\.id) }
    public var visits: Int { members.reduce(0) { $0 + $1.visits } }
    public var firstSeenMs: Int64 { members.map(\.firstSeenMs).min() ?? root.firstSeenMs }
    public var lastSeenMs: Int64 { members.map(\.lastSeenMs).max() ?? root.lastSeenMs }
    public var displayName: String? {
        members.lazy.compactMap { $0.name ?? Self.fullName($0) }.first
    }

    static func fullName(_ record: CustomerRecord) -> String? {
        let parts = [record.givenName, record.familyName].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: " ")
    }

    /// The cluster a record belongs to (following merges to the survivor).
    public static func of(_ id: String, in store: any CRMTransaction) throws -> Cluster? {
        let root = try store.root(of: id)
        guard let record = try store.customer(root) else { return nil }
        var members = [record]
        for member in try store.members(of: root) where member != root {
            if let customer = try store.customer(member) { members.append(customer) }
        }
        return Cluster(root: record, members: members)
    }

    /// Everything the cluster holds, as the matcher compares it.
    public func matchRecord(in store: any CRMTransaction) throws -> MatchRecord {
        guard let cache = store as? MemoizingTransaction else { return try buildMatchRecord(in: store) }
        var record = try cache.matchRecord(of: self) { try buildMatchRecord(in: store) }
        record.lastSeenMs = lastSeenMs  // moves on every visit, so not part of what is remembered
        return record
    }

    private func buildMatchRecord(in store: any CRMTransaction) throws -> MatchRecord {
        var record = MatchRecord()
        for member in members {
            record.absorb(MatchRecord(member, identifiers: try store.identifiers(of: member.id), names: try store.names(of: member.id)))
        }
        return record
    }

    /// Identifiers of every member, the root's first.
    public func identifiers(in store: any CRMTransaction) throws -> [CustomerIdentifier] {
        var all: [CustomerIdentifier] = []
        for member in members {
            for identifier in try store.identifiers(of: member.id) where !all.contains(identifier) { all.append(identifier) }
        }
        return all
    }

    /// The members' timelines as one, newest first.
    public func timeline(in store: any CRMTransaction, limit: Int) throws -> [TimelineEntry] {
        guard members.count > 1 else { return try store.timeline(of: root.id, limit: limit) }
        var entries: [TimelineEntry] = []
        for member in members { entries += try store.timeline(of: member.id, limit: limit) }
        return Array(entries.sorted { ($0.occurredMs, $0.recordedMs) > ($1.occurredMs, $1.recordedMs) }.prefix(limit))
    }

    /// The members' consent records as one history, oldest first.
    public func consentHistory(in store: any CRMTransaction) throws -> [ConsentRecord] {
        var history: [ConsentRecord] = []
        for member in members { history += try store.consentHistory(of: member.id) }
        return history.enumerated().sorted { ($0.element.recordedMs, $0.offset) < ($1.element.recordedMs, $1.offset) }.map(\.element)
    }
}

extension MatchRecord {
    /// One stored record, as the matcher compares it: every name it was identified under
    /// (the record's own when none was kept).
    public init(_ customer: CustomerRecord, identifiers: [CustomerIdentifier], names: [PersonName] = []) {
        var given = customer.givenName, family = customer.familyName
        if given == nil, family == nil, let name = customer.name { (given, family) = NameKey.split(fullName: name) }
        var all = names.map { Name(given: $0.given, family: $0.family) }
        let own = Name(given: given, family: family)
        if !all.contains(own) { all.insert(own, at: 0) }
        self.init(
            names: all,
            emails: identifiers.filter { $0.kind == .email }.map(\.normalized),
            phones: identifiers.filter { $0.kind == .phone }.map(\.normalized),
            cards: identifiers.filter { $0.kind == .loyaltyCard }.map(\.normalized),
            postcodes: customer.postcode.map { [$0] } ?? [], lastSeenMs: customer.lastSeenMs)
    }
}
