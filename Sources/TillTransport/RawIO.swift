public import TillSystem

/// The system-call level under a `DescriptorStream`: what a descriptor does, one call at a time.
/// The real one is a `FileDescriptor`; `TillTransportTesting.ScriptedIO` is a scripted one that
/// injects EIO, ENODEV, EAGAIN and partial writes under the same stream code.
public protocol RawIO: Sendable {
    var endpoint: String { get }
    /// What a read's end of file means: a TCP peer closing (`.closed`), or a serial device
    /// hanging up as it is unplugged (`.unplugged`).
    var endOfFile: TransportError.Kind { get }
    /// Throws `SystemError` (EAGAIN included); [] is end of file.
    func read(upTo maxCount: Int) throws -> [UInt8]
    /// Returns how many bytes the kernel took (maybe fewer than given); throws `SystemError`.
    func write(_ bytes: ArraySlice<UInt8>) throws -> Int
    func poll(for events: Readiness, timeout: Duration?) throws -> Readiness
    /// Wakes a `poll` in progress, and makes every later one return at once with nothing: the
    /// stream is being closed or its reader cancelled. Callable from any thread.
    func interruptWaits()
    /// Bytes written and not yet sent on the line (TIOCOUTQ), or nil when that cannot be known.
    func outputQueued() throws -> Int?
    /// The modem lines (TIOCMGET); throws `SystemError` ENOTTY where there are none.
    func modemLines() throws -> ModemLines
    /// Raises or drops modem outputs (TIOCMBIS / TIOCMBIC).
    func setModemLines(_ lines: ModemLines, on: Bool) throws
    func close() throws
}

extension RawIO {
    public func modemLines() throws -> ModemLines { throw SystemError.notSupported("ioctl(TIOCMGET)", endpoint) }
    public func setModemLines(_ lines: ModemLines, on: Bool) throws {
        throw SystemError.notSupported(on ? "ioctl(TIOCMBIS)" : "ioctl(TIOCMBIC)", endpoint)
    }
}

/// A `FileDescriptor` as `RawIO`.
public struct DescriptorIO: RawIO {
    public let descriptor: FileDescriptor
    public let endpoint: String
    /// A terminal: its output queue can be measured, so `drain` waits for it.
    public let isTerminal: Bool
    /// Watched by every poll beside the device, so a reader waiting for a scanner that sends
    /// nothing (for hours) can be stopped at once, with no periodic wake-up to check.
    private let wake: FileDescriptor

    public init(descriptor: FileDescriptor, endpoint: String, isTerminal: Bool) throws {
        self.descriptor = descriptor
        self.endpoint = endpoint
        self.isTerminal = isTerminal
        wake = try FileDescriptor.makeEventFD()
    }

    public var endOfFile: TransportError.Kind { isTerminal ? .unplugged : .closed }

    public func read(upTo maxCount: Int) throws -> [UInt8] { try descriptor.read(upTo: maxCount) }
    public func write(_ bytes: ArraySlice<UInt8>) throws -> Int { try descriptor.write(bytes) }
    public func poll(for events: Readiness, timeout: Duration?) throws -> Readiness {
        try descriptor.poll(for: events, timeout: timeout, wake: wake).ready
    }

    public func interruptWaits() { wake.signalEventFD() }
    public func outputQueued() throws -> Int? { isTerminal ? try descriptor.outputQueued() : nil }
    public func modemLines() throws -> ModemLines { try descriptor.modemLines() }
    public func setModemLines(_ lines: ModemLines, on: Bool) throws { try descriptor.setModemLines(lines, on: on) }
    public func close() throws {
        try? wake.close()
        try descriptor.close()
    }
}
