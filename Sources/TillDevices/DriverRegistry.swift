public import TillCore
public import TillScanner
public import TillESCPOS

/// One option a driver takes in its `[[device]]` entry: its type, and what it is for (shown by
/// `--check-config` and docs/devices.md).
public struct OptionSpec: Sendable {
    public enum Kind: Sendable {
        case string
        case integer(ClosedRange<Int>)
        case boolean
        case choice([String])
        /// A number from a fixed set (baud rates).
        case oneOf([Int])
        /// A USB identity, as the contract writes it: `{ vendor = "04b8", product = "0e15",
        /// serial = "X123" }` (hex strings; numbers like 0x04b8 are taken too).
        case usbIdentity
        /// Bytes written as hex digits in quotes, two to a byte: `"1b700019fa"` (spaces allowed).
        case hexBytes
    }

    public var key: String
    public var kind: Kind
    public var summary: String

    public init(_ key: String, _ kind: Kind, _ summary: String) {
        self.key = key
        self.kind = kind
        self.summary = summary
    }

    /// What is wrong with `value` for this option, or nil.
    func problem(_ value: JSONValue) -> String? {
        switch kind {
        case .string:
            if value.stringValue == nil { return "\(key) must be a string in quotes, not \(Self.describe(value))" }
        case .integer(let range):
            guard case .int(let number) = value else {
                if let text = value.stringValue, let number = Int(text) {
                    return "\(key) must be a number, not the string \"\(text)\": write \(key) = \(number)"
                }
                return "\(key) must be a whole number (\(range.lowerBound) to \(range.upperBound)), not \(Self.describe(value))"
            }
            if !range.contains(Int(number)) { return "\(key) = \(number) is out of range \(range.lowerBound) to \(range.upperBound)" }
        case .oneOf(let numbers):
            guard case .int(let number) = value else {
                if let text = value.stringValue, let number = Int(text) { return "\(key) must be a number, not the string \"\(text)\": write \(key) = \(number)" }
                return "\(key) must be one of \(numbers.map(String.init).joined(separator: ", ")), not \(Self.describe(value))"
            }
            if !numbers.contains(Int(number)) { return "\(key) = \(number) is not one of \(numbers.map(String.init).joined(separator: ", "))" }
        case .boolean:
            guard case .bool = value else { return "\(key) must be true or false, not \(Self.describe(value))" }
        case .choice(let choices):
            guard let text = value.stringValue else { return "\(key) must be one of \(Self.list(choices)), not \(Self.describe(value))" }
            if !choices.contains(text) {
                let near = choices.first { EditDistance.isOneEditAway(text, $0) }
                return "\(key) = \"\(text)\" is not one of \(Self.list(choices))" + (near.map { "; did you mean \"\($0)\"?" } ?? "")
            }
        case .usbIdentity:
            guard case .object(let fields) = value else {
                if let text = value.stringValue, text.contains(":") {
                    let parts = text.split(separator: ":")
                    if parts.count == 2 {
                        return "usb must be a table, not a string: write usb = { vendor = \"\(parts[0])\", product = \"\(parts[1])\" }"
                    }
                }
                return "usb must be a table: usb = { vendor = \"04b8\", product = \"0e15\" } (serial = \"...\" to tell two identical devices apart)"
            }
            for key in fields.keys where !["vendor", "product", "serial"].contains(key) {
                return "usb has an unknown key \"\(key)\"; it takes vendor, product and serial"
            }
            for key in ["vendor", "product"] {
                guard let field = fields[key] else { return "usb needs \(key), four hex digits in quotes: \(key) = \"04b8\"" }
                if Self.usbID(field) == nil { return "usb \(key) must be a 16-bit id in hex, like \"04b8\", not \(Self.describe(field))" }
            }
            if let serial = fields["serial"], serial.stringValue == nil { return "usb serial must be a string in quotes" }
        case .hexBytes:
            guard let text = value.stringValue else { return "\(key) must be hex digits in quotes, like \"1b700019fa\", not \(Self.describe(value))" }
            if Self.hexBytes(text) == nil {
                return "\(key) = \"\(text)\" is not bytes in hex: two digits 0-9 a-f to a byte, like \"1b700019fa\" (ESC p 0 25 250)"
            }
        }
        return nil
    }

    /// "1b 70 00 19 fa" → [0x1B, 0x70, 0, 0x19, 0xFA]; nil unless it is whole bytes of hex digits.
    public static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.filter { !$0.isWhitespace })
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(digits[i...i + 1]), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// A USB vendor or product id from "04b8", "0x04b8" or 0x04b8.
    public static func usbID(_ value: JSONValue) -> UInt16? {
        switch value {
        case .int(let number): return (0...0xFFFF).contains(number) ? UInt16(number) : nil
        case .string(let text):
            let digits = text.lowercased().hasPrefix("0x") ? String(text.dropFirst(2)) : text
            guard (1...4).contains(digits.count) else { return nil }
            return UInt16(digits, radix: 16)
        default: return nil
        }
    }

    static func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): "the string \"\(text)\""
        case .int(let number): "the number \(number)"
        case .double(let number): "the number \(number)"
        case .bool(let flag): "\(flag)"
        case .array: "a list"
        case .object: "a table"
        case .null: "nothing"
        }
    }

    static func list(_ words: [String]) -> String { words.map { "\"\($0)\"" }.joined(separator: ", ") }
}

/// Where a device is: each driver takes some of these, and an entry gives exactly one.
public enum DeviceLocator: String, Sendable, CaseIterable {
    /// A device node: `/dev/ttyUSB0`, `/dev/usb/lp0`, `/dev/input/by-id/...`.
    case path
    /// A USB identity, found through udev (the hotplug issue).
    case usb
    /// A network address, with `port`.
    case host
    /// Another device it is attached to (a drawer on a printer's port, a display chained through a printer).
    case via
    /// The physical port it is plugged into, as udev names it (ID_PATH:
    /// "pci-0000:00:14.0-usb-0:1.2"): for a device with no serial number, two of which are told
    /// apart by where they are plugged in. (With `host`, `port` is the TCP port instead.)
    case port
}

/// What the registry knows of a driver: its role, options and where its device may be.
public struct DriverDescriptor: Sendable {
    public var name: String
    public var role: DeviceRole
    public var summary: String
    public var locators: [DeviceLocator]
    public var options: [OptionSpec]
    /// Builds the device; nil while the driver is not in this build (the entry is then listed
    /// in error, with the reason, never dropped).
    public var make: (@Sendable (DeviceConfig, DriverEnvironment) throws -> any TillDevice)?
    /// Rules between options the schema cannot say (one of two keys required, one excludes
    /// another): checked with the rest by `--check-config`.
    public var check: (@Sendable (DeviceConfig) -> [DeviceConfigIssue])?

    public init(
        name: String, role: DeviceRole, summary: String, locators: [DeviceLocator], options: [OptionSpec],
        check: (@Sendable (DeviceConfig) -> [DeviceConfigIssue])? = nil,
        make: (@Sendable (DeviceConfig, DriverEnvironment) throws -> any TillDevice)? = nil
    ) {
        self.name = name
        self.role = role
        self.summary = summary
        self.locators = locators
        self.options = options
        self.check = check
        self.make = make
    }

    func option(_ key: String) -> OptionSpec? { options.first { $0.key == key } }
}

/// What a driver gets from tilld when it is built: shared settings, never the daemon itself.
public struct DriverEnvironment: Sendable {
    /// How scans are classified (`[scanner]`: loyalty prefixes, in-store price and weight codes).
    public var classifier: ScanClassifier
    /// Told of problems a driver meets in the data it reads (garbled scans): logged by tilld.
    public var report: @Sendable (_ device: String, _ problem: String) -> Void

    /// Printer profiles by name (the quirks data), and the profile named for a USB id.
    public var printerProfiles: [String: PrinterProfile]
    public var usbPrinterProfiles: [String: String]
    /// Every configured device by name, filled in once all are built (`via`).
    public var directory = DeviceDirectory()
    /// What is plugged in now (udev, in the daemon): how a `usb` or `port` entry finds its node,
    /// and how a driver waiting to reopen its device hears that something was plugged in.
    public var presence: (any DevicePresence)? = nil

    public init(
        classifier: ScanClassifier = ScanClassifier(), printerProfiles: [String: PrinterProfile] = [:], usbPrinterProfiles: [String: String] = [:],
        report: @escaping @Sendable (String, String) -> Void = { _, _ in }
    ) {
        self.classifier = classifier
        self.printerProfiles = printerProfiles
        self.usbPrinterProfiles = usbPrinterProfiles
        self.report = report
    }
}

/// What is plugged in, as drivers see it.
/// A device plugged in, as a driver needs it to open it.
public struct PluggedDevice: Sendable, Hashable {
    /// Its node (/dev/ttyACM0, /dev/bus/usb/001/004).
    public var node: String?
    /// Its USB vendor and product, when it is on USB.
    public var vendor: UInt16?
    public var product: UInt16?
    /// The kernel's name for its USB device ("1-1.2": bus 1, port 1, then port 2).
    public var usbKernelName: String?

    public init(node: String?, vendor: UInt16? = nil, product: UInt16? = nil, usbKernelName: String? = nil) {
        self.node = node
        self.vendor = vendor
        self.product = product
        self.usbKernelName = usbKernelName
    }
}

public protocol DevicePresence: Sendable {
    /// The device `entry` names (by `usb`, `port` or `path`) as udev shows it now; nil when it
    /// is not plugged in.
    func device(for entry: DeviceConfig) -> PluggedDevice?
    /// A mark to take before trying to open a device: `waitForArrival(since:)` then returns at
    /// once if something was plugged in after it (while the attempt was failing).
    func arrivalMark() -> Int
    /// Whether udev's monitor is running, so an arrival will be heard (false in a container
    /// without udev, or once the monitor ended): without it, drivers keep their back-off timers.
    var isLive: Bool { get }
    /// The device nodes udev says were removed, as it says so: a driver whose device it is lets
    /// go of it at once (a USB printer that is not asked for its status would otherwise learn
    /// of the unplug only from its next job).
    func departures() -> AsyncStream<String>
    /// Returns after `duration`, or as soon as a device is plugged in (after `mark`): a driver's
    /// back-off between attempts to open its device, so a replugged device is opened at once.
    func waitForArrival(since mark: Int, upTo duration: Duration) async
}

/// A problem with one `[[device]]` entry: the key it is about (nil: the entry as a whole).
public struct DeviceConfigIssue: Sendable, Hashable {
    public var key: String?
    public var message: String

    public init(key: String?, _ message: String) {
        self.key = key
        self.message = message
    }
}

/// Driver name → descriptor. The config parser knows no driver: it hands each entry here.
public struct DriverRegistry: Sendable {
    public let drivers: [DriverDescriptor]

    public init(_ drivers: [DriverDescriptor]) {
        self.drivers = drivers
    }

    public func descriptor(_ name: String) -> DriverDescriptor? { drivers.first { $0.name == name } }

    /// Every problem with an entry whose name, role and driver were read: unknown options (with
    /// a "did you mean" one edit away), wrong types, where the device is given twice or not
    /// at all, a role the driver does not drive.
    public func validate(_ entry: DeviceConfig) -> [DeviceConfigIssue] {
        guard let driver = descriptor(entry.driver) else {
            let near = drivers.map(\.name).first { EditDistance.isOneEditAway(entry.driver, $0) }
            return [DeviceConfigIssue(key: "driver", "unknown driver \"\(entry.driver)\"; known: \(drivers.map(\.name).sorted().joined(separator: ", "))" + (near.map { "; did you mean \"\($0)\"?" } ?? ""))]
        }
        if driver.role != entry.role {
            let fitting = drivers.filter { $0.role == entry.role }.map(\.name).sorted()
            var message = "driver \"\(driver.name)\" drives a \(driver.role.rawValue), not a \(entry.role.rawValue); for role \(entry.role.rawValue) use \(fitting.map { "\"\($0)\"" }.joined(separator: " or "))"
            if entry.role == .drawer, driver.name == "escpos" {
                message += " (a drawer on a printer's port: driver = \"printer-drawer\", via = \"<the printer's name>\")"
            }
            // The rest would be checked against the wrong driver's schema: this is the mistake.
            return [DeviceConfigIssue(key: "driver", message)]
        }
        var issues: [DeviceConfigIssue] = []
        var misspeltLocator = false
        let known = Set(driver.options.map(\.key)).union(driver.locators.map(\.rawValue)).union(driver.locators.contains(.host) ? ["port"] : [])
        for key in entry.options.keys.sorted() {
            if let spec = driver.option(key) {
                if let problem = spec.problem(entry.options[key]!) { issues.append(DeviceConfigIssue(key: key, problem)) }
                continue
            }
            // With host, port is the TCP port (checked with host); without, the physical port udev names.
            if key == "port", driver.locators.contains(.host), entry.options["host"] != nil || entry.options[key]?.stringValue == nil { continue }
            if key == "port", driver.locators.contains(.port) {
                if entry.options[key]?.stringValue == nil { issues.append(DeviceConfigIssue(key: key, "port is the physical port udev names, in quotes (`udevadm info -q property -n /dev/ttyACM0 | grep ID_PATH=` shows it)")) }
                continue
            }
            if let locator = DeviceLocator(rawValue: key) {
                if !driver.locators.contains(locator) {
                    issues.append(DeviceConfigIssue(key: key, "driver \"\(driver.name)\" does not take \(key); it finds its device by \(driver.locators.map(\.rawValue).joined(separator: " or "))"))
                }
                continue
            }
            let near = (known.union(["name", "role", "driver"])).sorted().first { EditDistance.isOneEditAway(key, $0) }
            if let near, DeviceLocator(rawValue: near) != nil { misspeltLocator = true }
            issues.append(DeviceConfigIssue(key: key, "unknown key \"\(key)\" for driver \"\(driver.name)\"" + (near.map { "; did you mean \"\($0)\"?" } ?? "; it takes \(known.sorted().joined(separator: ", "))")))
        }
        // A misspelt `path` is already said; "needs path" on top would be the same mistake twice.
        issues += locatorIssues(entry, driver).filter { !(misspeltLocator && $0.key == nil) }
        if let check = driver.check { issues += check(entry) }
        return issues
    }

    private func locatorIssues(_ entry: DeviceConfig, _ driver: DriverDescriptor) -> [DeviceConfigIssue] {
        var issues: [DeviceConfigIssue] = []
        // The TCP port of host (or a number) is not a place of its own.
        let portIsPlace = entry.options["port"]?.stringValue != nil && entry.options["host"] == nil
        let given = DeviceLocator.allCases.filter { entry.options[$0.rawValue] != nil && ($0 != .port || portIsPlace) }
        if given.count > 1 {
            // Said on the line of the one written last: the one added to an entry that had its place.
            let last = given.max { (entry.optionLines[$0.rawValue] ?? 0) < (entry.optionLines[$1.rawValue] ?? 0) }!
            issues.append(DeviceConfigIssue(key: last.rawValue, "give one of path, usb, port, host or via: this entry has \(given.map(\.rawValue).joined(separator: " and "))"))
        }
        if given.isEmpty {
            issues.append(DeviceConfigIssue(key: nil, "device \"\(entry.name)\" needs \(driver.locators.map(\.rawValue).joined(separator: ", ")) to say where it is"))
        }
        if let path = entry.options["path"] {
            if let text = path.stringValue {
                if !text.hasPrefix("/") { issues.append(DeviceConfigIssue(key: "path", "path must be absolute, like /dev/ttyUSB0 (better: a stable /dev/serial/by-id/... name)")) }
            } else {
                issues.append(DeviceConfigIssue(key: "path", "path must be a string in quotes, not \(OptionSpec.describe(path))"))
            }
        }
        if let host = entry.options["host"] {
            if host.stringValue?.isEmpty ?? true { issues.append(DeviceConfigIssue(key: "host", "host must be a name or address in quotes, like \"192.168.1.50\"")) }
            if let port = entry.options["port"] {
                if let problem = OptionSpec("port", .integer(1...65535), "").problem(port) { issues.append(DeviceConfigIssue(key: "port", problem)) }
            }
        } else if entry.options["port"] != nil, entry.options["port"]?.stringValue == nil, driver.locators.contains(.host) {
            issues.append(DeviceConfigIssue(key: "port", "a port number goes with host (a network printer); this entry has no host (for the USB port a printer is plugged into, port is a string: port = \"pci-0000:00:14.0-usb-0:1.2\")"))
        }
        if let usb = entry.options["usb"], let problem = OptionSpec("usb", .usbIdentity, "").problem(usb) {
            issues.append(DeviceConfigIssue(key: "usb", problem))
        }
        if let via = entry.options["via"], via.stringValue?.isEmpty ?? true {
            issues.append(DeviceConfigIssue(key: "via", "via must name another [[device]], in quotes"))
        }
        return issues
    }

    /// Builds the device for a valid entry; an entry whose driver is not in this build is
    /// listed in error, with the reason.
    public func makeDevice(_ entry: DeviceConfig, environment: DriverEnvironment) -> any TillDevice {
        guard let make = descriptor(entry.driver)?.make else { return UnavailableDevice(config: entry) }
        do {
            return try make(entry, environment)
        } catch {
            return UnavailableDevice(config: entry, reason: "\(error)")
        }
    }
}

/// "One edit away": the distance behind "did you mean".
public enum EditDistance {
    /// True when `a` becomes `b` by inserting, deleting or replacing one character (and they differ).
    public static func isOneEditAway(_ a: String, _ b: String) -> Bool {
        let x = Array(a), y = Array(b)
        if x == y || abs(x.count - y.count) > 1 { return false }
        if x.count == y.count { return zip(x, y).filter { $0 != $1 }.count == 1 }
        let (short, long) = x.count < y.count ? (x, y) : (y, x)
        var i = 0, j = 0, skipped = false
        while i < short.count, j < long.count {
            if short[i] == long[j] {
                i += 1
                j += 1
            } else {
                if skipped { return false }
                skipped = true
                j += 1
            }
        }
        return true
    }
}
