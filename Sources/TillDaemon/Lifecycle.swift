public import Logging
public import ServiceLifecycle
import TillLinux
import UnixSignals

/// Pings systemd's watchdog at half the interval it asked for. The only periodic
/// wake-up tilld has; absent when the watchdog is off.
public struct WatchdogService: Service {
    let interval: Duration

    public init?() {
        guard let interval = Systemd.watchdogInterval() else { return nil }
        self.interval = interval
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    Systemd.notify("WATCHDOG=1")
                    try await Task.sleep(for: interval / 2)
                }
            }
        } catch is CancellationError {
            // Graceful shutdown: stop pinging.
        }
    }
}

/// Reloads the config on SIGHUP without dropping anyone: access rules, retention and
/// limits apply from the next request on. A broken file is reported and the old config kept.
public struct ReloadService: Service {
    let store: ConfigStore
    let logger: Logger
    /// Applies the new file's devices (added, removed, changed entries), subscribers and the
    /// spool untouched.
    let devices: (@Sendable (DaemonConfig) async -> Void)?

    public init(store: ConfigStore, logger: Logger, devices: (@Sendable (DaemonConfig) async -> Void)? = nil) {
        self.store = store
        self.logger = logger
        self.devices = devices
    }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                Systemd.notify("RELOADING=1")
                do {
                    let config = try store.reload()
                    logger.notice("config reloaded", metadata: ["file": "\(store.path)", "devices": "\(config.devices.count)"])
                    let missing = AccessPolicy(rules: config.access).unknownGroups
                    if !missing.isEmpty { logger.warning("groups named in [access] do not exist", metadata: ["groups": "\(missing)"]) }
                    await devices?(config)
                } catch {
                    logger.error("config reload failed; the previous config stays in force", metadata: ["problems": "\(error)"])
                }
                Systemd.notify("READY=1")
            }
        }
    }
}
