import Foundation
import TillCore

/// Names reduced to what comparing them needs: lower-case ASCII letters, one space between
/// tokens. "Jürgen", "Juergen" and "JURGEN" share a key; so do "Łukasz" and "Lukasz",
/// "Γιώργος" and "Giorgos". Pure, and cheap on the common path: ASCII input never reaches ICU.
public enum NameKey {
    /// The folded form of a name: transliterated to Latin, accents dropped, lower case,
    /// punctuation and hyphens as spaces, and the German umlaut spellings (ue, oe, ae) read
    /// as the plain vowel, so the three spellings of Jürgen agree.
    public static func fold(_ name: String) -> String {
        var ascii = name
        if !name.utf8.allSatisfy({ $0 < 0x80 }) {
            ascii = transliterated(name)
        }
        var out: [UInt8] = []
        out.reserveCapacity(ascii.utf8.count)
        var pendingSpace = false
        for byte in ascii.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"):
                if pendingSpace, !out.isEmpty { out.append(0x20) }
                pendingSpace = false
                out.append(byte)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                if pendingSpace, !out.isEmpty { out.append(0x20) }
                pendingSpace = false
                out.append(byte + 32)
            case UInt8(ascii: "'"), UInt8(ascii: "`"):
                continue  // O'Brien and OBrien are one name
            default:
                pendingSpace = true
            }
        }
        return umlautSpellingsFolded(out)
    }

    /// Names transliterated before: ICU's transform is the slowest step of comparing two
    /// records, and a shop hears the same few hundred names with accents over and over.
    private static let transliterations = BoundedMemo<String, String>(capacity: 8192)

    /// Any script to Latin, then Latin to ASCII ("ß" → "ss", "Γιώργος" → "Giorgos"), by ICU.
    private static func transliterated(_ name: String) -> String {
        transliterations.value(for: name) { name.applyingTransform(StringTransform("Any-Latin; Latin-ASCII"), reverse: false) ?? name }
    }

    /// "ue" → "u", "oe" → "o", "ae" → "a": a German name typed without umlauts spells them
    /// out, and ICU's Latin-ASCII drops the dots. Applied to both sides, so it never makes two
    /// different names differ; it can make "Joel" and "Jol" agree, which costs nothing.
    private static func umlautSpellingsFolded(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for byte in bytes {
            if byte == UInt8(ascii: "e"), let last = out.last,
                last == UInt8(ascii: "u") || last == UInt8(ascii: "o") || last == UInt8(ascii: "a")
            {
                continue
            }
            out.append(byte)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A full name split into given and family names: "Smith, Jon" and "Jon Smith" alike;
    /// the last token is the family name when there is no comma.
    public static func split(fullName: String) -> (given: String?, family: String?) {
        let trimmed = fullName.trimmingWhitespace()
        if let comma = trimmed.firstIndex(of: ",") {
            let family = String(trimmed[..<comma]).trimmingWhitespace()
            let given = String(trimmed[trimmed.index(after: comma)...]).trimmingWhitespace()
            return (given.isEmpty ? nil : given, family.isEmpty ? nil : family)
        }
        let tokens = trimmed.split(whereSeparator: { $0.isWhitespace })
        guard let last = tokens.last else { return (nil, nil) }
        guard tokens.count > 1 else { return (String(last), nil) }
        return (tokens.dropLast().joined(separator: " "), String(last))
    }

    /// The given name's first token: "Anna Maria" is compared as "anna" (people drop the
    /// middle name more often than they change the first).
    public static func firstToken(_ folded: String) -> String {
        folded.split(separator: " ").first.map(String.init) ?? folded
    }
}

/// String similarity measures over folded (ASCII) keys.
public enum Similarity {
    /// Jaro-Winkler similarity in 0...1 (prefix scale 0.1, up to 4 characters).
    public static func jaroWinkler(_ a: String, _ b: String) -> Double {
        let s = Array(a.utf8), t = Array(b.utf8)
        if s.isEmpty || t.isEmpty { return s.isEmpty && t.isEmpty ? 1 : 0 }
        if s == t { return 1 }
        let window = max(0, max(s.count, t.count) / 2 - 1)
        var sMatched = [Bool](repeating: false, count: s.count)
        var tMatched = [Bool](repeating: false, count: t.count)
        var matches = 0
        for i in 0..<s.count {
            let low = max(0, i - window), high = min(t.count - 1, i + window)
            if low > high { continue }
            for j in low...high where !tMatched[j] && s[i] == t[j] {
                sMatched[i] = true
                tMatched[j] = true
                matches += 1
                break
            }
        }
        if matches == 0 { return 0 }
        var transpositions = 0
        var j = 0
        for i in 0..<s.count where sMatched[i] {
            while !tMatched[j] { j += 1 }
            if s[i] != t[j] { transpositions += 1 }
            j += 1
        }
        let m = Double(matches)
        let jaro = (m / Double(s.count) + m / Double(t.count) + (m - Double(transpositions / 2)) / m) / 3
        var prefix = 0
        while prefix < min(4, s.count, t.count), s[prefix] == t[prefix] { prefix += 1 }
        return jaro + Double(prefix) * 0.1 * (1 - jaro)
    }

    /// Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions):
    /// the typing mistakes people make, one insertion, deletion, substitution or swap each.
    /// Stops early and answers `limit + 1` once the distance is known to exceed `limit`.
    public static func editDistance(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>, limit: Int = .max) -> Int {
        let s = Array(a), t = Array(b)
        if abs(s.count - t.count) > limit { return limit == .max ? abs(s.count - t.count) : limit + 1 }
        if s.isEmpty { return t.count }
        if t.isEmpty { return s.count }
        var previous2 = [Int](repeating: 0, count: t.count + 1)
        var previous = Array(0...t.count)
        var current = [Int](repeating: 0, count: t.count + 1)
        for i in 1...s.count {
            current[0] = i
            var rowMinimum = current[0]
            for j in 1...t.count {
                let cost = s[i - 1] == t[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, s[i - 1] == t[j - 2], s[i - 2] == t[j - 1] { value = min(value, previous2[j - 2] + 1) }
                current[j] = value
                rowMinimum = min(rowMinimum, value)
            }
            if rowMinimum > limit { return limit + 1 }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[t.count]
    }
}
