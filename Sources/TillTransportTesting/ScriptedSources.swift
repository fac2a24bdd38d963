import Synchronization
public import TillTransport

/// A scripted evdev device: events are queued with `type(_:)`/`send(_:)`, failures with
/// `unplug()`; whether it is grabbed is recorded.
public final class ScriptedInputEvents: InputEventSource {
    public let endpoint: String
    private let state = Mutex<(queue: [[InputEvent]], gone: Bool, grabbed: Bool, closed: Bool, interrupted: Bool)>(([], false, false, false, false))

    public init(endpoint: String = "/dev/input/event-scripted") {
        self.endpoint = endpoint
    }

    /// Queues one read's worth of events.
    public func send(_ events: [InputEvent]) { state.withLock { $0.queue.append(events) } }

    /// The device goes away: the next read throws `.unplugged`.
    public func unplug() { state.withLock { $0.gone = true } }

    public var isGrabbed: Bool { state.withLock { $0.grabbed } }
    public var isClosed: Bool { state.withLock { $0.closed } }

    public func next(timeout: Duration) async throws -> [InputEvent] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (batch, gone, interrupted) = state.withLock { state -> ([InputEvent]?, Bool, Bool) in
                if state.gone { return (nil, true, false) }
                return (state.queue.isEmpty ? nil : state.queue.removeFirst(), false, state.interrupted)
            }
            if gone { throw TransportError(.unplugged, endpoint: endpoint, "\(endpoint) went away (ENODEV): unplugged") }
            if let batch { return batch }
            if interrupted || ContinuousClock.now >= deadline { return [] }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    public func grab(_ exclusive: Bool) async throws {
        let gone = state.withLock { state -> Bool in
            if !state.gone { state.grabbed = exclusive }
            return state.gone
        }
        if gone { throw TransportError(.unplugged, endpoint: endpoint, "\(endpoint) went away (ENODEV): unplugged") }
    }

    public func cancelWaits() { state.withLock { $0.interrupted = true } }

    public func close() async { state.withLock { $0.closed = true; $0.grabbed = false } }
}

/// A scripted hidraw device: a report descriptor, then queued reports.
public final class ScriptedHIDReports: HIDReportSource {
    public let endpoint: String
    private let descriptor: [UInt8]
    private let state = Mutex<(queue: [[UInt8]], gone: Bool, closed: Bool, interrupted: Bool)>(([], false, false, false))

    public init(endpoint: String = "/dev/hidraw-scripted", descriptor: [UInt8]) {
        self.endpoint = endpoint
        self.descriptor = descriptor
    }

    public func send(_ report: [UInt8]) { state.withLock { $0.queue.append(report) } }
    public func unplug() { state.withLock { $0.gone = true } }
    public var isClosed: Bool { state.withLock { $0.closed } }

    public func reportDescriptor() async throws -> [UInt8] {
        if state.withLock({ $0.gone }) { throw TransportError(.unplugged, endpoint: endpoint, "\(endpoint) went away (ENODEV): unplugged") }
        return descriptor
    }

    public func nextReport(timeout: Duration) async throws -> [UInt8]? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (report, gone, interrupted) = state.withLock { state -> ([UInt8]?, Bool, Bool) in
                if state.gone { return (nil, true, false) }
                return (state.queue.isEmpty ? nil : state.queue.removeFirst(), false, state.interrupted)
            }
            if gone { throw TransportError(.unplugged, endpoint: endpoint, "\(endpoint) went away (ENODEV): unplugged") }
            if let report { return report }
            if interrupted || ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    public func cancelWaits() { state.withLock { $0.interrupted = true } }

    public func close() async { state.withLock { $0.closed = true } }
}
