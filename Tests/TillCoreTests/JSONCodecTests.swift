import Foundation
import Testing
@testable import TillCore

/// `JSONParser` and `JSONWriter` replace Foundation's Codable path for `JSONValue`. Foundation
/// stays the oracle: these tests hold the two side by side on generated values and on
/// mutated text (the fuzz target does the same on arbitrary bytes).
@Suite("JSON codec", .timeLimit(.minutes(1)))
struct JSONCodecTests {
    /// Foundation's reading of the same text, through JSONValue's Codable conformance.
    static func oracle(_ text: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text))
    }

    static func foundationEncode(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state ^ (state >> 29)
        }
    }

    static let alphabet: [String] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "\u{1f}", "\u{7f}", "é", "€", "😀", "\u{2028}", "a9", "a10", "_"]

    static func randomValue(_ g: inout Generator, depth: Int = 0) -> JSONValue {
        switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &g) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &g))
        case 2: return .int([0, -1, Int64.max, Int64.min, Int64.random(in: -1_000_000...1_000_000, using: &g)].randomElement(using: &g)!)
        case 3:
            let magnitude = [1e-9, 1e-3, 1, 1e6, 1e17, 1e300].randomElement(using: &g)!
            return .double(Double.random(in: -1...1, using: &g) * magnitude)
        case 4: return .string(randomString(&g))
        case 5: return .array((0..<Int.random(in: 0...4, using: &g)).map { _ in randomValue(&g, depth: depth + 1) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &g) { object[randomString(&g)] = randomValue(&g, depth: depth + 1) }
            return .object(object)
        }
    }

    static func randomString(_ g: inout Generator) -> String {
        (0..<Int.random(in: 0...6, using: &g)).map { _ in alphabet.randomElement(using: &g)! }.joined()
    }

    @Test("writing matches JSONEncoder byte for byte, and parsing gives the value back")
    func roundTripAgainstFoundation() throws {
        var g = Generator(state: 42)
        for _ in 0..<3000 {
            let value = Self.randomValue(&g)
            let text = JSONText.encode(value)
            #expect(text == Self.foundationEncode(value))
            let parsed = try JSONParser.parse(text)
            #expect(parsed.agrees(with: value), "\(text)")
        }
    }

    @Test("whatever the parser accepts, Foundation accepts and reads the same")
    func mutatedTextAgainstFoundation() throws {
        var g = Generator(state: 7)
        let pieces: [[UInt8]] = ["{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "d83d", "de00", "dc00", "0", "-", ".", "e", "+", "1", "true", "nul", " ", "\n", "\u{01}", "é", "\u{ff}"].map { Array($0.utf8) } + [[0xC3], [0xFF], [0xED, 0xA0, 0x80]]
        var accepted = 0
        for _ in 0..<20000 {
            var bytes = Array(JSONText.encode(Self.randomValue(&g)).utf8)
            for _ in 0..<Int.random(in: 1...3, using: &g) {
                let at = Int.random(in: 0...bytes.count, using: &g)
                if Bool.random(using: &g), at < bytes.count {
                    bytes.remove(at: at)
                } else {
                    bytes.insert(contentsOf: pieces.randomElement(using: &g)!, at: at)
                }
            }
            guard let mine = try? JSONParser.parse(bytes) else { continue }
            accepted += 1
            let theirs = Self.oracle(bytes)
            #expect(theirs.map { mine.agrees(with: $0) } == true, "\(String(decoding: bytes, as: UTF8.self)): \(mine) vs \(String(describing: theirs))")
        }
        #expect(accepted > 1000, "the mutations should leave plenty of valid JSON to compare")
    }

    @Test("numbers: integers stay exact, others are doubles, out of range is refused")
    func numbers() throws {
        #expect(try JSONParser.parse("9223372036854775807") == .int(.max))
        #expect(try JSONParser.parse("-9223372036854775808") == .int(.min))
        #expect(try JSONParser.parse("9223372036854775808") == .double(9223372036854775808))
        #expect(try JSONParser.parse("-0") == .int(0))
        #expect(try JSONParser.parse("1.5e3") == .double(1500))
        #expect(try JSONParser.parse(" [1.0 , 2E-2]\n") == [.double(1), .double(0.02)])
        // Found by the fuzz target: Foundation reads this as the integer 11992801356534409,
        // dropping the fraction; the parser gives the nearest double, one ulp away.
        let lossy = "11992801356534409.1"
        #expect(try JSONParser.parse(lossy) == .double(11992801356534409.1))
        #expect(try JSONParser.parse(lossy).agrees(with: #require(Self.oracle(Array(lossy.utf8)))))
        for bad in ["01", "1.", ".5", "+1", "1e", "-", "1e400", "NaN", "Infinity", "0x10"] {
            #expect(throws: JSONParser.Failure.self, "\(bad)") { try JSONParser.parse(bad) }
        }
    }

    @Test("strings: escapes and surrogate pairs decode; bad escapes, raw control characters and invalid UTF-8 are refused")
    func strings() throws {
        #expect(try JSONParser.parse(#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#) == .string("a\"\\/\u{08}\u{0c}\n\r\té😀"))
        #expect(try JSONParser.parse(#""\u0000""#) == .string("\u{0}"))
        for bad in [#""\ud800""#, #""\udc00x""#, #""\ud800\u0041""#, #""\x""#, #""\u12""#, "\"a\u{01}\"", "\"abc"] {
            #expect(throws: JSONParser.Failure.self, "\(bad)") { try JSONParser.parse(bad) }
        }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC3, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
    }

    @Test("structure: strict RFC 8259, where Foundation is lenient (repeated keys, trailing commas, a BOM)")
    func structure() throws {
        let repeated = #expect(throws: JSONParser.Failure.self, "parsers disagree on which value of a repeated key wins") {
            try JSONParser.parse(#"{"op":"status","id":1,"op":"drawer.open"}"#)
        }
        #expect(repeated?.description == #"the key "op" appears twice in one object at byte 22"#)
        #expect(try JSONParser.parse("[]") == [])
        #expect(try JSONParser.parse(" { } ") == [:])
        for bad in ["[1,2,]", "{\"a\":1,}", "\u{feff}1", "", " ", "[1 2]", "{\"a\" 1}", "{a:1}", "[1]]", "tru", "nulll", "{\"a\":1", "[", "'a'"] {
            #expect(throws: JSONParser.Failure.self, "\(bad)") { try JSONParser.parse(bad) }
        }
    }

    @Test("nesting is bounded, so hostile input cannot exhaust the stack")
    func depth() throws {
        // 512, as docs/protocol.md promises: pinned here, not read from the parser.
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(throws: Never.self) { try JSONParser.parse(ok) }
        let one = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(one) }
        let deep = String(repeating: "[", count: 100_000)
        let error = #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(deep) }
        #expect(error?.reason.contains("deeper") == true)
    }

    @Test("errors say what was wrong and where")
    func messages() {
        let error = #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(#"{"sale": S1}"#) }
        #expect(error?.description == "expected a value, found 'S' at byte 9")
    }
}
