// Decoding throughput: scans classified per second (symbology, check digit, kind, GS1), on a
// mix of retail codes. Not a test: run it in release.
//     swift run -c release till-scan-bench
import Foundation
import TillScanner

let classifier = ScanClassifier(loyaltyPrefixes: ["2900"])
var samples: [(String, String?)] = []
for n in 0..<1000 {
    let body = String(format: "400638%06d", n)
    let digits = Array(body.utf8).map { Int($0) - 48 }
    let check = GTIN.checkDigit(for: digits)
    samples.append((body + String(check), nil))  // EAN-13
    samples.append(("0104006381333931" + "17261231" + "10LOT\(n)" + "\u{1D}" + "21S\(n)", "]C1"))  // GS1-128
    samples.append(("2900\(String(format: "%09d", n))", nil))  // loyalty card
    samples.append(("garbled-\(n)", nil))  // unknown
}
@MainActor func run(_ rounds: Int) -> Double {
    let start = ContinuousClock.now
    var kinds = 0
    for _ in 0..<rounds {
        for (text, aim) in samples where classifier.classify(text: text, aim: aim).kind == .product { kinds += 1 }
    }
    let elapsed = ContinuousClock.now - start
    precondition(kinds > 0)
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(rounds * samples.count) / seconds
}
_ = run(2)  // warm up
var rates: [Double] = []
for _ in 0..<5 { rates.append(run(10)) }
rates.sort()
print(String(format: "decoding: %.0f codes/s (median of 5 runs of %d codes: EAN-13, GS1-128 with 4 AIs, loyalty, garbled)", rates[2], 10 * samples.count))
