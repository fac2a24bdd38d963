import TillCore

/// The contract's symbology names (`scanner.data`'s `symbology`).
public enum Symbology: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case ean13, ean8, upca, upce, code128, gs1_128 = "gs1-128", code39, code93, codabar, itf
    case gs1DataBar = "gs1-databar", qr, datamatrix, pdf417, aztec, unknown

    public var description: String { rawValue }

    /// The retail GTIN symbologies: their whole text is a GTIN with a check digit.
    var isRetailGTIN: Bool { [.ean13, .ean8, .upca, .upce].contains(self) }
}

/// What a scan is for (`scanner.data`'s `kind`).
public enum ScanKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case product, loyalty, coupon, receipt, unknown

    public var description: String { rawValue }
}

/// A shop's pattern for its own codes (`[scanner] receipt_pattern`, `loyalty_pattern`): a
/// regular expression the whole scan must match.
public struct ScanPattern: Sendable, Hashable, CustomStringConvertible {
    public let source: String
    private let compiled: CompiledRegex

    /// Throws a message that says what is wrong with the expression.
    public init(_ source: String) throws(ScanPatternError) {
        do {
            compiled = CompiledRegex(try Regex(source))
        } catch {
            throw ScanPatternError(pattern: source, reason: "\(error)")
        }
        self.source = source
    }

    public func matches(_ text: String) -> Bool { (try? compiled.regex.wholeMatch(in: text)) != nil }

    public var description: String { source }
    public static func == (a: Self, b: Self) -> Bool { a.source == b.source }
    public func hash(into hasher: inout Hasher) { hasher.combine(source) }
}

public struct ScanPatternError: Error, Sendable, CustomStringConvertible {
    public var pattern: String
    public var reason: String
    public var description: String { "\"\(pattern)\" is not a regular expression: \(reason)" }
}

// A compiled Regex is immutable and its lazy lowering is thread-safe; it is not marked
// Sendable only because of its generic output type.
private final class CompiledRegex: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>
    init(_ regex: Regex<AnyRegexOutput>) { self.regex = regex }
}

/// What a scan is, from its text alone (and the AIM identifier when the scanner sends one).
/// Device drivers fill `raw` and `aim` from the wire; this decides symbology, check digit and
/// kind, under the shop's rules (`[scanner]` in the config).
public struct ScanClassifier: Sendable {
    /// Loyalty card numbers, by prefix or by pattern (configured per shop).
    public var loyaltyPrefixes: [String]
    public var loyaltyPatterns: [ScanPattern]
    /// Coupons by their GTIN-13 form's prefix: GS1's coupon prefixes (05 the UPC coupons,
    /// 99, 981-984) unless the shop configures its own. GS1 coupon AIs (255, 8110, 8112)
    /// always make a coupon.
    public var couponPrefixes: [String]
    /// The shop's own receipt numbers (printed on its receipts as a barcode, scanned for a refund).
    public var receiptPatterns: [ScanPattern]
    /// In-store EAN-13s with a price or weight inside (`[[scanner.variable_measure]]`).
    public var variableMeasures: [VariableMeasureScheme]

    public static let gs1CouponPrefixes = ["05", "99", "981", "982", "983", "984"]
    static let couponAIs: Set<String> = ["255", "8110", "8112"]

    public init(
        loyaltyPrefixes: [String] = [], loyaltyPatterns: [ScanPattern] = [], couponPrefixes: [String] = ScanClassifier.gs1CouponPrefixes,
        receiptPatterns: [ScanPattern] = [], variableMeasures: [VariableMeasureScheme] = []
    ) {
        self.loyaltyPrefixes = loyaltyPrefixes
        self.loyaltyPatterns = loyaltyPatterns
        self.couponPrefixes = couponPrefixes
        self.receiptPatterns = receiptPatterns
        self.variableMeasures = variableMeasures
    }

    public struct Result: Sendable, Hashable {
        public var symbology: Symbology
        public var checkDigitOK: Bool?
        public var kind: ScanKind
        /// The GS1 element string's (or Digital Link URI's) AI → value, when it parses.
        public var gs1: [String: String]? = nil
        /// Why a code that is GS1 (by its AIM identifier, FNC1 separators or a Digital Link
        /// path) does not parse: the AI that failed, when one did, and the message.
        public var gs1Problem: GS1.ParseError? = nil
        /// The item and price or weight of an in-store EAN-13, by the shop's scheme.
        public var variableMeasure: VariableMeasure? = nil

        public init(symbology: Symbology, checkDigitOK: Bool?, kind: ScanKind, gs1: [String: String]? = nil, gs1Problem: GS1.ParseError? = nil, variableMeasure: VariableMeasure? = nil) {
            self.symbology = symbology
            self.checkDigitOK = checkDigitOK
            self.kind = kind
            self.gs1 = gs1
            self.gs1Problem = gs1Problem
            self.variableMeasure = variableMeasure
        }
    }

    public func classify(text: String, aim: String? = nil) -> Result {
        let length = text.utf8.count
        let digits = length > 0 && text.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
        var symbology = Symbology.unknown
        if let aim, aim.hasPrefix("]") {
            symbology = Self.symbology(forAIM: aim, length: length)
        } else if digits {
            switch length {
            case 13: symbology = .ean13
            case 8: symbology = .ean8
            case 12: symbology = .upca
            default: symbology = .unknown
            }
        }
        var checkOK: Bool? = nil
        // The text as a GTIN-13 or GTIN-14 when it is one (for the coupon prefixes).
        var gtin: String? = nil
        switch symbology {
        case _ where symbology.isRetailGTIN && !digits:
            checkOK = false  // letters where a retail code has digits: misread
        case .ean13, .ean8, .upca:
            checkOK = [8, 12, 13].contains(length) && GTIN.isValid(text)
            gtin = text
        case .upce:
            // An 8-digit UPC-E carries the check digit of the UPC-A it stands for.
            if let expanded = UPCE.expand(text) {
                checkOK = length == 8 ? text.last == expanded.last : nil
                gtin = expanded
            } else {
                checkOK = false
            }
        case .itf where digits && length == 14:
            checkOK = GTIN.isValid(text)  // ITF-14 is a GTIN-14 on a carton
            gtin = text
        default:
            break
        }

        // GS1 when the AIM identifier says so (]C1 GS1-128, ]d2 DataMatrix, ]Q3 QR, ]e0
        // DataBar), the text carries FNC1 as GS, or it is a Digital Link URI; the GTIN inside
        // decides the check digit.
        var gs1: [String: String]? = nil
        var gs1Problem: GS1.ParseError? = nil
        let gs1AIM = aim.map { ["]C1", "]d2", "]Q3", "]e0", "]J1"].contains($0) } ?? false
        let parsed: Swift.Result<GS1.Message, GS1.ParseError>?
        if gs1AIM || text.contains(GS1.separator) {
            parsed = GS1.parse(text)
        } else if GS1DigitalLink.looksLikeOne(text) {
            parsed = GS1DigitalLink.parse(text)
        } else {
            parsed = nil
        }
        switch parsed {
        case .success(let message)?:
            gs1 = message.values
            if let key = message.value("01") ?? message.value("00") {
                checkOK = GS1.hasValidCheckDigit(key)
                gtin = message.value("01")
            }
        case .failure(let problem)?:
            gs1Problem = problem
            if problem.message.contains("check digit") { checkOK = false }
            if gs1AIM, checkOK == nil { checkOK = false }
        case nil:
            break
        }

        let kind = kind(text: text, checkOK: checkOK, gtin: gtin, gs1: gs1, gs1Problem: gs1Problem)
        var measure: VariableMeasure? = nil
        if symbology == .ean13, checkOK == true, kind == .product {
            measure = variableMeasures.lazy.compactMap { $0.decode(text) }.first
        }
        return Result(symbology: symbology, checkDigitOK: checkOK, kind: kind, gs1: gs1, gs1Problem: gs1Problem, variableMeasure: measure)
    }

    /// The shop's own rules first (a receipt or loyalty number may look like an in-store EAN),
    /// then GS1's coupon rules, then a product when the code is a sound GTIN. A misread code
    /// (wrong check digit, GS1 that does not parse) is never a product.
    private func kind(text: String, checkOK: Bool?, gtin: String?, gs1: [String: String]?, gs1Problem: GS1.ParseError?) -> ScanKind {
        if receiptPatterns.contains(where: { $0.matches(text) }) { return .receipt }
        if loyaltyPrefixes.contains(where: { text.hasPrefix($0) }) || loyaltyPatterns.contains(where: { $0.matches(text) }) { return .loyalty }
        guard checkOK != false, gs1Problem == nil else { return .unknown }
        if let gs1, gs1.keys.contains(where: Self.couponAIs.contains) { return .coupon }
        // `gtin` is set only for a retail code, an ITF-14 or a GS1 message's AI 01.
        if let gtin {
            // Coupon prefixes are read in the GTIN-13 form (a UPC-A 5xxxxxxxxxxx is 05...).
            let thirteen = gtin.count == 12 ? "0" + gtin : gtin.count == 14 ? String(gtin.dropFirst()) : gtin
            if gtin.count != 8, couponPrefixes.contains(where: { thirteen.hasPrefix($0) }) { return .coupon }
            return .product
        }
        return .unknown
    }

    /// AIM symbology identifier (ISO/IEC 15424) to the contract's symbology names.
    public static func symbology(forAIM aim: String, length: Int) -> Symbology {
        let bytes = Array(aim.utf8)
        guard bytes.count >= 2 else { return .unknown }
        let modifier = bytes.count >= 3 ? Character(UnicodeScalar(bytes[2])) : "0"
        switch Character(UnicodeScalar(bytes[1])) {
        case "E":
            if modifier == "4" { return .ean8 }
            return length == 12 ? .upca : (length == 8 || length == 6 || length == 7) ? .upce : .ean13
        case "C": return modifier == "1" ? .gs1_128 : .code128
        case "A": return .code39
        case "G": return .code93
        case "F": return .codabar
        case "I": return .itf
        case "e": return .gs1DataBar
        case "L": return .pdf417
        case "Q": return .qr
        case "d": return .datamatrix
        case "z": return .aztec
        default: return .unknown
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
