import Testing
@testable import TillCore

@Suite("POS event validation", .timeLimit(.minutes(1)))
struct PublishedEventValidatorTests {
    static let valid: [(String, JSONValue)] = [
        ("sale.started", ["sale": "S1", "till": "T1", "store": "main"]),
        ("sale.line", ["sale": "S1", "gtin": "4006381333931", "name": "Pen", "qty": 2, "unit_price": "1.50", "amount": "3.00"]),
        ("sale.line", ["sale": "S1", "name": "Cheese", "qty": "0.350", "unit_price": "21.90", "amount": "7.67"]),
        ("sale.tender", ["sale": "S1", "method": "card", "amount": "3.00"]),
        ("sale.completed", ["sale": "S1", "total": "3.00", "currency": "EUR", "receipt": "R-1001"]),
        ("sale.voided", ["sale": "S1"]),
        ("refund.completed", ["refund": "F1", "receipt": "R-1001", "lines": [["name": "Pen", "qty": 1, "amount": "1.50"]], "total": "1.50", "currency": "EUR", "reason": "damaged"]),
        ("service.completed", ["service": "bike repair", "customer": "C1"]),
        ("customer.identified", ["sale": "S1", "email": "a@b.example", "consent": ["email_marketing": true]]),
        ("customer.recognized", ["customer": "C1", "returning": true, "visits": 4, "flags": ["vip"]]),
        ("crm.moment", ["customer": "C1", "moment": "quiet_regular", "due": "2026-12-01"]),
        ("pos.custom_thing", ["anything": [1, 2, 3]]),
    ]

    @Test("valid events pass", arguments: valid.indices)
    func passes(_ index: Int) throws {
        let (topic, data) = Self.valid[index]
        try PublishedEventValidator.validate(topic: topic, data: data)
    }

    static let invalid: [(String, JSONValue, String)] = [
        ("sale.started", ["till": "T1"], "data.sale"),
        ("sale.started", ["sale": "", "till": "T1"], "data.sale"),
        ("sale.started", ["sale": 5, "till": "T1"], "data.sale"),
        ("sale.line", ["sale": "S1", "name": "Pen", "qty": 1, "unit_price": 1.5, "amount": "1.50"], "data.unit_price"),
        ("sale.line", ["sale": "S1", "name": "Pen", "qty": "two", "unit_price": "1.50", "amount": "1.50"], "data.qty"),
        ("sale.line", ["sale": "S1", "name": "Pen", "qty": 1, "unit_price": "1,50", "amount": "1.50"], "data.unit_price"),
        ("sale.line", ["sale": "S1", "gtin": "40063-81", "name": "Pen", "qty": 1, "unit_price": "1.50", "amount": "1.50"], "data.gtin"),
        ("sale.tender", ["sale": "S1", "method": "card"], "data.amount"),
        ("sale.completed", ["sale": "S1", "total": "3.00"], "data.currency"),
        ("sale.completed", ["sale": "S1", "total": "3.00", "currency": "euro"], "data.currency"),
        ("sale.completed", ["sale": "S1", "total": "1e3", "currency": "EUR"], "data.total"),
        ("refund.completed", ["refund": "F1", "lines": [], "total": "1.00", "currency": "EUR"], "data.reason"),
        ("refund.completed", ["refund": "F1", "lines": [["amount": 1]], "total": "1.00", "currency": "EUR", "reason": "x"], "data.lines[0].amount"),
        ("service.completed", ["sale": "S1"], "data.service"),
        ("customer.identified", ["sale": "S1", "name": "Ann"], "data"),
        ("customer.identified", ["email": "a@b.example", "consent": ["email_marketing": "yes"]], "data.consent.email_marketing"),
        ("customer.recognized", ["customer": "C1", "visits": 1, "flags": []], "data.returning"),
    ]

    @Test("invalid events name the field", arguments: invalid.indices)
    func fails(_ index: Int) {
        let (topic, data, field) = Self.invalid[index]
        #expect {
            try PublishedEventValidator.validate(topic: topic, data: data)
        } throws: { error in
            guard let error = error as? WireError else { return false }
            return error.code == .badRequest && error.details?["field"] == .string(field)
        }
    }

    @Test("decimal strings", arguments: [
        ("12.50", true), ("0", true), ("-3.2", true), ("0.125", true), ("12.", false), (".5", false),
        ("1e3", false), ("+1", false), (" 1", false), ("1,50", false), ("", false), ("-", false), ("1234567890123456", false),
    ])
    func decimals(_ text: String, _ valid: Bool) {
        #expect(DecimalString.isValid(text) == valid)
    }
}
