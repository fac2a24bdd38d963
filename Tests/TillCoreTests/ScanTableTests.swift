import Foundation
import Testing
import TillScanner

/// The classifier against a table of 442 scans of every symbology, valid and misread, whose
/// expectations an independent library (biip) computed: scripts/make-scan-cases.py.
@Suite("Scan classification table (biip)")
struct ScanTableTests {
    struct Case: Decodable, Sendable {
        struct Expect: Decodable, Sendable {
            var symbology: String
            var check_digit_ok: Bool?
            var gs1: [String: String]?
            var gs1_error_ai: String?
            var upca: String?
        }
        var aim: String?
        var text: String
        var note: String
        var expect: Expect

        var label: String { "\(note): \(aim ?? "")\(text.replacingOccurrences(of: "\u{1D}", with: "<GS>"))" }
    }

    static let cases: [Case] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/scan-cases.json")
        return (try? JSONDecoder().decode([Case].self, from: Data(contentsOf: url))) ?? []
    }()

    @Test("symbology, check digit, GS1 values and the failing AI agree with biip on every case")
    func agreesWithBiip() {
        #expect(Self.cases.count == 442)
        let classifier = ScanClassifier()
        var disagreements: [String] = []
        var symbologies = Set<String>()
        for example in Self.cases {
            let result = classifier.classify(text: example.text, aim: example.aim)
            symbologies.insert(result.symbology.rawValue)
            var problems: [String] = []
            if result.symbology.rawValue != example.expect.symbology { problems.append("symbology \(result.symbology) ≠ \(example.expect.symbology)") }
            if result.checkDigitOK != example.expect.check_digit_ok {
                problems.append("check digit \(String(describing: result.checkDigitOK)) ≠ \(String(describing: example.expect.check_digit_ok))")
            }
            if result.gs1 != example.expect.gs1 { problems.append("gs1 \(String(describing: result.gs1)) ≠ \(String(describing: example.expect.gs1))") }
            if let ai = example.expect.gs1_error_ai, result.gs1Problem?.ai != ai {
                problems.append("failing AI \(String(describing: result.gs1Problem?.ai)) ≠ \(ai) (\(String(describing: result.gs1Problem)))")
            }
            if let upca = example.expect.upca, UPCE.expand(example.text) != upca { problems.append("UPC-A \(UPCE.expand(example.text) ?? "nil") ≠ \(upca)") }
            // Whatever else, a misread code is never a product, and nothing is dropped.
            if result.checkDigitOK == false, result.kind != .unknown { problems.append("a misread code is \(result.kind)") }
            if !problems.isEmpty { disagreements.append("\(example.label): " + problems.joined(separator: "; ")) }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements:\n\(disagreements.prefix(15).joined(separator: "\n"))")
        #expect(symbologies.isSuperset(of: Symbology.allCases.map(\.rawValue)), "every symbology is in the table: missing \(Set(Symbology.allCases.map(\.rawValue)).subtracting(symbologies))")
    }
}
