import CPhoneNumber
import TillCore

/// Phone numbers as the CRM keys them: E.164, parsed and validated by libphonenumber
/// with the shop's region for numbers typed without a country code.
public enum PhoneNumber {
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public var input: String
        public var region: String
        public var reason: String
        public var description: String { "\"\(input)\" is not a valid phone number for region \(region): \(reason)" }
    }

    /// Numbers read before, by region and text: libphonenumber's parse and validation are
    /// regular expressions, and the same regulars' numbers come back (an import of a customer
    /// list reads each one many times).
    private static let known = BoundedMemo<String, Result<String, Invalid>>(capacity: 16384)

    /// "07911 123456" in GB -> "+447911123456"; "+49 30 901820" anywhere -> "+4930901820".
    public static func e164(_ raw: String, defaultRegion region: String) throws -> String {
        try known.value(for: region + "\u{1}" + raw) {
            Result<String, Invalid> { () throws(Invalid) -> String in try parse(raw, defaultRegion: region) }
        }.get()
    }

    private static func parse(_ raw: String, defaultRegion region: String) throws(Invalid) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let result = till_phone_to_e164(raw, region.uppercased(), &buffer, buffer.count)
        guard result == Int32(TILL_PHONE_OK.rawValue) else {
            throw Invalid(input: raw, region: region.uppercased(), reason: reason(result))
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The ISO region of an E.164 number ("GB"), or nil.
    public static func region(ofE164 number: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 8)
        _ = till_phone_region(number, &buffer, buffer.count)
        let region = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return region.isEmpty ? nil : region
    }

    /// The calling code of an ISO region ("GB" → 44), nil for a region libphonenumber does not
    /// know (so a mistyped `--region UK` is refused at start, not discovered in every phone later).
    public static func countryCode(ofRegion region: String) -> Int? {
        let code = till_phone_country_code(region.uppercased())
        return code > 0 ? Int(code) : nil
    }

    /// What kind of line a number is, from its country's numbering plan.
    public enum Kind: Sendable, Hashable {
        /// One person's, as a rule (mobile and personal numbers).
        case mobile
        /// A landline, which a household shares.
        case fixedLine
        /// The plan cannot tell (North America), or the number is neither (VoIP, toll-free...).
        case unknown
    }

    private static let kinds = BoundedMemo<String, Kind>(capacity: 16384)

    /// The kind of a valid E.164 number ("+447911123456" is `.mobile`, "+442079460018" `.fixedLine`).
    public static func kind(ofE164 number: String) -> Kind {
        kinds.value(for: number) { lookUpKind(number) }
    }

    private static func lookUpKind(_ number: String) -> Kind {
        switch UInt32(till_phone_kind(number)) {
        case TILL_PHONE_KIND_MOBILE.rawValue: .mobile
        case TILL_PHONE_KIND_FIXED_LINE.rawValue: .fixedLine
        default: .unknown
        }
    }

    private static func reason(_ code: Int32) -> String {
        switch UInt32(code) {
        case TILL_PHONE_INVALID_COUNTRY.rawValue: "no country code, and the default region is unknown (set it in the config, e.g. \"GB\")"
        case TILL_PHONE_TOO_SHORT.rawValue: "too short"
        case TILL_PHONE_TOO_LONG.rawValue: "too long"
        case TILL_PHONE_INVALID.rawValue: "no such number in that country's numbering plan"
        default: "not a phone number"
        }
    }
}
