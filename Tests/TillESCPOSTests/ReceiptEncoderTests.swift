import Foundation
import Testing
import TillCore
@testable import TillESCPOS
import TillImaging

/// Hex of bytes, for readable golden comparisons.
func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02X", $0) }.joined(separator: " ") }

func document(_ json: String) throws -> ReceiptDocument {
    try ReceiptDocument(json: try JSONText.decode(json))
}

func fixture(_ name: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)"))
}

@Suite("ESC/POS encoder")
struct ReceiptEncoderTests {
    let encoder = ReceiptEncoder(profile: .generic80, imaging: Imaging())

    @Test("golden bytes: styles, alignment, columns, rule, feed, cut, drawer")
    func golden() throws {
        let receipt = try document(#"""
            {"lines":[{"text":"M&M Coffee","align":"center","size":"double","bold":true},
            {"columns":[{"text":"Flat white x2"},{"text":"7.00","align":"right"}]},
            {"rule":"-"},{"text":"Thanks","underline":true,"inverse":true},{"feed":2},{"cut":"partial"}],"open_drawer":true}
            """#)
        let bytes = try encoder.encode(receipt).bytes
        let expected: [UInt8] = [0x1B, 0x40]
            + [0x1B, 0x45, 1, 0x1D, 0x21, 0x11, 0x1B, 0x61, 1] + Array("M&M Coffee".utf8) + [0x0A]
            + [0x1B, 0x45, 0, 0x1D, 0x21, 0x00, 0x1B, 0x61, 0] + Array("Flat white x2".utf8) + Array(repeating: 0x20, count: 48 - 13 - 4) + Array("7.00".utf8) + [0x0A]
            + Array(repeating: 0x2D, count: 48) + [0x0A]
            + [0x1B, 0x2D, 1, 0x1D, 0x42, 1] + Array("Thanks".utf8) + [0x0A]
            + [0x1B, 0x64, 2]
            + [0x1D, 0x56, 66, 0]
            + [0x1B, 0x70, 0, 50, 200]
        #expect(hex(bytes) == hex(expected))
    }

    @Test("an amount column never breaks; the name wraps beside it")
    func amountColumn() throws {
        let narrow = ReceiptEncoder(profile: PrinterProfile(name: "58mm", fonts: [.init(name: "A", columns: 32)]))
        let receipt = try document(#"""
            {"lines":[{"columns":[{"text":"Organic oat milk flat white with an extra shot"},{"text":"1234.50","align":"right"}]}]}
            """#)
        let lines = VirtualPrinter.render(try narrow.encode(receipt).bytes, profile: narrow.profile)
        #expect(lines == ["Organic oat milk flat    1234.50", "white with an extra shot"])
    }

    @Test("set widths are honoured, and a row that cannot fit shrinks the text, not the amount")
    func columnWidths() throws {
        let cells = { (text: String) in text.utf8.map { PrintCell($0) } }
        let columns = [ReceiptDocument.Column(text: "2x", width: 4), .init(text: "Croissant"), .init(text: "3.60", align: .right)]
        #expect(Writer.columnWidths(columns, cells: columns.map { cells($0.text) }, total: 48) == [4, 38, 4])
        let wide = [ReceiptDocument.Column(text: "x", width: 40), .init(text: "y", width: 10), .init(text: "123456.00", align: .right)]
        let widths = Writer.columnWidths(wide, cells: wide.map { cells($0.text) }, total: 32)
        #expect(widths[2] == 9 && widths.reduce(0, +) + 2 <= 32)
    }

    @Test("long text wraps at word boundaries to the paper (halved for double width)")
    func wrapping() throws {
        let narrow = ReceiptEncoder(profile: PrinterProfile(name: "t", fonts: [.init(name: "A", columns: 10)]))
        let text = try narrow.encode(try document(#"{"lines":[{"text":"one two three four five six"},{"text":"abcdefghijkl","size":"double"}]}"#))
        let lines = VirtualPrinter.decode(text.bytes, profile: narrow.profile).map(\.text)
        #expect(lines == ["one two", "three four", "five six", "abcde", "fghij", "kl"])
    }

    @Test("a cut and a drawer the profile lacks degrade and say so")
    func degrade() throws {
        let plain = ReceiptEncoder(profile: PrinterProfile(name: "POS-5890", partialCut: false, drawerPulse: false))
        let result = try plain.encode(try document(#"{"lines":[{"cut":"partial"}],"open_drawer":true}"#))
        #expect(hex(result.bytes) == hex([0x1B, 0x40, 0x1D, 0x56, 65, 0]))
        #expect(result.notes.contains { $0.contains("full cut instead of partial") })
        #expect(result.notes.contains { $0.contains("no drawer port") })
        #expect(!result.opensDrawer)
        let noCutter = ReceiptEncoder(profile: PrinterProfile(name: "x", fullCut: false, partialCut: false))
        #expect(try noCutter.encode(try document(#"{"lines":[{"cut":"full"}]}"#)).notes.first?.contains("no cutter") == true)
    }

    @Test("drawer pulses per profile, pin and pulse from the options")
    func drawer() throws {
        var profile = PrinterProfile.generic80
        profile.drawerPulses = 2
        let kick = ReceiptEncoder(profile: profile, options: .init(drawerPin: 5, drawerPulseMilliseconds: 60))
        let bytes = try kick.encode(try document(#"{"lines":[],"open_drawer":true}"#)).bytes
        #expect(hex(bytes) == hex([0x1B, 0x40, 0x1B, 0x70, 1, 30, 120, 0x1B, 0x70, 1, 30, 120]))
    }

    @Test("a REPRINT banner says the job is printed again")
    func reprint() {
        let lines = VirtualPrinter.render(encoder.reprintBanner(job: "J7"), profile: .generic80)
        #expect(lines[0].contains("* * *   R E P R I N T"))
        #expect(lines[1].contains("job J7 was interrupted"))
    }
}

@Suite("receipt document: bad input names the field")
struct ReceiptDocumentTests {
    @Test("unknown fields, bad enums and over-limit images are refused with their path", arguments: [
        (#"{"lines":[{"text":"a","allign":"center"}]}"#, "receipt.lines[0].allign"),
        (#"{"lines":[{"text":"a"}],"drawer":true}"#, "receipt.drawer"),
        (#"{"lines":[{"columns":[{"text":"a","bold":true}]}]}"#, "receipt.lines[0].columns[0].bold"),
        (#"{"lines":[{"qr":{"data":"x","error":"X"}}]}"#, "receipt.lines[0].qr.error"),
        (#"{"lines":[{"image":{"png":"aGVsbG8="}}]}"#, "receipt.lines[0].image.png"),
        (#"{"lines":[{"image":{"png":"AAAA","dither":"x"}}]}"#, "receipt.lines[0].image.png"),
        (#"{"lines":[{"barcode":{"type":"ean13","data":"12","height":3}}]}"#, "receipt.lines[0].barcode.height"),
    ])
    func refused(json: String, field: String) throws {
        do {
            _ = try document(json)
            Issue.record("accepted \(json)")
        } catch let error as WireError {
            #expect(error.message.hasPrefix(field), "\(error.message)")
        }
    }

    @Test("an image over the size limit is refused before it is decoded")
    func oversized() throws {
        // A PNG header claiming 5000x10 pixels.
        var header: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        header += [0, 0, 0x13, 0x88, 0, 0, 0, 10] + [8, 0, 0, 0, 0, 0, 0, 0, 0]
        let json = #"{"lines":[{"image":{"png":"\#(Data(header).base64EncodedString())"}}]}"#
        #expect(throws: WireError.self) { try document(json) }
        do { _ = try document(json) } catch let error as WireError { #expect(error.message.contains("over the limit")) }
    }
}
