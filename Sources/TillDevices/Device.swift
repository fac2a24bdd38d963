public import Foundation
import Synchronization
public import TillCore
public import TillESCPOS

/// What `devices` lists about a device.
public struct DeviceInfo: Sendable, Hashable {
    public var name: String
    public var role: DeviceRole
    public var driver: String
    /// usb, serial, network, evdev, hidraw, sim
    public var transport: String
    public var model: String?
    /// A stable identity (USB serial, port path), so two identical devices can be told apart.
    public var identity: String?

    public init(name: String, role: DeviceRole, driver: String, transport: String, model: String? = nil, identity: String? = nil) {
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
        /// It stopped part-way (unplugged mid-job): part of it may have happened, so a retry
        /// must say it is one (a print job is reprinted whole, under a REPRINT banner).
        case interrupted
        /// It failed part-way or for an unknown reason.
        case failed
        /// Doing it now would do harm or nothing (a kick into a drawer already open); nothing
        /// was done, and the message says what must happen first.
        case busy
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
        let code: ErrorCode = switch kind {
        case .invalidRequest: .badRequest
        case .busy: .busy
        case .notReady, .interrupted, .failed: .deviceError
        }
        return WireError(code, description, details: ["device": .string(device)])
    }
}

/// A device tilld drives. Drivers and demo devices implement the role protocols below; the
/// daemon (socket server, spool, manager) only ever sees these protocols, and a driver only
/// ever sees `EventSink`: never the journal, the bus or the database.
public protocol TillDevice: AnyObject, Sendable {
    var info: DeviceInfo { get }
    var status: DeviceStatus { get }
    /// Opens what the device needs (its transport) before it is announced, so `device.added`
    /// carries its state as it is, not "not opened yet" followed by a `device.state`. Never
    /// throws: a device that cannot open says why in `status`, and `run` keeps trying.
    func prepare() async
    /// Long-running work (reading input, watching status). Returns when cancelled.
    func run(events: any EventSink) async throws
}

extension TillDevice {
    public func prepare() async {}
    public func run(events: any EventSink) async throws {}

    public var listing: JSONValue {
        [
            "name": .string(info.name), "role": .string(info.role.rawValue), "driver": .string(info.driver),
            "transport": .string(info.transport), "state": .string(status.state.rawValue),
            "reason": status.reason.map(JSONValue.string) ?? .null, "model": info.model.map(JSONValue.string) ?? .null,
            "identity": info.identity.map(JSONValue.string) ?? .null,
        ]
    }
}

/// A spooled job as the printer gets it: the bytes the encoder made when the job was
/// submitted (or the raw bytes sent), never re-encoded.
public struct PrintJob: Sendable {
    public var id: String
    public var bytes: [UInt8]

    public init(id: String, bytes: [UInt8]) {
        self.id = id
        self.bytes = bytes
    }
}

public protocol ReceiptPrinter: TillDevice {
    /// Turns receipt documents into this printer's bytes (its profile and options).
    var encoder: ReceiptEncoder { get }
    /// Sends a job. Throws `DeviceError(.notReady)` when nothing was sent (the job stays
    /// queued), `.interrupted` when it stopped part-way (the job is printed again, whole, under
    /// a REPRINT banner), `.failed` when it must not be tried again.
    func print(_ job: PrintJob, events: any EventSink) async throws
}

public protocol CashDrawer: TillDevice {
    func open(events: any EventSink) async throws
    /// Whether the drawer is open now: nil where it cannot be told (no state line).
    var isOpen: Bool? { get }
    /// Since when, when it is open and that is known.
    var openSince: Date? { get }
}

extension CashDrawer {
    public var isOpen: Bool? { nil }
    public var openSince: Date? { nil }
}

/// A device with a cash drawer port (a receipt printer's DK connector): the `printer-drawer`
/// driver opens the drawer through it and learns its state from it.
public protocol DrawerPort: TillDevice {
    /// Fires the kick (`ESC p`): never in the middle of a job's bytes.
    func kickDrawer(pin: Int, pulseMilliseconds: Int, pulses: Int) async throws
    /// The level of pin 3 (the drawer's switch) each time it changes; nil while unknown.
    func drawerPinChanges() -> AsyncStream<Bool>
    /// The drawer is shut again: stop asking for its state often.
    func drawerSettled()
}

/// A printer with a customer display chained behind it (`ESC = 2` pass-through): the display
/// driver sends its bytes through the printer, between jobs, never inside one.
public protocol DisplayPort: TillDevice {
    /// Whether this printer's entry says a display hangs on it (`display = true`).
    var chainsDisplay: Bool { get }
    /// Sends `bytes` to the display: `ESC = 2`, the bytes, `ESC = 1`. Throws a
    /// `TransportError` when the printer cannot take them (offline).
    func passToDisplay(_ bytes: [UInt8]) async throws
}

/// The devices built from the config, by name: how a device that hangs on another (a drawer
/// on a printer's port) finds it once every entry is built, whatever their order.
public final class DeviceDirectory: Sendable {
    private let devices = Mutex<[String: any TillDevice]>([:])

    public init() {}

    public func register(_ list: [any TillDevice]) {
        devices.withLock { devices in for device in list { devices[device.info.name] = device } }
    }

    public func device(named name: String) -> (any TillDevice)? { devices.withLock { $0[name] } }
}

public protocol CustomerDisplay: TillDevice {
    func show(_ content: DisplayContent, events: any EventSink) async throws
}

/// A device that follows the sales the POS publishes (a sale-driven customer display). tilld
/// hands it each `sale.*` event once the event is journaled, in order.
public protocol SaleFollower: TillDevice {
    /// Whether this device follows sales (its entry's `sale_driven`).
    var followsSales: Bool { get }
    func follow(topic: String, data: JSONValue, events: any EventSink) async
}

/// Demo devices take input from the `simulate` op.
public protocol SimulatedDevice: TillDevice {
    func simulate(_ data: JSONValue, events: any EventSink) async throws
}

/// A configured device whose driver is not in this build: listed, in error, never silently ignored.
public final class UnavailableDevice: TillDevice {
    public let info: DeviceInfo
    public let status: DeviceStatus

    public init(config: DeviceConfig, reason: String? = nil) {
        info = DeviceInfo(name: config.name, role: config.role, driver: config.driver, transport: "none")
        status = DeviceStatus(
            .error,
            reason: reason ?? "driver \"\(config.driver)\" is not available in this build of tilld; see docs/devices.md"
        )
    }
}
