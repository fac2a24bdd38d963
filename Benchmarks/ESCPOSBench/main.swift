// ESC/POS figures (docs/benchmarks.md), printed as one JSON object for Benchmarks/escpos_bench.py,
// which runs python-escpos on the same receipt and logo beside it. Not a test: run it in release.
//     swift run -c release till-escpos-bench LOGO.png
import Foundation
import TillCore
import TillESCPOS
import TillImaging

/// The benchmark receipt: 40 lines (a header, 34 items, rules, total, thanks) and a QR code:
/// the same lines escpos_bench.py gives python-escpos.
func receipt() -> ReceiptDocument {
    var lines: [ReceiptDocument.Line] = [
        .text("M&M Coffee", .init(align: .center, size: .double, bold: true)),
        .text("12 Market Street, Springfield", .init(align: .center)),
        .rule("-"),
    ]
    for n in 1...34 {
        lines.append(.columns([.init(text: "Item number \(n) oat flat white"), .init(text: "\(n).50", align: .right)], .plain))
    }
    lines += [
        .rule("-"),
        .columns([.init(text: "TOTAL"), .init(text: "612.00 EUR", align: .right)], .init(bold: true)),
        .text("Thank you, see you soon!", .init(align: .center)),
        .qr(data: "https://example.com/r/2026-11-27/0001", size: 6, errorLevel: .m),
        .cut(.partial),
    ]
    return ReceiptDocument(lines: lines)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func timed(_ rounds: Int, _ body: () throws -> Int) rethrows -> Double {
    var sink = 0
    let start = ContinuousClock.now
    for _ in 0..<rounds { sink &+= try body() }
    let elapsed = ContinuousClock.now - start
    precondition(sink != 0)
    return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) / Double(rounds)
}

let arguments = CommandLine.arguments
guard arguments.count > 1, let png = FileManager.default.contents(atPath: arguments[1]) else {
    FileHandle.standardError.write(Data("usage: till-escpos-bench LOGO.png\n".utf8))
    exit(2)
}
let encoder = ReceiptEncoder(profile: .generic80, imaging: Imaging())
let document = receipt()
if ProcessInfo.processInfo.environment["ENCODE_ONLY"] != nil {  // for a profiler
    print(try timed(20000) { try encoder.encode(document).bytes.count })
    exit(0)
}
let bytes = try encoder.encode(document).bytes.count
_ = try timed(200) { try encoder.encode(document).bytes.count }  // warm up
var encode: [Double] = []
for _ in 0..<15 { encode.append(try timed(200) { try encoder.encode(document).bytes.count }) }

// The logo: PNG decoded (libpng), fitted to 576 dots, Floyd-Steinberg, GS v 0 bands.
let imaging = Imaging()
func rasterize() throws -> Int {
    let image = try imaging.decodePNG(png).fitted(toWidth: 576)
    return Bitmap(image, dithering: .floydSteinberg).rasterCommands(bandRows: 255).reduce(0) { $0 + $1.count }
}
let logoBytes = try rasterize()
var raster: [Double] = []
for _ in 0..<15 { raster.append(try timed(20) { try rasterize() }) }
var decode: [Double] = []
for _ in 0..<15 { decode.append(try timed(20) { try imaging.decodePNG(png).width }) }
let gray = try imaging.decodePNG(png)
var dither: [Double] = []
for _ in 0..<15 { dither.append(timed(20) { Bitmap(gray, dithering: .floydSteinberg).rows.count }) }
FileHandle.standardError.write(Data("decode \(median(decode) * 1e6) µs, dither \(median(dither) * 1e6) µs\n".utf8))
print(#"{"encode_seconds": \#(median(encode)), "receipt_bytes": \#(bytes), "raster_seconds": \#(median(raster)), "logo_bytes": \#(logoBytes)}"#)
