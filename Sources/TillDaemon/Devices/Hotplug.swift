import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
import TillCore
public import TillDevices
public import TillDrivers
public import TillTransport
import TillScanner

/// Devices that come and go. Reads udev's monitor (everything present at start, then each add
/// and remove) into `PresentDevices`, which the drivers look their nodes up in and are woken
/// by: a configured device that is plugged back in is opened at once (a printer's queued jobs
/// then print; a scanner is grabbed again). A known model plugged in with no `[[device]]`
/// entry is taken on with zero config, under a name kept in the state directory so it is the
/// same after a replug or a reboot. Unknown devices are listed by `devices` and left alone.
public final class Hotplug: Service, Sendable {
    public struct Settings: Sendable {
        public var entries: [DeviceConfig]
        public var quirks: Quirks
        public var zeroConfig: Bool
        /// Where zero-config names are kept (STATE_DIR/device-names.json).
        public var namesPath: String

        public init(entries: [DeviceConfig], quirks: Quirks, zeroConfig: Bool, namesPath: String) {
            self.entries = entries
            self.quirks = quirks
            self.zeroConfig = zeroConfig
            self.namesPath = namesPath
        }
    }

    public let presence: PresentDevices
    private let monitor: any DeviceMonitor
    private let settingsInForce: Mutex<Settings>
    private var settings: Settings { settingsInForce.withLock { $0 } }
    private let manager: DeviceManager
    private let registry: DriverRegistry
    private let environment: DriverEnvironment
    private let logger: Logger
    private let names: Mutex<Discovery.NameBook>
    /// The devices this service took on with zero config, by name.
    private let zeroConfigured = Mutex<Set<String>>([])

    public init(
        monitor: any DeviceMonitor, presence: PresentDevices, settings: Settings, manager: DeviceManager, registry: DriverRegistry = BuiltinDrivers.registry,
        environment: DriverEnvironment, logger: Logger
    ) {
        self.monitor = monitor
        self.presence = presence
        settingsInForce = Mutex(settings)
        self.manager = manager
        self.registry = registry
        self.environment = environment
        self.logger = logger
        names = Mutex(Self.loadNames(settings.namesPath, logger: logger))
    }

    /// A reload's entries, before the manager applies them: a zero-config device that an entry
    /// now names (by its identity, or by taking its name to pin it) gives way to the entry.
    /// Call `takeOnKnownModels()` after the manager has applied them.
    public func update(entries: [DeviceConfig]) async {
        settingsInForce.withLock { $0.entries = entries }
        let stillZeroConfig = Set(sightings().compactMap { sighting -> String? in
            if case .zeroConfig(let name, _, _) = sighting.decision { name } else { nil }
        })
        let retiring = zeroConfigured.withLock { taken -> [String] in
            let retiring = taken.filter { name in !stillZeroConfig.contains(name) || entries.contains { $0.name == name } }
            taken.subtract(retiring)
            return retiring.sorted()
        }
        for name in retiring {
            await manager.retire(name)
            logger.notice("a zero-config device gives way to the config", metadata: ["device": "\(name)"])
        }
    }

    /// What tilld makes of each device plugged in now, and why (`devices`). A name given to a
    /// device seen for the first time is kept in the state directory at once (written under the
    /// lock, so two callers never write an older book over a newer one).
    public func sightings() -> [Discovery.Sighting] {
        let settings = self.settings
        return names.withLock { names in
            let before = names
            let sightings = Discovery.decide(presence.records, entries: settings.entries, quirks: settings.quirks, names: &names, zeroConfig: settings.zeroConfig)
            if names != before { Self.saveNames(names, to: settings.namesPath, logger: logger) }
            return sightings
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            for await event in self.monitor.events() {
                switch event {
                case .present(let records):
                    self.presence.replace(with: records)
                    self.presence.setLive(true)
                    self.takeOnKnownModels()
                case .changed(let record):
                    let before = Date()
                    guard self.presence.apply(record) else { continue }
                    let sightings = record.action == "remove" ? [] : self.sightings()
                    self.log(record, sightings)
                    if record.action != "remove" { self.takeOnKnownModels(sightings) }
                    self.logger.debug("udev event handled", metadata: ["syspath": "\(record.syspath)", "us": "\(Int(Date().timeIntervalSince(before) * 1_000_000))"])
                }
            }
            if !Task.isCancelled {
                self.presence.setLive(false)
                self.logger.warning("the udev monitor ended: devices plugged in from now on are found by retrying, not at once", metadata: [
                    "fix": "is udev running (systemd-udevd)? in a container, give it /run/udev and the netlink socket",
                ])
            }
        }
    }

    private func log(_ record: UDevRecord, _ sightings: [Discovery.Sighting]) {
        guard let kind = Discovery.nodeKind(of: record) else { return }
        let identity = Discovery.identity(record)
        if record.action == "remove" {
            logger.info("unplugged", metadata: ["device": "\(identity)", "kind": "\(kind.rawValue)", "node": "\(record.devnode ?? "-")"])
            return
        }
        guard let sighting = sightings.first(where: { $0.record.syspath == record.syspath }) else { return }
        switch sighting.decision {
        case .configured(let name):
            logger.notice("plugged in", metadata: ["device": "\(identity)", "node": "\(record.devnode ?? "-")", "claimed_by": "\(name)"])
        case .zeroConfig(let name, let driver, _):
            logger.notice("plugged in", metadata: ["device": "\(identity)", "node": "\(record.devnode ?? "-")", "claimed_by": "\(name)", "driver": "\(driver)", "zero_config": "true"])
        case .ignored(let reason):
            logger.info("plugged in, left alone", metadata: ["device": "\(identity)", "node": "\(record.devnode ?? "-")", "why": "\(reason)"])
        }
    }

    /// Known models with no entry: a device each, the first time they are seen (later, the
    /// device is the same one, offline while unplugged and online when it is back).
    /// `sightings`: what was just decided, when the caller has it.
    public func takeOnKnownModels(_ sightings: [Discovery.Sighting]? = nil) {
        let sightings = sightings ?? self.sightings()
        let existing = Set(manager.devices.map(\.info.name))
        for sighting in sightings {
            guard case .zeroConfig(let name, let driver, let model) = sighting.decision, !existing.contains(name) else { continue }
            guard let entry = Self.entry(for: sighting, name: name, driver: driver, quirks: settings.quirks) else { continue }
            let device = registry.makeDevice(entry, environment: environment)
            if manager.adopt(device) {
                zeroConfigured.withLock { _ = $0.insert(name) }
                logger.notice("taken on with zero config", metadata: [
                    "device": "\(name)", "model": "\(model)", "driver": "\(driver)", "identity": "\(sighting.identity)",
                    "pin": "add a [[device]] entry named \(name) to keep or change it",
                ])
            }
        }
    }

    /// The `[[device]]` entry zero config stands in for: the USB identity (serial number when
    /// there is one, else the port it is plugged into) and the model's profile.
    static func entry(for sighting: Discovery.Sighting, name: String, driver: String, quirks: Quirks) -> DeviceConfig? {
        guard let usb = sighting.record.usb, let known = quirks.device(usb: USBID(vendor: usb.vendor, product: usb.product)) else { return nil }
        var options: [String: JSONValue] = [:]
        if let serial = usb.serial, !serial.isEmpty {
            options["usb"] = ["vendor": .string(String(format: "%04x", usb.vendor)), "product": .string(String(format: "%04x", usb.product)), "serial": .string(serial)]
        } else if let port = sighting.record.portPath {
            options["port"] = .string(port)
        } else {
            options["usb"] = ["vendor": .string(String(format: "%04x", usb.vendor)), "product": .string(String(format: "%04x", usb.product))]
        }
        if let profile = known.profile { options["profile"] = .string(profile) }
        if driver == "serial-scanner", let framing = known.scanFraming {
            options["terminator"] = .string(framing.terminator.rawValue)
        }
        return DeviceConfig(name: name, role: known.role, driver: driver, options: options)
    }

    static func loadNames(_ path: String, logger: Logger) -> Discovery.NameBook {
        guard let data = FileManager.default.contents(atPath: path) else { return Discovery.NameBook() }
        guard case .object(let object)? = try? JSONText.decode(String(decoding: data, as: UTF8.self)), case .object(let names)? = object["names"] else {
            logger.warning("the zero-config names file is unreadable; names are given anew", metadata: ["path": "\(path)"])
            return Discovery.NameBook()
        }
        return Discovery.NameBook(names: names.compactMapValues(\.stringValue))
    }

    static func saveNames(_ book: Discovery.NameBook, to path: String, logger: Logger) {
        let text = JSONText.encode(JSONValue.object(["names": .object(book.names.mapValues(JSONValue.string))]))
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            try? FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: path)
        } catch {
            logger.warning("cannot keep the zero-config names; a device may get another name after a restart", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
