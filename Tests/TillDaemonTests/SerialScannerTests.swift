import Foundation
import TillSystem
import Glibc
import Synchronization
import Testing
import TillCore
import TillDevices
import TillDrivers
import TillScanner
import TillTransport
import TillTransportTesting

/// An `EventSink` that keeps what it was given.
final class RecordingSink: EventSink {
    let events = Mutex<[(String, DeviceEvent)]>([])
    func emit(_ event: DeviceEvent, device: String) async { events.withLock { $0.append((device, event)) } }
    func stateChanged(_ device: String, _ status: DeviceStatus) async { await emit(.state(status), device: device) }

    var scans: [Scan] { events.withLock { $0.compactMap { if case .scan(let scan) = $0.1 { scan } else { nil } } } }
    var states: [DeviceStatus] { events.withLock { $0.compactMap { if case .state(let status) = $0.1 { status } else { nil } } } }

    /// Generous: the whole suite runs at once, and while dozens of integration tests start
    /// their daemons a two-core machine gives this process no time for up to ~20 s.
    func waitFor(_ what: String, _ condition: @escaping @Sendable (RecordingSink) -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(45)
        while !condition(self) {
            guard ContinuousClock.now < deadline else { throw TransportError(.timedOut, endpoint: "test", "waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

@Suite("serial-scanner driver over a scripted line", .timeLimit(.minutes(1)))
struct SerialScannerTests {
    @Test("scans come out classified; the scanner unplugged mid-read goes offline with the reason, and is opened again when back")
    func unplugAndReplug() async throws {
        let lines = Mutex<[ScriptedIO]>([])
        let opens = Mutex(0)
        let info = DeviceInfo(name: "front-scanner", role: .scanner, driver: "serial-scanner", transport: "serial")
        let problems = Mutex<[String]>([])
        let scanner = SerialScanner(info: info, framing: ScanFraming(), classifier: ScanClassifier(loyaltyPrefixes: ["2900"]), onProblem: { problem in
            problems.withLock { $0.append(problem) }
        }) {
            let attempt = opens.withLock { count -> Int in count += 1; return count }
            if attempt == 2 { throw TransportError(.notFound, endpoint: "/dev/ttyACM0", "no device at /dev/ttyACM0") }
            let line = ScriptedIO(endpoint: "/dev/ttyACM0", endOfFile: .unplugged)
            lines.withLock { $0.append(line) }
            return DescriptorStream(line)
        }
        let sink = RecordingSink()
        await scanner.prepare()
        #expect(scanner.status == .online)
        let running = Task { try await scanner.run(events: sink) }
        defer { running.cancel() }
        let first = lines.withLock { $0[0] }
        first.send(Array("4006381333931\r2900123456789\r".utf8))
        try await sink.waitFor("two scans") { $0.scans.count == 2 }
        #expect(sink.scans.map(\.decoded.symbology) == [.ean13, .ean13])
        #expect(sink.scans.map(\.decoded.kind) == [.product, .loyalty])
        #expect(sink.scans[0].decoded.checkDigitOK == true)
        // Garbage at the wrong baud rate: said, and the next scan still comes through.
        first.send(Array(repeating: 0xFF, count: 5000) + Array("\r12345\r".utf8))
        try await sink.waitFor("the scan after the noise") { $0.scans.count == 3 }
        #expect(problems.withLock { $0.contains { $0.contains("baud") } })
        // Unplugged: offline, with the reason; the next open fails (not there), the one after works.
        first.failReads(ENODEV)
        try await sink.waitFor("offline") { $0.states.contains { $0.state == .offline } }
        #expect(sink.states.first { $0.state == .offline }?.reason?.contains("unplugged") == true)
        try await sink.waitFor("a new line") { _ in lines.withLock { $0.count } == 2 }
        try await sink.waitFor("online again") { $0.states.last?.state == .online }
        lines.withLock { $0[1] }.send(Array("96385074\r".utf8))
        try await sink.waitFor("the scan after the replug") { $0.scans.count == 4 }
        #expect(sink.scans.last?.text == "96385074")
        #expect(opens.withLock { $0 } == 3)
        #expect(first.isClosed, "the dead line was closed")
    }
}

@Suite("serial-scanner driver on a pseudo-terminal", .timeLimit(.minutes(1)))
struct SerialScannerOnPtyTests {
    @Test("the line vanishing mid-read turns the scanner offline with the reason; the driver then retries with back-off, never in a busy loop")
    func vanishesWithoutSpinning() async throws {
        let terminal = try PseudoTerminal.open()
        // A name of the test's own: once the terminal is gone, /dev/pts/N may be reused by another test.
        let link = NSTemporaryDirectory() + "scanner-" + UUID().uuidString
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: terminal.devicePath)
        let attempts = Mutex(0)
        let info = DeviceInfo(name: "pty-scanner", role: .scanner, driver: "serial-scanner", transport: "serial")
        let scanner = SerialScanner(info: info, framing: ScanFraming(), classifier: ScanClassifier()) {
            attempts.withLock { $0 += 1 }
            return try SerialPort.open(link, settings: SerialSettings())
        }
        let sink = RecordingSink()
        await scanner.prepare()
        #expect(scanner.status == .online)
        let running = Task { try await scanner.run(events: sink) }
        defer { running.cancel() }
        _ = try terminal.controller.write(Array("4006381333931\r".utf8)[...])
        try await sink.waitFor("the scan") { $0.scans.count == 1 }
        try FileManager.default.removeItem(atPath: link)
        try terminal.controller.close()  // the adapter is pulled out
        try await sink.waitFor("offline") { $0.states.contains { $0.state == .offline } }
        #expect(scanner.status.state == .offline)
        #expect(scanner.status.reason?.contains(link) == true, "\(scanner.status)")
        let before = attempts.withLock { $0 }
        // It tries again (within seconds; a loaded machine may be slow to run it)...
        try await sink.waitFor("a retry") { _ in attempts.withLock { $0 } > before }
        // ...with back-off from 0.5 s: about three attempts in 1.6 s. A busy loop would make thousands.
        let start = attempts.withLock { $0 }
        try await Task.sleep(for: .milliseconds(1600))
        let retries = attempts.withLock { $0 } - start
        #expect(retries <= 5, "\(retries) open attempts in 1.6 s")
        #expect(scanner.status.reason?.contains("plugged in") == true, "\(scanner.status)")
    }
}

/// Counts the reads a driver makes, passing everything on.
final class CountingStream: ByteStream {
    let inner: any ByteStream
    let reads = Mutex(0)
    init(_ inner: any ByteStream) { self.inner = inner }
    var endpoint: String { inner.endpoint }
    func read(maxCount: Int, timeout: Duration) async throws -> [UInt8] {
        reads.withLock { $0 += 1 }
        return try await inner.read(maxCount: maxCount, timeout: timeout)
    }
    func write(_ bytes: [UInt8], timeout: Duration) async throws { try await inner.write(bytes, timeout: timeout) }
    func drain(timeout: Duration) async throws { try await inner.drain(timeout: timeout) }
    func cancelWaits() { inner.cancelWaits() }
    func close() async { await inner.close() }
}

@Suite("An idle scanner wakes nothing", .timeLimit(.minutes(1)))
struct IdleScannerTests {
    @Test("idle for 2 s the driver makes one read, waiting; cancelled, it stops at once")
    func idle() async throws {
        let stream = CountingStream(DescriptorStream(ScriptedIO(endpoint: "/dev/ttyACM0", endOfFile: .unplugged)))
        let info = DeviceInfo(name: "idle", role: .scanner, driver: "serial-scanner", transport: "serial")
        let scanner = SerialScanner(info: info, framing: ScanFraming(), classifier: ScanClassifier()) { stream }
        let running = Task { try await scanner.run(events: RecordingSink()) }
        try await Task.sleep(for: .seconds(2))
        #expect(stream.reads.withLock { $0 } == 1, "no periodic wake-up while nothing is scanned")
        let cancelled = ContinuousClock.now
        running.cancel()
        _ = await running.result
        #expect(ContinuousClock.now - cancelled < .seconds(30), "the waiting read (24 h) was woken, not left to time out")
    }

    @Test("a read waiting on a real pty returns at once when its waits are cancelled")
    func cancelWaitsOnPty() async throws {
        let terminal = try PseudoTerminal.open()
        defer { try? terminal.controller.close() }
        let port = try SerialPort.open(terminal.devicePath, settings: SerialSettings())
        let reading = Task { try await port.read(maxCount: 8, timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        port.cancelWaits()
        #expect(try await reading.value.isEmpty)
        #expect(ContinuousClock.now - start < .seconds(10))
        await port.close()
    }
}

@Suite("An idle keyboard-wedge scanner stops at once", .timeLimit(.minutes(1)))
struct IdleEvdevScannerTests {
    @Test("cancelled while waiting hours for a key, the driver returns at once")
    func cancel() async throws {
        let device = ScriptedInputEvents()
        let info = DeviceInfo(name: "wedge", role: .scanner, driver: "evdev-scanner", transport: "evdev")
        let scanner = EvdevScanner(info: info, classifier: ScanClassifier()) { device }
        let running = Task { try await scanner.run(events: RecordingSink()) }
        // Grabbed once the driver runs (a loaded machine may take a while to start its task).
        let started = ContinuousClock.now
        while !device.isGrabbed, ContinuousClock.now - started < .seconds(20) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(device.isGrabbed)
        let cancelled = ContinuousClock.now
        running.cancel()
        _ = await running.result
        // The wait was for hours: returning within seconds is the point (the bound is loose
        // because a busy test run can delay tasks by seconds).
        #expect(ContinuousClock.now - cancelled < .seconds(30))
        #expect(device.isClosed && !device.isGrabbed, "closed and given back")
    }
}
