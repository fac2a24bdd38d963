public import TillCore

/// What the customer types on the screen's "receipt by email / join" form, checked before
/// anything is published: an email (required: this form is for the customer's own address),
/// a phone (optional), and the channels they ticked. Pure, so every refusal is tested.
public struct Signup: Sendable, Equatable {
    public var sale: String
    public var email: String
    public var phone: String?
    /// Only the boxes the customer ticked. An unticked box is not sent as `false`: not ticking
    /// "email me offers" on a tablet is not a withdrawal of a consent they gave before (that is
    /// the unsubscribe link's job, or the shop's in till-crm).
    public var emailMarketing: Bool
    public var smsMarketing: Bool

    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// Which field (for the page to put the message beside it).
        public var field: String
        public var description: String
    }

    public init(_ body: JSONValue) throws(Refusal) {
        guard let sale = body["sale"]?.stringValue, !sale.isEmpty else {
            throw Refusal(field: "sale", description: "the screen did not say which sale this is; reload the page")
        }
        self.sale = sale
        let email = (body["email"]?.stringValue ?? "").trimmingWhitespace()
        guard Self.looksLikeEmail(email) else {
            throw Refusal(field: "email", description: "that does not look like an email address; check it and try again")
        }
        self.email = email
        let phone = (body["phone"]?.stringValue ?? "").trimmingWhitespace()
        if phone.isEmpty {
            self.phone = nil
        } else {
            guard Self.looksLikePhone(phone) else {
                throw Refusal(field: "phone", description: "that does not look like a phone number; leave it empty or check it")
            }
            self.phone = phone
        }
        emailMarketing = body["consent"]?["email_marketing"]?.boolValue ?? false
        smsMarketing = body["consent"]?["sms_marketing"]?.boolValue ?? false
        if smsMarketing && self.phone == nil {
            throw Refusal(field: "phone", description: "to get texts, give a phone number (or untick the box)")
        }
    }

    /// `customer.identified` for the sale (contract: at least one of email, phone, loyalty).
    public var event: JSONValue {
        var data: [String: JSONValue] = ["sale": .string(sale), "email": .string(email)]
        if let phone { data["phone"] = .string(phone) }
        var consent: [String: JSONValue] = [:]
        if emailMarketing { consent["email_marketing"] = true }
        if smsMarketing { consent["sms_marketing"] = true }
        if !consent.isEmpty { data["consent"] = .object(consent) }
        return .object(data)
    }

    /// One `@`, something before it, a dotted domain after it, no spaces, at most 254 bytes:
    /// catches what a thumb on a tablet gets wrong without refusing real addresses.
    static func looksLikeEmail(_ text: String) -> Bool {
        guard (3...254).contains(text.utf8.count), !text.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true }) else { return false }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64 else { return false }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-") }
    }

    /// Digits with the usual separators, 6 to 15 digits (E.164's most), an optional leading +.
    static func looksLikePhone(_ text: String) -> Bool {
        var digits = 0
        for (index, character) in text.enumerated() {
            if character.isASCII, character.isNumber { digits += 1; continue }
            if character == "+", index == 0 { continue }
            if " -().".contains(character) { continue }
            return false
        }
        return (6...15).contains(digits)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
