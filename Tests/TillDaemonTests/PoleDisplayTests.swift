import Foundation
import Synchronization
import Testing
import TillCore
import TillDevices
@testable import TillDisplay
import TillDrivers
import TillTransport
import TillTransportTesting

@Suite("pole display driver over a scripted line", .timeLimit(.minutes(1)))
struct PoleDisplayTests {
    static func display(_ io: ScriptedIO, _ configure: (inout PoleDisplay.Behaviour) -> Void = { _ in }) -> PoleDisplay {
        var behaviour = PoleDisplay.Behaviour()
        behaviour.marqueeStep = .milliseconds(50)
        configure(&behaviour)
        let info = DeviceInfo(name: "pole", role: .display, driver: "epson-display", transport: "serial")
        return PoleDisplay(info: info, encoder: DisplayEncoder(.epson, profile: DisplayProfile()), behaviour: behaviour) { DescriptorStream(io) }
    }

    /// The rows written so far, as text (each `US $ 1 n` row command).
    static func rows(_ written: [UInt8]) -> [String] {
        var rows: [String] = []
        var i = 0
        while i + 24 <= written.count {
            if written[i] == 0x1F, written[i + 1] == 0x24 {
                rows.append(String(decoding: written[(i + 4)..<(i + 24)], as: UTF8.self))
                i += 24
            } else {
                i += 1
            }
        }
        return rows
    }

    @Test("a line longer than the glass scrolls until the next update, which stops it")
    func marquee() async throws {
        let io = ScriptedIO(endpoint: "/dev/ttyUSB1")
        let display = Self.display(io)
        let sink = RecordingSink()
        await display.prepare()
        let running = Task { try await display.run(events: sink) }
        defer { running.cancel() }
        try await display.show(.lines(["Welcome to M&M Coffee, Springfield", "Hello"]), events: sink)
        try await sink.waitFor("four frames") { _ in Self.rows(io.written).count >= 8 }
        let rows = Self.rows(io.written)
        #expect(rows[0] == "Welcome to M&M Coffe" && rows[2] == "elcome to M&M Coffee" && rows[4] == "lcome to M&M Coffee,")
        #expect(rows[1] == "Hello" + String(repeating: " ", count: 15))
        try await display.show(.lines(["Flat white", "3.20"]), events: sink)
        let after = io.written.count
        try await Task.sleep(for: .milliseconds(300))
        #expect(io.written.count == after, "the marquee stopped with the update: nothing moves, nothing is written")
        let updates = sink.events.withLock { $0.filter { if case .displayUpdated = $0.1 { true } else { false } }.count }
        #expect(updates == 2, "frames are not events")
    }

    @Test("the idle text comes back after the quiet time, and then nothing wakes")
    func idle() async throws {
        let io = ScriptedIO(endpoint: "/dev/ttyUSB1")
        let display = Self.display(io) {
            $0.idleText = "M&M Coffee\nOpen 8-18"
            $0.idleAfter = .milliseconds(200)
        }
        let sink = RecordingSink()
        await display.prepare()
        let running = Task { try await display.run(events: sink) }
        defer { running.cancel() }
        try await sink.waitFor("the idle text at start") { _ in Self.rows(io.written).first?.hasPrefix("M&M Coffee") == true }
        try await display.show(.lines(["Flat white", "3.20"]), events: sink)
        try await sink.waitFor("idle again") { _ in Self.rows(io.written).suffix(2).first?.hasPrefix("M&M Coffee") == true }
        #expect(Self.rows(io.written).last?.hasPrefix("Open 8-18") == true)
        let settled = io.written.count
        try await Task.sleep(for: .milliseconds(400))
        #expect(io.written.count == settled, "an idle display with no clock writes nothing more")
    }

    @Test("sale-driven: item and running total, the tender, the change and a thank-you, then blank")
    func saleDriven() async throws {
        let io = ScriptedIO(endpoint: "/dev/ttyUSB1")
        let display = Self.display(io) {
            $0.saleDriven = true
            $0.afterSale = .milliseconds(200)
        }
        let sink = RecordingSink()
        await display.prepare()
        let running = Task { try await display.run(events: sink) }
        defer { running.cancel() }
        #expect(display.followsSales)
        await display.follow(topic: "sale.started", data: ["sale": "S1", "till": "T1"], events: sink)
        await display.follow(topic: "sale.line", data: ["sale": "S1", "name": "Flat white", "qty": "2", "unit_price": "3.50", "amount": "7.00"], events: sink)
        await display.follow(topic: "sale.line", data: ["sale": "S1", "name": "Croissant", "qty": "1", "unit_price": "2.5", "amount": "2.5"], events: sink)
        await display.follow(topic: "sale.tender", data: ["sale": "S1", "method": "cash", "amount": "20.00"], events: sink)
        await display.follow(topic: "sale.completed", data: ["sale": "S1", "total": "9.50", "currency": "EUR"], events: sink)
        let shown = sink.events.withLock { $0.compactMap { if case .displayUpdated(let lines) = $0.1 { lines } else { nil } } }
        #expect(shown == [
            ["2x Flat white   7.00", "TOTAL           7.00"],
            ["Croissant       2.50", "TOTAL           9.50"],
            ["TOTAL           9.50", "CASH           20.00"],
            ["CHANGE         10.50", "Thank you!"],
        ])
        try await sink.waitFor("blank after the sale") { sink in
            sink.events.withLock { $0.contains { if case .displayUpdated(let lines) = $0.1 { lines.isEmpty } else { false } } }
        }
    }
}

@Suite("sale display (pure)")
struct SaleDisplayTests {
    @Test("money stays decimal; a void clears; events of another sale after completion are ignored")
    func rules() {
        var sale = SaleDisplay(columns: 20)
        #expect(sale.apply(topic: "sale.line", data: ["sale": "S9", "name": "A", "qty": "1", "amount": "0.10"]) != .none)
        _ = sale.apply(topic: "sale.line", data: ["sale": "S9", "name": "B", "qty": "1", "amount": "0.20"])
        #expect(sale.apply(topic: "sale.tender", data: ["sale": "S9", "method": "card", "amount": "0.30"])
            == .show(["TOTAL           0.30", "CARD            0.30"]), "0.1 + 0.2 is 0.30, not 0.30000000000000004")
        #expect(sale.apply(topic: "sale.completed", data: ["sale": "S9", "total": "0.30", "currency": "EUR"]) == .finish(["TOTAL           0.30", "Thank you!"]))
        #expect(sale.apply(topic: "sale.tender", data: ["sale": "S9", "method": "cash", "amount": "1"]) == .none)
        _ = sale.apply(topic: "sale.line", data: ["sale": "S10", "name": "C", "qty": "1", "amount": "1"])
        #expect(sale.apply(topic: "sale.voided", data: ["sale": "S10"]) == .finish([]))
    }
}
