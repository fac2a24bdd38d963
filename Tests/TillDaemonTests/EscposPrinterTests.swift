import Foundation
import Glibc
import Synchronization
import Testing
import TillCore
import TillDevices
@testable import TillDrivers
import TillESCPOS
import TillTransport
import TillTransportTesting

/// A printer at the other end of a scripted line: it answers `DLE EOT` from its condition
/// (or not at all) and keeps what it was sent, with the queries taken out.
final class FakeEscposPrinter: Sendable {
    let io: ScriptedIO
    private struct State {
        var condition = VirtualPrinterLink.Condition()
        var answers = true
        var seen = 0
        var splitter = CommandSplitter()
        var printed: [UInt8] = []
        var queries = 0
    }
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(endpoint: String = "/dev/usb/lp0") {
        io = ScriptedIO(endpoint: endpoint, endOfFile: .unplugged)
        let answering = Task { [weak self] in
            while !Task.isCancelled, let self {
                self.answer()
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        task.withLock { $0 = answering }
    }

    deinit { task.withLock { $0?.cancel() } }

    func set(_ update: (inout VirtualPrinterLink.Condition) -> Void) { state.withLock { update(&$0.condition) } }
    /// Drawer kicks (ESC p) the printer was sent.
    var kicks: Int { printed.count(of: [0x1B, 0x70]) }
    func answers(_ on: Bool) { state.withLock { $0.answers = on } }
    /// What was printed so far (everything written is looked at first).
    var printed: [UInt8] {
        answer()
        return state.withLock { $0.printed }
    }
    var queries: Int { state.withLock { $0.queries } }

    private func answer() {
        let written = io.written
        let replies = state.withLock { state -> [UInt8] in
            guard written.count > state.seen else { return [] }
            let new = Array(written[state.seen...])
            state.seen = written.count
            var replies: [UInt8] = []
            for piece in state.splitter.split(new) {
                switch piece {
                case .query(let n):
                    state.queries += 1
                    if state.answers { replies.append(VirtualPrinterLink.reply(n, state.condition)) }
                case .automaticStatusBack: break
                case .bytes(let bytes): state.printed += bytes
                }
            }
            return replies
        }
        if !replies.isEmpty { io.send(replies) }
    }
}

extension Array where Element == UInt8 {
    func count(of needle: [UInt8]) -> Int {
        guard count >= needle.count else { return 0 }
        return (0...(count - needle.count)).filter { self[$0..<$0 + needle.count].elementsEqual(needle) }.count
    }
}

@Suite("escpos driver over a scripted line", .timeLimit(.minutes(1)))
struct EscposPrinterTests {
    static func settings() -> EscposPrinter.Settings {
        var settings = EscposPrinter.Settings()
        settings.statusInterval = .milliseconds(100)
        settings.statusTimeout = .milliseconds(100)
        settings.stallTimeout = .milliseconds(100)
        settings.chunkBytes = 64
        return settings
    }

    static func printer(_ opens: @escaping @Sendable () throws -> FakeEscposPrinter) -> EscposPrinter {
        let info = DeviceInfo(name: "front-printer", role: .printer, driver: "escpos", transport: "usblp")
        return EscposPrinter(info: info, encoder: ReceiptEncoder(profile: .generic80), settings: settings()) {
            DescriptorStream(try opens().io)
        }
    }

    /// Opens the printer and runs it; cancel the task to stop it.
    static func start(_ printer: EscposPrinter) async -> (RecordingSink, Task<Void, any Error>) {
        let sink = RecordingSink()
        await printer.prepare()
        return (sink, Task { try await printer.run(events: sink) })
    }

    static func job(_ count: Int = 1000) -> PrintJob {
        PrintJob(id: "J1", bytes: ESCPOS.initialize + (0..<count).map { UInt8(0x41 + $0 % 26) } + [0x0A])
    }

    @Test("a job's bytes reach the printer whole and once, with no status query among them")
    func prints() async throws {
        let fake = FakeEscposPrinter()
        let printer = Self.printer { fake }
        let (sink, running) = await Self.start(printer)
        defer { running.cancel() }
        try await sink.waitFor("a status round") { _ in fake.queries >= 4 }
        let job = Self.job(5000)
        try await printer.print(job, events: sink)
        #expect(fake.printed == job.bytes, "the job whole, once, its bytes contiguous: no query was sent inside it")
        #expect(printer.status == .online)
    }

    @Test("paper out: the driver says so, refuses the job with nothing sent, and is ready again when paper is loaded")
    func paperOut() async throws {
        let fake = FakeEscposPrinter()
        let printer = Self.printer { fake }
        let (sink, running) = await Self.start(printer)
        defer { running.cancel() }
        fake.set { $0.paper = .out }
        try await sink.waitFor("paper out") { _ in printer.status.state == .error }
        #expect(printer.status.reason == "paper out: load a new roll")
        let statuses = sink.events.withLock { $0.compactMap { if case .printerStatus(let s) = $0.1 { s } else { nil } } }
        #expect(statuses.last?.paper == .out)
        await #expect { try await printer.print(Self.job(), events: sink) } throws: { error in
            (error as? DeviceError)?.kind == .notReady
        }
        #expect(fake.printed.isEmpty)
        fake.set { $0.paper = .ok }
        try await sink.waitFor("paper back") { _ in printer.status == .online }
        try await printer.print(Self.job(), events: sink)
        #expect(fake.printed == Self.job().bytes)
    }

    @Test("a printer that stops taking data part-way (paper out mid-job) is waited for; the rest goes when it takes data again")
    func stall() async throws {
        let fake = FakeEscposPrinter()
        let printer = Self.printer { fake }
        let (sink, running) = await Self.start(printer)
        defer { running.cancel() }
        try await sink.waitFor("a status round") { _ in fake.queries >= 4 }
        fake.io.takeAtMost(100)
        fake.io.stallWrites(after: 1234)
        let job = Self.job(3000)
        let printing = Task { try await printer.print(job, events: sink) }
        try await sink.waitFor("stalled") { _ in printer.status.state == .error }
        #expect(printer.status.reason?.contains("stopped taking data") == true)
        fake.io.resumeWrites()
        try await printing.value
        #expect(fake.printed == job.bytes, "nothing lost, nothing twice")
        try await sink.waitFor("online again") { _ in printer.status == .online }
    }

    @Test("a printer that stops taking data between jobs, cutting a status query in two, is stalled, not lost: a job started meanwhile waits, then prints once, whole, after the query's tail")
    func stallDuringStatusQuery() async throws {
        let opens = Mutex<[FakeEscposPrinter]>([])
        let printer = Self.printer {
            let fake = FakeEscposPrinter()
            opens.withLock { $0.append(fake) }
            return fake
        }
        let (sink, running) = await Self.start(printer)
        defer { running.cancel() }
        let fake = try #require(opens.withLock { $0.first })
        try await sink.waitFor("a status round") { _ in fake.queries >= 4 }
        // The next round's four queries (DLE EOT 1..4, 3 bytes each): the first whole and one
        // byte of the second go out, then the printer takes nothing.
        let before = fake.io.written.count
        fake.io.stallWrites(after: 4)
        try await sink.waitFor("stalled") { _ in printer.status.reason?.contains("stopped taking data") == true }
        #expect(fake.io.written.count == before + 4, "the status loop does not keep writing into a stalled printer")
        let job = Self.job(2000)
        let printing = Task { try await printer.print(job, events: sink) }
        try await Task.sleep(for: .milliseconds(400))
        #expect(printer.status.state == .error, "still stalled: \(printer.status)")
        fake.io.resumeWrites()
        try await printing.value
        #expect(fake.printed == job.bytes, "the job whole and once; the query's tail was not read as the start of the job")
        #expect(Array(fake.io.written[before..<before + 6]) == [0x10, 0x04, 0x01, 0x10, 0x04, 0x02], "the cut query completed first")
        #expect(opens.withLock { $0.count } == 1, "the link was kept: a stall is not an unplug")
        try await sink.waitFor("online again") { _ in printer.status == .online }
    }

    @Test("unplugged mid-job: interrupted (so the spool reprints it whole), offline, and online again when it is back")
    func unplugMidJob() async throws {
        let fakes = Mutex<[FakeEscposPrinter]>([])
        let plugged = Mutex(true)
        let printer = Self.printer {
            guard plugged.withLock({ $0 }) else { throw TransportError(.notFound, endpoint: "/dev/usb/lp0", "no device at /dev/usb/lp0") }
            let fake = FakeEscposPrinter()
            fakes.withLock { $0.append(fake) }
            return fake
        }
        let (sink, running) = await Self.start(printer)
        defer { running.cancel() }
        let first = fakes.withLock { $0[0] }
        try await sink.waitFor("a status round") { _ in first.queries >= 4 }
        first.io.stallWrites(after: 1500)
        let printing = Task { try await printer.print(Self.job(3000), events: sink) }
        try await sink.waitFor("part of the job, then the printer stalls") { _ in printer.status.reason?.contains("stopped taking data") == true }
        #expect(first.printed.count > 1000)
        plugged.withLock { $0 = false }
        first.io.failWrites(ENODEV)
        first.io.failReads(ENODEV)
        do {
            try await printing.value
            Issue.record("a job cut off by an unplug reported success")
        } catch let error as DeviceError {
            #expect(error.kind == .interrupted, "\(error)")
            #expect(error.message.contains("printed again in full"))
        }
        try await sink.waitFor("offline") { _ in printer.status.state == .offline }
        #expect(printer.status.reason?.contains("no device") == true || printer.status.reason?.contains("went away") == true, "\(printer.status)")
        await #expect { try await printer.print(Self.job(), events: sink) } throws: { ($0 as? DeviceError)?.kind == .notReady }
        plugged.withLock { $0 = true }
        do {
            try await sink.waitFor("back") { _ in printer.status == .online }
        } catch {
            Issue.record("states: \(sink.states) now \(printer.status) opens \(fakes.withLock { $0.count })")
            throw error
        }
        let second = fakes.withLock { $0.last! }
        try await printer.print(Self.job(), events: sink)
        #expect(second.printed == Self.job().bytes)
    }

    @Test("a printer that never answers status is 'status unknown', still online, and still prints")
    func silent() async throws {
        let fake = FakeEscposPrinter()
        fake.answers(false)
        let printer = Self.printer { fake }
        let (sink, running) = await Self.start(printer)
        defer { running.cancel() }
        try await sink.waitFor("status unknown") { _ in printer.status.reason?.contains("status unknown") == true }
        #expect(printer.status.state == .online)
        try await printer.print(Self.job(), events: sink)
        #expect(fake.printed == Self.job().bytes)
        let statuses = sink.events.withLock { $0.filter { if case .printerStatus = $0.1 { true } else { false } } }
        #expect(statuses.isEmpty, "no printer.status invented for a printer that says nothing")
    }

    @Test("printer-drawer: the kick goes through the printer's port, never inside a job; opened and closed come from pin 3, with the entry's polarity")
    func drawer() async throws {
        let fake = FakeEscposPrinter()
        let printer = Self.printer { fake }
        let directory = DeviceDirectory()
        var settings = PrinterDrawer.Settings()
        settings.pin = 5
        settings.pulses = 2
        let drawer = PrinterDrawer(
            info: DeviceInfo(name: "till-drawer", role: .drawer, driver: "printer-drawer", transport: "via front-printer"),
            via: "front-printer", settings: settings, directory: directory)
        #expect(drawer.status.state == .error && drawer.status.reason?.contains("no device named") == true)
        directory.register([printer, drawer])
        let (sink, running) = await Self.start(printer)
        let watching = Task { try await drawer.run(events: sink) }
        defer {
            running.cancel()
            watching.cancel()
        }
        try await sink.waitFor("a status round") { _ in fake.queries >= 4 }
        #expect(drawer.status == .online)
        // A kick asked for while a job is being written waits for the job's end.
        fake.io.stallWrites(after: 700)
        let printing = Task { try await printer.print(Self.job(2000), events: sink) }
        try await sink.waitFor("the job part-way, stalled") { _ in printer.status.reason?.contains("stopped taking data") == true }
        let kicking = Task { try await drawer.open(events: sink) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(fake.kicks == 0, "not inside the job's bytes")
        fake.io.resumeWrites()
        try await printing.value
        try await kicking.value
        #expect(fake.kicks == 2 && fake.printed.count(of: [0x1B, 0x70, 1, 50, 200]) == 2, "pin 5, two pulses")
        #expect(Array(fake.printed.prefix(Self.job(2000).bytes.count)) == Self.job(2000).bytes, "the job whole first")
        fake.set { $0.drawerPinHigh = true }
        try await sink.waitFor("opened") { sink in sink.events.withLock { $0.contains { if case .drawerOpened = $0.1 { true } else { false } } } }
        try await Task.sleep(for: .milliseconds(300))
        fake.set { $0.drawerPinHigh = false }
        try await sink.waitFor("closed") { sink in sink.events.withLock { $0.contains { if case .drawerClosed = $0.1 { true } else { false } } } }
        let closed = sink.events.withLock { $0.compactMap { if case .drawerClosed(let seconds) = $0.1 { seconds } else { nil } } }
        #expect((closed.first ?? 0) >= 0.2, "how long it was open: \(closed)")
        let drawerEvents = sink.events.withLock { $0.filter { $0.0 == "till-drawer" }.count }
        #expect(drawerEvents == 2, "opened once, closed once: on change only")
    }

    @Test("printer-drawer: drawer.left_open after the set time and again at the interval, only while open")
    func leftOpen() async throws {
        let fake = FakeEscposPrinter()
        let printer = Self.printer { fake }
        let directory = DeviceDirectory()
        var settings = PrinterDrawer.Settings()
        settings.leftOpenAfter = .milliseconds(300)
        settings.leftOpenEvery = .milliseconds(300)
        let drawer = PrinterDrawer(
            info: DeviceInfo(name: "till-drawer", role: .drawer, driver: "printer-drawer", transport: "via front-printer"),
            via: "front-printer", settings: settings, directory: directory)
        directory.register([printer, drawer])
        let (sink, running) = await Self.start(printer)
        let watching = Task { try await drawer.run(events: sink) }
        defer {
            running.cancel()
            watching.cancel()
        }
        @Sendable func reminders() -> [Double] { sink.events.withLock { $0.compactMap { if case .drawerLeftOpen(let s) = $0.1 { s } else { nil } } } }
        fake.set { $0.drawerPinHigh = true }
        try await sink.waitFor("two reminders") { _ in reminders().count >= 2 }
        #expect(drawer.isOpen == true)
        #expect(reminders()[0] >= 0.25 && reminders()[1] > reminders()[0])
        fake.set { $0.drawerPinHigh = false }
        try await sink.waitFor("closed") { sink in sink.events.withLock { $0.contains { if case .drawerClosed = $0.1 { true } else { false } } } }
        let count = reminders().count
        try await Task.sleep(for: .milliseconds(700))
        #expect(reminders().count == count, "no reminder once it is shut")
        #expect(drawer.isOpen == false)
    }
}
