import Foundation
import Synchronization
public import TillCore

/// What `devices` lists about a device.
public struct DeviceInfo: Sendable, Hashable {
    public var name: String
    public var role: DeviceConfig.Role
    public var driver: String
    /// usb, serial, network, evdev, hidraw, sim
    public var transport: String
    public var model: String?
    /// A stable identity (USB serial, port path), so two identical devices can be told apart.
    public var identity: String?

    public init(name: String, role: DeviceConfig.Role, driver: String, transport: String, model: String? = nil, identity: String? = nil) {
        self.name = name
        self.role = role
        self.driver = driver
        self.transport = transport
        self.model = model
        self.identity = identity
    }
}

/// Online, offline or in error, with a reason a technician can act on.
public struct DeviceStatus: Sendable, Hashable {
    public enum State: String, Sendable, Hashable { case online, offline, error }
    public var state: State
    public var reason: String?

    public init(_ state: State, reason: String? = nil) {
        self.state = state
        self.reason = reason
    }

    public static let online = DeviceStatus(.online)

    public var json: JSONValue { ["state": .string(state.rawValue), "reason": reason.map(JSONValue.string) ?? .null] }
}

/// A device failure, said so a person can act on it.
public struct DeviceError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// The request itself is wrong for this device (too many display lines...).
        case invalidRequest
        /// The device cannot do it now (paper out, cover open, offline); nothing was done.
        case notReady
        /// It failed part-way or for an unknown reason.
        case failed
    }

    public var device: String
    public var kind: Kind
    public var message: String

    public init(device: String, _ kind: Kind, _ message: String) {
        self.device = device
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(device): \(message)" }

    public var wireError: WireError {
        WireError(kind == .invalidRequest ? .badRequest : .deviceError, description, details: ["device": .string(device)])
    }
}

/// Where devices send what they observe. Events go through the bus (journaled, fanned out);
/// state changes also wake whoever waits on the device (the print spool).
public struct EventSink: Sendable {
    private let bus: EventBus
    private let stateChanged: @Sendable (String) -> Void

    public init(bus: EventBus, stateChanged: @escaping @Sendable (String) -> Void) {
        self.bus = bus
        self.stateChanged = stateChanged
    }

    /// Journals and fans out an event. A device never fails because of the journal: while the
    /// journal cannot commit, the bus holds the event (bounded) and commits it, in order, when
    /// the journal recovers; this returns nil then, and the bus has logged why.
    @discardableResult
    public func emit(_ topic: String, device: String, _ data: JSONValue) async -> Event? {
        try? await bus.publish(topic: topic, device: device, data: data, origin: .device)
    }

    public func deviceStateChanged(_ device: String, _ status: DeviceStatus) async {
        await emit("device.state", device: device, status.json)
        stateChanged(device)
    }
}

/// A device the daemon drives. Drivers and demo devices implement the role protocols below;
/// the socket server, spool and manager only ever see these protocols.
public protocol TillDevice: AnyObject, Sendable {
    var info: DeviceInfo { get }
    var status: DeviceStatus { get }
    /// Long-running work (reading input, watching status). Returns when cancelled.
    func run(events: EventSink) async throws
}

extension TillDevice {
    public func run(events: EventSink) async throws {}

    public var listing: JSONValue {
        [
            "name": .string(info.name), "role": .string(info.role.rawValue), "driver": .string(info.driver),
            "transport": .string(info.transport), "state": .string(status.state.rawValue),
            "reason": status.reason.map(JSONValue.string) ?? .null, "model": info.model.map(JSONValue.string) ?? .null,
            "identity": info.identity.map(JSONValue.string) ?? .null,
        ]
    }
}

public struct PrintJob: Sendable {
    public var id: String
    public var payload: PrintPayload
}

public protocol ReceiptPrinter: TillDevice {
    /// Prints a job. Throws `DeviceError(.notReady)` only when nothing reached the paper.
    func print(_ job: PrintJob, events: EventSink) async throws
}

public protocol CashDrawer: TillDevice {
    func open(events: EventSink) async throws
}

public protocol CustomerDisplay: TillDevice {
    func show(_ content: DisplayContent, events: EventSink) async throws
}

/// Demo devices take input from the `simulate` op.
public protocol SimulatedDevice: TillDevice {
    func simulate(_ data: JSONValue, events: EventSink) async throws
}

/// A configured device whose driver is not in this build: listed, in error, never silently ignored.
public final class UnavailableDevice: TillDevice {
    public let info: DeviceInfo
    public let status: DeviceStatus

    public init(config: DeviceConfig) {
        info = DeviceInfo(name: config.name, role: config.role, driver: config.driver, transport: "none")
        status = DeviceStatus(
            .error,
            reason: "driver \"\(config.driver)\" is not available in this build of tilld; see docs/devices.md"
        )
    }
}
