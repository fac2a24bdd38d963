import Foundation
public import TillCore
public import TillDevices
public import TillTransport

/// What tilld makes of the devices udev shows, and why (pure: records, entries and quirks in,
/// decisions out). A device is claimed only by a `[[device]]` entry that names it (by `path`,
/// `usb` or `port`) or, with zero config, when the quirks data knows its USB id; anything
/// else is listed and left alone. Nothing is claimed by a guess: a keyboard is never a scanner
/// unless an entry or the quirks say so (HARDWARE.md 11).
public enum Discovery {
    /// The node a driver opens, by the kind of device it drives.
    public enum NodeKind: String, Sendable, Hashable, CaseIterable {
        /// A USB device itself (libusb opens /dev/bus/usb/BBB/DDD): escpos over USB.
        case usbDevice = "usb"
        /// A serial line: /dev/ttyUSB*, /dev/ttyACM*, /dev/ttyS*.
        case serial
        /// An evdev node: /dev/input/event*.
        case input
        /// A hidraw node: /dev/hidraw*.
        case hidraw
        /// The usblp driver's node: /dev/usb/lp*.
        case lineprinter
    }

    /// The node a driver's device is found as.
    public static func nodeKind(driver: String, options: [String: JSONValue] = [:]) -> NodeKind? {
        switch driver {
        case "escpos": options["path"]?.stringValue?.hasPrefix("/dev/usb/lp") == true ? .lineprinter : (options["path"] != nil ? .serial : .usbDevice)
        case "serial-scanner", "serial-drawer", "epson-display", "cd5220-display": .serial
        case "evdev-scanner": .input
        case "hidpos-scanner": .hidraw
        default: nil
        }
    }

    public static func nodeKind(of record: UDevRecord) -> NodeKind? {
        switch record.subsystem {
        case "usb": record.devtype == "usb_device" ? .usbDevice : nil
        case "tty": .serial
        case "input": record.sysname.hasPrefix("event") ? .input : nil
        case "hidraw": .hidraw
        case "usbmisc": record.sysname.hasPrefix("lp") ? .lineprinter : nil
        default: nil
        }
    }

    /// "usb 04b8:0e15 serial X123", or "usb 04b8:0e15 at pci-0000:00:14.0-usb-0:1" for a device
    /// with no serial number (two of them are told apart by the port they are plugged into).
    public static func identity(_ record: UDevRecord) -> String {
        guard let usb = record.usb else { return record.devnode ?? record.syspath }
        let id = USBID(vendor: usb.vendor, product: usb.product).description
        if let serial = usb.serial, !serial.isEmpty { return "usb \(id) serial \(serial)" }
        if let port = record.portPath { return "usb \(id) at \(port)" }
        return "usb \(id) at \(usb.syspath)"
    }

    /// A key that is the same for the same physical device across replug and reboot: what a
    /// generated name is kept under.
    public static func stableKey(_ record: UDevRecord, kind: NodeKind) -> String {
        "\(kind.rawValue) \(identity(record))"
    }

    /// Whether `entry` names this device: its node by `path` (or one of udev's links to it:
    /// /dev/serial/by-id/...), its USB identity by `usb` (vendor, product, and serial when
    /// given), or the port it is plugged into by `port` (udev's ID_PATH).
    public static func matches(_ entry: DeviceConfig, _ record: UDevRecord) -> Bool {
        guard let wanted = nodeKind(driver: entry.driver, options: entry.options), nodeKind(of: record) == wanted else { return false }
        if let path = entry.options["path"]?.stringValue {
            if record.devnode == path { return true }
            let links = record.properties["DEVLINKS"]?.split(separator: " ").map(String.init) ?? []
            return links.contains(path)
        }
        if case .object(let usb)? = entry.options["usb"] {
            guard let device = record.usb,
                  usb["vendor"].flatMap(OptionSpec.usbID) == device.vendor,
                  usb["product"].flatMap(OptionSpec.usbID) == device.product else { return false }
            if let serial = usb["serial"]?.stringValue, serial != device.serial { return false }
            return true
        }
        if let port = entry.options["port"]?.stringValue {
            return record.portPath == port
        }
        return false
    }

    /// What tilld made of one device.
    public enum Decision: Sendable, Hashable {
        /// A `[[device]]` entry names it.
        case configured(name: String)
        /// Known by its USB id: driven with zero config under a generated stable name.
        case zeroConfig(name: String, driver: String, model: String)
        /// Left alone, and why.
        case ignored(String)
    }

    public struct Sighting: Sendable, Hashable {
        public var record: UDevRecord
        public var kind: NodeKind
        public var identity: String
        /// The model the quirks data gives its USB id.
        public var model: String?
        public var decision: Decision

        /// The device's name in tilld, when it drives it.
        public var claimedBy: String? {
            switch decision {
            case .configured(let name), .zeroConfig(let name, _, _): name
            case .ignored: nil
            }
        }

        public var listing: JSONValue {
            var object: [String: JSONValue] = [
                "kind": .string(kind.rawValue), "identity": .string(identity),
                "node": record.devnode.map(JSONValue.string) ?? .null, "syspath": .string(record.syspath),
                "model": model.map(JSONValue.string) ?? .null, "kernel_driver": record.driver.map(JSONValue.string) ?? .null,
                "port": record.portPath.map(JSONValue.string) ?? .null,
                // udev told ModemManager to leave it alone (tilld's rules set this on serial nodes).
                "mm_ignore": .bool(record.properties["ID_MM_DEVICE_IGNORE"] == "1"),
            ]
            if let usb = record.usb {
                object["usb"] = ["vendor": .string(String(format: "%04x", usb.vendor)), "product": .string(String(format: "%04x", usb.product)), "serial": usb.serial.map(JSONValue.string) ?? .null]
            }
            switch decision {
            case .configured(let name):
                object["claimed_by"] = .string(name)
                object["why"] = .string("the [[device]] entry \"\(name)\" names it")
            case .zeroConfig(let name, let driver, let model):
                object["claimed_by"] = .string(name)
                object["why"] = .string("known model (\(model)): driven by \(driver) with no config; pin it with a [[device]] entry named \"\(name)\"")
            case .ignored(let reason):
                object["claimed_by"] = .null
                object["why"] = .string(reason)
            }
            return .object(object)
        }
    }

    /// Names given to zero-config devices, kept (in the state directory) so a device keeps its
    /// name across replug and reboot, and two identical ones keep theirs whatever order they
    /// come back in.
    public struct NameBook: Sendable, Hashable {
        public private(set) var names: [String: String]

        public init(names: [String: String] = [:]) {
            self.names = names
        }

        /// The name kept for `key`, or the next free `role-N` (taken names are never reused).
        public mutating func name(for key: String, role: DeviceRole, taken: Set<String>) -> String {
            if let known = names[key] { return known }
            var n = 1
            let used = taken.union(names.values)
            while used.contains("\(role.rawValue)-\(n)") { n += 1 }
            let name = "\(role.rawValue)-\(n)"
            names[key] = name
            return name
        }
    }

    /// Decides about each device present: which entry claims it, which known models are taken
    /// with zero config (when `zeroConfig`), and why the rest are left alone. Devices of no
    /// interest to a till (hubs, the virtual consoles, a mouse) are not listed.
    public static func decide(
        _ records: [UDevRecord], entries: [DeviceConfig], quirks: Quirks, names: inout NameBook, zeroConfig: Bool
    ) -> [Sighting] {
        let taken = Set(entries.map(\.name))
        var sightings: [Sighting] = []
        // What a USB device's interfaces say of it: their classes (7 is a printer) and the kernel
        // drivers bound to them (usblp holding a printer, usbhid a keyboard).
        var interfaces: [String: (classes: [UInt8], drivers: [String])] = [:]
        for record in records where record.subsystem == "usb" && record.devtype == "usb_interface" {
            guard let usb = record.usb?.syspath else { continue }
            if let kind = record.interfaceClass { interfaces[usb, default: ([], [])].classes.append(kind) }
            if let driver = record.driver { interfaces[usb, default: ([], [])].drivers.append(driver) }
        }
        let records = records.map { record -> UDevRecord in
            guard record.subsystem == "usb", record.devtype == "usb_device", let found = interfaces[record.syspath] else { return record }
            var record = record
            record.interfaceClass = found.classes.contains(7) ? 7 : found.classes.first
            if !found.drivers.isEmpty { record.driver = found.drivers.sorted().joined(separator: ",") }
            return record
        }
        // A USB device whose node (tty, input, hidraw, lp) is listed is said once, by its node,
        // unless it is itself what a driver opens (a printer through libusb).
        let withNodes = Set(records.compactMap { record -> String? in
            guard let kind = nodeKind(of: record), kind != .usbDevice else { return nil }
            return record.usb?.syspath
        })
        // USB devices first, so a zero-config printer's usb_device gets its name before its nodes.
        let ordered = records.sorted { ($0.subsystem == "usb" ? 0 : 1, $0.syspath) < ($1.subsystem == "usb" ? 0 : 1, $1.syspath) }
        for record in ordered {
            guard let kind = nodeKind(of: record) else { continue }
            let known = record.usb.flatMap { quirks.device(usb: USBID(vendor: $0.vendor, product: $0.product)) }
            if let entry = entries.first(where: { matches($0, record) }) {
                sightings.append(Sighting(record: record, kind: kind, identity: identity(record), model: known?.model, decision: .configured(name: entry.name)))
                continue
            }
            guard worthListing(record, kind: kind) else { continue }
            if kind == .lineprinter, let owner = sightings.first(where: { $0.kind == .usbDevice && $0.record.syspath == record.usb?.syspath }),
               let name = owner.claimedBy {
                sightings.append(Sighting(record: record, kind: kind, identity: identity(record), model: known?.model,
                    decision: .ignored("the usblp node of the printer tilld drives through libusb as \(name)")))
                continue
            }
            if kind == .usbDevice, withNodes.contains(record.syspath), known.flatMap({ nodeKind(driver: $0.driver) }) != .usbDevice,
               record.interfaceClass != 7 { continue }
            let decision: Decision
            if let known, let wanted = nodeKind(driver: known.driver), wanted == kind {
                if !zeroConfig {
                    decision = .ignored("known model (\(known.model)), but zero config is off ([devices] zero_config = false): add a [[device]] entry for it")
                } else if kind == .input, record.properties["ID_INPUT_KEYBOARD"] != "1" {
                    // A keyboard-mode scanner has other event nodes too (consumer keys): only its keyboard types codes.
                    decision = .ignored("an input node of a \(known.model) that is not its keyboard: nothing to read")
                } else {
                    let name = names.name(for: stableKey(record, kind: kind), role: known.role, taken: taken)
                    decision = .zeroConfig(name: name, driver: known.driver, model: known.model)
                }
            } else if record.properties["ID_INPUT_KEYBOARD"] == "1" || record.properties["ID_INPUT_MOUSE"] == "1" {
                decision = .ignored("a keyboard or mouse: never claimed without a [[device]] entry naming it")
            } else if record.usb == nil {
                decision = .ignored("not a USB device and no [[device]] entry names \(record.devnode ?? record.sysname)")
            } else if kind == .usbDevice, record.interfaceClass == 7 || record.driver == "usblp" {
                decision = .ignored("a USB printer tilld has no quirks entry for: add a [[device]] entry (driver = \"escpos\", usb = { vendor = \"\(String(format: "%04x", record.usb!.vendor))\", product = \"\(String(format: "%04x", record.usb!.product))\" })")
            } else {
                decision = .ignored("unknown device (no quirks entry for its USB id, no [[device]] entry names it)")
            }
            sightings.append(Sighting(record: record, kind: kind, identity: identity(record), model: known?.model, decision: decision))
        }
        return sightings
    }

    /// Hubs, host controllers and the kernel's virtual consoles are never till devices.
    static func worthListing(_ record: UDevRecord, kind: NodeKind) -> Bool {
        switch kind {
        case .usbDevice:
            // Root hubs (vendor 1d6b) and hubs (class 09) are plumbing.
            guard let usb = record.usb, usb.vendor != 0x1d6b else { return false }
            return record.properties["ID_USB_INTERFACES"]?.hasPrefix(":09") != true
        case .serial:
            return record.usb != nil
        case .input, .hidraw, .lineprinter:
            return record.usb != nil
        }
    }
}
