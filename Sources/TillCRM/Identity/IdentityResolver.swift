import Foundation
import TillPhoneNumber

/// What someone gave at the till (or a row of an imported list), normalised.
public struct IdentityInput: Sendable, Hashable {
    /// Strongest first: card, email, phone.
    public var identifiers: [CustomerIdentifier]
    public var name: String?
    public var givenName: String?
    public var familyName: String?
    public var postcode: String?

    public init(identifiers: [CustomerIdentifier], name: String? = nil, givenName: String? = nil, familyName: String? = nil, postcode: String? = nil) {
        self.identifiers = identifiers
        self.name = name.flatMap { $0.isEmpty ? nil : $0 }
        var given = givenName.flatMap { $0.isEmpty ? nil : $0 }, family = familyName.flatMap { $0.isEmpty ? nil : $0 }
        if given == nil, family == nil, let name = self.name { (given, family) = NameKey.split(fullName: name) }
        self.givenName = given
        self.familyName = family
        // Kept as given ("SW1A 1AA"), shown so; the matcher compares it normalised.
        self.postcode = postcode.map { $0.trimmingWhitespace() }.flatMap { MatchRecord.postcode($0).isEmpty ? nil : $0 }
    }

    public func matchRecord(atMs ms: Int64) -> MatchRecord {
        MatchRecord(
            names: [MatchRecord.Name(given: givenName, family: familyName)],
            emails: identifiers.filter { $0.kind == .email }.map(\.normalized),
            phones: identifiers.filter { $0.kind == .phone }.map(\.normalized),
            cards: identifiers.filter { $0.kind == .loyaltyCard }.map(\.normalized),
            postcodes: postcode.map { [$0] } ?? [], lastSeenMs: ms)
    }
}

/// The matcher against the store: candidates by blocking key, each scored against the
/// whole customer (every merged record), and a verdict per candidate.
public struct IdentityResolver: Sendable {
    public var matcher: Matcher
    /// A name key held by more records than this is too common to block on (a thousand John
    /// Smiths at a big chain); identifier keys are always used.
    public var maxBlockSize = 64

    public init(matcher: Matcher = Matcher()) {
        self.matcher = matcher
    }

    public struct Candidate: Sendable, Hashable {
        /// The customer (surviving record).
        public var root: String
        public var score: MatchScore
        public var verdict: Matcher.Verdict
        /// The record of the cluster holding one of the given identifiers, where what follows
        /// (the sale, new identifiers) is written so an unmerge leaves it with its person.
        public var holder: String
        public var match: MatchRecord
        /// Whether this identification alone says the person is this customer on evidence a
        /// household does not share: the card, or a card, email or mobile number no one else
        /// holds, or a score past the automatic threshold with personal agreement. When an
        /// identification says that of two customers, they are one person and are merged.
        public var personal: Bool
        /// Whether the customer holds one of the given identifiers exactly.
        public var holdsGivenIdentifier: Bool
        /// The customer as it was read.
        public var cluster: Cluster
        /// When the customer was first seen: between equal scores, the longer-known customer
        /// comes first (a rule, so the same records always resolve the same way).
        public var firstSeenMs: Int64 { cluster.firstSeenMs }
    }

    /// Every customer worth comparing with, scored, best first.
    public func candidates(
        for incoming: MatchRecord, identifiers: [CustomerIdentifier], keys: [String]? = nil, in store: any CRMTransaction
    ) throws -> [Candidate] {
        var records: [String] = []
        var seen = Set<String>()
        // Who holds each mailbox key of the incoming emails (the same address however it was
        // typed): one customer holding it is as decisive as one holding the exact address.
        var mailboxHolders: [String: [String]] = [:]
        for (key, holders) in try store.records(withMatchKeys: keys ?? incoming.blockingKeys, limitPerKey: maxBlockSize).sorted(by: { $0.key < $1.key }) {
            let identifierKey = key.hasPrefix("a:") || key.hasPrefix("d:") || key.hasPrefix("c:")
            if !identifierKey, holders.count > maxBlockSize { continue }
            if key.hasPrefix("a:") { mailboxHolders[key] = holders }
            for holder in holders where seen.insert(holder).inserted { records.append(holder) }
        }
        // Who holds each given identifier, and how many customers share it: an identifier one
        // customer holds decides on its own; one a household shares does not.
        var holderByRoot: [String: String] = [:]
        var uniquelyHeld: [String: [CustomerIdentifier]] = [:]  // root → the given identifiers it alone holds
        var uniqueMailbox = Set<String>()  // roots alone holding a given email's mailbox
        for identifier in identifiers {
            var roots = Set<String>()
            for holder in try store.holders(of: identifier) {
                let root = try store.root(of: holder)
                roots.insert(root)
                if holderByRoot[root] == nil { holderByRoot[root] = holder }
                if seen.insert(holder).inserted { records.append(holder) }
            }
            if roots.count == 1, let root = roots.first { uniquelyHeld[root, default: []].append(identifier) }
        }
        for holders in mailboxHolders.values where holders.count <= maxBlockSize {
            let roots = Set(try holders.map { try store.root(of: $0) })
            if roots.count == 1, let root = roots.first { uniqueMailbox.insert(root) }
        }
        var roots: [String] = []
        var rootSeen = Set<String>()
        for record in records {
            let root = try store.root(of: record)
            if rootSeen.insert(root).inserted { roots.append(root) }
        }
        var candidates: [Candidate] = []
        for root in roots {
            guard let cluster = try Cluster.of(root, in: store), cluster.root.status == .active else { continue }
            let match = try cluster.matchRecord(in: store)
            let score = matcher.compare(incoming, match)
            let held = uniquelyHeld[root] ?? []
            let verdict = matcher.verdict(score, uniquelySharedIdentifier: !held.isEmpty || uniqueMailbox.contains(root))
            // A landline a customer alone holds is still a household's: it decides an
            // attachment, not a merge. (Asked last: the numbering plan's answer costs a regex.)
            let personal = verdict == .same
                && (score.level(of: .card) == .exact || uniqueMailbox.contains(root) || held.contains { $0.kind != .phone }
                    || (score.total >= matcher.automaticThreshold && score.hasPersonalAgreement)
                    || held.contains { PhoneNumber.kind(ofE164: $0.normalized) == .mobile })
            candidates.append(Candidate(root: root, score: score, verdict: verdict, holder: holderByRoot[root] ?? root, match: match, personal: personal,
                holdsGivenIdentifier: holderByRoot[root] != nil, cluster: cluster))
        }
        return candidates.sorted { a, b in
            if a.score.total != b.score.total { return a.score.total > b.score.total }
            if a.firstSeenMs != b.firstSeenMs { return a.firstSeenMs < b.firstSeenMs }
            return a.root < b.root
        }
    }
}

/// What identifying a person did.
public struct IdentityOutcome: Sendable, Hashable {
    /// The record the identification was written to (a sale links here).
    public var record: String
    /// The customer it belongs to (the survivor, if the record was merged).
    public var customer: String
    public var created: Bool
    /// The customer as it was before (visits, last visit), for the greeting; nil if new.
    public var before: Cluster?
    /// Customers merged into this one because the identification bridged them.
    public var merged: [String]
    /// Customers queued for review as possibly the same person.
    public var queued: [String]
}

/// Customer ids: "C" and 12 hexadecimal digits, random: 48 bits, so with a million customers
/// a new id meets a known one about once in 280 million (and identification checks before use).
public enum CustomerID {
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        let bits = generator.next() & 0xFFFF_FFFF_FFFF
        let hex = String(bits, radix: 16)
        return "C" + String(repeating: "0", count: 12 - hex.utf8.count) + hex
    }
}

/// Identification as the live path and the importer share it: resolve, then attach, create,
/// merge or queue, and write what was given. Two paths, one decision.
public struct Identification: Sendable {
    public var resolver: IdentityResolver
    public var newID: @Sendable () -> String

    public init(resolver: IdentityResolver = IdentityResolver(), newID: @escaping @Sendable () -> String = CustomerID.random) {
        self.resolver = resolver
        self.newID = newID
    }

    /// What the matcher makes of an input before it meets the store (names folded, blocking
    /// keys): pure, so an import works it out for every row at once, on every core.
    public struct Prepared: Sendable {
        public var record: MatchRecord
        public var keys: [String]

        public init(_ input: IdentityInput, atMs ms: Int64) {
            record = input.matchRecord(atMs: ms)
            keys = record.blockingKeys
        }
    }

    public func identify(
        _ input: IdentityInput, atMs ms: Int64, sourceSeq: Int64?, prepared: Prepared? = nil, in store: any CRMTransaction
    ) throws -> IdentityOutcome {
        let prepared = prepared ?? Prepared(input, atMs: ms)
        let incoming = prepared.record
        let keys = prepared.keys
        let candidates = try resolver.candidates(for: incoming, identifiers: input.identifiers, keys: keys, in: store)
        // The holder of a presented card first (the sale is on that account), then by score.
        let decided = candidates.filter { $0.verdict == .same }
        let same = decided.filter { $0.score.level(of: .card) == .exact } + decided.filter { $0.score.level(of: .card) != .exact }
        var queued: [Candidate] = candidates.filter { $0.verdict == .review }
        var merged: [String] = []

        // Given with no name, an identifier several customers hold (a household's landline)
        // cannot say which of them this is. The one it fits best (then the one seen last) is
        // the guess; a new nameless customer for every such visit would be a guess too, and
        // one nobody could ever find again.
        let shared = incoming.names.isEmpty && same.isEmpty
            ? candidates.filter { $0.holdsGivenIdentifier && $0.score.veto == nil }.max { ($0.score.total, $0.match.lastSeenMs ?? 0) < ($1.score.total, $1.match.lastSeenMs ?? 0) }
            : nil
        let record: String
        var customer: String
        let before: Cluster?
        if let best = same.first ?? shared {
            before = best.cluster
            record = best.holder
            customer = best.root
            queued.removeAll { $0.root == best.root }
            try update(record, with: input, atMs: ms, store)
            // The identification names two customers as one person (one's card, the other's
            // email): merged when it says so on personal evidence and the two, with what was
            // just given, do not contradict each other; else a person decides.
            var combined = best.match
            combined.absorb(incoming)
            for other in same.dropFirst() {
                let pair = resolver.matcher.compare(combined, other.match)
                if other.personal, pair.veto == nil, !pair.namesConflict, !(try Merging.wereSeparated(customer, other.root, in: store)) {
                    let merge = try Merging.merge(
                        customer, other.root, automatic: true, score: pair.total,
                        evidence: pair.evidence.map(\.description), actor: "till-crm",
                        reason: "one identification matched both", atMs: ms, in: store)
                    merged.append(merge.absorbed)
                    customer = merge.survivor
                    combined.absorb(other.match)
                } else {
                    queued.append(other)
                }
            }
        } else {
            before = nil
            var id = newID()
            // Random ids can meet; a new customer must never overwrite a known one.
            while try store.customer(id) != nil { id = newID() }
            record = id
            customer = record
            try store.save(CustomerRecord(
                id: record, name: input.name ?? [input.givenName, input.familyName].compactMap { $0 }.joined(separator: " ").nilIfEmpty,
                givenName: input.givenName, familyName: input.familyName, postcode: input.postcode, firstSeenMs: ms, lastSeenMs: ms))
        }
        let members = Set(try store.members(of: customer))
        for identifier in input.identifiers {
            let holders = try store.holders(of: identifier)
            if holders.contains(where: members.contains) { continue }
            // A card is held once; its holder was a candidate and is the customer here, so this
            // is only reached for a card whose holder is not active (erased people are refused
            // before identification). Skipped rather than failing the whole identification.
            if identifier.kind == .loyaltyCard || identifier.kind == .external, !holders.isEmpty { continue }
            try store.add(identifier, to: record, sourceSeq: sourceSeq, atMs: ms)
        }
        try store.addName(PersonName(given: input.givenName, family: input.familyName), to: record, atMs: ms)
        try store.addMatchKeys(keys, to: record)
        var queuedIDs: [String] = []
        for candidate in queued where !members.contains(candidate.root) {
            try store.queue(ReviewRecord(
                customer, candidate.root, score: candidate.score.total, evidence: candidate.score.evidence.map(\.description), queuedMs: ms))
            queuedIDs.append(candidate.root)
        }
        return IdentityOutcome(record: record, customer: customer, created: before == nil, before: before, merged: merged, queued: queuedIDs)
    }

    private typealias Candidate = IdentityResolver.Candidate

    /// Fills in what the record did not know (a name, a postcode); never overwrites what it did.
    private func update(_ id: String, with input: IdentityInput, atMs ms: Int64, _ store: any CRMTransaction) throws {
        guard var record = try store.customer(id) else { return }
        let before = record
        if record.givenName == nil, record.familyName == nil {
            record.givenName = input.givenName
            record.familyName = input.familyName
        }
        if record.name == nil { record.name = input.name ?? Cluster.fullName(record) }
        if record.postcode == nil { record.postcode = input.postcode }
        record.lastSeenMs = max(record.lastSeenMs, ms)
        if record != before { try store.save(record) }
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
