import Dispatch
import Synchronization
public import TillSystem
public import TillTransport

/// A scripted descriptor, for testing drivers and the stream code with no device: what the
/// "device" sends is fed in (`send`), what was written is recorded (`written`), and failures
/// are injected at the system-call level, where real devices fail: EIO or ENODEV on the next
/// read or write (unplugged), EAGAIN (the device takes nothing for a while), partial writes
/// (it takes a few bytes at a time), end of file. Use it as `DescriptorStream(ScriptedIO())`,
/// so the stream code under test is the real one (like NIOEmbedded's channel).
public final class ScriptedIO: RawIO {
    public let endpoint: String
    public let endOfFile: TransportError.Kind

    private struct State {
        var inbound: [UInt8] = []
        var readFailure: Int32? = nil
        var endOfFile = false
        var written: [UInt8] = []
        var writeCalls = 0
        /// Bytes the next write calls take at most (nil: all).
        var maxPerWrite: Int? = nil
        /// Write calls that answer EAGAIN before one succeeds.
        var wouldBlockWrites = 0
        var writeFailure: Int32? = nil
        /// Writes answer EAGAIN and poll says "not writable" until `resumeWrites`.
        var stalled = false
        /// Stall once this many bytes have been written in all.
        var stallAt: Int? = nil
        var outputQueued: Int? = nil
        var closed = false
        var interrupted = false
        /// The modem lines (nil: the "port" has none, as a pseudo-terminal: ENOTTY).
        var modemLines: ModemLines? = nil
        var modemFailure: Int32? = nil
        var modemReads = 0
        var lineChanges: [(lines: ModemLines, on: Bool, at: ContinuousClock.Instant)] = []
    }

    private let state = Mutex(State())
    private let arrived = DispatchSemaphore(value: 0)

    /// - Parameter endOfFile: what end of file means: `.closed` for a connection (the default),
    ///   `.unplugged` for a device node.
    public init(endpoint: String = "scripted", endOfFile: TransportError.Kind = .closed) {
        self.endpoint = endpoint
        self.endOfFile = endOfFile
    }

    // MARK: scripting

    /// Bytes the device sends.
    public func send(_ bytes: [UInt8]) {
        state.withLock { $0.inbound += bytes }
        arrived.signal()
    }

    /// The next read fails with `errno` (EIO, ENODEV: the device was unplugged).
    public func failReads(_ errno: Int32) {
        state.withLock { $0.readFailure = errno }
        arrived.signal()
    }

    /// The device closes its end: reads return end of file once the bytes sent are read.
    public func sendEndOfFile() {
        state.withLock { $0.endOfFile = true }
        arrived.signal()
    }

    /// Each write call takes at most `count` bytes (nil: all of them).
    public func takeAtMost(_ count: Int?) { state.withLock { $0.maxPerWrite = count } }

    /// The next `count` write calls answer EAGAIN, as a device whose buffer is full for a moment
    /// (poll says writable again at once).
    public func refuseWrites(_ count: Int) { state.withLock { $0.wouldBlockWrites = count } }

    /// The device takes nothing (its buffer stays full) until `resumeWrites()`.
    public func stallWrites() { state.withLock { $0.stalled = true } }

    /// The device takes `count` more bytes, then nothing until `resumeWrites()` (a printer
    /// that runs out of paper part-way through a job).
    public func stallWrites(after count: Int) { state.withLock { $0.stallAt = $0.written.count + count } }

    public func resumeWrites() {
        state.withLock {
            $0.stalled = false
            $0.stallAt = nil
        }
        arrived.signal()
    }

    /// Write calls fail with `errno` from now on (nil: they work again).
    public func failWrites(_ errno: Int32?) { state.withLock { $0.writeFailure = errno } }

    /// What TIOCOUTQ answers (nil: not a terminal).
    public func setOutputQueued(_ count: Int?) { state.withLock { $0.outputQueued = count } }

    /// Gives the port modem lines at these levels (its inputs are what the device sets: CTS,
    /// DSR, DCD, RI); nil takes them away (TIOCMGET answers ENOTTY, as on a pty).
    public func setModemInputs(_ lines: ModemLines?) {
        state.withLock { state in
            guard let lines else { state.modemLines = nil; return }
            let outputs = (state.modemLines ?? []).intersection([.dtr, .rts])
            state.modemLines = outputs.union(lines.subtracting([.dtr, .rts]))
        }
    }

    /// The modem-line calls fail with `errno` from now on (EIO: unplugged; nil: they work again).
    public func failModemCalls(_ errno: Int32?) { state.withLock { $0.modemFailure = errno } }

    /// Every raise or drop of an output, in order, with when it happened.
    public var lineChanges: [(lines: ModemLines, on: Bool, at: ContinuousClock.Instant)] { state.withLock { $0.lineChanges } }
    /// How often the lines were read (TIOCMGET).
    public var modemReads: Int { state.withLock { $0.modemReads } }

    public var written: [UInt8] { state.withLock { $0.written } }
    public var writeCalls: Int { state.withLock { $0.writeCalls } }
    public var isClosed: Bool { state.withLock { $0.closed } }

    // MARK: RawIO

    public func read(upTo maxCount: Int) throws -> [UInt8] {
        try state.withLock { state in
            if let code = state.readFailure {
                state.readFailure = nil
                throw SystemError(call: "read", subject: endpoint, errno: code)
            }
            if state.inbound.isEmpty {
                if state.endOfFile { return [] }
                throw SystemError.wouldBlock(call: "read", subject: endpoint)
            }
            let count = min(maxCount, state.inbound.count)
            defer { state.inbound.removeFirst(count) }
            return Array(state.inbound.prefix(count))
        }
    }

    public func write(_ bytes: ArraySlice<UInt8>) throws -> Int {
        try state.withLock { state in
            state.writeCalls += 1
            if let code = state.writeFailure { throw SystemError(call: "write", subject: endpoint, errno: code) }
            if let at = state.stallAt, state.written.count >= at { state.stalled = true }
            if state.stalled { throw SystemError.wouldBlock(call: "write", subject: endpoint) }
            if state.wouldBlockWrites > 0 {
                state.wouldBlockWrites -= 1
                throw SystemError.wouldBlock(call: "write", subject: endpoint)
            }
            let count = min(bytes.count, state.maxPerWrite ?? bytes.count, state.stallAt.map { $0 - state.written.count } ?? .max)
            state.written += bytes.prefix(count)
            return count
        }
    }

    public func poll(for events: Readiness, timeout: Duration?) throws -> Readiness {
        var ready: Readiness = []
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            let (readable, writable, interrupted) = state.withLock { state in
                (!state.inbound.isEmpty || state.endOfFile || state.readFailure != nil, !state.stalled || state.writeFailure != nil, state.interrupted)
            }
            if interrupted { return [] }
            if events.contains(.readable), readable { ready.insert(.readable) }
            if events.contains(.writable), writable { ready.insert(.writable) }
            if !ready.isEmpty { return ready }
            guard let deadline else {
                arrived.wait()
                continue
            }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return [] }
            let (seconds, attoseconds) = left.components
            let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
            if arrived.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .timedOut { return [] }
        }
    }

    public func outputQueued() throws -> Int? { state.withLock { $0.outputQueued } }

    public func modemLines() throws -> ModemLines {
        try state.withLock { state in
            state.modemReads += 1
            if let code = state.modemFailure { throw SystemError(call: "ioctl(TIOCMGET)", subject: endpoint, errno: code) }
            guard let lines = state.modemLines else { throw SystemError.notSupported("ioctl(TIOCMGET)", endpoint) }
            return lines
        }
    }

    public func setModemLines(_ lines: ModemLines, on: Bool) throws {
        try state.withLock { state in
            let call = on ? "ioctl(TIOCMBIS)" : "ioctl(TIOCMBIC)"
            if let code = state.modemFailure { throw SystemError(call: call, subject: endpoint, errno: code) }
            guard let current = state.modemLines else { throw SystemError.notSupported(call, endpoint) }
            state.modemLines = on ? current.union(lines) : current.subtracting(lines)
            state.lineChanges.append((lines, on, .now))
        }
    }

    public func interruptWaits() {
        state.withLock { $0.interrupted = true }
        arrived.signal()
    }

    public func close() throws { state.withLock { $0.closed = true } }
}
