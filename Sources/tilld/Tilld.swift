import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TillCore
import TillDaemon
import TillLinux
import TillSystem
import TillScanner
import TillSQLite
import TillDevices
import TillDrivers
import TillTransport
import UnixSignals

@main
struct Tilld: AsyncParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "tilld",
        abstract: "The till device daemon: peripherals in, normalised events out, on a Unix socket.",
        version: version
    )

    @Option(help: "Socket path (default: $TILLD_SOCKET, else /run/tilld/tilld.sock).")
    var socket: String?

    @Option(name: .customLong("state-dir"), help: "Journal, print spool and demo output.")
    var stateDirectory = "/var/lib/tilld"

    @Option(help: "Config file (a missing default file is fine; a missing named file is an error).")
    var config: String?

    @Flag(help: "Add simulated devices: sim-scanner, sim-printer, sim-drawer, sim-display.")
    var demo = false

    @Flag(name: .customLong("check-config"), help: "Validate the config, print problems with line numbers, exit 0 or 1.")
    var checkConfig = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning or error.")
    var logLevel: LogLevel = .info

    @Flag(name: .customLong("udev-rules"), help: "Print udev rules for the devices the quirks data knows (and /dev/till/NAME links for the config's usb entries), then exit.")
    var udevRules = false

    func run() async throws {
        let configPath = config ?? "/etc/tilld/tilld.toml"
        let (quirks, quirkProblems) = Quirks.load()
        if udevRules {
            for problem in quirkProblems { printError("\(problem) (skipped)") }
            var entries: [DeviceConfig] = []
            if config != nil || FileManager.default.fileExists(atPath: configPath) {
                do {
                    entries = try DaemonConfig.load(path: configPath, required: config != nil, knownProfiles: Set(quirks.profiles.keys)).devices
                } catch {
                    printError("\(error)")
                    throw ExitCode(1)
                }
            }
            print(UdevRules.generate(quirks: quirks, entries: entries), terminator: "")
            return
        }
        if checkConfig {
            for problem in quirkProblems { printError("\(problem) (skipped)") }
            do {
                let loaded = try DaemonConfig.load(path: configPath, required: config != nil, knownProfiles: Set(quirks.profiles.keys))
                if config == nil, !FileManager.default.fileExists(atPath: configPath) {
                    print("\(configPath): no file; the defaults are in force (docs/config.md lists them)")
                    return
                }
                print("\(configPath): OK (\(loaded.devices.count) device\(loaded.devices.count == 1 ? "" : "s"))")
                return
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
        }

        let level = logLevel.level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tilld")

        let daemonConfig: DaemonConfig
        do {
            daemonConfig = try DaemonConfig.load(path: configPath, required: config != nil, knownProfiles: Set(quirks.profiles.keys))
        } catch {
            logger.critical("config is invalid; tilld cannot start (check it with tilld --check-config)", metadata: ["problems": "\(error)"])
            throw ExitCode(1)
        }
        for problem in quirkProblems {
            logger.warning("a quirks file or entry is skipped", metadata: ["file": "\(problem.file)", "problem": "\(problem.message)"])
        }
        if quirks.files.isEmpty {
            logger.warning("no quirks data found: known printer profiles and devices are unavailable", metadata: [
                "looked_in": "\(Quirks.defaultDirectories.joined(separator: ", "))",
                "fix": "install tilld's package (it ships /usr/share/tilld/quirks) or set TILLD_QUIRKS_DIR to a copy of Sources/TillDrivers/Quirks",
            ])
        }
        logger.info("quirks loaded", metadata: ["devices": "\(quirks.devices.count)", "printer_profiles": "\(quirks.profiles.count)", "files": "\(quirks.files.joined(separator: ", "))"])
        // Files we create (journal, demo output) are private to tilld's user and group.
        FileSystem.setUmask(0o027)
        try FileSystem.makeDirectory(stateDirectory, mode: 0o750)

        let store = ConfigStore(config: daemonConfig, path: configPath, pathIsExplicit: config != nil)
        let journal: Journal
        do {
            journal = try Journal(path: stateDirectory + "/journal.sqlite", synchronous: daemonConfig.synchronousFull ? .full : .normal)
        } catch {
            logger.critical("cannot open the journal", metadata: ["path": "\(stateDirectory)/journal.sqlite", "error": "\(error)"])
            throw ExitCode(1)
        }
        logger.info("journal open", metadata: ["path": "\(journal.path)", "synchronous": "\(journal.synchronous)"])
        let bus: EventBus
        do {
            bus = try EventBus(journal: journal, highWaterMarkPath: stateDirectory + "/seq.hwm", logger: logger, holdLimit: daemonConfig.holdEvents) {
                let current = store.config
                return (current.retainDays, current.retainEvents)
            }
        } catch {
            logger.critical("cannot start the event bus", metadata: ["state_dir": "\(stateDirectory)", "error": "\(error)"])
            throw ExitCode(1)
        }
        let sink = BusEventSink(bus: bus)
        let classifier = daemonConfig.scanClassifier
        var usbProfiles: [String: String] = [:]
        for device in quirks.devices where device.role == .printer {
            if let usb = device.usb, let profile = device.profile { usbProfiles[usb.description] = profile }
        }
        var environment = DriverEnvironment(classifier: classifier, printerProfiles: quirks.profiles, usbPrinterProfiles: usbProfiles) { device, problem in
            logger.notice("device input problem", metadata: ["device": "\(device)", "problem": "\(problem)"])
        }
        // What is plugged in, before the devices are opened: an entry found by usb or port opens
        // at once. The monitor keeps it current (Hotplug, below).
        let presence = PresentDevices()
        presence.replace(with: UDevMonitor.present())
        environment.presence = presence
        var devices = DeviceManager.configuredDevices(daemonConfig.devices, environment: environment)
        if demo {
            devices += try DeviceManager.demoDevices(stateDirectory: stateDirectory, classifier: classifier)
        }
        let manager = DeviceManager(devices: devices, entries: daemonConfig.devices, sink: sink, logger: logger)
        let hotplug = Hotplug(
            monitor: UDevMonitor(), presence: presence,
            settings: Hotplug.Settings(entries: daemonConfig.devices, quirks: quirks, zeroConfig: daemonConfig.zeroConfig && !demo, namesPath: stateDirectory + "/device-names.json"),
            manager: manager, environment: environment, logger: logger)
        let spool = PrintSpool(journal: journal, manager: manager, sink: sink, logger: logger)

        let stream: String
        do {
            stream = try StreamIdentity.load(stateDirectory: stateDirectory)
        } catch {
            logger.critical("cannot read or make this till's stream id", metadata: ["state_dir": "\(stateDirectory)", "error": "\(error)"])
            throw ExitCode(1)
        }
        let startedAt = Date()
        let context = DaemonContext(
            version: Self.version, startedAt: startedAt, bus: bus, journal: journal, devices: manager, spool: spool,
            sink: sink, config: store, demo: demo, logger: logger, hotplug: hotplug, stream: stream
        )
        let socketPath = socket ?? ProcessInfo.processInfo.environment["TILLD_SOCKET"] ?? "/run/tilld/tilld.sock"
        if FileSystem.isDirectory(socketPath) {
            logger.critical("the socket path is a directory; tilld cannot start", metadata: [
                "socket": "\(socketPath)", "fix": "give the socket file's path, e.g. --socket \(socketPath.hasSuffix("/") ? socketPath : socketPath + "/")tilld.sock",
            ])
            throw ExitCode(1)
        }
        let listen: SocketServer.Listen
        if let fd = Systemd.listenFileDescriptors().first(where: Systemd.isListeningUnixSocket) {
            listen = .inherited(fd: fd, path: socketPath)
        } else {
            listen = .path(socketPath, group: daemonConfig.socketGroup)
        }
        // One event loop for every connection. The loop that reads a publish commits it and
        // then writes it to its subscribers itself, with no wake-up of a second loop on the
        // other core (15-45 µs on a small virtual machine, a third of what tilld adds to the
        // sync). Measured in 16 interleaved rounds: 1 subscriber ×1.51 -> ×1.34 of the durable
        // floor, 32 subscribers ×1.39 -> ×1.41 (the same within the noise), fan-out to 32 at
        // 4,096 in flight 110k -> 100k events/s (docs/benchmarks.md). A till has a handful of
        // clients and a few events a second, so the single publish's latency is what counts.
        // An idle loop waits in epoll with no timer: no wake-ups.
        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = SocketServer(listen: listen, context: context, eventLoopGroup: eventLoops, startAfter: { await manager.announced() }) {
            Systemd.notify("READY=1\nSTATUS=listening on \(socketPath)")
            logger.notice("ready", metadata: [
                "socket": "\(socketPath)", "seq": "\(bus.lastSeq)", "demo": "\(demo)",
                "startup_ms": "\(Int(Date().timeIntervalSince(startedAt) * 1000))",
            ])
        }
        for group in store.policy.unknownGroups {
            logger.warning("a group named in [access] does not exist", metadata: ["group": "\(group)"])
        }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: bus), .init(service: manager), .init(service: hotplug), .init(service: spool), .init(service: server),
            .init(service: ReloadService(store: store, logger: logger) { [environment] config in
                await hotplug.update(entries: config.devices)
                let change = await manager.reconfigure(config.devices) { entries in
                    DeviceManager.configuredDevices(entries, environment: environment)
                }
                hotplug.takeOnKnownModels()
                if !change.isEmpty {
                    logger.notice("devices reconfigured", metadata: [
                        "removed": "\(change.removed)", "changed": "\(change.changed)", "added": "\(change.added)",
                    ])
                }
            }),
        ]
        if let watchdog = WatchdogService() { services.append(.init(service: watchdog)) }
        services.append(.init(service: StoppingNotifier()))
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger
        ))
        do {
            try await group.run()
        } catch {
            logger.error("tilld stopped with an error", metadata: ["error": "\(error)"])
            try? await eventLoops.shutdownGracefully()
            throw ExitCode(1)
        }
        try? await eventLoops.shutdownGracefully()
        logger.notice("stopped")
    }
}

/// Tells systemd the daemon is stopping as soon as graceful shutdown begins.
struct StoppingNotifier: Service {
    func run() async throws {
        try? await gracefulShutdown()
        Systemd.notify("STOPPING=1")
    }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

enum LogLevel: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error
    var level: Logger.Level { Logger.Level(rawValue: rawValue)! }
}
