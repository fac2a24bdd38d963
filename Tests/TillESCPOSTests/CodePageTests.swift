import Testing
import TillCore
@testable import TillESCPOS

@Suite("code pages and transliteration")
struct CodePageTests {
    let profile = PrinterProfile.generic80

    func roundTrip(_ text: String, profile: PrinterProfile = .generic80) throws -> (text: String, bytes: [UInt8], pages: [String]) {
        let encoded = try ReceiptEncoder(profile: profile).encode(ReceiptDocument(lines: [.text(text, .plain)]))
        let line = VirtualPrinter.decode(encoded.bytes, profile: profile)[0]
        return (line.text, encoded.bytes, line.pages)
    }

    @Test("receipts in these languages print right", arguments: [
        "Grüße aus Köln: Maß Bier 4,50 €",
        "Crème brûlée, façade, œuvre: 3,20 €",
        "Zażółć gęślą jaźń — Łódź",
        "Příliš žluťoučký kůň úpěl ďábelské ódy",
        "Καλημέρα κόσμε",
        "Съешь же ещё этих мягких французских булок",
        "Ærøskøbing – Smørrebrød",
    ])
    func languages(text: String) throws {
        let result = try roundTrip(text)
        #expect(result.text == text)
        #expect(!result.bytes.contains(UInt8(ascii: "?")))
    }

    @Test("ESC t is sent only where the page changes")
    func fewSwitches() throws {
        let result = try roundTrip("Köln Köln Köln 5 € Straße")
        let switches = result.bytes.indices.dropLast().filter { result.bytes[$0] == 0x1B && result.bytes[$0 + 1] == 0x74 }
        #expect(switches.count == 1, "one page holds the whole line: \(hex(result.bytes))")
        #expect(result.pages.count == 1)
        // A page that holds only the first characters is not chosen when one holds them all.
        #expect(result.pages != ["CP437"] && result.pages != ["CP850"])
    }

    @Test("the euro sign is printed with the page that has it, and as EUR where none has")
    func euro() throws {
        #expect(try roundTrip("5 €").text == "5 €")
        let cp437Only = PrinterProfile(name: "old", codePages: [0: "CP437"])
        let encoded = try ReceiptEncoder(profile: cp437Only).encode(ReceiptDocument(lines: [.text("5 € Łódź", .plain)]))
        #expect(VirtualPrinter.decode(encoded.bytes, profile: cp437Only)[0].text == "5 EUR Lódz")
        #expect(encoded.notes.contains { $0.contains("transliterated") && $0.contains("€") && $0.contains("Ł") })
    }

    @Test("Cyrillic and Greek are transliterated where no page holds them, never a silent ?")
    func transliteration() throws {
        // CP437 holds a few Greek letters (α, δ): a page without any.
        let latinOnly = PrinterProfile(name: "latin", codePages: [16: "CP1252"])
        let text = try roundTrip("Привет Ελλάδα", profile: latinOnly).text
        #expect(text == "Privet Ellada")
        let encoded = try ReceiptEncoder(profile: latinOnly).encode(ReceiptDocument(lines: [.text("☃ ok", .plain)]))
        #expect(VirtualPrinter.decode(encoded.bytes, profile: latinOnly)[0].text == "? ok")
        #expect(encoded.notes.contains { $0.contains("☃") && $0.contains("printed as ?") })
    }

    @Test("every table is a bijection on what it defines, and ASCII is ASCII")
    func tables() throws {
        for (name, _) in CodePage.upperHalves {
            let page = try #require(CodePage(named: name))
            for byte in UInt8(0)...UInt8(255) {
                guard let scalar = page.scalar(for: byte) else { continue }
                if byte < 0x80 { #expect(scalar.value == UInt32(byte)) }
                #expect(page.byte(for: scalar).flatMap(page.scalar(for:)) == scalar, "\(name) \(byte)")
            }
        }
        #expect(CodePage(named: "CP858")?.byte(for: "€") == 0xD5)
        #expect(CodePage(named: "CP866")?.byte(for: "Я") == 0x9F)
        #expect(CodePage(named: "CP932") == nil, "multi-byte pages are never selected")
    }
}
