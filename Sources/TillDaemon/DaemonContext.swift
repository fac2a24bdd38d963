public import Foundation
public import Logging
import Synchronization
import TillCore
public import TillDevices

/// The config in force, replaced as a whole on reload (SIGHUP).
public final class ConfigStore: Sendable {
    private struct Current {
        var config: DaemonConfig
        var policy: AccessPolicy
    }
    private let current: Mutex<Current>
    public let path: String
    public let pathIsExplicit: Bool

    public init(config: DaemonConfig, path: String, pathIsExplicit: Bool) {
        current = Mutex(Current(config: config, policy: AccessPolicy(rules: config.access)))
        self.path = path
        self.pathIsExplicit = pathIsExplicit
    }

    public var config: DaemonConfig { current.withLock { $0.config } }
    public var policy: AccessPolicy { current.withLock { $0.policy } }

    /// Re-reads the file. On any problem the old config stays in force and the problems are thrown.
    public func reload() throws -> DaemonConfig {
        let config = try DaemonConfig.load(path: path, required: pathIsExplicit)
        current.withLock { $0 = Current(config: config, policy: AccessPolicy(rules: config.access)) }
        return config
    }
}

/// Everything a request handler needs, built once by the executable.
public struct DaemonContext: Sendable {
    public var version: String
    public var startedAt: Date
    public var bus: EventBus
    public var journal: Journal
    public var devices: DeviceManager
    public var spool: PrintSpool
    public var sink: any EventSink
    public var config: ConfigStore
    public var demo: Bool
    public var logger: Logger
    /// What is plugged in and what tilld made of it (nil without udev).
    public var hotplug: Hotplug?
    /// This till's stream of seqs (`StreamIdentity`), in `hello` and `status`.
    public var stream: String?

    public init(
        version: String, startedAt: Date, bus: EventBus, journal: Journal, devices: DeviceManager, spool: PrintSpool,
        sink: any EventSink, config: ConfigStore, demo: Bool, logger: Logger, hotplug: Hotplug? = nil, stream: String? = nil
    ) {
        self.hotplug = hotplug
        self.stream = stream
        self.version = version
        self.startedAt = startedAt
        self.bus = bus
        self.journal = journal
        self.devices = devices
        self.spool = spool
        self.sink = sink
        self.config = config
        self.demo = demo
        self.logger = logger
    }
}
