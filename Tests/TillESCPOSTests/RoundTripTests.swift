import Foundation
import Testing
import TillCore
import TillTransportTesting
@testable import TillESCPOS

@Suite("encoder → virtual printer round trips")
struct RoundTripTests {
    static let words = ["Flat", "white", "Grüße", "crème", "brûlée", "Łódź", "žluťoučký", "Καλημέρα", "булок", "€", "4,50", "x2", "Smørrebrød", "ok", "a"]

    /// Random receipts: every text word comes back in order, styles and alignment come back,
    /// barcodes and QR codes come back with their data, and no character is lost or doubled.
    @Test("random receipts read back the same", arguments: 0..<200)
    func randomReceipt(seed: Int) throws {
        var random = SplitMix64(seed: UInt64(seed))
        var lines: [ReceiptDocument.Line] = []
        var expected: [(words: [String], style: ReceiptDocument.TextStyle?)] = []
        let columns = [32, 42, 48].randomElement(using: &random)!
        let profile = PrinterProfile(name: "rt", fonts: [.init(name: "A", columns: columns)], codePages: PrinterProfile.generic80.codePages)
        for _ in 0..<Int.random(in: 1...12, using: &random) {
            let words = (0..<Int.random(in: 1...14, using: &random)).map { _ in Self.words.randomElement(using: &random)! }
            switch Int.random(in: 0..<4, using: &random) {
            case 0, 1:
                let style = ReceiptDocument.TextStyle(
                    align: [.left, .center, .right].randomElement(using: &random)!,
                    size: ReceiptDocument.TextSize.allCases.randomElement(using: &random)!,
                    bold: Bool.random(using: &random), underline: Bool.random(using: &random), inverse: Bool.random(using: &random))
                lines.append(.text(words.joined(separator: " "), style))
                expected.append((words, style))
            case 2:
                let price = "\(Int.random(in: 0...99999, using: &random)).\(Int.random(in: 10...99, using: &random))"
                lines.append(.columns([.init(text: words.joined(separator: " ")), .init(text: price, align: .right)], .plain))
                expected.append((words + [price], nil))
            default:
                let data = "R-\(Int.random(in: 0...999999, using: &random))"
                lines.append(Bool.random(using: &random) ? .barcode(type: .code128, data: data) : .qr(data: data, size: 4, errorLevel: .m))
                expected.append(([data], nil))
            }
        }
        let bytes = try ReceiptEncoder(profile: profile).encode(ReceiptDocument(lines: lines)).bytes
        let decoded = VirtualPrinter.decode(bytes, profile: profile)
        var cursor = 0
        for (words, style) in expected {
            var seen: [String] = []
            while seen.count < words.count, cursor < decoded.count {
                let line = decoded[cursor]
                cursor += 1
                switch line.kind {
                case .text:
                    if let style {
                        #expect(line.bold == style.bold && line.underline == style.underline && line.inverse == style.inverse, "seed \(seed)")
                        #expect(line.align == Int(Writer.alignByte(style.align)), "seed \(seed)")
                    }
                    #expect(line.text.count <= columns / line.width, "seed \(seed): line wider than the paper")
                    seen += line.text.split(separator: " ").map(String.init)
                case .barcode(_, let data), .qr(let data, _, _):
                    seen.append(data)
                default:
                    Issue.record("seed \(seed): unexpected \(line.kind)")
                }
            }
            // Columns interleave the price with the wrapped name: compare as multisets there.
            #expect(seen.sorted() == words.sorted(), "seed \(seed)")
            if style != nil { #expect(seen == words, "seed \(seed): order") }
        }
        #expect(cursor == decoded.count, "seed \(seed): nothing extra printed")
    }
}
