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
