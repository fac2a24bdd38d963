import TillCore

/// What a scan is, from its text alone (and the AIM identifier when the scanner sends one).
/// Device drivers fill `raw` and `aim` from the wire; this decides symbology, check digit and kind.
public struct ScanClassifier: Sendable {
    /// Loyalty card numbers are recognised by prefix (configured per shop).
    public var loyaltyPrefixes: [String]
    /// Coupons: GS1 coupon prefixes (99, 981-984 in EAN-13) plus any configured ones.
    public var couponPrefixes: [String]
    /// In-store EAN-13s with a price or weight inside (`[[scanner.variable_measure]]`).
    public var variableMeasures: [VariableMeasureScheme]

    public init(loyaltyPrefixes: [String] = [], couponPrefixes: [String] = ["99", "981", "982", "983", "984"], variableMeasures: [VariableMeasureScheme] = []) {
        self.loyaltyPrefixes = loyaltyPrefixes
        self.couponPrefixes = couponPrefixes
        self.variableMeasures = variableMeasures
    }

    public struct Result: Sendable, Hashable {
        public var symbology: String
        public var checkDigitOK: Bool?
        public var kind: String
        /// The GS1 element string's AI → value, when the code is GS1 and parses.
        public var gs1: [String: String]? = nil
        /// The item and price or weight of an in-store EAN-13, by the shop's scheme.
        public var variableMeasure: VariableMeasure? = nil
    }

    public func classify(text: String, aim: String? = nil) -> Result {
        let digits = !text.isEmpty && text.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
        var symbology = "unknown"
        var checkOK: Bool? = nil
        if let aim, aim.hasPrefix("]") {
            symbology = Self.symbology(forAIM: aim, length: text.utf8.count)
        } else if digits {
            switch text.utf8.count {
            case 13: symbology = "ean13"
            case 8: symbology = "ean8"
            case 12: symbology = "upca"
            default: symbology = "unknown"
            }
        }
        if digits, ["ean13", "ean8", "upca"].contains(symbology) {
            checkOK = GTIN.isValid(text)
        }
        if digits, symbology == "upce", let expanded = UPCE.expand(text) {
            // An 8-digit UPC-E carries the check digit of the UPC-A it stands for.
            checkOK = text.utf8.count == 8 ? text.last == expanded.last : nil
        } else if digits, symbology == "upce" {
            checkOK = false
        }
        if digits, symbology == "itf", text.utf8.count == 14 {
            checkOK = GTIN.isValid(text)  // ITF-14 is a GTIN-14 on a carton
        }
        // GS1 when the AIM identifier says so (]C1 GS1-128, ]d2 DataMatrix, ]Q3 QR, ]e0
        // DataBar) or the text carries FNC1 as GS; the GTIN inside decides the check digit.
        var gs1: [String: String]? = nil
        let gs1AIM = aim.map { ["]C1", "]d2", "]Q3", "]e0"].contains($0) } ?? false
        if gs1AIM || text.contains(GS1.separator) {
            switch GS1.parse(text) {
            case .success(let message):
                gs1 = message.values
                if symbology == "unknown" { symbology = "gs1-128" }
                if let gtin = message.value("01") { checkOK = GTIN.isValid(gtin) }
            case .failure(let error):
                checkOK = error.message.contains("check digit") ? false : checkOK
            }
        }
        let kind: String
        if loyaltyPrefixes.contains(where: { text.hasPrefix($0) }) {
            kind = "loyalty"
        } else if ["ean13", "ean8", "upca", "upce"].contains(symbology) || (symbology == "itf" && text.utf8.count == 14), checkOK != false {
            kind = couponPrefixes.contains(where: { text.hasPrefix($0) }) && symbology == "ean13" ? "coupon" : "product"
        } else if let gs1, gs1["01"] != nil, checkOK != false {
            kind = "product"
        } else {
            kind = "unknown"
        }
        var measure: VariableMeasure? = nil
        if symbology == "ean13", checkOK == true {
            measure = variableMeasures.lazy.compactMap { $0.decode(text) }.first
        }
        return Result(symbology: symbology, checkDigitOK: checkOK, kind: kind, gs1: gs1, variableMeasure: measure)
    }

    /// AIM symbology identifier (ISO/IEC 15424) to the contract's symbology names.
    public static func symbology(forAIM aim: String, length: Int) -> String {
        let bytes = Array(aim.utf8)
        guard bytes.count >= 2 else { return "unknown" }
        let modifier = bytes.count >= 3 ? Character(UnicodeScalar(bytes[2])) : "0"
        switch Character(UnicodeScalar(bytes[1])) {
        case "E":
            if modifier == "4" { return "ean8" }
            return length == 12 ? "upca" : (length == 8 || length == 6) ? "upce" : "ean13"
        case "C": return modifier == "1" ? "gs1-128" : "code128"
        case "A": return "code39"
        case "G": return "code93"
        case "F": return "codabar"
        case "I": return "itf"
        case "e": return "gs1-databar"
        case "L": return "pdf417"
        case "Q": return "qr"
        case "d": return "datamatrix"
        case "z": return "aztec"
        default: return "unknown"
        }
    }
}

/// GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) check digits: mod 10 with weights 3,1 from the right.
public enum GTIN {
    public static func isValid(_ digits: String) -> Bool {
        let values = digits.utf8.map { Int($0) - 48 }
        guard [8, 12, 13, 14].contains(values.count), values.allSatisfy({ (0...9).contains($0) }) else { return false }
        return checkDigit(for: Array(values.dropLast())) == values.last
    }

    public static func checkDigit(for body: [Int]) -> Int {
        var sum = 0
        for (offset, digit) in body.reversed().enumerated() {
            sum += digit * (offset % 2 == 0 ? 3 : 1)
        }
        return (10 - sum % 10) % 10
    }
}

/// UPC-E, the zero-suppressed UPC-A on small packs: 6 data digits, with the number system (0
/// or 1) before and the check digit after when the scanner sends 8.
public enum UPCE {
    /// The 12-digit UPC-A a UPC-E stands for (its check digit computed), from 6, 7 or 8 digits
    /// (the check digit of an 8-digit UPC-E is not checked here: compare with the result's).
    /// Nil when it is not a UPC-E: a number system other than 0 or 1, or not digits.
    public static func expand(_ text: String) -> String? {
        let all = text.utf8.map { Int($0) - 48 }
        guard all.allSatisfy({ (0...9).contains($0) }) else { return nil }
        let system: Int
        let data: [Int]
        switch all.count {
        case 6: (system, data) = (0, all)
        case 7, 8: (system, data) = (all[0], Array(all[1...6]))
        default: return nil
        }
        guard system == 0 || system == 1 else { return nil }
        let (d1, d2, d3, d4, d5, d6) = (data[0], data[1], data[2], data[3], data[4], data[5])
        let body: [Int]
        switch d6 {
        case 0, 1, 2: body = [d1, d2, d6, 0, 0, 0, 0, d3, d4, d5]
        case 3: body = [d1, d2, d3, 0, 0, 0, 0, 0, d4, d5]
        case 4: body = [d1, d2, d3, d4, 0, 0, 0, 0, 0, d5]
        default: body = [d1, d2, d3, d4, d5, 0, 0, 0, 0, d6]
        }
        let withoutCheck = [system] + body
        return (withoutCheck + [GTIN.checkDigit(for: withoutCheck)]).map(String.init).joined()
    }
}

/// How a shop's scale or back office puts a price or a weight into an in-store EAN-13
/// (restricted circulation, prefixes 20-29): `[[scanner.variable_measure]]` in the config.
/// The common layout: the 2-digit prefix, the item number, (a price check digit,) the value,
/// the EAN check digit.
public struct VariableMeasureScheme: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case price, weight }

    public var prefix: String
    public var itemDigits: Int
    public var valueDigits: Int
    public var kind: Kind
    /// Decimal places of the value: 2 for a price in cents, 3 for a weight in grams as kg.
    public var decimals: Int

    public init(prefix: String, itemDigits: Int = 5, valueDigits: Int = 5, kind: Kind, decimals: Int) {
        self.prefix = prefix
        self.itemDigits = itemDigits
        self.valueDigits = valueDigits
        self.kind = kind
        self.decimals = decimals
    }

    /// What is wrong with the scheme, or nil: the parts must fit in 13 digits.
    public var problem: String? {
        guard prefix.count == 2, let number = Int(prefix), (20...29).contains(number) else {
            return "prefix must be one of the restricted-circulation prefixes 20 to 29, not \"\(prefix)\""
        }
        if itemDigits < 1 || valueDigits < 1 || 2 + itemDigits + valueDigits + 1 > 13 {
            return "item_digits + value_digits must fit in the 10 digits between the prefix and the check digit"
        }
        if decimals < 0 || decimals > valueDigits { return "decimals must be 0 to value_digits" }
        return nil
    }

    /// The item and value of an EAN-13 this scheme covers (its check digit already valid).
    public func decode(_ ean13: String) -> VariableMeasure? {
        guard ean13.utf8.count == 13, ean13.hasPrefix(prefix), problem == nil else { return nil }
        let digits = Array(ean13)
        let item = String(digits[2..<(2 + itemDigits)])
        let valueDigitsText = String(digits[(12 - valueDigits)..<12])
        guard let value = GS1.decimal(valueDigitsText, places: decimals) else { return nil }
        return VariableMeasure(item: item, kind: kind, value: value)
    }
}

/// An in-store code's item number and embedded price or weight.
public struct VariableMeasure: Sendable, Hashable {
    public var item: String
    public var kind: VariableMeasureScheme.Kind
    /// A decimal string ("4.99", "1.250").
    public var value: String

    public init(item: String, kind: VariableMeasureScheme.Kind, value: String) {
        self.item = item
        self.kind = kind
        self.value = value
    }
}
