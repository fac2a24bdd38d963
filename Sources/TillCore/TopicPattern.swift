/// A topic glob as used by `subscribe`: `*` matches any run of characters
/// (dots included), `?` one character; everything else is literal.
/// `scanner.*`, `sale.*`, `*.completed`, `*`.
public struct TopicPattern: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String
    private let bytes: [UInt8]

    public init(_ pattern: String) {
        self.pattern = pattern
        self.bytes = Array(pattern.utf8)
    }

    public var description: String { pattern }

    public func matches(_ topic: String) -> Bool {
        if pattern == "*" { return true }
        var topic = topic
        return topic.withUTF8 { Self.match(bytes, $0) }
    }

    /// Iterative glob matching with single-star backtracking: linear in practice, never exponential.
    private static func match(_ pattern: [UInt8], _ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var p = pattern.startIndex
        var t = text.startIndex
        var starP: Int? = nil
        var starT = 0
        while t < text.endIndex {
            if p < pattern.endIndex, pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") {
                starP = p
                starT = t
                p += 1
            } else if let star = starP {
                p = star + 1
                starT += 1
                t = starT
            } else {
                return false
            }
        }
        while p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }
}

/// A set of topic patterns; an event is wanted if any pattern matches.
public struct TopicFilter: Sendable, Hashable {
    public let patterns: [TopicPattern]

    public init(_ patterns: [String]) {
        self.patterns = patterns.map(TopicPattern.init)
    }

    public static let all = TopicFilter(["*"])

    public func matches(_ topic: String) -> Bool {
        patterns.contains { $0.matches(topic) }
    }
}

/// Topic names: lower-case dotted words. Checked on publish so junk never reaches the journal.
public enum TopicName {
    public static func isValid(_ topic: String) -> Bool {
        // One pass over the bytes (it runs for every publish): words of [a-z0-9_-], joined by
        // single dots, at least two words.
        var count = 0
        var dots = 0
        var wordLength = 0
        for byte in topic.utf8 {
            count += 1
            switch byte {
            case UInt8(ascii: "."):
                guard wordLength > 0 else { return false }
                dots += 1
                wordLength = 0
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                wordLength += 1
            default:
                return false
            }
        }
        return count <= 128 && dots >= 1 && wordLength > 0
    }
}
