import Foundation

/// GS1 Digital Link URIs (GS1 Digital Link Standard 1.x): the same Application Identifiers as
/// an element string, written as a web address a phone can open, in the QR codes that are
/// replacing EAN-13s on packs.
///
///     https://id.gs1.org/01/09506000134352/10/ABC123?17=261231
///     https://shop.example/products/01/4006381333931      (any domain, any path before the key)
///
/// The path holds a primary key (GTIN 01, SSCC 00, GLN 414, ...) and its qualifiers as AI/value
/// pairs, the query holds attributes with numeric AI keys. Pure: text in, elements out, every
/// value checked against its AI's format as in an element string.
public enum GS1DigitalLink {
    /// The AIs a Digital Link path may start with (the standard's primary keys).
    static let primaryKeys: Set<String> = ["00", "01", "253", "255", "401", "402", "414", "417", "8003", "8004", "8006", "8010", "8013", "8017", "8018"]

    /// The short names Digital Link 1.0 allowed in place of numeric AIs (still met on packs).
    static let shortNames: [String: String] = [
        "gtin": "01", "sscc": "00", "gdti": "253", "gcn": "255", "ginc": "401", "gsin": "402", "gln": "414", "party": "417",
        "grai": "8003", "giai": "8004", "itip": "8006", "cpid": "8010", "gmn": "8013", "gsrnp": "8017", "gsrn": "8018",
        "cpv": "22", "lot": "10", "ser": "21", "glnx": "254", "srin": "8019", "refno": "8020", "tpx": "235",
    ]

    /// Whether `text` is an http(s) address whose path carries a GS1 primary key followed by a
    /// value: a shop's plain web address in a QR code is not one, and is not reported as a
    /// GS1 code that failed.
    public static func looksLikeOne(_ text: String) -> Bool {
        guard let segments = pathSegments(text) else { return false }
        return segments.dropLast().contains { primaryKeys.contains(ai(of: $0) ?? "") }
    }

    public static func parse(_ text: String) -> Result<GS1.Message, GS1.ParseError> {
        guard let segments = pathSegments(text) else {
            return .failure(GS1.ParseError(parsed: [], ai: nil, message: "not an http or https address"))
        }
        // The primary key is the first segment that is one and leaves AI/value pairs to the end
        // (anything before it is the resolver's own path).
        guard let start = segments.indices.first(where: { index in
            primaryKeys.contains(ai(of: segments[index]) ?? "") && (segments.count - index) % 2 == 0
        }) else {
            return .failure(GS1.ParseError(parsed: [], ai: nil, message: "no GS1 primary key (01 GTIN, 00 SSCC, 414 GLN, ...) followed by its value in the path"))
        }
        var pairs: [(String, String)] = []
        var index = start
        while index + 1 < segments.count {
            guard let ai = ai(of: segments[index]) else {
                return .failure(GS1.ParseError(parsed: [], ai: nil, message: "\"\(segments[index])\" in the path is not a GS1 Application Identifier"))
            }
            pairs.append((ai, segments[index + 1].removingPercentEncoding ?? segments[index + 1]))
            index += 2
        }
        for item in query(text) {
            // Other keys (linkType, context, ...) are for the resolver, not data.
            guard let ai = ai(of: item.key), !pairs.contains(where: { $0.0 == ai }) else { continue }
            pairs.append((ai, item.value))
        }
        var elements: [GS1.Element] = []
        for (ai, rawValue) in pairs {
            guard let entry = GS1.byAI[ai] else {
                return .failure(GS1.ParseError(parsed: elements, ai: ai, message: "(\(ai)) is not a GS1 Application Identifier"))
            }
            // A GTIN in a Digital Link may be written as 8, 12 or 13 digits: GTIN-14 with zeros.
            var value = rawValue
            if ai == "01", [8, 12, 13].contains(value.count), value.allSatisfy(\.isASCII) {
                value = String(repeating: "0", count: 14 - value.count) + value
            }
            switch GS1.element(entry, value) {
            case .success(let element): elements.append(element)
            case .failure(let problem): return .failure(GS1.ParseError(parsed: elements, ai: ai, message: problem.description))
            }
        }
        return .success(GS1.Message(elements: elements))
    }

    /// A segment or query key as an AI: numeric and in the table, or a known short name.
    private static func ai(of key: String) -> String? {
        if let short = shortNames[key] { return short }
        guard !key.isEmpty, key.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), GS1.byAI[key] != nil else { return nil }
        return key
    }

    /// The path's segments after the host, nil when `text` is not an http(s) address.
    private static func pathSegments(_ text: String) -> [String]? {
        let lower = text.prefix(8).lowercased()
        let rest: Substring
        if lower.hasPrefix("https://") {
            rest = text.dropFirst(8)
        } else if lower.hasPrefix("http://") {
            rest = text.dropFirst(7)
        } else {
            return nil
        }
        let withoutQuery = rest.prefix { $0 != "?" && $0 != "#" }
        guard let slash = withoutQuery.firstIndex(of: "/") else { return [] }
        return withoutQuery[withoutQuery.index(after: slash)...].split(separator: "/").map(String.init)
    }

    private static func query(_ text: String) -> [(key: String, value: String)] {
        guard let mark = text.firstIndex(of: "?") else { return [] }
        let query = text[text.index(after: mark)...].prefix { $0 != "#" }
        return query.split(separator: "&").compactMap { item in
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            let value = String(parts[1]).replacingOccurrences(of: "+", with: " ")
            return (String(parts[0]), value.removingPercentEncoding ?? value)
        }
    }
}
