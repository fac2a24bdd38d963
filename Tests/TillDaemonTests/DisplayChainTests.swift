import Foundation
import Testing
import TillCore
import TillDevices
@testable import TillDisplay
@testable import TillDrivers
import TillESCPOS
import TillTransport
import TillTransportTesting

@Suite("the virtual display and a display chained through a printer", .timeLimit(.minutes(1)))
struct DisplayChainTests {
    @Test("both command sets read back to the glass they draw, 2x20 and 4x20, code page included", arguments: DisplayCommandSet.allCases)
    func roundTrip(_ set: DisplayCommandSet) {
        for profile in [DisplayProfile(rows: 2, columns: 20, codePage: "CP858"), DisplayProfile(rows: 4, columns: 20)] {
            let encoder = DisplayEncoder(set, profile: profile)
            var glass = VirtualDisplay(set, profile: profile)
            glass.feed(encoder.setup)
            let lines = ["Café au lait", "TOTAL  4.20 €", "x", "4th row"].prefix(profile.rows)
            glass.feed(encoder.show(Array(lines)))
            let expected = lines.map { line -> String in
                // What the table holds: the euro in CP858, "EUR" where the page has none (CP437).
                let shown = profile.codePage == "CP858" || !line.contains("€") ? line : line.replacingOccurrences(of: "€", with: "EUR")
                return shown.padding(toLength: 20, withPad: " ", startingAt: 0)
            }
            #expect(glass.lines == expected, "\(set) \(profile.rows)x\(profile.columns)")
            glass.feed(encoder.clear)
            #expect(glass.lines.allSatisfy { $0.allSatisfy { $0 == " " } })
        }
        // A command cut across two writes is put back together.
        let encoder = DisplayEncoder(set, profile: DisplayProfile())
        var glass = VirtualDisplay(set, profile: DisplayProfile())
        let bytes = encoder.show(["Split", "writes"])
        glass.feed(Array(bytes.prefix(2)))
        glass.feed(Array(bytes.dropFirst(2)))
        #expect(glass.lines.map { $0.trimmingCharacters(in: .whitespaces) } == ["Split", "writes"])
    }

    @Test("the virtual printer keeps what follows ESC = 2 for the display and prints none of it")
    func virtualPrinterPassThrough() {
        var printer = VirtualPrinter(profile: .generic80)
        printer.feed(Array("before\n".utf8) + ESCPOS.selectPeripheral(.display) + [0x1F, 0x24, 1, 1] + Array("ON THE GLASS\n".utf8) + ESCPOS.selectPeripheral(.printer) + Array("after\n".utf8))
        printer.finish()
        #expect(printer.lines.map(\.text) == ["before", "after"])
        #expect(printer.displayBytes == [0x1F, 0x24, 1, 1] + Array("ON THE GLASS\n".utf8))
    }

    @Test("a chained display's bytes go through the printer, byte for byte: ESC = 2, the display's commands, ESC = 1, never inside a job")
    func chained() async throws {
        let fake = FakeEscposPrinter()
        let info = DeviceInfo(name: "front-printer", role: .printer, driver: "escpos", transport: "usblp")
        var settings = EscposPrinterTests.settings()
        settings.chainedDisplay = true
        let printer = EscposPrinter(info: info, encoder: ReceiptEncoder(profile: .generic80), settings: settings) { DescriptorStream(fake.io) }
        let directory = DeviceDirectory()
        let profile = DisplayProfile()
        let encoder = DisplayEncoder(.cd5220, profile: profile)
        let display = PoleDisplay(info: DeviceInfo(name: "pole", role: .display, driver: "cd5220-display", transport: "via front-printer"), encoder: encoder) {
            try ChainedDisplayLink.open(via: "front-printer", directory: directory)
        }
        directory.register([printer, display])
        let (sink, running) = await EscposPrinterTests.start(printer)
        await display.prepare()
        let showing = Task { try await display.run(events: sink) }
        defer {
            running.cancel()
            showing.cancel()
        }
        #expect(display.status == .online, "\(display.status)")
        try await display.show(.lines(["Flat white", "3.20"]), events: sink)
        let expected = ESCPOS.selectPeripheral(.display) + encoder.setup + ESCPOS.selectPeripheral(.printer)
            + ESCPOS.selectPeripheral(.display) + encoder.show(["Flat white", "3.20"]) + ESCPOS.selectPeripheral(.printer)
        #expect(fake.printed.suffix(expected.count) == ArraySlice(expected), "\(fake.printed.map { String(format: "%02x", $0) }.joined(separator: " "))")
        var glass = VirtualDisplay(.cd5220, profile: profile)
        var printed = VirtualPrinter(profile: .generic80)
        printed.feed(fake.printed)
        glass.feed(printed.displayBytes)
        #expect(glass.lines[0].hasPrefix("Flat white") && glass.lines[1].hasPrefix("3.20"))

        // During a job, an update waits for its end: the job's bytes stay whole.
        fake.io.stallWrites(after: 300)
        let job = EscposPrinterTests.job(1500)
        let printing = Task { try await printer.print(job, events: sink) }
        try await sink.waitFor("the job part-way") { _ in printer.status.reason?.contains("stopped taking data") == true }
        let updating = Task { try await display.show(.lines(["Thank you!"]), events: sink) }
        try await Task.sleep(for: .milliseconds(100))
        fake.io.resumeWrites()
        try await printing.value
        try await updating.value
        let all = fake.printed
        let jobStart = try #require(all.firstRange(of: job.bytes))
        let update = ESCPOS.selectPeripheral(.display) + encoder.show(["Thank you!"])
        let updateStart = try #require(all.firstRange(of: update))
        #expect(updateStart.lowerBound >= jobStart.upperBound, "the update came after the job, not inside it")
    }

    @Test("a display naming a printer without display = true, or no printer, is in error saying what to write")
    func misconfigured() async throws {
        let fake = FakeEscposPrinter()
        let printer = EscposPrinterTests.printer { fake }
        let directory = DeviceDirectory()
        let encoder = DisplayEncoder(.epson, profile: DisplayProfile())
        let display = PoleDisplay(info: DeviceInfo(name: "pole", role: .display, driver: "epson-display", transport: "via front-printer"), encoder: encoder) {
            try ChainedDisplayLink.open(via: "front-printer", directory: directory)
        }
        let lost = PoleDisplay(info: DeviceInfo(name: "pole2", role: .display, driver: "epson-display", transport: "via nowhere"), encoder: encoder) {
            try ChainedDisplayLink.open(via: "nowhere", directory: directory)
        }
        directory.register([printer, display, lost])
        await printer.prepare()
        await display.prepare()
        await lost.prepare()
        #expect(display.status.state == .error && display.status.reason?.contains("add display = true") == true, "\(display.status)")
        #expect(lost.status.state == .error && lost.status.reason?.contains("no device named \"nowhere\"") == true, "\(lost.status)")
    }
}
