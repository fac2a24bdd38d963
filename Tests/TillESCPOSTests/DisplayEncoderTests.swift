import Testing
@testable import TillDisplay
import TillESCPOS

@Suite("pole display command sets and layout")
struct DisplayEncoderTests {
    @Test("Epson DM-D: set-up and two rows, byte for byte")
    func epson() {
        let encoder = DisplayEncoder(.epson, profile: DisplayProfile(codePage: "CP858", brightness: 3))
        #expect(hex(encoder.setup) == hex([0x1B, 0x40, 0x1F, 0x58, 3, 0x1B, 0x74, 19, 0x1F, 0x43, 0]))
        let bytes = encoder.show(["Flat white", "3,20 €"])
        let row1: [UInt8] = Array("Flat white".utf8) + [UInt8](repeating: 0x20, count: 10)
        let row2: [UInt8] = Array("3,20 ".utf8) + [0xD5] + [UInt8](repeating: 0x20, count: 14)
        #expect(hex(bytes) == hex([0x1F, 0x24, 1, 1] + row1 + [0x1F, 0x24, 1, 2] + row2))
    }

    @Test("CD5220: upper and lower line commands, a 4x20 display's rows by cursor")
    func cd5220() {
        let encoder = DisplayEncoder(.cd5220, profile: DisplayProfile(rows: 4, brightness: 2))
        #expect(hex(encoder.setup) == hex([0x1B, 0x40, 0x1B, 0x2A, 2, 0x1B, 0x74, 0]))
        let bytes = encoder.show(["TOTAL", "12.50"])
        func padded(_ text: String) -> [UInt8] { Array(text.utf8) + [UInt8](repeating: 0x20, count: 20 - text.utf8.count) }
        let expected = [0x1B, 0x51, 0x41] + padded("TOTAL") + [0x0D] + [0x1B, 0x51, 0x42] + padded("12.50") + [0x0D]
            + [0x1B, 0x6C, 1, 3] + padded("") + [0x1B, 0x6C, 1, 4] + padded("")
        #expect(hex(bytes) == hex(expected))
    }

    @Test("text beyond the display's table is transliterated; too long is cut to the width")
    func characters() {
        let encoder = DisplayEncoder(.epson, profile: DisplayProfile(codePage: "CP437"))
        let bytes = encoder.show(["Łódź 5 € and a much longer line"])
        #expect(Array(bytes[4..<24]) == Array("L".utf8) + [0xA2] + Array("dz 5 EUR and a muc".utf8))
    }

    @Test("a price row cuts the name, never the price; a marquee scrolls through the width")
    func layout() {
        #expect(DisplayLayout.priceRow("Organic oat flat white", "3.20", columns: 20) == "Organic oat fla 3.20")
        #expect(DisplayLayout.priceRow("Tea", "3.20", columns: 20) == "Tea             3.20")
        #expect(DisplayLayout.priceRow("Gift card", "1234567.89 EUR", columns: 12) == "34567.89 EUR", "a price wider than the glass keeps its end")
        #expect(DisplayLayout.priceRow("x", "12345678901234567890", columns: 20) == "12345678901234567890")
        let frames = DisplayLayout.marquee("Welcome to M&M Coffee", columns: 10)
        #expect(frames.count == 24 && frames[0] == "Welcome to" && frames[1] == "elcome to ")
        #expect(frames.allSatisfy { $0.count == 10 })
        #expect(DisplayLayout.marquee("short", columns: 10) == ["short"])
    }
}
