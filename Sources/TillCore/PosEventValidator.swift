/// Checks events that POS software publishes (`sale.*`, `refund.completed`,
/// `service.completed`, `customer.identified`) and those till-crm publishes, so a
/// subscriber can trust what it reads from the journal. Errors name the field.
public enum PublishedEventValidator {
    /// Topics only tilld's own devices emit; clients use `simulate` to feed a demo device instead.
    public static let deviceTopicPrefixes = ["device.", "scanner.", "printer.", "drawer.", "display."]

    public static func validate(topic: String, data: JSONValue) throws {
        guard TopicName.isValid(topic) else {
            throw WireError.badRequest(
                field: "topic",
                "\"\(topic)\" is not a topic name (lower-case dotted words such as \"sale.completed\")"
            )
        }
        if deviceTopicPrefixes.contains(where: { topic.hasPrefix($0) }) {
            throw WireError.badRequest(
                field: "topic",
                "\"\(topic)\" is emitted by tilld's devices and cannot be published; use the simulate op in demo mode"
            )
        }
        let fields = try FieldReader(data, path: "data")
        switch topic {
        case "sale.started":
            _ = try fields.string("sale")
            _ = try fields.string("till")
            _ = try fields.optionalString("store")
            _ = try fields.optionalString("staff")
        case "sale.line":
            _ = try fields.string("sale")
            _ = try fields.optionalString("sku")
            if let gtin = try fields.optionalString("gtin"), !gtin.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
                throw WireError.badRequest(field: "data.gtin", "must contain digits only")
            }
            _ = try fields.string("name")
            try fields.quantity("qty")
            try fields.money("unit_price")
            try fields.money("amount")
            _ = try fields.optionalString("category")
        case "sale.tender":
            _ = try fields.string("sale")
            _ = try fields.string("method")
            try fields.money("amount")
        case "sale.completed":
            _ = try fields.string("sale")
            try fields.money("total")
            try currency(fields)
            _ = try fields.optionalString("receipt")
        case "sale.voided":
            _ = try fields.string("sale")
            _ = try fields.optionalString("reason")
        case "refund.completed":
            _ = try fields.string("refund")
            _ = try fields.optionalString("sale", nonEmpty: true)
            _ = try fields.optionalString("receipt", nonEmpty: true)
            for (index, line) in try fields.array("lines").enumerated() {
                let item = try FieldReader(line, path: "data.lines[\(index)]")
                try item.money("amount", required: false)
                try item.money("unit_price", required: false)
                if item.has("qty") { try item.quantity("qty") }
                _ = try item.optionalString("name")
            }
            try fields.money("total")
            try currency(fields)
            _ = try fields.string("reason")
        case "service.completed":
            _ = try fields.optionalString("sale", nonEmpty: true)
            _ = try fields.string("service")
            _ = try fields.optionalString("customer", nonEmpty: true)
        case "customer.identified":
            _ = try fields.optionalString("sale", nonEmpty: true)
            let email = try fields.optionalString("email", nonEmpty: true)
            let phone = try fields.optionalString("phone", nonEmpty: true)
            let loyalty = try fields.optionalString("loyalty", nonEmpty: true)
            _ = try fields.optionalString("name")
            // Extensions (docs/protocol.md): the name in its parts, and a postcode, which help
            // till-crm tell one person from another (and read a visitor's national phone number).
            _ = try fields.optionalString("given_name")
            _ = try fields.optionalString("family_name")
            _ = try fields.optionalString("postcode")
            if email == nil && phone == nil && loyalty == nil {
                throw WireError.badRequest(field: "data", "customer.identified needs at least one of email, phone, loyalty")
            }
            if let consent = try fields.optionalObject("consent") {
                _ = try consent.optionalBool("email_marketing")
                _ = try consent.optionalBool("sms_marketing")
            }
        case "customer.recognized":
            _ = try fields.optionalString("sale", nonEmpty: true)
            _ = try fields.string("customer")
            guard try fields.optionalBool("returning") != nil else { throw WireError.missing("data.returning") }
            guard try fields.optionalInt("visits", range: 0...Int64.max) != nil else { throw WireError.missing("data.visits") }
            _ = try fields.optionalString("last_visit")
            guard try fields.stringArray("flags") != nil else { throw WireError.missing("data.flags") }
        case "crm.moment":
            _ = try fields.string("customer")
            _ = try fields.string("moment")
            _ = try fields.string("due")
        default:
            // Other topics are POS extensions: any object is accepted.
            break
        }
    }

    private static func currency(_ fields: FieldReader) throws {
        let code = try fields.string("currency")
        guard code.utf8.count == 3, code.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else {
            throw WireError.badRequest(field: fields.name("currency"), "must be an ISO 4217 code such as \"EUR\"")
        }
    }
}
