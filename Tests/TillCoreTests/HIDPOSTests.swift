import Testing
import TillScanner
import TillTransportTesting

@Suite("HID POS scanners: report descriptors and reports")
struct HIDPOSTests {
    @Test("the counted layout: byte count, AIM identifier, 56 data bytes, continuation bit; 64-byte reports")
    func counted() throws {
        let layout = try HIDPOSLayout(descriptor: HIDPOSRecordings.counted)
        #expect(layout.reportID == 2 && layout.reportLength == 64)
        let report = HIDPOSRecordings.countedReports("4006381333931", aim: "]E0")[0]
        #expect(report.count == 64)
        #expect(layout.read(report) == HIDPOSLayout.Piece(data: Array("4006381333931".utf8), aim: "]E0", continued: false))
    }

    @Test("a byte count keeps NULs inside the data; without one, NUL padding is cut")
    func nulsInData() throws {
        let layout = try HIDPOSLayout(descriptor: HIDPOSRecordings.counted)
        var report: [UInt8] = [0x02, 4] + Array("]Q1".utf8) + [0x61, 0x00, 0x62, 0x00]
        report += [UInt8](repeating: 0, count: 52) + [0, 0, 0]
        #expect(layout.read(report)?.data == [0x61, 0x00, 0x62, 0x00])
    }

    @Test("another vendor's order, fields found by usage: continuation first, AIM as three fields, no byte count")
    func uncounted() throws {
        let layout = try HIDPOSLayout(descriptor: HIDPOSRecordings.uncounted)
        #expect(layout.reportID == 4 && layout.reportLength == 1 + 1 + 3 + 60)
        var report: [UInt8] = [0x04, 0x01] + Array("]C1".utf8) + Array("0104006381333931".utf8)
        report += [UInt8](repeating: 0, count: 65 - report.count)
        #expect(layout.read(report) == HIDPOSLayout.Piece(data: Array("0104006381333931".utf8), aim: "]C1", continued: true))
        #expect(layout.read([0x01, 9, 9, 9, 9]) == nil, "the status report is not a scan")
    }

    @Test("without report IDs, usages given as a minimum and maximum")
    func unnumbered() throws {
        let layout = try HIDPOSLayout(descriptor: HIDPOSRecordings.unnumbered)
        #expect(layout.reportLength == 1 + 3 + 28 + 1)
        var report: [UInt8] = [5] + Array("]E4".utf8) + Array("96385074".utf8)
        report += [UInt8](repeating: 0, count: 32 - report.count) + [0x00]
        #expect(layout.read(report) == HIDPOSLayout.Piece(data: Array("96385".utf8), aim: "]E4", continued: false))
        #expect(layout.split(report + report) == [report, report], "two reports in one read, told apart by length")
    }

    @Test("a scanner in keyboard mode, or a broken descriptor, is refused with what to do")
    func refused() {
        #expect {
            try HIDPOSLayout(descriptor: HIDPOSRecordings.keyboard)
        } throws: { error in
            "\(error)".contains("evdev-scanner") && "\(error)".contains("0x8C")
        }
        #expect {
            try HIDPOSLayout(descriptor: Array(HIDPOSRecordings.counted.prefix(40)) + [0x26, 0xFF])
        } throws: { error in
            "\(error)".contains("does not parse")
        }
    }

    @Test("a long code in several reports is put back together; a vendor's own symbology byte is no AIM identifier")
    func reassembly() throws {
        let layout = try HIDPOSLayout(descriptor: HIDPOSRecordings.counted)
        // The Access-IS manual's example: a 60-byte boarding pass in two reports.
        let pass = "M1GATHERGOOD/MICHAEL YABCDEF LHRDURAK 3542 052Y003D23  ABCD"
        let reports = HIDPOSRecordings.countedReports(pass, aim: "]Q0")
        #expect(reports.count == 2)
        var assembler = HIDPOSAssembler()
        #expect(assembler.feed(layout.read(reports[0])!) == nil && assembler.hasPending)
        #expect(assembler.feed(layout.read(reports[1])!) == .scan(ScanFrame(data: Array(pass.utf8), aim: "]Q0")))
        #expect(!assembler.hasPending)
        let vendor = [0x02, 3, 0x11, 0x00, 0x00] + Array("abc".utf8) + [UInt8](repeating: 0, count: 53) + [0, 0, 0]
        #expect(layout.read(vendor)?.aim == nil)
    }

    @Test("reads that hold several reports are split by the descriptor's lengths; an overlong scan is dropped whole")
    func splitAndBounds() throws {
        let layout = try HIDPOSLayout(descriptor: HIDPOSRecordings.counted)
        let reports = HIDPOSRecordings.countedReports(String(repeating: "x", count: 150), aim: "]C0")
        #expect(layout.split(reports.flatMap { $0 }) == reports)
        #expect(layout.split(reports[0]) == [reports[0]])
        var assembler = HIDPOSAssembler(maxLength: 100)
        var outputs: [HIDPOSAssembler.Output] = []
        for report in reports { if let output = assembler.feed(layout.read(report)!) { outputs.append(output) } }
        #expect(outputs.count == 1)
        if case .tooLong(let discarded)? = outputs.first { #expect(discarded > 100) } else { Issue.record("expected tooLong, got \(outputs)") }
        var interrupted = HIDPOSAssembler()
        _ = interrupted.feed(layout.read(reports[0])!)
        #expect(interrupted.abandon() == 56 && !interrupted.hasPending)
    }

    @Test("property: any text up to 1 KiB survives being cut into reports and put back together")
    func roundTrip() throws {
        let layout = try HIDPOSLayout(descriptor: HIDPOSRecordings.counted)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let length = Int.random(in: 1...1024, using: &generator)
            let text = String((0..<length).map { _ in Character(UnicodeScalar(UInt8.random(in: 0x21...0x7E, using: &generator))) })
            var assembler = HIDPOSAssembler()
            var result: HIDPOSAssembler.Output? = nil
            for report in HIDPOSRecordings.countedReports(text, aim: "]d2") { result = assembler.feed(layout.read(report)!) ?? result }
            #expect(result == .scan(ScanFrame(data: Array(text.utf8), aim: "]d2")))
        }
    }
}
