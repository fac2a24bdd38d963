public import Logging
public import ServiceLifecycle
import Synchronization
public import TillCore
public import TillDevices
public import TillDrivers
public import TillScanner

/// Owns the devices: builds them from the config (plus the demo set), runs each one's
/// long-running work, and routes ops to them by name or role.
public final class DeviceManager: Service, Sendable {
    /// The configured and demo devices, then those taken on with zero config as they are
    /// plugged in (`adopt`), in that order.
    public var devices: [any TillDevice] { list.withLock { $0 } }
    private let list: Mutex<[any TillDevice]>
    /// Devices adopted after start, for `run` to prepare, announce and run.
    private let adopted: AsyncStream<any TillDevice>
    private let adopt: AsyncStream<any TillDevice>.Continuation
    private let logger: Logger
    private let sink: any EventSink
    private let announcement = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Sale-driven devices, each with its queue of sale events (in order, bounded: a display
    /// that falls behind skips to the newest rather than holding memory).
    private let followers: [(device: any SaleFollower, stream: AsyncStream<(String, JSONValue)>, queue: AsyncStream<(String, JSONValue)>.Continuation)]

    public init(devices: [any TillDevice], sink: any EventSink, logger: Logger) {
        list = Mutex(devices)
        (adopted, adopt) = AsyncStream.makeStream(of: (any TillDevice).self)
        self.sink = sink
        self.logger = logger
        followers = devices.compactMap { device in
            guard let follower = device as? any SaleFollower, follower.followsSales else { return nil }
            let (stream, queue) = AsyncStream.makeStream(of: (String, JSONValue).self, bufferingPolicy: .bufferingNewest(64))
            return (follower, stream, queue)
        }
    }

    /// A POS event was journaled: sale-driven devices see `sale.*` ones. Never waits.
    public func published(topic: String, data: JSONValue) {
        guard topic.hasPrefix("sale."), !followers.isEmpty else { return }
        for follower in followers { follower.queue.yield((topic, data)) }
    }

    /// The demo set: `sim-scanner`, `sim-printer`, `sim-drawer`, `sim-display`.
    public static func demoDevices(stateDirectory: String, classifier: ScanClassifier) throws -> [any TillDevice] {
        try DemoDevices.make(stateDirectory: stateDirectory, classifier: classifier)
    }

    /// Devices from `[[device]]` entries. Drivers arrive in their own modules; until one is
    /// registered here the entry is listed in error with the reason, never dropped.
    public static func configuredDevices(_ configs: [DeviceConfig], registry: DriverRegistry = BuiltinDrivers.registry, environment: DriverEnvironment) -> [any TillDevice] {
        let devices = configs.map { registry.makeDevice($0, environment: environment) }
        environment.directory.register(devices)
        return devices
    }

    public func device(named name: String) -> (any TillDevice)? {
        devices.first { $0.info.name == name }
    }

    /// The named device, or the first one of the role; errors say what exists.
    public func resolve(_ name: String?, role: DeviceConfig.Role) throws -> any TillDevice {
        if let name {
            guard let device = device(named: name) else {
                let known = devices.map(\.info.name).joined(separator: ", ")
                throw WireError(.notFound, "no device named \"\(name)\"; known: \(known.isEmpty ? "none" : known) (tillctl devices)", details: ["device": .string(name)])
            }
            guard device.info.role == role || (role == .drawer && device is any CashDrawer) else {
                throw WireError(.badRequest, "device \"\(name)\" is a \(device.info.role.rawValue), not a \(role.rawValue)", details: ["device": .string(name)])
            }
            return device
        }
        guard let device = devices.first(where: { $0.info.role == role }) else {
            throw WireError(.notFound, "no \(role.rawValue) is configured; add a [[device]] with role = \"\(role.rawValue)\" or start with --demo")
        }
        return device
    }

    /// Returns once every device's `device.added` is journaled (or refused by a broken journal),
    /// so the socket opens on a journal that already lists the devices: a client that publishes
    /// at once never sees its event ahead of them.
    public func announced() async {
        await withCheckedContinuation { continuation in
            let done = announcement.withLock { state -> Bool in
                if state.done { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Takes on a device found after start (zero config): it is opened, announced with
    /// `device.added` and run like the configured ones. A name already in use is refused.
    @discardableResult
    public func adopt(_ device: any TillDevice) -> Bool {
        let added = list.withLock { list -> Bool in
            guard !list.contains(where: { $0.info.name == device.info.name }) else { return false }
            list.append(device)
            return true
        }
        if added { adopt.yield(device) }
        return added
    }

    public func run() async throws {
        let devices = self.devices
        for device in devices { await device.prepare() }
        for device in devices {
            await sink.emit(.added(listing: device.listing), device: device.info.name)
            if device.status.state != .online {
                logger.warning("device is not online", metadata: ["device": "\(device.info.name)", "reason": "\(device.status.reason ?? "")"])
            }
        }
        let waiters = announcement.withLock { state in
            state.done = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
        try await withThrowingDiscardingTaskGroup { group in
            // Stay up until shutdown even when no device has long-running work.
            group.addTask { try? await gracefulShutdown() }
            for follower in followers {
                group.addTask { [sink] in
                    await cancelWhenGracefulShutdown {
                        for await (topic, data) in follower.stream { await follower.device.follow(topic: topic, data: data, events: sink) }
                    }
                }
            }
            for device in devices { group.addTask { await self.drive(device) } }
            // Devices plugged in later and taken on with zero config, until shutdown.
            group.addTask { [adopt] in
                try? await gracefulShutdown()
                adopt.finish()
            }
            for await device in adopted {
                group.addTask { [sink] in
                    await device.prepare()
                    await sink.emit(.added(listing: device.listing), device: device.info.name)
                    await self.drive(device)
                }
            }
        }
    }

    private func drive(_ device: any TillDevice) async {
        do {
            try await cancelWhenGracefulShutdown { [sink] in try await device.run(events: sink) }
        } catch is CancellationError {
        } catch {
            logger.error("device stopped with an error", metadata: ["device": "\(device.info.name)", "error": "\(error)"])
        }
    }
}
