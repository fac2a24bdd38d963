import Foundation
import TillCore

/// GS1 element strings: what a GS1-128, GS1 DataMatrix or GS1 QR code carries, as a list of
/// Application Identifiers (AI) and their values ("(01)04006381333931(17)261231(10)LOT42").
/// Pure: text in, elements out; the AI table is data (`GS1ApplicationIdentifiers.swift`).
public enum GS1 {
    /// The FNC1 separator as scanners send it: ASCII GS.
    public static let separator: Character = "\u{1D}"

    /// One AI's rules, from the table.
    struct ApplicationIdentifier: Sendable {
        let ai: String
        let title: String
        let description: String
        /// The value's length varies, so FNC1 (GS) ends it unless it is last.
        let separatorRequired: Bool
        let format: String
        let pattern: String

        init(_ ai: String, _ title: String, _ description: String, separatorRequired: Bool, format: String, pattern: String) {
            self.ai = ai
            self.title = title
            self.description = description
            self.separatorRequired = separatorRequired
            self.format = format
            self.pattern = pattern
        }

        /// The value's length: fixed when every part of the format after the AI is fixed
        /// ("N2+N14" → 14), else nil with the most it may take ("N2+X..20" → 20).
        var length: (fixed: Int?, maximum: Int) {
            var fixed = 0
            var maximum = 0
            var variable = false
            for part in format.split(separator: "+").dropFirst() {
                let optional = part.contains("[")
                let cleaned = part.filter { !"[]".contains($0) }
                guard let kind = cleaned.first, "NXYZ".contains(kind) else { continue }
                let rest = cleaned.dropFirst()
                if rest.hasPrefix("..") {
                    let most = Int(rest.dropFirst(2)) ?? 0
                    maximum += most
                    variable = true
                } else {
                    let count = Int(rest) ?? 0
                    maximum += count
                    if optional { variable = true } else { fixed += count }
                }
            }
            return (variable ? nil : fixed, maximum)
        }
    }

    /// One element: its AI and value, with what the AI means where tilld interprets it.
    public struct Element: Sendable, Hashable {
        public var ai: String
        public var value: String
        /// The AI's short title from the table ("GTIN", "BATCH/LOT", "NET WEIGHT (kg)").
        public var title: String
        /// For the decimal AIs (310n-369n measures, 390n-395n amounts): the value with its
        /// decimal point placed ("1.250" for 3103 001250).
        public var decimal: String?
        /// For the date AIs (YYMMDD: 11-17): the date as YYYY-MM-DD (GS1's century rule; day
        /// 00 is the month's last day), nil when not a date AI.
        public var date: String?
    }

    public struct Message: Sendable, Hashable {
        public var elements: [Element]

        /// AI → value, as `scanner.data`'s `gs1` carries it (a repeated AI keeps its first value).
        public var values: [String: String] {
            var values: [String: String] = [:]
            for element in elements where values[element.ai] == nil { values[element.ai] = element.value }
            return values
        }

        public func value(_ ai: String) -> String? { elements.first { $0.ai == ai }?.value }
    }

    /// Why a string is not a valid element string: where it stopped, and why.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The elements read before the problem.
        public var parsed: [Element]
        /// The AI the problem is about, when it is about one.
        public var ai: String?
        public var message: String
        public var description: String { message }
    }

    /// Parses an element string: the scanner's form (AIs run on, FNC1 sent as GS after each
    /// variable-length value, an AIM identifier such as `]C1` or `]d2` first) or the
    /// human-readable form with AIs in parentheses. Every value is checked against its AI's
    /// format, and GTINs and SSCCs against their check digit.
    public static func parse(_ text: String) -> Result<Message, ParseError> {
        var body = Substring(text)
        for aim in ["]C1", "]e0", "]d2", "]Q3", "]J1"] where body.hasPrefix(aim) {
            body = body.dropFirst(aim.count)
        }
        if body.first == separator { body = body.dropFirst() }  // a leading FNC1
        if body.first == "(" { return parseBracketed(body) }
        var elements: [Element] = []
        while !body.isEmpty {
            guard let entry = identifier(at: body) else {
                return .failure(ParseError(parsed: elements, ai: nil, message: "no GS1 Application Identifier at \"\(body.prefix(4))\" (after \(elements.count) element\(elements.count == 1 ? "" : "s"))"))
            }
            body = body.dropFirst(entry.ai.count)
            let length = entry.length
            var value: Substring
            if let fixed = length.fixed, !entry.separatorRequired {
                guard body.count >= fixed else {
                    return .failure(ParseError(parsed: elements, ai: entry.ai, message: "AI \(entry.ai) (\(entry.title)) needs \(fixed) characters, \(body.count) left"))
                }
                value = body.prefix(fixed)
                body = body.dropFirst(fixed)
                if body.first == separator { body = body.dropFirst() }
            } else {
                let end = body.firstIndex(of: separator) ?? body.endIndex
                value = body[..<end]
                body = end == body.endIndex ? body[end...] : body[body.index(after: end)...]
                if value.count > length.maximum {
                    return .failure(ParseError(parsed: elements, ai: entry.ai, message: "AI \(entry.ai) (\(entry.title)) takes at most \(length.maximum) characters, got \(value.count): a missing FNC1 (GS) separator?"))
                }
            }
            switch element(entry, String(value)) {
            case .success(let element): elements.append(element)
            case .failure(let message): return .failure(ParseError(parsed: elements, ai: entry.ai, message: message.description))
            }
        }
        if elements.isEmpty { return .failure(ParseError(parsed: [], ai: nil, message: "empty element string")) }
        return .success(Message(elements: elements))
    }

    private static func parseBracketed(_ text: Substring) -> Result<Message, ParseError> {
        var elements: [Element] = []
        var rest = text
        while !rest.isEmpty {
            guard rest.first == "(", let close = rest.firstIndex(of: ")") else {
                return .failure(ParseError(parsed: elements, ai: nil, message: "expected (AI) at \"\(rest.prefix(6))\""))
            }
            let ai = String(rest[rest.index(after: rest.startIndex)..<close])
            guard let entry = byAI[ai] else {
                return .failure(ParseError(parsed: elements, ai: ai, message: "(\(ai)) is not a GS1 Application Identifier"))
            }
            rest = rest[rest.index(after: close)...]
            let end = rest.firstIndex(of: "(") ?? rest.endIndex
            switch element(entry, String(rest[..<end])) {
            case .success(let element): elements.append(element)
            case .failure(let message): return .failure(ParseError(parsed: elements, ai: ai, message: message.description))
            }
            rest = rest[end...]
        }
        return .success(Message(elements: elements))
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    static func element(_ entry: ApplicationIdentifier, _ value: String) -> Result<Element, Problem> {
        guard let regex = patterns[entry.ai], (try? regex.wholeMatch(in: entry.ai + value)) != nil else {
            return .failure(Problem(description: "AI \(entry.ai) (\(entry.title)): \"\(value)\" does not match its format \(entry.format)"))
        }
        // SSCC (18 digits), GTINs (14) and GLNs (13) end with a mod-10 check digit.
        if ["00", "01", "02", "03", "410", "411", "412", "413", "414", "415", "416", "417"].contains(entry.ai) {
            guard hasValidCheckDigit(value) else {
                return .failure(Problem(description: "AI \(entry.ai) (\(entry.title)): check digit of \(value) is wrong"))
            }
        }
        var element = Element(ai: entry.ai, value: value, title: entry.title)
        if entry.ai.count == 4, let first = entry.ai.first, first == "3", let places = Int(String(entry.ai.last!)),
           let group = Int(entry.ai.prefix(3)), (310...369).contains(group) || (390...395).contains(group) {
            let digits = group >= 391 && group != 392 && group != 394 && group != 395 ? String(value.dropFirst(3)) : value
            element.decimal = decimal(digits, places: places)
        }
        if ["11", "12", "13", "15", "16", "17"].contains(entry.ai) { element.date = date(value) }
        return .success(element)
    }

    /// GS1's mod-10 check digit (weights 3 and 1 from the right), for any length.
    public static func hasValidCheckDigit(_ digits: String) -> Bool {
        let values = digits.utf8.map { Int($0) - 48 }
        guard values.count >= 2, values.allSatisfy({ (0...9).contains($0) }) else { return false }
        return GTIN.checkDigit(for: Array(values.dropLast())) == values.last
    }

    /// "001250" with 3 places → "1.250"; leading zeros of the whole part dropped.
    static func decimal(_ digits: String, places: Int) -> String? {
        guard digits.allSatisfy(\.isNumber), places <= digits.count else { return nil }
        let whole = String(digits.dropLast(places).drop { $0 == "0" })
        let fraction = String(digits.suffix(places))
        return (whole.isEmpty ? "0" : whole) + (places > 0 ? "." + fraction : "")
    }

    /// YYMMDD → YYYY-MM-DD with GS1's sliding century (General Specifications 7.12): a year
    /// more than 50 years ahead of today's is last century, more than 49 behind is next.
    static func date(_ value: String, thisYear: Int = currentYear) -> String? {
        guard value.count == 6, let yy = Int(value.prefix(2)), let month = Int(value.dropFirst(2).prefix(2)), var day = Int(value.suffix(2)) else { return nil }
        let century = thisYear / 100 * 100
        var year = century + yy
        if year - thisYear > 50 { year -= 100 } else if thisYear - year > 49 { year += 100 }
        if day == 0 {
            let lengths = [31, (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            guard (1...12).contains(month) else { return nil }
            day = lengths[month - 1]
        }
        return "\(year)-\(month < 10 ? "0" : "")\(month)-\(day < 10 ? "0" : "")\(day)"
    }

    static var currentYear: Int {
        let components = Timestamp.format(.now).prefix(4)
        return Int(components) ?? 2026
    }

    /// The AI that starts `text` (AIs are prefix-free: at most one matches).
    private static func identifier(at text: Substring) -> ApplicationIdentifier? {
        for length in 2...4 where text.count >= length {
            if let entry = byAI[String(text.prefix(length))] { return entry }
        }
        return nil
    }

    static let byAI: [String: ApplicationIdentifier] = Dictionary(table.map { ($0.ai, $0) }, uniquingKeysWith: { first, _ in first })

    // Compiled once; `nonisolated(unsafe)` because `Regex` is not Sendable, and this
    // dictionary is never written after it is built.
    nonisolated(unsafe) static let patterns: [String: Regex<AnyRegexOutput>] = {
        var compiled: [String: Regex<AnyRegexOutput>] = [:]
        for entry in table {
            // The table's patterns are anchored PCRE; Swift's Regex matches the whole string itself.
            var pattern = entry.pattern
            if pattern.hasPrefix("^") { pattern.removeFirst() }
            if pattern.hasSuffix("$") { pattern.removeLast() }
            compiled[entry.ai] = try? Regex(pattern)
        }
        return compiled
    }()
}
