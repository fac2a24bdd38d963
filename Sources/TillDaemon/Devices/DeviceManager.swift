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
    /// Told of each device taken on after start (the spool starts a printer's worker).
    private let adoptionObservers = Mutex<[@Sendable (any TillDevice) -> Void]>([])
    /// How to stop each running device by itself (a device removed or changed by a reload).
    private let stops = Mutex<[ObjectIdentifier: StopSignal]>([:])
    private let announcement = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Sale-driven devices that are running, each with its queue of sale events (in order,
    /// bounded: a display that falls behind skips to the newest rather than holding memory).
    private let followers = Mutex<[ObjectIdentifier: AsyncStream<(String, JSONValue)>.Continuation]>([:])

    /// The `[[device]]` entries in force (a reload compares the new file's with these).
    public var entries: [DeviceConfig] { entryList.withLock { $0 } }
    private let entryList: Mutex<[DeviceConfig]>

    public init(devices: [any TillDevice], entries: [DeviceConfig] = [], sink: any EventSink, logger: Logger) {
        list = Mutex(devices)
        entryList = Mutex(entries)
        (adopted, adopt) = AsyncStream.makeStream(of: (any TillDevice).self)
        self.sink = sink
        self.logger = logger
    }

    /// A POS event was journaled: sale-driven devices see `sale.*` ones. Never waits.
    public func published(topic: String, data: JSONValue) {
        guard topic.hasPrefix("sale.") else { return }
        for queue in followers.withLock({ Array($0.values) }) { queue.yield((topic, data)) }
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

    /// Takes on a device after start (zero config, or an entry a reload added): it is opened,
    /// announced with `device.added` and run like the others. A name already in use is refused.
    @discardableResult
    public func adopt(_ device: any TillDevice) -> Bool {
        let added = list.withLock { list -> Bool in
            guard !list.contains(where: { $0.info.name == device.info.name }) else { return false }
            list.append(device)
            return true
        }
        guard added else { return false }
        stops.withLock { $0[ObjectIdentifier(device)] = StopSignal() }
        for observer in adoptionObservers.withLock({ $0 }) { observer(device) }
        adopt.yield(device)
        return true
    }

    /// What a reload changes: entries gone (retired), entries whose driver or options changed
    /// (retired, then built anew), new entries (built and taken on). Entries that are the same
    /// are left running: their connections, open ports and queued jobs are untouched.
    public struct Reconfiguration: Sendable, Hashable {
        public var removed: [String] = []
        public var changed: [String] = []
        public var added: [String] = []
        public var isEmpty: Bool { removed.isEmpty && changed.isEmpty && added.isEmpty }
    }

    /// The entries that differ, by name (where an entry sits in the file does not count).
    public static func difference(from old: [DeviceConfig], to new: [DeviceConfig]) -> Reconfiguration {
        func same(_ a: DeviceConfig, _ b: DeviceConfig) -> Bool { a.role == b.role && a.driver == b.driver && a.options == b.options }
        let before = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(new.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var change = Reconfiguration()
        change.removed = old.map(\.name).filter { after[$0] == nil }
        change.changed = new.filter { entry in before[entry.name].map { !same($0, entry) } ?? false }.map(\.name)
        change.added = new.map(\.name).filter { before[$0] == nil }
        return change
    }

    /// Applies new entries: see `Reconfiguration`. `make` builds a device for an entry.
    public func reconfigure(_ new: [DeviceConfig], make: ([DeviceConfig]) -> [any TillDevice]) async -> Reconfiguration {
        let change = Self.difference(from: entries, to: new)
        for name in change.removed + change.changed { await retire(name) }
        let build = new.filter { change.changed.contains($0.name) || change.added.contains($0.name) }
        entryList.withLock { $0 = new }
        for device in make(build) { adopt(device) }
        return change
    }

    /// `observer` is called with each device taken on after start.
    public func observeAdoptions(_ observer: @escaping @Sendable (any TillDevice) -> Void) {
        adoptionObservers.withLock { $0.append(observer) }
    }

    /// Stops a device and lets it go (a reload removed or changed its entry; a zero-config
    /// device an entry now names): its work ends, its transport is closed, `device.removed`
    /// says so. Its queued print jobs stay queued, for a device of the same name.
    public func retire(_ name: String) async {
        guard let device = list.withLock({ list -> (any TillDevice)? in
            guard let index = list.firstIndex(where: { $0.info.name == name }) else { return nil }
            return list.remove(at: index)
        }) else { return }
        await stops.withLock { $0.removeValue(forKey: ObjectIdentifier(device)) }?.stop()
        await sink.emit(.removed, device: name)
    }

    public func run() async throws {
        let devices = self.devices
        stops.withLock { stops in for device in devices { stops[ObjectIdentifier(device)] = StopSignal() } }
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

    /// Runs a device until shutdown, or until it is retired (its work is cancelled, and
    /// `retire` returns once it has ended: its port closed, a grabbed scanner given back).
    private func drive(_ device: any TillDevice) async {
        let stop = stops.withLock { $0[ObjectIdentifier(device)] }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [sink, logger] in
                do {
                    try await cancelWhenGracefulShutdown { try await device.run(events: sink) }
                } catch is CancellationError {
                } catch {
                    logger.error("device stopped with an error", metadata: ["device": "\(device.info.name)", "error": "\(error)"])
                }
                // A device with no long-running work of its own is still there (and follows
                // sales, if it does) until it is stopped or tilld shuts down.
                if !Task.isCancelled { await cancelWhenGracefulShutdown { try? await Task.sleep(for: .seconds(86_400 * 365 * 100)) } }
            }
            if let stop { group.addTask { await stop.wait() } }
            if let follower = device as? any SaleFollower, follower.followsSales {
                // Runs as long as the device does: a display removed by a reload stops following.
                let (stream, queue) = AsyncStream.makeStream(of: (String, JSONValue).self, bufferingPolicy: .bufferingNewest(64))
                followers.withLock { $0[ObjectIdentifier(device)] = queue }
                group.addTask { [sink] in
                    await cancelWhenGracefulShutdown {
                        for await (topic, data) in stream { await follower.follow(topic: topic, data: data, events: sink) }
                    }
                }
            }
            await group.next()
            group.cancelAll()
            // Whichever came first, the other child is let go: the stop's wait, or the device's
            // work (cancelled: it closes its transport), which is waited for.
            stop?.releaseWaiter()
            followers.withLock { $0.removeValue(forKey: ObjectIdentifier(device)) }?.finish()
            await group.waitForAll()
        }
        stop?.ended()
    }
}

/// A one-shot stop for one running device: `stop()` wakes `wait()` and returns once the device
/// has ended (`ended()`).
final class StopSignal: Sendable {
    private let state = Mutex<(stopped: Bool, waiter: CheckedContinuation<Void, Never>?, ended: Bool, enders: [CheckedContinuation<Void, Never>])>((false, nil, false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.stopped { return true }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    func stop() async {
        releaseWaiter()
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.ended { return true }
                state.enders.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// `wait()` returns (now, or at once when it is called): the device is being stopped, or
    /// its work ended by itself.
    func releaseWaiter() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.stopped = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The device's work has ended: `stop()` returns.
    func ended() {
        let enders = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.ended = true
            defer { state.enders = [] }
            return state.enders
        }
        for ender in enders { ender.resume() }
    }
}
