import Foundation
import Testing
import TillCore
@testable import TillESCPOS
import TillImaging
import TillTransportTesting

@Suite("barcodes, QR codes and pictures")
struct BarcodeQRImageTests {
    let encoder = ReceiptEncoder(profile: .generic80, imaging: Imaging())

    @Test("Code 128 uses set C for digit runs and B for the rest, with { escaped")
    func code128() throws {
        #expect(hex(Barcode.code128(Array("R-1001".utf8)).payload) == hex([0x7B, 0x42, 0x52, 0x2D, 0x7B, 0x43, 10, 1]))
        #expect(hex(Barcode.code128(Array("123456".utf8)).payload) == hex([0x7B, 0x43, 12, 34, 56]))
        #expect(hex(Barcode.code128(Array("12345".utf8)).payload) == hex([0x7B, 0x43, 12, 34, 0x7B, 0x42, 0x35]))
        #expect(hex(Barcode.code128(Array("a{b".utf8)).payload) == hex([0x7B, 0x42, 0x61, 0x7B, 0x7B, 0x62]))
        #expect(VirtualPrinter.code128Text(Barcode.code128(Array("AB{12345678x".utf8)).payload) == "AB{12345678x")
    }

    @Test("barcode golden bytes: centred, HRI below, height, module width, GS k format B")
    func barcodeBytes() throws {
        let bytes = try encoder.encode(try document(#"{"lines":[{"barcode":{"type":"ean13","data":"4006381333931"}}]}"#)).bytes
        let expected: [UInt8] = [0x1B, 0x40, 0x1B, 0x61, 1, 0x1D, 0x48, 2, 0x1D, 0x68, 80, 0x1D, 0x77, 3, 0x1D, 0x6B, 67, 13] + Array("4006381333931".utf8)
        #expect(hex(bytes) == hex(expected))
    }

    @Test("data a symbology cannot hold is refused, naming the field", arguments: [
        ("ean13", "4006381333932", "check digit"), ("ean13", "12345", "12 digits"), ("code39", "abc", "capital"),
        ("itf", "123", "even number"), ("codabar", "1234", "starts and ends"), ("upce", "2234567", "upce"),
        ("code128", String(repeating: "X", count: 200), "too long"),
    ])
    func refused(type: String, data: String, reason: String) throws {
        let receipt = try document(#"{"lines":[{"text":"x"},{"barcode":{"type":"\#(type)","data":"\#(data)"}}]}"#)
        do {
            _ = try encoder.encode(receipt)
            Issue.record("\(type) \(data) accepted")
        } catch {
            #expect(error.field == "receipt.lines[1].barcode.data")
            #expect(error.message.contains(reason), "\(error.message)")
        }
    }

    @Test("each symbology round-trips through the virtual printer", arguments: [
        ("ean13", "400638133393"), ("ean8", "96385074"), ("upca", "036000291452"), ("upce", "0123457"),
        ("code39", "TILL-42 $"), ("code93", "till93"), ("code128", "R-1001/ab{c}"), ("itf", "00012345678905"), ("codabar", "A40156B"),
    ])
    func barcodes(type: String, data: String) throws {
        let bytes = try encoder.encode(try document(#"{"lines":[{"barcode":{"type":"\#(type)","data":"\#(data)"}}]}"#)).bytes
        #expect(VirtualPrinter.decode(bytes, profile: .generic80).map(\.kind) == [.barcode(type: type, data: data)])
    }

    @Test("a printer without barcodes gets the data as text, and the result says so")
    func barcodeAsText() throws {
        let plain = ReceiptEncoder(profile: PrinterProfile(name: "simple", barcodes: false))
        let result = try plain.encode(try document(#"{"lines":[{"barcode":{"type":"code128","data":"R-1"}}]}"#))
        #expect(VirtualPrinter.decode(result.bytes, profile: plain.profile).map(\.text) == ["R-1"])
        #expect(result.notes.first?.contains("barcode printed as text") == true)
    }

    @Test("QR golden bytes: model 2, size, error level, store, print")
    func qrBytes() throws {
        let bytes = try encoder.encode(try document(#"{"lines":[{"qr":{"data":"https://e.x/1","size":4,"error":"Q"}}]}"#)).bytes
        let data = Array("https://e.x/1".utf8)
        let expected: [UInt8] = [0x1B, 0x40, 0x1B, 0x61, 1,
                                 0x1D, 0x28, 0x6B, 4, 0, 0x31, 0x41, 0x32, 0,
                                 0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x43, 4,
                                 0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x45, 50,
                                 0x1D, 0x28, 0x6B, UInt8(data.count + 3), 0, 0x31, 0x50, 0x30] + data
            + [0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x51, 0x30]
        #expect(hex(bytes) == hex(expected))
    }

    @Test("a QR code wider than the paper is printed smaller, and one too long for any QR is refused")
    func qrLimits() throws {
        let long = String(repeating: "https://example.com/receipt/", count: 20)
        let result = try encoder.encode(try document(#"{"lines":[{"qr":{"data":"\#(long)","size":16}}]}"#))
        #expect(result.notes.contains { $0.contains("printed at size") })
        guard case .qr(_, let size, _) = VirtualPrinter.decode(result.bytes, profile: .generic80)[0].kind else {
            Issue.record("no QR")
            return
        }
        #expect(size < 16 && size >= 1)
        let tooLong = String(repeating: "x", count: 3000)
        #expect(throws: ReceiptEncodingError.self) {
            try encoder.encode(try document(#"{"lines":[{"qr":{"data":"\#(tooLong)","error":"H"}}]}"#))
        }
    }

    @Test("a printer without GS ( k gets the QR code as a picture that scans as the same code")
    func qrAsPicture() throws {
        var profile = PrinterProfile.generic80
        profile.qr = false
        let result = try ReceiptEncoder(profile: profile, imaging: Imaging()).encode(try document(#"{"lines":[{"qr":{"data":"R-1001","size":4}}]}"#))
        #expect(result.notes.first?.contains("QR code printed as a picture") == true)
        let modules = try Imaging().qrModules("R-1001", errorLevel: .m)
        #expect(VirtualPrinter.decode(result.bytes, profile: profile).map(\.kind) == [.image(width: (modules * 4 + 7) / 8 * 8, height: modules * 4)])
        // The picture is the code: each module's dots agree with libqrencode's matrix.
        let picture = try Imaging().qrImage("R-1001", errorLevel: .m, moduleDots: 4)
        let bitmap = Bitmap(picture, dithering: .threshold)
        #expect(bitmap.isSet(x: 4 * 4, y: 4 * 4), "finder pattern corner is dark")
        #expect(!bitmap.isSet(x: 0, y: 0), "quiet zone is light")
    }

    @Test("a PNG logo is decoded by libpng, composited on white, scaled to the paper and sent in bands")
    func logo() throws {
        let png = try fixture("logo-800x200.png")
        let receipt = ReceiptDocument(lines: [.image(png: png, dithering: .floydSteinberg)])
        let result = try encoder.encode(receipt)
        #expect(result.notes.contains { $0.contains("scaled from 800 to 576") })
        #expect(VirtualPrinter.decode(result.bytes, profile: .generic80).map(\.kind) == [.image(width: 576, height: 144)])
        let gray = try Imaging().decodePNG(png).fitted(toWidth: 576)
        let bitmap = Bitmap(gray, dithering: .floydSteinberg)
        // Transparent black prints as paper, the frame as black, the gradient as a dither.
        #expect(!bitmap.isSet(x: 288, y: 20), "transparent area is white")
        #expect(bitmap.isSet(x: 1, y: 72), "frame is black")
        let band = (55..<95).map { y in (0..<576).filter { bitmap.isSet(x: $0, y: y) }.count }
        let dark = (0..<100).filter { bitmap.isSet(x: $0, y: 75) }.count
        let light = (476..<576).filter { bitmap.isSet(x: $0, y: 75) }.count
        #expect(dark > light + 30, "the gradient goes from dark to light: \(dark) vs \(light)")
        #expect(band.allSatisfy { $0 > 0 })
        // Bands of at most rasterBandRows rows.
        var profile = PrinterProfile.generic80
        profile.rasterBandRows = 64
        let banded = try ReceiptEncoder(profile: profile, imaging: Imaging()).encode(receipt).bytes
        let starts = banded.indices.dropLast(2).filter { banded[$0] == 0x1D && banded[$0 + 1] == 0x76 && banded[$0 + 2] == 0x30 }
        #expect(starts.count == 3)
    }

    @Test("the dithering methods differ as they should; threshold keeps line art exact")
    func dithering() {
        let gray = GrayImage(width: 64, height: 64, fill: 128 + 40)
        let fs = Bitmap(gray, dithering: .floydSteinberg)
        let atkinson = Bitmap(gray, dithering: .atkinson)
        let threshold = Bitmap(gray, dithering: .threshold)
        func coverage(_ b: Bitmap) -> Double { Double((0..<64).flatMap { y in (0..<64).map { b.isSet(x: $0, y: y) } }.filter { $0 }.count) / 4096 }
        #expect(abs(coverage(fs) - (1 - 168.0 / 255)) < 0.03, "Floyd-Steinberg keeps the mean grey")
        #expect(coverage(atkinson) < coverage(fs), "Atkinson drops a quarter of the error: lighter")
        #expect(coverage(threshold) == 0)
    }

    @Test("a printer without GS v 0 gets ESC * 24-dot stripes; one without pictures gets a note")
    func bitImage() throws {
        var profile = PrinterProfile.generic80
        profile.imageCommand = .bitImage
        let png = try fixture("logo-576x160.png")
        let bytes = try ReceiptEncoder(profile: profile, imaging: Imaging()).encode(ReceiptDocument(lines: [.image(png: png, dithering: .atkinson)])).bytes
        #expect(VirtualPrinter.decode(bytes, profile: profile).map(\.kind) == [.image(width: 576, height: 168)])
        profile.imageCommand = .none
        let result = try ReceiptEncoder(profile: profile, imaging: Imaging()).encode(ReceiptDocument(lines: [.image(png: png, dithering: .atkinson)]))
        #expect(result.notes.first?.contains("image left out") == true)
    }

    @Test("a malformed PNG is refused naming the field")
    func malformedPNG() throws {
        var png = try fixture("logo-576x160.png")
        png.replaceSubrange(40..<png.count, with: Data(repeating: 0x55, count: png.count - 40))
        do {
            _ = try encoder.encode(ReceiptDocument(lines: [.image(png: png, dithering: .threshold)]))
            Issue.record("accepted")
        } catch {
            #expect(error.field == "receipt.lines[0].image.png")
            #expect(error.message.contains("libpng"))
        }
    }
}

@Suite("dithering is exact")
struct DitheringTests {
    /// Textbook Floyd-Steinberg over a whole error image, with the same integer steps (errors
    /// shifted right by 4, rounding down): the fast version must give the same dots.
    static func reference(_ image: GrayImage) -> [[Bool]] {
        var error = [[Int32]](repeating: [Int32](repeating: 0, count: image.width + 2), count: image.height + 1)
        var dots = [[Bool]](repeating: [Bool](repeating: false, count: image.width), count: image.height)
        for y in 0..<image.height {
            for x in 0..<image.width {
                let value = Int32(image.pixels[y * image.width + x]) + error[y][x + 1]
                let black = value < 128
                dots[y][x] = black
                let e = black ? value : value - 255
                error[y][x + 2] += (e * 7) >> 4
                error[y + 1][x] += (e * 3) >> 4
                error[y + 1][x + 1] += (e * 5) >> 4
                error[y + 1][x + 2] += e >> 4
            }
        }
        return dots
    }

    /// Sizes around the eight-row bands and their two-pixel skew: fewer rows than a band, a
    /// band and one row, pictures narrower than the skew of a whole band (14 pixels), widths
    /// that are not whole bytes, a full-width logo.
    @Test("the fast Floyd-Steinberg gives the textbook's dots", arguments: [
        (1, 1), (7, 3), (8, 8), (13, 5), (64, 9), (577, 4), (2, 17), (14, 16), (15, 15), (16, 24), (23, 7), (100, 33), (576, 160),
    ])
    func exact(width: Int, height: Int) {
        var random = SplitMix64(seed: UInt64(width * 1000 + height))
        let image = GrayImage(width: width, height: height, pixels: (0..<width * height).map { _ in UInt8.random(in: 0...255, using: &random) })
        let bitmap = Bitmap(image, dithering: .floydSteinberg)
        let expected = Self.reference(image)
        for y in 0..<height {
            #expect((0..<width).map { bitmap.isSet(x: $0, y: y) } == expected[y], "row \(y) of \(width)x\(height)")
        }
        // Padding bits past the width stay clear.
        if width % 8 != 0 {
            for y in 0..<height { #expect(bitmap.rows[y * bitmap.bytesPerRow + bitmap.bytesPerRow - 1] & (0xFF >> UInt8(width % 8)) == 0) }
        }
    }

    @Test("a black-and-white picture takes the short way, with the same dots")
    func blackAndWhite() {
        var random = SplitMix64(seed: 42)
        let image = GrayImage(width: 100, height: 30, pixels: (0..<3000).map { _ in Bool.random(using: &random) ? 0 : 255 })
        let bitmap = Bitmap(image, dithering: .floydSteinberg)
        let expected = Self.reference(image)
        for y in 0..<30 { #expect((0..<100).map { bitmap.isSet(x: $0, y: y) } == expected[y]) }
    }
}
