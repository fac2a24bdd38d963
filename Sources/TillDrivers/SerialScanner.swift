import Foundation
import Synchronization
import TillSystem
public import TillCore
public import TillDevices
public import TillScanner
public import TillTransport

/// `serial-scanner`: a scanner on a serial line or USB-CDC (`/dev/ttyACM0`), in its usual
/// factory mode: the code's bytes, then CR. The driver is the framing and classification over
/// a `ByteStream`; it opens the stream itself, and when the scanner goes away (unplugged, the
/// adapter reset) it says so in its state and opens it again, with back-off, until it is back.
public final class SerialScanner: TillDevice {
    public let info: DeviceInfo
    public var status: DeviceStatus { reader.state.current }

    private let framing: ScanFraming
    private let classifier: ScanClassifier
    private let onProblem: @Sendable (String) -> Void
    private let reader: ReopeningReader<any ByteStream>
    private let thread = DedicatedThread(name: "tilld-scan")

    /// - Parameters:
    ///   - open: opens the transport (`SerialPort.open(path, settings:)` for a real scanner).
    ///   - onProblem: told of garbled input (too long, prefix missing); the scan stream goes on.
    public init(
        info: DeviceInfo, framing: ScanFraming, classifier: ScanClassifier,
        onProblem: @escaping @Sendable (String) -> Void = { _ in }, presence: (any DevicePresence)? = nil,
        open: @escaping @Sendable () async throws -> any ByteStream
    ) {
        self.info = info
        self.framing = framing
        self.classifier = classifier
        self.onProblem = onProblem
        reader = ReopeningReader(open: open, close: { await $0.close() }, presence: presence)
    }

    public func prepare() async {
        await reader.prepare()
    }

    public func run(events: any EventSink) async throws {
        // On a thread of its own: the thread the kernel wakes for a scan's bytes frames it and
        // hands it to the bus, with no hop through the cooperative pool (docs/benchmarks.md).
        try await thread.run {
            try await reader.run(device: info.name, events: events) { stream in
                try await read(stream, events)
            }
        }
    }

    /// Reads scans until the stream fails or the task is cancelled.
    private func read(_ stream: any ByteStream, _ events: any EventSink) async throws {
        var framer = ScanFramer(framing: framing)
        while !Task.isCancelled {
            // While a scan is coming in, a quiet line ends (or drops) it. Otherwise the reader
            // waits for the scanner for as long as it takes: an idle till wakes nothing, and a
            // cancellation wakes the wait (`cancelWaits`) instead of a periodic check.
            let timeout = framer.hasPending ? framing.interByteTimeout : .seconds(24 * 3600)
            let bytes = try await withTaskCancellationHandler {
                if let bytes = try stream.readBlocking(maxCount: 512, timeout: timeout) { return bytes }
                return try await stream.read(maxCount: 512, timeout: timeout)
            } onCancel: {
                stream.cancelWaits()
            }
            let outputs = bytes.isEmpty ? framer.lineWentQuiet() : framer.feed(bytes)
            for output in outputs {
                switch output {
                case .scan(let frame):
                    await events.offer(.scan(Scan(frame, classifier: classifier)), device: info.name)
                case .problem(.tooLong(let discarded)):
                    onProblem("a scan of more than \(framing.maxLength) bytes was discarded (\(discarded) bytes): wrong baud rate, or a terminator the scanner does not send (check terminator and baud)")
                case .problem(.missingAffix):
                    onProblem("a scan came without the configured prefix or suffix; it is passed on as it came (check prefix and suffix against the scanner's programming)")
                case .problem(.empty):
                    onProblem("a scan was empty once its prefix, suffix and AIM identifier were removed")
                }
            }
        }
    }


}

/// `sim-scanner`: the demo's scanner, a `SerialScanner` on a pseudo-terminal. `simulate scan
/// TEXT` writes the bytes a serial scanner would send (TEXT, then CR; the AIM identifier
/// first when one is given) into the terminal, and the event comes out of the real driver,
/// through the real serial transport and the kernel's tty layer (as gpsfake does for gpsd).
public final class DemoSerialScanner: SimulatedDevice {
    public let info: DeviceInfo
    public var status: DeviceStatus { driver.status }

    private let terminal: PseudoTerminalHandle
    private let driver: SerialScanner
    private let progress = ScanProgress()

    public init(name: String = "sim-scanner", classifier: ScanClassifier) throws {
        let terminal = try PseudoTerminalHandle()
        let info = DeviceInfo(name: name, role: .scanner, driver: "serial-scanner", transport: "serial", model: "Simulated serial scanner", identity: "demo:\(name)")
        self.info = info
        self.terminal = terminal
        let path = terminal.devicePath
        driver = SerialScanner(info: info, framing: ScanFraming(terminator: .enter, aim: true), classifier: classifier) {
            try SerialPort.open(path, settings: SerialSettings(baud: 9600))
        }
    }

    public func prepare() async {
        await driver.prepare()
    }

    public func run(events: any EventSink) async throws {
        try await driver.run(events: CountingSink(inner: events) { [progress] in
            let ready = progress.state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.emitted += 1
                let emitted = state.emitted
                let ready = state.waiters.filter { $0.0 <= emitted }.map(\.1)
                state.waiters.removeAll { $0.0 <= emitted }
                return ready
            }
            for waiter in ready { waiter.resume() }
        })
    }

    /// Sends a scan down the line and returns once the driver has emitted it (so `tillctl
    /// simulate scan` returns after the event is journaled, as before).
    public func simulate(_ data: JSONValue, events: any EventSink) async throws {
        let fields = try FieldReader(data, path: "data")
        let text = try fields.string("text")
        guard !text.isEmpty, text.utf8.count <= 4096 else {
            throw DeviceError(device: info.name, .invalidRequest, "a scan is 1 to 4096 bytes")
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\u{1D}" }) else {
            throw DeviceError(device: info.name, .invalidRequest, "scan text holds control characters (only GS, 0x1D, is allowed as the GS1 separator)")
        }
        let aim = try fields.optionalString("aim")
        if let aim, !(aim.utf8.count == 3 && aim.hasPrefix("]")) {
            throw WireError.badRequest(field: "data.aim", "an AIM identifier is ] and two characters, like ]E0")
        }
        guard driver.status.state == .online else {
            throw DeviceError(device: info.name, .notReady, driver.status.reason ?? "the simulated scanner is not open yet")
        }
        let number = progress.state.withLock { state -> Int in
            state.written += 1
            return state.written
        }
        try terminal.send(Array(((aim ?? "") + text + "\r").utf8))
        // Bounded: a scan the driver never reports (it lost the line meanwhile) fails the request
        // instead of holding it forever.
        let timeout = Task { [progress] in
            try await Task.sleep(for: .seconds(5))
            let late = progress.state.withLock { state -> [CheckedContinuation<Void, Never>] in
                let late = state.waiters.filter { $0.0 == number }.map(\.1)
                state.waiters.removeAll { $0.0 == number }
                return late
            }
            for waiter in late { waiter.resume() }
        }
        await withCheckedContinuation { continuation in
            let done = progress.state.withLock { state -> Bool in
                if state.emitted >= number { return true }
                state.waiters.append((number, continuation))
                return false
            }
            if done { continuation.resume() }
        }
        timeout.cancel()
        if progress.state.withLock({ $0.emitted < number }) {
            throw DeviceError(device: info.name, .failed, "the scan was written to the simulated line but the driver did not report it within 5 s (\(driver.status.reason ?? "no reason given"))")
        }
    }
}

/// Scans written to the simulated line and scans the driver emitted; `simulate` waits for its own.
private final class ScanProgress: Sendable {
    let state = Mutex<(written: Int, emitted: Int, waiters: [(Int, CheckedContinuation<Void, Never>)])>((0, 0, []))
}

/// Passes events on and calls `scanned` after each scan.
/// Counts scans once they are journaled: `offer` is left to its default, `emit`, so `simulate`
/// replies only after the scan is durable.
private struct CountingSink: EventSink {
    let inner: any EventSink
    let scanned: @Sendable () -> Void

    func emit(_ event: DeviceEvent, device: String) async {
        await inner.emit(event, device: device)
        if case .scan = event { scanned() }
    }

    func stateChanged(_ device: String, _ status: DeviceStatus) async {
        await inner.stateChanged(device, status)
    }
}

/// A pseudo-terminal the demo holds the device end of; closed when the demo device goes.
final class PseudoTerminalHandle: Sendable {
    private let terminal: PseudoTerminal
    private let writing = Mutex(())

    init() throws {
        terminal = try PseudoTerminal.open()
    }

    deinit {
        try? terminal.controller.close()
    }

    var devicePath: String { terminal.devicePath }

    /// Writes all of `bytes` as the device would send them (waiting, bounded, if the line is full).
    func send(_ bytes: [UInt8]) throws {
        try writing.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                do {
                    offset += try terminal.controller.write(bytes[offset...])
                } catch let error as SystemError where error.isWouldBlock {
                    guard try terminal.controller.poll(for: .writable, timeout: .seconds(2)).contains(.writable) else {
                        throw DeviceError(device: "sim-scanner", .failed, "the simulated serial line is full: the driver is not reading it")
                    }
                }
            }
        }
    }
}
