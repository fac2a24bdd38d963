import Foundation
import Testing
@testable import TillCore
@testable import TillScanner

@Suite("Topics, events, receipts, scans", .timeLimit(.minutes(1)))
struct TopicAndEventTests {
    @Test("topic globs", arguments: [
        ("*", "scanner.data", true), ("scanner.*", "scanner.data", true), ("scanner.*", "printer.job", false),
        ("*.completed", "sale.completed", true), ("*.completed", "refund.completed", true), ("sale.*", "sale", false),
        ("sale.?ine", "sale.line", true), ("sale.line", "sale.line", true), ("sale.line", "sale.lines", false),
        ("*a*b*c", "xaybzc", true), ("*a*b*c", "xaybz", false), ("", "", true), ("**", "a.b", true),
    ])
    func globs(_ pattern: String, _ topic: String, _ matches: Bool) {
        #expect(TopicPattern(pattern).matches(topic) == matches)
    }

    @Test("topic names: lower-case words joined by single dots, at least two, at most 128 bytes", arguments: [
        ("sale.completed", true), ("a.b", true), ("shop-1.till_2.x9", true), (String(repeating: "a", count: 126) + ".b", true),
        ("", false), ("sale", false), (".sale", false), ("sale.", false), ("sale..line", false), ("Sale.line", false),
        ("sale.lïne", false), ("sale line.x", false), ("sale.*", false), (String(repeating: "a", count: 127) + ".b", false),
    ])
    func topicNames(_ topic: String, _ valid: Bool) {
        #expect(TopicName.isValid(topic) == valid)
    }

    @Test("an event line parses back to the same event")
    func eventRoundTrip() throws {
        let event = Event(seq: 42, time: Date(timeIntervalSince1970: 1_764_000_000.123), topic: "scanner.data", device: "sim-scanner", data: ["text": "é\"\n"])
        let line = event.wireLine()
        #expect(line.hasPrefix(#"{"type":"event","seq":42,"time":"2025-11-24T16:00:00.123Z","topic":"scanner.data""#))
        guard case .event(let parsed) = try ServerLine(line: Array(line.utf8)) else {
            Issue.record("not an event")
            return
        }
        #expect(parsed.seq == 42 && parsed.topic == event.topic && parsed.device == event.device && parsed.data == event.data)
        #expect(abs(parsed.time.timeIntervalSince(event.time)) < 0.001)
    }

    @Test("timestamps match Foundation's ISO 8601 formatting across dates", arguments: [
        0.0, 951_782_400.5, 1_764_000_000.125, 4_107_542_399.75, -86_400.25, 1_709_164_800.0, 253_402_300_799.5,
    ])
    func timestamps(_ seconds: Double) throws {
        let date = Date(timeIntervalSince1970: seconds)
        // Fractions exact in binary, so Foundation's truncation and our rounding agree.
        let expected = date.formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!))
        #expect(Timestamp.format(date) == expected)
        #expect(abs(Timestamp.parse(Timestamp.format(date))!.timeIntervalSince(date)) < 0.001)
    }

    @Test("replies and lag notices parse")
    func serverLines() throws {
        guard case .reply(let ok) = try ServerLine(line: Array(ServerMessage.ok(id: "x", result: ["seq": 3]).utf8)) else { throw WireError(.badRequest, "") }
        #expect(try ok.result.get()["seq"] == 3)
        guard case .reply(let published) = try ServerLine(line: Array(ServerMessage.published(id: "p\"1", seq: 12).utf8)) else {
            throw WireError(.badRequest, "")
        }
        #expect(try published.id == "p\"1" && published.result.get() == ["seq": 12])
        let failure = ServerMessage.error(id: 9, WireError(.journalTruncated, "gone", details: ["oldest": 100]))
        guard case .reply(let bad) = try ServerLine(line: Array(failure.utf8)), case .failure(let error) = bad.result else {
            throw WireError(.badRequest, "")
        }
        #expect(error.code == .journalTruncated && error.details?["oldest"] == 100)
        guard case .lagged(let seq) = try ServerLine(line: Array(ServerMessage.lagged(lastSent: 77).utf8)) else { throw WireError(.badRequest, "") }
        #expect(seq == 77)
    }

    @Test("GTIN check digits and scan classification")
    func scans() {
        #expect(GTIN.isValid("4006381333931"))
        #expect(!GTIN.isValid("4006381333932"))
        #expect(GTIN.isValid("96385074"))
        #expect(GTIN.isValid("036000291452"))
        let classifier = ScanClassifier(loyaltyPrefixes: ["LOY"])
        #expect(classifier.classify(text: "4006381333931") == .init(symbology: .ean13, checkDigitOK: true, kind: .product))
        #expect(classifier.classify(text: "4006381333932").kind == .unknown)
        #expect(classifier.classify(text: "LOY-123").kind == .loyalty)
        #expect(classifier.classify(text: "ABC", aim: "]C1").symbology == .gs1_128)
        #expect(classifier.classify(text: "96385074", aim: "]E4").symbology == .ean8)
        #expect(classifier.classify(text: "http://x", aim: "]Q1").symbology == .qr)
    }
}
