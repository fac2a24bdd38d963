import Foundation
import TillCore

/// What is known about one person (an incoming identification, an imported row, or every
/// record of a merged customer together), reduced to what comparisons need. Pure values:
/// building one never touches the store.
public struct MatchRecord: Sendable, Hashable {
    public struct Name: Sendable, Hashable {
        /// Folded first given name ("anna" for "Anna-Maria"), nil when not given.
        public var given: String?
        /// Folded family name, nil when not given.
        public var family: String?

        public init(given: String?, family: String?) {
            self.given = given.map(NameKey.fold).map(NameKey.firstToken).flatMap { $0.isEmpty ? nil : $0 }
            self.family = family.map(NameKey.fold).flatMap { $0.isEmpty ? nil : $0 }
        }

        init(folded given: String?, family: String?) {
            self.given = given
            self.family = family
        }
    }

    public var names: [Name]
    /// Normalised emails (`IdentifierNormalizer.email`).
    public var emails: [String]
    /// E.164 phone numbers.
    public var phones: [String]
    public var cards: [String]
    /// Upper case, no spaces.
    public var postcodes: [String]
    /// When this person was last seen (ms), for telling a recycled phone number from a regular's.
    public var lastSeenMs: Int64?

    public init(
        names: [Name] = [], emails: [String] = [], phones: [String] = [], cards: [String] = [], postcodes: [String] = [],
        lastSeenMs: Int64? = nil
    ) {
        self.names = names.filter { $0.given != nil || $0.family != nil }
        self.emails = emails
        self.phones = phones
        self.cards = cards
        self.postcodes = postcodes.map(Self.postcode).filter { !$0.isEmpty }
        self.lastSeenMs = lastSeenMs
    }

    public static func postcode(_ raw: String) -> String {
        String(raw.uppercased().filter { $0.isLetter || $0.isNumber })
    }

    /// Everything two records hold together (a merged customer's records are matched as one).
    public mutating func absorb(_ other: MatchRecord) {
        for name in other.names where !names.contains(name) { names.append(name) }
        for email in other.emails where !emails.contains(email) { emails.append(email) }
        for phone in other.phones where !phones.contains(phone) { phones.append(phone) }
        for card in other.cards where !cards.contains(card) { cards.append(card) }
        for postcode in other.postcodes where !postcodes.contains(postcode) { postcodes.append(postcode) }
        if let seen = other.lastSeenMs { lastSeenMs = max(lastSeenMs ?? seen, seen) }
    }

    public var isEmpty: Bool { names.isEmpty && emails.isEmpty && phones.isEmpty && cards.isEmpty && postcodes.isEmpty }

    /// Blocking keys: a candidate is any record sharing one. Exact identifiers, the email
    /// mailbox key (aliases and corrected domains), the phone's last eight digits (the same
    /// number read with another country code), and name keys paired so that a common name alone
    /// never makes a block (given+family, given+postcode, family+postcode).
    public var blockingKeys: [String] {
        var keys: [String] = []
        func add(_ key: String) { if !keys.contains(key) { keys.append(key) } }
        for email in emails { add("a:" + EmailKey.mailbox(email)) }
        for phone in phones { add("d:" + String(phone.suffix(8))) }
        for card in cards { add("c:" + card) }
        for name in names {
            let given = name.given.map(Nicknames.canonical)
            if let given, let family = name.family { add("n:\(given)|\(family)") }
            for postcode in postcodes {
                if let given { add("g:\(given)|\(postcode)") }
                if let family = name.family { add("f:\(family)|\(postcode)") }
            }
        }
        return keys
    }
}

/// Email keys for matching: the same mailbox however it was typed.
public enum EmailKey {
    /// Domains people mistype often enough to correct ("gmial.com", "hotmail.con").
    static let commonDomains: [String] = [
        "gmail.com", "googlemail.com", "hotmail.com", "hotmail.co.uk", "hotmail.de", "hotmail.fr", "outlook.com", "outlook.de",
        "live.com", "live.co.uk", "yahoo.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr", "icloud.com", "me.com", "aol.com",
        "btinternet.com", "sky.com", "virginmedia.com", "gmx.de", "gmx.net", "gmx.at", "web.de", "t-online.de", "freenet.de",
        "orange.fr", "free.fr", "wanadoo.fr", "laposte.net", "sfr.fr", "libero.it", "virgilio.it", "tiscali.it",
        "proton.me", "protonmail.com", "mail.ru", "yandex.ru", "wp.pl", "o2.pl", "onet.pl", "interia.pl", "seznam.cz",
        "telenet.be", "skynet.be", "ziggo.nl", "kpnmail.nl", "bluewin.ch", "mail.com",
    ]

    /// The domain a mistyped one was meant to be: a common domain one edit away (two for long
    /// ones), if exactly one is. Unknown domains are kept as typed.
    public static func correctedDomain(_ domain: String) -> String {
        if commonDomainSet.contains(domain) { return domain }
        return corrections.value(for: domain) { correct(domain) }
    }

    static let commonDomainSet = Set(commonDomains)
    /// Domains corrected before: each is an edit distance against every common domain.
    private static let corrections = BoundedMemo<String, String>(capacity: 4096)

    private static func correct(_ domain: String) -> String {
        let limit = domain.utf8.count >= 10 ? 2 : 1
        var found: String?
        for candidate in commonDomains where Similarity.editDistance(domain.utf8, candidate.utf8, limit: limit) <= limit {
            if found != nil { return domain }  // two near domains: do not guess
            found = candidate
        }
        return found ?? domain
    }

    /// The mailbox key of a normalised email: the domain corrected, a +tag dropped, and for
    /// Gmail the dots too (Google ignores them). Evidence, never identity.
    public static func mailbox(_ email: String) -> String {
        guard let at = email.lastIndex(of: "@") else { return email }
        var local = Substring(email[..<at])
        var domain = correctedDomain(String(email[email.index(after: at)...]))
        if let plus = local.firstIndex(of: "+"), plus != local.startIndex { local = local[..<plus] }
        if domain == "googlemail.com" { domain = "gmail.com" }
        if domain == "gmail.com" { local = Substring(local.filter { $0 != "." }) }
        return "\(local)@\(domain)"
    }
}

/// One field's comparison: how the two records agreed on it and what that is worth.
public struct FieldEvidence: Sendable, Hashable, CustomStringConvertible {
    public enum Field: String, Sendable, Hashable, CaseIterable {
        case givenName = "given_name", familyName = "family_name", email, phone, card = "loyalty_card", postcode
    }

    public enum Level: String, Sendable, Hashable {
        case exact
        /// Given names of one group (Jon/Jonathan, Kathi/Katharina).
        case nickname
        /// Jaro-Winkler above the field's bar: a typo or a transliteration.
        case similar
        /// An initial against a name that starts with it.
        case initial
        /// One of several tokens in common (double-barrelled names).
        case partial
        /// The same mailbox: a Gmail dot or +tag alias, or a corrected domain.
        case alias
        /// One edit apart: a typo in an email's local part or one digit of a phone.
        case typo
        /// The same national number with another country code (a region misread).
        case national
        /// The same postcode district, not the same postcode.
        case district
        case disagree
    }

    public var field: Field
    public var level: Level
    /// The log2 likelihood ratio this comparison contributes.
    public var weight: Double

    public var description: String { "\(field.rawValue) \(level.rawValue) (\(weight >= 0 ? "+" : "")\(String(format: "%.1f", weight)))" }
}

/// The matcher's verdict on a pair.
public struct MatchScore: Sendable, Hashable {
    public var total: Double
    public var evidence: [FieldEvidence]
    /// A rule that makes the pair two people whatever the score (a household's shared phone,
    /// twins, a recycled number).
    public var veto: String?

    public func level(of field: FieldEvidence.Field) -> FieldEvidence.Level? {
        evidence.first { $0.field == field }?.level
    }

    /// Agreement on something besides names: what a review needs before it is worth a person's time.
    public var hasNonNameAgreement: Bool {
        evidence.contains { $0.field != .givenName && $0.field != .familyName && $0.weight > 0 }
    }

    /// Agreement on something one person has and a household does not: a card, an email, or
    /// the given name. Phone, family name and postcode are a household's as much as a
    /// person's, so they alone never decide (partners share all three).
    public var hasPersonalAgreement: Bool {
        evidence.contains { evidence in
            evidence.weight > 0 && (evidence.field == .card || evidence.field == .email || (evidence.field == .givenName && evidence.level != .initial))
        }
    }

    /// Whether names contradict each other (either name disagrees).
    public var namesConflict: Bool {
        level(of: .givenName) == .disagree || level(of: .familyName) == .disagree
    }
}

/// A Fellegi-Sunter matcher: each field compared to an agreement level, each level weighted
/// by log2(m/u) (how much likelier the level is between two records of one person than of two
/// people), the weights summed. The weights are estimates for till data (names as typed at a
/// counter, emails and phones given once in a while); the thresholds hold the figures in
/// docs/identity.md without tuning per shop.
public struct Matcher: Sendable {
    public struct Weights: Sendable, Hashable {
        public var givenExact = 6.5, givenNickname = 5.5, givenSimilar = 4.0, givenInitial = 2.0, givenDisagree = -7.0
        public var familyExact = 7.5, familySimilar = 4.5, familyPartial = 4.0, familyDisagree = -5.0
        public var emailExact = 12.5, emailAlias = 10.5, emailTypo = 7.0, emailDisagree = -2.0
        public var phoneExact = 9.5, phoneNational = 7.5, phoneTypo = 5.5, phoneDisagree = -2.0
        public var cardExact = 15.0, cardDisagree = -1.0
        public var postcodeExact = 6.0, postcodeDistrict = 1.5, postcodeDisagree = -2.5
        public init() {}
    }

    public var weights = Weights()
    /// At or above: the same person, merged without asking.
    public var automaticThreshold = 18.0
    /// At or above (with agreement beyond names): queued for a person to decide.
    public var reviewThreshold = 9.0
    /// A phone number unused for longer than this may have been given to someone else.
    public var phoneRecycleGapMs: Int64 = 2 * 365 * 86_400_000
    /// Jaro-Winkler at or above which two names are the same name mistyped.
    public var nameSimilarity = 0.92

    public init() {}

    // MARK: comparisons

    public func compare(_ a: MatchRecord, _ b: MatchRecord) -> MatchScore {
        var evidence: [FieldEvidence] = []
        var veto: String?
        let (given, family) = compareNames(a.names, b.names)
        if let given { evidence.append(given) }
        if let family { evidence.append(family) }
        if let email = compareEmails(a.emails, b.emails) { evidence.append(email) }
        if var phone = comparePhones(a.phones, b.phones) {
            // A number seen again after a long silence under another name is a recycled number:
            // the agreement says nothing about the person.
            if phone.weight > 0, let seenA = a.lastSeenMs, let seenB = b.lastSeenMs, abs(seenA - seenB) > phoneRecycleGapMs,
                given?.level == .disagree || family?.level == .disagree
            {
                phone.weight = 0
                veto = veto ?? "phone number seen again after a long gap under another name (a recycled number)"
            }
            evidence.append(phone)
        }
        if let card = compareCards(a.cards, b.cards) { evidence.append(card) }
        if let postcode = comparePostcodes(a.postcodes, b.postcodes) { evidence.append(postcode) }

        let cardAgrees = evidence.contains { $0.field == .card && $0.level == .exact }
        if given?.level == .disagree, !cardAgrees {
            // Households share phones, emails, surnames and postcodes; twins share all of it
            // but the given name. Two given names that cannot be one person's are two people.
            veto = "different given names (a household, or twins)"
        }
        return MatchScore(total: evidence.reduce(0) { $0 + $1.weight }, evidence: evidence, veto: veto)
    }

    /// The best-agreeing pair of names, given and family compared together so that one
    /// person's given name is not matched with another's family name.
    func compareNames(_ a: [MatchRecord.Name], _ b: [MatchRecord.Name]) -> (FieldEvidence?, FieldEvidence?) {
        var best: (FieldEvidence?, FieldEvidence?) = (nil, nil)
        var bestWeight = -Double.infinity
        // An initial agrees with any name starting with it, so it cannot outweigh two full given
        // names that disagree: "J." and "Jean" on file against "Jérôme" is a conflict.
        var fullGivenAgree = false, fullGivenDisagree = false
        for x in a {
            for y in b {
                var given = compareGiven(x.given, y.given)
                var family = compareFamily(x.family, y.family)
                // "Wei Zhang" entered as given "Zhang", family "Wei": the same two names swapped.
                if let gx = x.given, let fx = x.family, let gy = y.given, let fy = y.family, gx == fy, fx == gy, gx != fx {
                    given = FieldEvidence(field: .givenName, level: .exact, weight: weights.givenExact)
                    family = FieldEvidence(field: .familyName, level: .exact, weight: weights.familyExact)
                }
                switch given?.level {
                case .exact?, .nickname?, .similar?: fullGivenAgree = true
                case .disagree?: fullGivenDisagree = true
                default: break
                }
                let weight = (given?.weight ?? 0) + (family?.weight ?? 0)
                if weight > bestWeight {
                    bestWeight = weight
                    best = (given, family)
                }
            }
        }
        if best.0?.level == .initial, fullGivenDisagree, !fullGivenAgree {
            best.0 = FieldEvidence(field: .givenName, level: .disagree, weight: weights.givenDisagree)
        }
        return best
    }

    func compareGiven(_ a: String?, _ b: String?) -> FieldEvidence? {
        guard let a, let b else { return nil }
        func level(_ level: FieldEvidence.Level, _ weight: Double) -> FieldEvidence { FieldEvidence(field: .givenName, level: level, weight: weight) }
        if a == b { return level(.exact, weights.givenExact) }
        if a.utf8.count == 1 || b.utf8.count == 1 {
            return a.first == b.first ? level(.initial, weights.givenInitial) : level(.disagree, weights.givenDisagree)
        }
        if Nicknames.areNicknames(a, b) { return level(.nickname, weights.givenNickname) }
        if Similarity.jaroWinkler(a, b) >= nameSimilarity { return level(.similar, weights.givenSimilar) }
        return level(.disagree, weights.givenDisagree)
    }

    func compareFamily(_ a: String?, _ b: String?) -> FieldEvidence? {
        guard let a, let b else { return nil }
        func level(_ level: FieldEvidence.Level, _ weight: Double) -> FieldEvidence { FieldEvidence(field: .familyName, level: level, weight: weight) }
        if a == b { return level(.exact, weights.familyExact) }
        if Similarity.jaroWinkler(a, b) >= nameSimilarity { return level(.similar, weights.familySimilar) }
        let left = a.split(separator: " "), right = b.split(separator: " ")
        if left.count > 1 || right.count > 1, left.contains(where: right.contains) { return level(.partial, weights.familyPartial) }
        return level(.disagree, weights.familyDisagree)
    }

    func compareEmails(_ a: [String], _ b: [String]) -> FieldEvidence? {
        guard !a.isEmpty, !b.isEmpty else { return nil }
        func level(_ level: FieldEvidence.Level, _ weight: Double) -> FieldEvidence { FieldEvidence(field: .email, level: level, weight: weight) }
        if a.contains(where: b.contains) { return level(.exact, weights.emailExact) }
        let left = a.map(EmailKey.mailbox), right = b.map(EmailKey.mailbox)
        if left.contains(where: right.contains) { return level(.alias, weights.emailAlias) }
        for x in left {
            for y in right {
                guard let atX = x.lastIndex(of: "@"), let atY = y.lastIndex(of: "@"), x[atX...] == y[atY...] else { continue }
                if Self.isLocalPartTypo(x[..<atX], y[..<atY]) { return level(.typo, weights.emailTypo) }
            }
        }
        return level(.disagree, weights.emailDisagree)
    }

    /// Whether two mailbox names are one typed with a slip: one letter swapped, dropped,
    /// doubled or mistyped. A difference in a digit or a separator is not a slip: digits and
    /// dots are what people add to make an address of their name their own (david.jones57
    /// and david.jones17, tomasz_kozlowski and tomaszkozlowski are two people).
    static func isLocalPartTypo(_ a: Substring, _ b: Substring) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard min(x.count, y.count) >= 5, Similarity.editDistance(x, y, limit: 1) == 1 else { return false }
        func identityBearing(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        // The characters that differ: strip the common prefix and suffix.
        var start = 0
        while start < min(x.count, y.count), x[start] == y[start] { start += 1 }
        var endX = x.count, endY = y.count
        while endX > start, endY > start, x[endX - 1] == y[endY - 1] { endX -= 1; endY -= 1 }
        return !(x[start..<endX] + y[start..<endY]).contains(where: identityBearing)
    }

    func comparePhones(_ a: [String], _ b: [String]) -> FieldEvidence? {
        guard !a.isEmpty, !b.isEmpty else { return nil }
        func level(_ level: FieldEvidence.Level, _ weight: Double) -> FieldEvidence { FieldEvidence(field: .phone, level: level, weight: weight) }
        if a.contains(where: b.contains) { return level(.exact, weights.phoneExact) }
        for x in a {
            for y in b {
                if x.utf8.count >= 10, y.utf8.count >= 10, x.suffix(9) == y.suffix(9) { return level(.national, weights.phoneNational) }
            }
        }
        for x in a {
            for y in b where x.utf8.count == y.utf8.count && x.utf8.count >= 9 {
                if Similarity.editDistance(x.utf8, y.utf8, limit: 1) <= 1 { return level(.typo, weights.phoneTypo) }
            }
        }
        return level(.disagree, weights.phoneDisagree)
    }

    func compareCards(_ a: [String], _ b: [String]) -> FieldEvidence? {
        guard !a.isEmpty, !b.isEmpty else { return nil }
        // People lose cards and get new ones: a different card says little.
        return a.contains(where: b.contains)
            ? FieldEvidence(field: .card, level: .exact, weight: weights.cardExact)
            : FieldEvidence(field: .card, level: .disagree, weight: weights.cardDisagree)
    }

    func comparePostcodes(_ a: [String], _ b: [String]) -> FieldEvidence? {
        guard !a.isEmpty, !b.isEmpty else { return nil }
        func level(_ level: FieldEvidence.Level, _ weight: Double) -> FieldEvidence { FieldEvidence(field: .postcode, level: level, weight: weight) }
        if a.contains(where: b.contains) { return level(.exact, weights.postcodeExact) }
        let districtsA = Set(a.map(Self.district)), districtsB = Set(b.map(Self.district))
        if !districtsA.isDisjoint(with: districtsB) { return level(.district, weights.postcodeDistrict) }
        return level(.disagree, weights.postcodeDisagree)
    }

    /// A postcode's district: the outward code of a British one ("SW1A" of "SW1A1AA"), the
    /// first three characters of others.
    static func district(_ postcode: String) -> String {
        if postcode.utf8.count >= 5, postcode.first?.isLetter == true, postcode.last?.isLetter == true { return String(postcode.dropLast(3)) }
        return String(postcode.prefix(3))
    }

    // MARK: decisions

    public enum Verdict: String, Sendable, Hashable {
        /// One person: attach, or merge two customers.
        case same
        /// Perhaps one person: a person decides (`till-crm duplicates`).
        case review
        case distinct
    }

    /// What a score means for a pair. `uniquelySharedIdentifier` is a card, email or phone the
    /// two share that no other customer shares (an email's mailbox counts: the same address
    /// with a Gmail dot or a corrected domain): the identifier the person gave at the till,
    /// which decides on its own unless the names contradict it.
    public func verdict(_ score: MatchScore, uniquelySharedIdentifier: Bool) -> Verdict {
        // A loyalty card is one person's account (the store holds each card once): whoever
        // presents it is its holder, whatever else the record says.
        if score.level(of: .card) == .exact { return .same }
        if score.veto != nil { return .distinct }
        if score.total >= automaticThreshold, score.hasPersonalAgreement { return .same }
        if uniquelySharedIdentifier, !score.namesConflict { return .same }
        if score.total >= reviewThreshold, score.hasNonNameAgreement { return .review }
        return .distinct
    }
}
