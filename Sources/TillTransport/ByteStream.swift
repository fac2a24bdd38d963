public import TillSystem

/// A device's byte stream, whatever carries it (a serial line, a USB printer's character
/// device, a TCP connection). Drivers are written against this, never against a descriptor,
/// so each one is tested with a scripted stream (`TillTransportTesting`) and no hardware.
public protocol ByteStream: AnyObject, Sendable {
    /// Where it goes, for messages: "/dev/ttyUSB0", "192.168.1.50:9100".
    var endpoint: String { get }
    /// What arrived, up to `maxCount` bytes; [] when nothing did within `timeout`. Throws a
    /// `TransportError` when the device is gone (unplugged, connection closed).
    func read(maxCount: Int, timeout: Duration) async throws -> [UInt8]
    /// `read`, blocking the calling thread instead of suspending the task; nil when the stream
    /// cannot (the caller then uses `read`). Only for a task on a thread of its own (a
    /// `DedicatedThread`): it saves a hop between threads on every read.
    func readBlocking(maxCount: Int, timeout: Duration) throws -> [UInt8]?
    /// Writes every byte (a partial write continues where it stopped), or throws; `timeout`
    /// bounds how long the device may refuse to take more (paper out, flow control held).
    func write(_ bytes: [UInt8], timeout: Duration) async throws
    /// Returns once what was written has left the computer (serial: the line's queue is empty).
    func drain(timeout: Duration) async throws
    /// Wakes a read or write waiting for the device; it returns as if its time ran out, and later
    /// waits return at once. For a cancellation handler: a reader can wait for hours with no
    /// periodic wake-up and still stop the moment it is told to. Callable from any thread.
    func cancelWaits()
    /// Closes it; reads and writes after this throw `.closed`. Idempotent.
    func close() async
    /// The device node it is open on (/dev/ttyACM0, /dev/bus/usb/001/004), when it is one: how a
    /// driver knows that udev's "removed" is about its device.
    var devicePath: String? { get }
    /// Whether a read may wait while writes go on (a descriptor, a socket). A USB link moves one
    /// transfer at a time, so a driver reads it only when it expects an answer.
    var readsWhileWriting: Bool { get }
}

extension ByteStream {
    public func readBlocking(maxCount: Int, timeout: Duration) throws -> [UInt8]? { nil }
    public var readsWhileWriting: Bool { true }
    public var devicePath: String? { nil }
}

/// A serial port's modem lines, beside its bytes: what a stand-alone cash drawer is driven by
/// (an output pulsed to fire the solenoid, an input wired to the drawer's switch).
public protocol ModemControl: AnyObject, Sendable {
    /// The lines' levels now. Throws a `TransportError`: `.invalidSettings` where the port has
    /// no modem lines (a pseudo-terminal), `.unplugged` when the device went away.
    func modemLines() async throws -> ModemLines
    /// Raises (`on`) or drops the given outputs (DTR, RTS), leaving the others as they are.
    func setModemLines(_ lines: ModemLines, on: Bool) async throws
}

/// A serial line with its modem lines: `SerialPort.open` gives one.
public typealias SerialLine = ByteStream & ModemControl

extension DescriptorStream: ModemControl {}

/// Why a transport failed, said so a technician can act on it: `message` ends with what to do.
public struct TransportError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case notFound, permission, busy, unplugged, closed, timedOut, refused, unreachable, invalidSettings, io
    }

    public var kind: Kind
    public var endpoint: String
    public var message: String
    /// The system call's error underneath, when there is one.
    public var cause: SystemError?
    /// For a write that failed part-way: how many of its bytes the device took, so the caller
    /// can go on from there (a printer out of paper takes the rest once paper is loaded).
    public var bytesWritten: Int?

    public init(_ kind: Kind, endpoint: String, _ message: String, cause: SystemError? = nil) {
        self.kind = kind
        self.endpoint = endpoint
        self.message = message
        self.cause = cause
    }

    public var description: String { "\(endpoint): \(message)" }

    /// Whether the device may come back by itself (replugged, the network returns), so the
    /// driver should wait and retry rather than report a configuration error.
    public var isTransient: Bool {
        switch kind {
        case .unplugged, .closed, .timedOut, .refused, .unreachable, .io: true
        case .notFound, .permission, .busy, .invalidSettings: false
        }
    }

    /// Classifies a failed system call on `endpoint`; `opening` when it was the open itself.
    public static func from(_ error: SystemError, endpoint: String, opening: Bool) -> TransportError {
        switch error.name {
        case "ENOENT" where opening, "ENODEV" where opening, "ENXIO" where opening:
            return TransportError(.notFound, endpoint: endpoint, "no device at \(endpoint): is it plugged in and switched on? (`ls -l /dev/serial/by-id/ /dev/usb/` lists what is there)", cause: error)
        case "EACCES", "EPERM":
            return TransportError(.permission, endpoint: endpoint, "permission denied: tilld's user may not open \(endpoint); install tilld's udev rules (udev/) or add the user to the device's group (`ls -l \(endpoint)` shows it, e.g. `usermod -aG dialout tilld`)", cause: error)
        case "EBUSY":
            return TransportError(.busy, endpoint: endpoint, "\(endpoint) is in use by another program; `fuser -v \(endpoint)` names it (ModemManager often takes USB serial devices: `systemctl stop ModemManager`)", cause: error)
        case "ECONNREFUSED":
            return TransportError(.refused, endpoint: endpoint, "\(endpoint) refused the connection: is the printer on, and its raw port (usually 9100) enabled? tilld retries", cause: error)
        case "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT":
            return TransportError(.unreachable, endpoint: endpoint, "\(endpoint) cannot be reached (\(error.name)): check the cable and the printer's address; tilld retries", cause: error)
        default:
            if error.isDeviceGone {
                return TransportError(.unplugged, endpoint: endpoint, "\(endpoint) went away (\(error.name)): unplugged or switched off; tilld picks it up again when it is back", cause: error)
            }
            return TransportError(.io, endpoint: endpoint, "\(error)", cause: error)
        }
    }
}
