import Testing
@testable import TillCRM
import TillPhoneNumber

/// Every comparison the matcher makes, as tables: what two values are, and what level of
/// agreement (and so what weight) they get.
@Suite("Matcher comparisons", .timeLimit(.minutes(1)))
struct MatcherComparisonTests {
    let matcher = Matcher()

    @Test("names fold to one key: accents, umlauts spelled out, other scripts, case, apostrophes and hyphens", arguments: [
        ("Jürgen", "jurgen"), ("Juergen", "jurgen"), ("JURGEN", "jurgen"), ("Łukasz", "lukasz"), ("Γιώργος", "giorgos"),
        ("O'Brien", "obrien"), ("Anna-Maria", "anna maria"), ("  Zoë  ", "zo"), ("Müller", "muller"), ("Mueller", "muller"),
        ("Dvořák", "dvorak"), ("José", "jose"), ("Straße", "strasse"),
    ])
    func fold(_ name: String, _ key: String) {
        // "Zoë" → "zoe" → "zo": the umlaut spelling rule reads a trailing "oe" as "ö", on both sides alike.
        #expect(NameKey.fold(name) == key)
    }

    @Test("a full name splits into given and family names", arguments: [
        ("Jon Smith", "Jon", "Smith"), ("Smith, Jon", "Jon", "Smith"), ("Anna Maria Kowalska", "Anna Maria", "Kowalska"),
        ("Cher", "Cher", nil), (" ", nil, nil),
    ] as [(String, String?, String?)])
    func split(_ full: String, _ given: String?, _ family: String?) {
        let parts = NameKey.split(fullName: full)
        #expect(parts.given == given && parts.family == family)
    }

    @Test("Jaro-Winkler gives the published values", arguments: [
        ("martha", "marhta", 0.961), ("dwayne", "duane", 0.840), ("dixon", "dicksonx", 0.813), ("jonathan", "jonathan", 1.0), ("abc", "xyz", 0.0),
    ])
    func jaroWinkler(_ a: String, _ b: String, _ expected: Double) {
        #expect(abs(Similarity.jaroWinkler(a, b) - expected) < 0.001)
    }

    @Test("edit distance counts insertions, deletions, substitutions and adjacent swaps, and stops past its limit", arguments: [
        ("gmail.com", "gmial.com", 1), ("gmail.com", "gmail.co", 1), ("kitten", "sitting", 3), ("abc", "abc", 0), ("", "abc", 3),
    ])
    func editDistance(_ a: String, _ b: String, _ distance: Int) {
        #expect(Similarity.editDistance(a.utf8, b.utf8) == distance)
        #expect(Similarity.editDistance(a.utf8, b.utf8, limit: 0) == min(distance, 1))
    }

    @Test("given names", arguments: [
        ("anna", "anna", FieldEvidence.Level.exact), ("jon", "jonathan", .nickname), ("kathi", "katharina", .nickname),
        ("jurgen", "jorg", .nickname), ("lukasz", "lukas", .nickname), ("jonathon", "jonathan", .similar), ("stephenie", "stephanie", .similar),
        ("j", "jonathan", .initial), ("k", "jonathan", .disagree), ("anna", "maria", .disagree), ("emma", "lily", .disagree),
    ])
    func given(_ a: String, _ b: String, _ level: FieldEvidence.Level) {
        #expect(matcher.compareGiven(a, b)?.level == level)
        #expect(matcher.compareGiven(b, a)?.level == level, "symmetric")
        #expect(matcher.compareGiven(a, nil) == nil, "a missing name says nothing")
    }

    @Test("family names", arguments: [
        ("smith", "smith", FieldEvidence.Level.exact), ("kowalski", "kowalsky", .similar), ("fraser smith", "smith", .partial),
        ("lloyd jones", "jones", .partial), ("smith", "jones", .disagree),
    ])
    func family(_ a: String, _ b: String, _ level: FieldEvidence.Level) {
        #expect(matcher.compareFamily(a, b)?.level == level)
    }

    @Test("emails", arguments: [
        ("ann@example.com", "ann@example.com", FieldEvidence.Level.exact),
        ("jon.smith@gmail.com", "jonsmith@gmail.com", .alias), ("jonsmith+shop@gmail.com", "jonsmith@gmail.com", .alias),
        ("jon.smith@googlemail.com", "jonsmith@gmail.com", .alias), ("ann@gmial.com", "ann@gmail.com", .alias),
        ("ann@hotmial.co.uk", "ann@hotmail.co.uk", .alias), ("ann+news@example.com", "ann@example.com", .alias),
        ("jonathan.smiht@example.com", "jonathan.smith@example.com", .typo),
        ("david.jones57@example.com", "david.jones17@example.com", .disagree), ("tomasz_kozlowski@wp.pl", "tomaszkozlowski@wp.pl", .disagree),
        ("jon.smith@example.com", "jonsmith@example.com", .disagree), ("ann@example.com", "bea@example.com", .disagree),
    ])
    func emails(_ a: String, _ b: String, _ level: FieldEvidence.Level) {
        #expect(matcher.compareEmails([a], [b])?.level == level)
        #expect(matcher.compareEmails([b], [a])?.level == level, "symmetric")
    }

    @Test("email domains one slip from a common one are read as it; others are kept", arguments: [
        ("gmial.com", "gmail.com"), ("gmail.co", "gmail.com"), ("hotmail.con", "hotmail.com"), ("wbe.de", "web.de"),
        ("example.com", "example.com"), ("shop-lane.co.uk", "shop-lane.co.uk"), ("gmail.com", "gmail.com"),
    ])
    func domains(_ typed: String, _ meant: String) {
        #expect(EmailKey.correctedDomain(typed) == meant)
    }

    @Test("phones", arguments: [
        ("+447911123456", "+447911123456", FieldEvidence.Level.exact), ("+447911123456", "+447911123457", .typo),
        ("+49151123456789", "+44151123456789", .national), ("+447911123456", "+447700900123", .disagree),
    ])
    func phones(_ a: String, _ b: String, _ level: FieldEvidence.Level) {
        #expect(matcher.comparePhones([a], [b])?.level == level)
    }

    @Test("cards agree only exactly; a different card says little (cards get lost and replaced)")
    func cards() {
        #expect(matcher.compareCards(["LOY1"], ["LOY1"])?.level == .exact)
        let other = matcher.compareCards(["LOY1"], ["LOY2"])
        #expect(other?.level == .disagree && (other?.weight ?? -99) > -2)
    }

    @Test("postcodes", arguments: [
        ("SW1A1AA", "SW1A1AA", FieldEvidence.Level.exact), ("SW1A1AA", "SW1A2BB", .district), ("10115", "10117", .district),
        ("SW1A1AA", "M11AE", .disagree),
    ])
    func postcodes(_ a: String, _ b: String, _ level: FieldEvidence.Level) {
        #expect(matcher.comparePostcodes([a], [b])?.level == level)
    }

    @Test("a national number is read in the country the postcode or email points to, before the shop's own", arguments: [
        ("SW1A 1AA", nil, "GB", ["GB"]), ("00-950", nil, "GB", ["PL", "GB"]), ("10115", "jm@web.de", "GB", ["DE", "GB"]),
        ("10115", "jm@web.de", "DE", ["DE"]), (nil, "ann@example.co.uk", "DE", ["GB", "DE"]), (nil, "ann@x.io", "GB", ["GB"]),
    ] as [(String?, String?, String, [String])])
    func regionHints(_ postcode: String?, _ email: String?, _ shop: String, _ regions: [String]) {
        #expect(RegionHint.regions(postcode: postcode, email: email, defaultRegion: shop) == regions)
    }

    @Test("a German visitor's national mobile in a British shop, with a German email, is German")
    func visitorPhone() throws {
        let normalizer = IdentifierNormalizer(defaultRegion: "GB")
        #expect(try normalizer.phone("0151 12345678", postcode: "10115", email: "jm@web.de").normalized == "+4915112345678")
        #expect(throws: InvalidIdentifier.self) { try normalizer.phone("0151 12345678") }
    }

    @Test("mobile numbers are one person's, landlines a household's (libphonenumber's line type)")
    func lineTypes() {
        #expect(PhoneNumber.kind(ofE164: "+447911123456") == .mobile)
        #expect(PhoneNumber.kind(ofE164: "+442079460018") == .fixedLine)
        #expect(PhoneNumber.kind(ofE164: "+4915112345678") == .mobile)
    }
}

/// How a score becomes a decision, and the rules no score overrides.
@Suite("Matcher decisions", .timeLimit(.minutes(1)))
struct MatcherDecisionTests {
    let matcher = Matcher()

    func record(_ given: String?, _ family: String?, emails: [String] = [], phones: [String] = [], cards: [String] = [], postcode: String? = nil, seen: Int64? = nil) -> MatchRecord {
        MatchRecord(names: [.init(given: given, family: family)], emails: emails, phones: phones, cards: cards, postcodes: postcode.map { [$0] } ?? [], lastSeenMs: seen)
    }

    @Test("a shared phone with a different given name is a household, whatever else agrees")
    func household() {
        let score = matcher.compare(record("Mary", "Smith", phones: ["+442079460018"], postcode: "SW1A1AA"), record("John", "Smith", phones: ["+442079460018"], postcode: "SW1A1AA"))
        #expect(score.veto != nil)
        #expect(matcher.verdict(score, uniquelySharedIdentifier: true) == .distinct)
    }

    @Test("phone, family name and postcode alone pass the automatic threshold yet never decide")
    func householdEvidenceAlone() {
        let score = matcher.compare(record(nil, "Smith", phones: ["+442079460018"], postcode: "SW1A1AA"), record(nil, "Smith", phones: ["+442079460018"], postcode: "SW1A1AA"))
        #expect(score.total >= matcher.automaticThreshold)
        #expect(!score.hasPersonalAgreement)
        #expect(matcher.verdict(score, uniquelySharedIdentifier: false) == .review)
    }

    @Test("a number seen again after years under another name is a recycled number")
    func recycled() {
        let year: Int64 = 365 * 86_400_000
        let score = matcher.compare(record("Tom", "Baker", phones: ["+447911123456"], seen: 6 * year), record("Anna", "Lee", phones: ["+447911123456"], seen: 2 * year))
        #expect(score.veto != nil)
        #expect(score.level(of: .phone) == .exact && score.evidence.first { $0.field == .phone }?.weight == 0, "the shared number is worth nothing")
    }

    @Test("twins share everything but the given name")
    func twins() {
        let score = matcher.compare(
            record("Emma", "Jones", emails: ["jones.family@example.com"], phones: ["+442079460018"], postcode: "SW1A1AA"),
            record("Lily", "Jones", emails: ["jones.family@example.com"], phones: ["+442079460018"], postcode: "SW1A1AA"))
        #expect(score.veto != nil && matcher.verdict(score, uniquelySharedIdentifier: true) == .distinct)
    }

    @Test("a presented card decides, whatever the names say (a card is one person's account)")
    func card() {
        let score = matcher.compare(record("Anna", "Lee", cards: ["LOY1"]), record("Bea", "Lee", cards: ["LOY1"]))
        #expect(matcher.verdict(score, uniquelySharedIdentifier: true) == .same)
    }

    @Test("an identifier only one customer holds decides, unless the names contradict it")
    func uniqueIdentifier() {
        let bare = matcher.compare(record(nil, nil, emails: ["ann@example.com"]), record("Ann", "Lee", emails: ["ann@example.com"]))
        #expect(matcher.verdict(bare, uniquelySharedIdentifier: true) == .same)
        #expect(matcher.verdict(bare, uniquelySharedIdentifier: false) == .review, "shared by a household: a person decides")
        let contradicted = matcher.compare(record("Bob", "Lee", emails: ["ann@example.com"]), record("Ann", "Lee", emails: ["ann@example.com"]))
        #expect(matcher.verdict(contradicted, uniquelySharedIdentifier: true) == .distinct)
    }

    @Test("the same common name and nothing else is two people; with a postcode and a nickname it is one")
    func names() {
        let strangers = matcher.compare(record("John", "Smith", emails: ["js1@example.com"]), record("John", "Smith", emails: ["john.smith@example.org"]))
        #expect(matcher.verdict(strangers, uniquelySharedIdentifier: false) == .distinct)
        let neighbour = matcher.compare(record("Jon", "Smith", postcode: "SW1A1AA"), record("Jonathan", "Smith", postcode: "SW1A1AA"))
        #expect(matcher.verdict(neighbour, uniquelySharedIdentifier: false) == .same)
    }

    @Test("an initial on file does not outweigh a full given name that disagrees")
    func initialAgainstFullNames() {
        let onFile = MatchRecord(names: [.init(given: "Jean", family: "Lefèvre"), .init(given: "J.", family: "Lefèvre")], phones: ["+441314961104"])
        let score = matcher.compare(record("Jérôme", "Lefèvre", phones: ["+441314961104"]), onFile)
        #expect(score.level(of: .givenName) == .disagree && score.veto != nil)
    }

    @Test("swapped given and family names are the same two names")
    func swapped() {
        let score = matcher.compare(record("Zhang", "Wei"), record("Wei", "Zhang"))
        #expect(score.level(of: .givenName) == .exact && score.level(of: .familyName) == .exact)
    }

    @Test("blocking keys: a common name alone never makes a block; nicknames share one")
    func blockingKeys() {
        let keys = record("Jon", "Smith", emails: ["Jon.Smith@gmail.com".lowercased()], phones: ["+447911123456"], postcode: "SW1A1AA").blockingKeys
        #expect(keys.contains("a:jonsmith@gmail.com") && keys.contains("d:11123456") && keys.contains("n:john|smith"))
        #expect(keys.contains("g:john|SW1A1AA") && keys.contains("f:smith|SW1A1AA"))
        #expect(record("Jonathan", "Smith").blockingKeys == ["n:john|smith"], "Jonathan and Jon fall in one block")
        #expect(!keys.contains { $0 == "g:john" || $0 == "f:smith" }, "no key of a name alone")
    }
}
