import Testing
@testable import TillCRM
import TillPhoneNumber

@Suite("Customer identifiers", .timeLimit(.minutes(1)))
struct IdentifierTests {
    let normalizer = IdentifierNormalizer(defaultRegion: "GB")

    @Test("phones become E.164 with the shop's region; spaces, dashes and prefixes do not matter", arguments: [
        ("07911 123456", "+447911123456"), ("+44 7911 123456", "+447911123456"), ("0044-7911-123-456", "+447911123456"),
        ("(020) 7946 0018", "+442079460018"), ("+49 30 901820", "+4930901820"), ("+1 (202) 555-0143", "+12025550143"),
    ])
    func phones(_ raw: String, _ e164: String) throws {
        #expect(try normalizer.phone(raw).normalized == e164)
    }

    @Test("invalid phones are refused with a clear reason", arguments: ["12", "07911 1234567890123", "not a phone", "+44 1"])
    func invalidPhones(_ raw: String) {
        #expect(throws: InvalidIdentifier.self) { try normalizer.phone(raw) }
    }

    @Test("a national number depends on the configured region")
    func region() throws {
        let french = IdentifierNormalizer(defaultRegion: "FR")
        #expect(try french.phone("06 12 34 56 78").normalized == "+33612345678")
        #expect(PhoneNumber.region(ofE164: "+33612345678") == "FR")
    }

    @Test("emails are trimmed and case-folded; malformed ones are refused")
    func emails() throws {
        #expect(try normalizer.email("  Ann.Smith@Example.COM ").normalized == "ann.smith@example.com")
        for bad in ["ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@@example.com", "ann@-x.com"] {
            #expect(throws: InvalidIdentifier.self, "\(bad)") { try normalizer.email(bad) }
        }
    }

    @Test("Gmail aliases are evidence for matching, other providers keep their dots")
    func aliases() {
        #expect(IdentifierNormalizer.mailboxAlias(ofNormalizedEmail: "ann.smith+till@gmail.com") == "annsmith@gmail.com")
        #expect(IdentifierNormalizer.mailboxAlias(ofNormalizedEmail: "a.nn@googlemail.com") == "ann@gmail.com")
        #expect(IdentifierNormalizer.mailboxAlias(ofNormalizedEmail: "ann.smith@example.com") == nil)
    }

    @Test("loyalty cards lose spaces and case")
    func cards() throws {
        #expect(try normalizer.loyaltyCard(" loy 0042 ").normalized == "LOY0042")
        #expect(throws: InvalidIdentifier.self) { try normalizer.loyaltyCard("12") }
    }
}
