import Foundation
import Testing
import TillCore
import TillScanner

@Suite("GS1 element strings")
struct GS1Tests {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        var text: String
        var valid: Bool
        var values: [String: String]?
        var testDescription: String { text.replacingOccurrences(of: "\u{1D}", with: "<GS>") }
    }

    static let cases: [Case] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/gs1-cases.json")
        struct File: Decodable { var cases: [Case] }
        return (try? JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases) ?? []
    }()

    @Test("agrees with biip on 223 codes, valid and corrupted (scripts/make-gs1-cases.py)")
    func agreesWithBiip() {
        #expect(Self.cases.count == 223)
        var disagreements: [String] = []
        for example in Self.cases {
            switch GS1.parse(example.text) {
            case .success(let message):
                if !example.valid || message.values != example.values! {
                    disagreements.append("\(example.testDescription): tilld \(message.values), biip \(example.values.map { "\($0)" } ?? "invalid")")
                }
            case .failure(let error):
                if example.valid { disagreements.append("\(example.testDescription): tilld \(error), biip \(example.values!)") }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements:\n\(disagreements.prefix(10).joined(separator: "\n"))")
    }

    @Test("decimal measures and amounts get their decimal point; dates their century and month end")
    func interpreted() throws {
        let message = try GS1.parse("0104006381333931" + "3103001250" + "3922499" + "\u{1D}" + "17261200").get()
        #expect(message.elements.map(\.ai) == ["01", "3103", "3922", "17"])
        #expect(message.elements[1].decimal == "1.250" && message.elements[1].title == "NET WEIGHT (kg)")
        #expect(message.elements[2].decimal == "4.99")
        #expect(message.elements[3].date == "2026-12-31", "day 00 is the month's last day")
        #expect(GS1.parse("17991231").map { $0.elements[0].date } == .success("1999-12-31"))
    }

    @Test("a string that does not parse says which AI failed and keeps what was read")
    func errors() {
        guard case .failure(let error) = GS1.parse("0104006381333931" + "17261399") else { Issue.record("month 13 accepted"); return }
        #expect(error.ai == "17" && error.parsed.map(\.ai) == ["01"])
        #expect(error.message.contains("17") && error.message.contains("format"))
        guard case .failure(let digit) = GS1.parse("0104006381333932") else { Issue.record("bad check digit accepted"); return }
        #expect(digit.message.contains("check digit"))
        guard case .failure(let long) = GS1.parse("0104006381333931" + "10" + String(repeating: "A", count: 25)) else { Issue.record("21 characters of lot accepted"); return }
        #expect(long.message.contains("missing FNC1"))
        guard case .failure(let unknown) = GS1.parse("0104006381333931" + "2399") else { Issue.record("AI 23 accepted"); return }
        #expect(unknown.message.contains("no GS1 Application Identifier"))
    }

    @Test("the scanner's forms: an AIM identifier first, a leading FNC1, the human-readable (AI) form")
    func forms() throws {
        let expected = ["01": "04006381333931", "10": "LOT42"]
        #expect(try GS1.parse("]C1010400638133393110LOT42").get().values == expected)
        #expect(try GS1.parse("\u{1D}010400638133393110LOT42").get().values == expected)
        #expect(try GS1.parse("(01)04006381333931(10)LOT42").get().values == expected)
    }

    @Test("property: generated GTINs pass their check digit, and fail with any one digit changed")
    func checkDigits() {
        var generator = SystemRandomNumberGenerator()
        for length in [8, 12, 13, 14] {
            for _ in 0..<250 {
                let body = (0..<(length - 1)).map { _ in Int.random(in: 0...9, using: &generator) }
                let sum = body.reversed().enumerated().reduce(0) { $0 + $1.element * ($1.offset % 2 == 0 ? 3 : 1) }
                let digits = body + [(10 - sum % 10) % 10]
                let text = digits.map(String.init).joined()
                #expect(GTIN.isValid(text), "\(text)")
                let position = Int.random(in: 0..<length, using: &generator)
                var changed = digits
                changed[position] = (changed[position] + Int.random(in: 1...9, using: &generator)) % 10
                #expect(!GTIN.isValid(changed.map(String.init).joined()), "\(text) with digit \(position) changed")
            }
        }
    }

    @Test("property: elements encoded the way a scanner sends them parse back to the same elements")
    func roundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./")
        for _ in 0..<300 {
            let lot = String((0..<Int.random(in: 1...20, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let serial = String((0..<Int.random(in: 1...20, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let weight = String(format: "%06d", Int.random(in: 0...999_999, using: &generator))
            let date = String(format: "%02d%02d%02d", Int.random(in: 20...40, using: &generator), Int.random(in: 1...12, using: &generator), Int.random(in: 1...28, using: &generator))
            // Fixed-length AIs run on; a variable one is followed by GS unless it is last.
            let encoded = "0104006381333931" + "17" + date + "3102" + weight + "10" + lot + "\u{1D}" + "21" + serial
            let message = try GS1.parse(encoded).get()
            #expect(message.values == ["01": "04006381333931", "17": date, "3102": weight, "10": lot, "21": serial])
        }
    }
}
