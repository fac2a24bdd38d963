import TillPhoneNumber

/// How a customer is recognised. One identifier (kind + normalised value) belongs to at
/// most one active customer; the raw value is kept as it was given.
public struct CustomerIdentifier: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case loyaltyCard = "loyalty_card"
        case email
        case phone
        case external
    }

    public var kind: Kind
    public var raw: String
    public var normalized: String

    public init(kind: Kind, raw: String, normalized: String) {
        self.kind = kind
        self.raw = raw
        self.normalized = normalized
    }

    public var description: String { "\(kind.rawValue) \(normalized)" }
}

/// Why an identifier was refused, said so the cashier or the POS developer can fix it.
public struct InvalidIdentifier: Error, Sendable, Hashable, CustomStringConvertible {
    public var kind: CustomerIdentifier.Kind
    public var input: String
    public var reason: String
    public var description: String { "invalid \(kind.rawValue) \"\(input)\": \(reason)" }
}

/// Turns what was typed or scanned at the till into the keys customers are matched on.
public struct IdentifierNormalizer: Sendable {
    /// ISO 3166 region for phone numbers typed without a country code ("GB", "DE", "FR").
    public var defaultRegion: String

    public init(defaultRegion: String) {
        self.defaultRegion = defaultRegion
    }

    /// Trimmed and case-folded, local part and domain alike: shops do not get mail for
    /// `Ann@` and `ann@` at two different people.
    public func email(_ raw: String) throws -> CustomerIdentifier {
        let text = raw.trimmingWhitespace()
        func refuse(_ reason: String) -> InvalidIdentifier { InvalidIdentifier(kind: .email, input: raw, reason: reason) }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw refuse("an email address has exactly one @") }
        let local = parts[0]
        let domain = parts[1]
        guard !local.isEmpty, local.utf8.count <= 64 else { throw refuse("the part before @ must be 1 to 64 characters") }
        // ASCII (nearly every address) is checked byte by byte: tab to carriage return, and space.
        let spaced = text.utf8.allSatisfy { $0 < 0x80 }
            ? text.utf8.contains { $0 == 0x20 || (0x09...0x0D).contains($0) }
            : text.contains { $0.isWhitespace || $0.isNewline }
        guard !spaced else { throw refuse("it contains spaces") }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        func isDomainCharacter(_ character: Character) -> Bool {
            if let ascii = character.asciiValue {
                return (0x30...0x39).contains(ascii) || (0x41...0x5A).contains(ascii) || (0x61...0x7A).contains(ascii) || ascii == 0x2D
            }
            return character.isLetter || character.isNumber  // internationalised domains
        }
        guard domain.utf8.count <= 253, labels.count >= 2,
            labels.allSatisfy({ label in
                !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-") && label.allSatisfy(isDomainCharacter)
            })
        else { throw refuse("\"\(domain)\" is not a mail domain such as example.com") }
        return CustomerIdentifier(kind: .email, raw: raw, normalized: text.lowercased())
    }

    /// E.164 through libphonenumber, with `defaultRegion` for national numbers. Invalid
    /// numbers are refused: a wrong number attached to a customer is worse than none.
    public func phone(_ raw: String) throws -> CustomerIdentifier {
        do {
            return CustomerIdentifier(kind: .phone, raw: raw, normalized: try PhoneNumber.e164(raw, defaultRegion: defaultRegion))
        } catch let error as PhoneNumber.Invalid {
            throw InvalidIdentifier(kind: .phone, input: raw, reason: "not a valid number for region \(error.region) (\(error.reason))")
        }
    }

    /// Card numbers: whitespace removed, letters upper-cased; 4 to 64 printable ASCII characters.
    public func loyaltyCard(_ raw: String) throws -> CustomerIdentifier {
        let text = String(raw.filter { !$0.isWhitespace }).uppercased()
        guard (4...64).contains(text.utf8.count), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw InvalidIdentifier(kind: .loyaltyCard, input: raw, reason: "a card number is 4 to 64 printable characters")
        }
        return CustomerIdentifier(kind: .loyaltyCard, raw: raw, normalized: text)
    }

    /// Matching *evidence*, never identity: for Gmail, dots and +tags in the local part do
    /// not change the mailbox. Other providers treat them as different addresses.
    public static func mailboxAlias(ofNormalizedEmail email: String) -> String? {
        let parts = email.split(separator: "@")
        guard parts.count == 2, ["gmail.com", "googlemail.com"].contains(parts[1]) else { return nil }
        let local = parts[0].prefix { $0 != "+" }.filter { $0 != "." }
        return "\(local)@gmail.com"
    }
}

extension String {
    func trimmingWhitespace() -> String {
        // Most text is ASCII with nothing to trim: answered from the bytes, without Characters.
        let bytes = utf8
        if let first = bytes.first, let last = bytes.last, first > 0x20, first < 0x80, last > 0x20, last < 0x80 { return self }
        var text = Substring(self)
        while let first = text.first, first.isWhitespace || first.isNewline { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace || last.isNewline { text = text.dropLast() }
        return String(text)
    }
}
