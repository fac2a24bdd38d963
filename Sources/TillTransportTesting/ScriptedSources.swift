import Synchronization
public import TillTransport

/// What every scripted device shares: reads queued by the test, an unplug that fails the next
/// call, a wait that `cancelWaits` ends, and whether it was closed.
final class ScriptedQueue<Item: Sendable>: Sendable {
    let endpoint: String
    private let state = Mutex<(queue: [Item], gone: Bool, closed: Bool, interrupted: Bool)>(([], false, false, false))

    init(endpoint: String) {
        self.endpoint = endpoint
    }

    func send(_ item: Item) { state.withLock { $0.queue.append(item) } }
    func unplug() { state.withLock { $0.gone = true } }
    var isClosed: Bool { state.withLock { $0.closed } }
    func cancelWaits() { state.withLock { $0.interrupted = true } }
    func close() { state.withLock { $0.closed = true } }

    /// Throws `.unplugged` once the device went away.
    func checkPresent() throws {
        if state.withLock({ $0.gone }) { throw unplugged }
    }

    /// The next queued item; nil when none came within `timeout` or the wait was cancelled.
    func next(timeout: Duration) async throws -> Item? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (item, gone, interrupted) = state.withLock { state -> (Item?, Bool, Bool) in
                if state.gone { return (nil, true, false) }
                return (state.queue.isEmpty ? nil : state.queue.removeFirst(), false, state.interrupted)
            }
            if gone { throw unplugged }
            if let item { return item }
            if interrupted || ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    private var unplugged: TransportError { TransportError(.unplugged, endpoint: endpoint, "\(endpoint) went away (ENODEV): unplugged") }
}

/// A scripted evdev device: events are queued with `type(_:)`/`send(_:)`, failures with
/// `unplug()`; whether it is grabbed is recorded.
public final class ScriptedInputEvents: InputEventSource {
    public var endpoint: String { reads.endpoint }
    private let reads: ScriptedQueue<[InputEvent]>
    private let grabbed = Mutex(false)

    public init(endpoint: String = "/dev/input/event-scripted") {
        reads = ScriptedQueue(endpoint: endpoint)
    }

    /// Queues one read's worth of events.
    public func send(_ events: [InputEvent]) { reads.send(events) }

    /// The device goes away: the next read throws `.unplugged`.
    public func unplug() { reads.unplug() }

    public var isGrabbed: Bool { grabbed.withLock { $0 } }
    public var isClosed: Bool { reads.isClosed }

    public func next(timeout: Duration) async throws -> [InputEvent] {
        try await reads.next(timeout: timeout) ?? []
    }

    public func grab(_ exclusive: Bool) async throws {
        try reads.checkPresent()
        grabbed.withLock { $0 = exclusive }
    }

    public func cancelWaits() { reads.cancelWaits() }

    public func close() async {
        reads.close()
        grabbed.withLock { $0 = false }
    }
}

/// A scripted hidraw device: a report descriptor, then queued reports.
public final class ScriptedHIDReports: HIDReportSource {
    public var endpoint: String { reads.endpoint }
    private let descriptor: [UInt8]
    private let reads: ScriptedQueue<[UInt8]>

    public init(endpoint: String = "/dev/hidraw-scripted", descriptor: [UInt8]) {
        reads = ScriptedQueue(endpoint: endpoint)
        self.descriptor = descriptor
    }

    public func send(_ report: [UInt8]) { reads.send(report) }
    public func unplug() { reads.unplug() }
    public var isClosed: Bool { reads.isClosed }

    public func reportDescriptor() async throws -> [UInt8] {
        try reads.checkPresent()
        return descriptor
    }

    public func nextReport(timeout: Duration) async throws -> [UInt8]? {
        try await reads.next(timeout: timeout)
    }

    public func cancelWaits() { reads.cancelWaits() }

    public func close() async { reads.close() }
}
