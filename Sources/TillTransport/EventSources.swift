/// One input event as the kernel's evdev interface gives it (`struct input_event`): what a
/// keyboard-wedge scanner types. The evdev transport (libevdev) arrives with the scanner
/// drivers, on this protocol; drivers are tested against `TillTransportTesting`'s scripted one.
public struct InputEvent: Sendable, Hashable {
    public var type: UInt16
    public var code: UInt16
    public var value: Int32

    public init(type: UInt16, code: UInt16, value: Int32) {
        self.type = type
        self.code = code
        self.value = value
    }

    public static let synchronization: UInt16 = 0x00  // EV_SYN
    public static let key: UInt16 = 0x01  // EV_KEY
    /// SYN_DROPPED: the kernel's buffer overflowed; the reader must resynchronise its key state.
    public static let dropped = InputEvent(type: 0x00, code: 3, value: 0)
}

/// A stream of input events from one device node.
public protocol InputEventSource: AnyObject, Sendable {
    var endpoint: String { get }
    /// The events that arrived, in order; [] when none did within `timeout`. Throws a
    /// `TransportError` (`.unplugged`) when the device went away.
    func next(timeout: Duration) async throws -> [InputEvent]
    /// `next`, blocking the calling thread; nil when the source cannot (then use `next`). Only
    /// for a reader on a thread of its own (`DedicatedThread`).
    func nextBlocking(timeout: Duration) throws -> [InputEvent]?
    /// Takes the device for tilld alone (EVIOCGRAB), so a scanner's keystrokes reach no console
    /// and no other program; false gives it back.
    func grab(_ exclusive: Bool) async throws
    /// Wakes a `next` waiting for events; it returns [] at once, and so do later ones. For a
    /// cancellation handler. Callable from any thread.
    func cancelWaits()
    func close() async
}

/// Reports from a HID device (hidraw): what a HID POS scanner sends.
public protocol HIDReportSource: AnyObject, Sendable {
    var endpoint: String { get }
    /// The device's report descriptor, which says where its data, symbology and
    /// continuation fields are (vendors differ).
    func reportDescriptor() async throws -> [UInt8]
    /// The next read: one input report from a real hidraw node (a replay under umockdev may
    /// hold several, which the reader splits by the descriptor's report lengths); nil when
    /// none came within `timeout`. Throws a `TransportError` (`.unplugged`) when it went away.
    func nextReport(timeout: Duration) async throws -> [UInt8]?
    /// `nextReport`, blocking the calling thread: `.some(report or nil)`; `.none` when the
    /// source cannot (then use `nextReport`). Only for a reader on a thread of its own.
    func nextReportBlocking(timeout: Duration) throws -> [UInt8]??
    /// Wakes a `nextReport` waiting; it returns nil at once, and so do later ones. For a
    /// cancellation handler. Callable from any thread.
    func cancelWaits()
    func close() async
}

extension InputEventSource {
    public func nextBlocking(timeout: Duration) throws -> [InputEvent]? { nil }
}

extension HIDReportSource {
    public func nextReportBlocking(timeout: Duration) throws -> [UInt8]?? { .none }
}
