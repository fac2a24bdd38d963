public import Foundation

/// Money on the wire is a decimal string ("12.50", "-3", "0.125"), never a float:
/// floats cannot hold cents exactly, and a till must add up to the cent.
public enum DecimalString {
    /// At most 15 integer digits and 6 fraction digits; optional leading minus; no exponent, no plus, no spaces.
    public static func isValid(_ text: String) -> Bool {
        var bytes = Substring(text).utf8[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, (1...15).contains(whole.count), whole.allSatisfy(isDigit) else { return false }
        if parts.count == 2 {
            let fraction = parts[1]
            guard (1...6).contains(fraction.count), fraction.allSatisfy(isDigit) else { return false }
        }
        return true
    }

    /// A quantity may be a JSON number (2, 0.35 kg) or a decimal string; both are accepted.
    public static func isValidQuantity(_ value: JSONValue) -> Bool {
        switch value {
        case .int: return true
        case .double(let d): return d.isFinite
        case .string(let s): return isValid(s)
        default: return false
        }
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
}

extension DecimalString {
    /// The decimal a wire amount holds ("12.50" → 12.5), nil when it is not a decimal string.
    public static func decimal(_ value: JSONValue?) -> Decimal? {
        guard let text = value?.stringValue, isValid(text) else { return nil }
        return Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
    }

    /// Two decimals, a point, rounded half up: "7.00", "-0.50". What a customer reads.
    public static func twoPlaces(_ value: Decimal) -> String {
        var rounded = Decimal()
        var source = value
        NSDecimalRound(&rounded, &source, 2, .plain)
        let text = NSDecimalNumber(decimal: rounded).stringValue
        guard let dot = text.firstIndex(of: ".") else { return text + ".00" }
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        return decimals >= 2 ? text : text + String(repeating: "0", count: 2 - decimals)
    }
}
