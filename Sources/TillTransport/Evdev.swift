import CEvdev
import Dispatch
import Synchronization
import TillSystem

/// An evdev input device (`/dev/input/event*`) through libevdev: what a keyboard-wedge scanner
/// is. Reads and the grab run on the device's own queue; a wait is woken by `close()`.
public final class EvdevDevice: InputEventSource {
    public let endpoint: String
    /// The device's name as the kernel reports it ("Honeywell Scanner").
    public let name: String
    public let vendor: UInt16
    public let product: UInt16

    private let io: DescriptorIO
    private let handle: LibevdevHandle
    private let queue: DispatchQueue
    private let closed = Mutex(false)

    /// Opens the node (non-blocking) and reads what libevdev needs. Errors name the fix.
    public init(path: String) throws {
        endpoint = path
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(path, .readOnly, options: [.nonBlocking])
        } catch let error as SystemError {
            throw TransportError.from(error, endpoint: path, opening: true)
        }
        var device: OpaquePointer?
        let result = libevdev_new_from_fd(descriptor.rawValue, &device)
        guard result == 0, let device else {
            try? descriptor.close()
            throw TransportError.from(SystemError(call: "libevdev_new_from_fd", subject: path, errno: -result), endpoint: path, opening: true)
        }
        handle = LibevdevHandle(device)
        name = libevdev_get_name(device).map { String(cString: $0) } ?? "?"
        vendor = UInt16(truncatingIfNeeded: libevdev_get_id_vendor(device))
        product = UInt16(truncatingIfNeeded: libevdev_get_id_product(device))
        io = try DescriptorIO(descriptor: descriptor, endpoint: path, isTerminal: false)
        queue = DispatchQueue(label: "tilld.evdev \(path)")
    }

    deinit {
        libevdev_free(handle.device)
        if !closed.withLock({ $0 }) { try? io.close() }
    }

    public func grab(_ exclusive: Bool) async throws {
        try await run { [handle, endpoint] in
            let result = libevdev_grab(handle.device, exclusive ? LIBEVDEV_GRAB : LIBEVDEV_UNGRAB)
            if result < 0 {
                let error = SystemError(call: "EVIOCGRAB", subject: endpoint, errno: -result)
                throw error.name == "EBUSY"
                    ? TransportError(.busy, endpoint: endpoint, "\(endpoint) is grabbed by another program (a second tilld? `fuser -v \(endpoint)`)", cause: error)
                    : TransportError.from(error, endpoint: endpoint, opening: false)
            }
        }
    }

    /// Events that arrived, in order; after the kernel dropped events (SYN_DROPPED), the resync
    /// libevdev does is passed on after an `InputEvent.dropped` marker.
    public func next(timeout: Duration) async throws -> [InputEvent] {
        try await run { try self.readEvents(timeout: timeout) }
    }

    public func nextBlocking(timeout: Duration) throws -> [InputEvent]? {
        if closed.withLock({ $0 }) { throw TransportError(.closed, endpoint: endpoint, "\(endpoint) was closed by tilld") }
        // On the calling thread, still in turn with the grab and `close` (the device's queue).
        return try queue.sync { try readEvents(timeout: timeout) }
    }

    private func readEvents(timeout: Duration) throws -> [InputEvent] {
        guard try io.poll(for: .readable, timeout: timeout).contains(.readable) else { return [] }
        var events: [InputEvent] = []
        var flags = LIBEVDEV_READ_FLAG_NORMAL.rawValue
        var raw = input_event()
        while true {
            let status = libevdev_next_event(handle.device, flags, &raw)
            if status == -SystemError.wouldBlockCode {
                if flags == LIBEVDEV_READ_FLAG_SYNC.rawValue { flags = LIBEVDEV_READ_FLAG_NORMAL.rawValue; continue }
                return events
            }
            if status < 0 {
                throw TransportError.from(SystemError(call: "libevdev_next_event", subject: endpoint, errno: -status), endpoint: endpoint, opening: false)
            }
            if status == Int32(LIBEVDEV_READ_STATUS_SYNC.rawValue), flags == LIBEVDEV_READ_FLAG_NORMAL.rawValue {
                events.append(.dropped)
                flags = LIBEVDEV_READ_FLAG_SYNC.rawValue
                continue
            }
            events.append(InputEvent(type: raw.type, code: raw.code, value: raw.value))
        }
    }

    public func cancelWaits() {
        io.interruptWaits()
    }

    public func close() async {
        let first = closed.withLock { closed -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        io.interruptWaits()
        _ = try? await run {}
        try? io.close()
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        if closed.withLock({ $0 }) { throw TransportError(.closed, endpoint: endpoint, "\(endpoint) was closed by tilld") }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// libevdev's handle. It is not thread-safe: every use is on the device's serial queue (and
/// `deinit`, when nothing else can hold it), which is why it may cross into `@Sendable` closures.
final class LibevdevHandle: @unchecked Sendable {
    let device: OpaquePointer
    init(_ device: OpaquePointer) { self.device = device }
}
