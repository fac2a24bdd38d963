public import TillDevices
import TillCore
import Foundation
import TillScanner
import TillSystem
import TillTransport
import TillESCPOS
import TillDisplay
import TillImaging

/// Every driver tilld knows, with its options: the table `--check-config` checks entries
/// against and docs/devices.md lists. A driver whose `make` is nil is not in this build yet
/// (its issue brings it); its entries are accepted, checked, and listed in error.
public enum BuiltinDrivers {
    public static let registry = DriverRegistry([
        DriverDescriptor(
            name: "escpos", role: .printer, summary: "ESC/POS receipt printer (Epson, Star in ESC/POS mode, Bixolon, Citizen, generic)",
            locators: [.path, .usb, .port, .host],
            options: serialOptions + [
                OptionSpec("profile", .string, "printer profile from the quirks data (e.g. \"TM-T20II\"); found from the USB id when not given"),
                OptionSpec("drawer_pin", .integer(2...5), "drawer kick connector pin, 2 or 5"),
                OptionSpec("drawer_pulse_ms", .integer(10...500), "drawer kick pulse length"),
                OptionSpec("status", .boolean, "ask the printer for its status (DLE EOT); false for printers that garble it"),
                OptionSpec("display", .boolean, "a customer display is chained through the printer (ESC = 2 pass-through)"),
            ],
            make: { entry, environment in try makeEscposPrinter(entry, environment) }),
        DriverDescriptor(
            name: "serial-scanner", role: .scanner, summary: "barcode scanner on a serial line or USB-CDC (/dev/ttyACM*)",
            locators: [.path, .usb, .port], options: serialOptions + framingOptions,
            make: { entry, environment in try makeSerialScanner(entry, environment) }),
        DriverDescriptor(
            name: "evdev-scanner", role: .scanner, summary: "keyboard-wedge scanner, grabbed exclusively through evdev",
            locators: [.path, .usb, .port],
            options: [
                OptionSpec("layout", .string, "keyboard layout the scanner types in (xkb: \"us\", \"de\", \"fr\", ...)"),
                OptionSpec("variant", .string, "xkb layout variant"),
                OptionSpec("terminator", .choice(ScanFraming.Terminator.allCases.map(\.rawValue)), "what ends a scan: enter, tab or none"),
                OptionSpec("inter_key_ms", .integer(1...5000), "with terminator none: quiet time that ends a scan"),
            ],
            make: { entry, environment in try makeEvdevScanner(entry, environment) }),
        DriverDescriptor(
            name: "hidpos-scanner", role: .scanner, summary: "USB HID POS scanner (usage page 0x8C) through hidraw",
            locators: [.path, .usb, .port],
            options: [OptionSpec("report_gap_ms", .integer(10...5000), "how long the next report of a long scan may take before the scan is dropped")],
            make: { entry, environment in try makeHIDPOSScanner(entry, environment) }),
        DriverDescriptor(
            name: "epson-display", role: .display, summary: "pole display, Epson DM-D command set", locators: [.path, .usb, .port, .via],
            options: serialOptions + displayOptions,
            make: { entry, environment in try makePoleDisplay(entry, .epson, environment) }),
        DriverDescriptor(
            name: "cd5220-display", role: .display, summary: "pole display, CD5220 command set", locators: [.path, .usb, .port, .via],
            options: serialOptions + displayOptions,
            make: { entry, environment in try makePoleDisplay(entry, .cd5220, environment) }),
        DriverDescriptor(
            name: "printer-drawer", role: .drawer, summary: "cash drawer on a receipt printer's drawer port", locators: [.via],
            options: [
                OptionSpec("pin", .integer(2...5), "connector pin, 2 or 5"),
                OptionSpec("pulse_ms", .integer(10...500), "kick pulse length"),
                OptionSpec("pulses", .integer(1...5), "kicks per open (some drawers need two)"),
                OptionSpec("open_when", .choice(["high", "low"]), "the pin-3 level that means open (the drawer's wiring)"),
            ] + leftOpenOptions,
            make: { entry, environment in try makePrinterDrawer(entry, environment) }),
        DriverDescriptor(
            name: "serial-drawer", role: .drawer, summary: "stand-alone cash drawer opened by a byte sequence or a line pulse",
            locators: [.path, .usb, .port],
            options: serialOptions + [
                OptionSpec("open_sequence", .hexBytes, "bytes that open it, as hex (\"1b700019fa\")"),
                OptionSpec("pulse_line", .choice(["rts", "dtr"]), "open by pulsing this line instead"),
                OptionSpec("pulse_ms", .integer(10...2000), "pulse length (default 100)"),
                OptionSpec("pulses", .integer(1...5), "kicks per open (some drawers need two)"),
                OptionSpec("state_line", .choice(["cts", "dsr", "dcd", "none"]), "the input wired to the drawer's switch (default none: state unknown)"),
                OptionSpec("open_when", .choice(["high", "low"]), "the state line's level that means open (the drawer's wiring)"),
                OptionSpec("poll_seconds", .integer(0...3600), "how often the switch is read when no kick is being watched, for a drawer opened by its key (default 5; 0: only after a kick)"),
            ] + leftOpenOptions,
            check: serialDrawerIssues,
            make: { entry, environment in try makeSerialDrawer(entry, environment) }),
    ])

    static let serialOptions: [OptionSpec] = [
        OptionSpec("baud", .oneOf(SerialSettings.baudRates), "line speed (serial devices)"),
        OptionSpec("data_bits", .integer(5...8), "5 to 8"),
        OptionSpec("parity", .choice(SerialSettings.Parity.allCases.map(\.rawValue)), "none, even or odd"),
        OptionSpec("stop_bits", .integer(1...2), "1 or 2"),
        OptionSpec("flow_control", .choice(SerialSettings.FlowControl.allCases.map(\.rawValue)), "none, rtscts or xonxoff"),
    ]

    static let framingOptions: [OptionSpec] = [
        OptionSpec("terminator", .choice(ScanFraming.Terminator.allCases.map(\.rawValue)), "what ends a scan: enter (CR, LF or CR LF), tab or none"),
        OptionSpec("prefix", .string, "text the scanner is programmed to send before each code, removed"),
        OptionSpec("suffix", .string, "text sent after each code, removed"),
        OptionSpec("aim", .boolean, "the scanner sends the AIM symbology identifier (]E0, ]C1, ...) first"),
        OptionSpec("inter_byte_ms", .integer(1...5000), "quiet time inside a scan (with terminator none: what ends it)"),
    ]

    static let leftOpenOptions: [OptionSpec] = [
        OptionSpec("left_open_after_seconds", .integer(5...86400), "drawer.left_open when it stays open this long (default 60)"),
        OptionSpec("left_open_every_seconds", .integer(5...86400), "and again at this interval while it stays open (default 60)"),
    ]

    static func drawerTiming(_ options: [String: JSONValue]) -> DrawerWatch.Timing {
        var timing = DrawerWatch.Timing()
        if case .int(let seconds)? = options["left_open_after_seconds"] { timing.leftOpenAfter = .seconds(seconds) }
        if case .int(let seconds)? = options["left_open_every_seconds"] { timing.leftOpenEvery = .seconds(seconds) }
        return timing
    }

    /// One way to open it, exactly; a switch's polarity only with a switch.
    @Sendable static func serialDrawerIssues(_ entry: DeviceConfig) -> [DeviceConfigIssue] {
        let options = entry.options
        var issues: [DeviceConfigIssue] = []
        switch (options["open_sequence"] != nil, options["pulse_line"] != nil) {
        case (false, false):
            issues.append(DeviceConfigIssue(key: nil, "serial-drawer \"\(entry.name)\" needs open_sequence (the bytes its interface fires on, in hex) or pulse_line (\"dtr\" or \"rts\", the line wired to the solenoid)"))
        case (true, true):
            issues.append(DeviceConfigIssue(key: "pulse_line", "give open_sequence or pulse_line, not both: the drawer opens one way"))
        default:
            break
        }
        if options["pulse_ms"] != nil, options["pulse_line"] == nil {
            issues.append(DeviceConfigIssue(key: "pulse_ms", "pulse_ms goes with pulse_line; a drawer opened by open_sequence takes its timing from the bytes"))
        }
        let stateLine = options["state_line"]?.stringValue ?? "none"
        if stateLine == "none" {
            for key in ["open_when", "poll_seconds"] where options[key] != nil {
                issues.append(DeviceConfigIssue(key: key, "\(key) needs state_line (\"cts\", \"dsr\" or \"dcd\": the input the drawer's switch is wired to)"))
            }
        }
        return issues
    }

    static let displayOptions: [OptionSpec] = [
        OptionSpec("rows", .integer(1...4), "text rows (2 for a 2x20 pole display)"),
        OptionSpec("columns", .integer(8...40), "characters per row"),
        OptionSpec("code_page", .string, "the display's character table (e.g. \"cp437\", \"cp858\")"),
        OptionSpec("brightness", .integer(1...4), "1 (dim) to 4"),
        OptionSpec("idle_text", .string, "shown after idle_after_seconds without an update (\\n between rows, {time} for the clock)"),
        OptionSpec("idle_after_seconds", .integer(1...86400), "when the idle text comes back"),
        OptionSpec("sale_driven", .boolean, "show sale lines, totals and change from sale.* events"),
    ]

    /// Where a driver's device node is: the entry's `path`, or, for a `usb` or `port` entry, the
    /// node udev shows for it at each open (a replugged device may come back under another
    /// name: /dev/ttyACM0 as /dev/ttyACM1).
    static func locate(_ entry: DeviceConfig, _ environment: DriverEnvironment) throws -> (identity: String, node: @Sendable () throws -> String) {
        if let path = entry.options["path"]?.stringValue { return (path, { path }) }
        let identity: String
        if case .object(let usb)? = entry.options["usb"], let vendor = usb["vendor"].flatMap(OptionSpec.usbID), let product = usb["product"].flatMap(OptionSpec.usbID) {
            identity = "usb \(USBID(vendor: vendor, product: product))" + (usb["serial"]?.stringValue.map { " serial \($0)" } ?? "")
        } else if let port = entry.options["port"]?.stringValue {
            identity = "the device at port \(port)"
        } else {
            throw DeviceError(device: entry.name, .invalidRequest, "\(entry.driver) needs path, usb or port to say where its device is")
        }
        guard let presence = environment.presence else {
            throw DeviceError(device: entry.name, .invalidRequest, "finding \(identity) needs udev, which this tilld has not got; give path instead")
        }
        return (identity, {
            guard let node = presence.device(for: entry)?.node else {
                throw TransportError(.notFound, endpoint: identity, "no \(identity) is plugged in: plug it in and tilld opens it as soon as udev sees it (`tillctl devices` lists what is plugged in)")
            }
            return node
        })
    }

    static func serialSettings(_ options: [String: JSONValue]) -> SerialSettings {
        var settings = SerialSettings()
        if case .int(let baud)? = options["baud"] { settings.baud = Int(baud) }
        if case .int(let bits)? = options["data_bits"] { settings.dataBits = Int(bits) }
        if let parity = options["parity"]?.stringValue.flatMap(SerialSettings.Parity.init(rawValue:)) { settings.parity = parity }
        if case .int(let bits)? = options["stop_bits"] { settings.stopBits = Int(bits) }
        if let flow = options["flow_control"]?.stringValue.flatMap(SerialSettings.FlowControl.init(rawValue:)) { settings.flowControl = flow }
        return settings
    }

    static func makeEscposPrinter(_ entry: DeviceConfig, _ environment: DriverEnvironment) throws -> any TillDevice {
        let options = entry.options
        // The profile: named in the entry, else the one the quirks data gives the USB id, else
        // the printer database's "default" (an 80 mm Epson-compatible printer).
        var usbMatch: USBPrinterStream.Match?
        if case .object(let usb)? = options["usb"], let vendor = usb["vendor"].flatMap(OptionSpec.usbID), let product = usb["product"].flatMap(OptionSpec.usbID) {
            usbMatch = USBPrinterStream.Match(vendor: vendor, product: product, serial: usb["serial"]?.stringValue)
        }
        let profileName = options["profile"]?.stringValue
            ?? usbMatch.flatMap { environment.usbPrinterProfiles[USBID(vendor: $0.vendor, product: $0.product).description] }
        let profile: PrinterProfile
        if let profileName {
            guard let known = environment.printerProfiles[profileName] else {
                throw DeviceError(device: entry.name, .invalidRequest, "no printer profile \"\(profileName)\" in the quirks data; `tilld --check-config` lists the near ones")
            }
            profile = known
        } else {
            profile = environment.printerProfiles["default"] ?? .generic80
        }
        var encoderOptions = ReceiptEncoder.Options()
        if case .int(let pin)? = options["drawer_pin"] { encoderOptions.drawerPin = Int(pin) }
        if case .int(let milliseconds)? = options["drawer_pulse_ms"] { encoderOptions.drawerPulseMilliseconds = Int(milliseconds) }
        var settings = EscposPrinter.Settings()
        var profileInForce = profile
        if case .bool(false)? = options["status"] { profileInForce.realTimeStatus = false }
        if case .bool(true)? = options["display"] { settings.chainedDisplay = true }

        let transport: String
        let identity: String
        let open: @Sendable () async throws -> any ByteStream
        if let host = options["host"]?.stringValue {
            let port = options["port"]?.intValue.map(Int.init) ?? 9100
            (transport, identity) = ("network", "\(host):\(port)")
            open = { try await TCPConnection.open(host: host, port: port) }
        } else if let usbMatch {
            (transport, identity) = ("usb", usbMatch.description)
            open = { try USBPrinterStream.open(usbMatch) }
        } else if let port = options["port"]?.stringValue {
            // The printer plugged into that port, whatever it is: udev says which USB device is there.
            guard let presence = environment.presence else {
                throw DeviceError(device: entry.name, .invalidRequest, "finding a printer by port needs udev, which this tilld has not got; give usb or path instead")
            }
            (transport, identity) = ("usb", "the USB printer at port \(port)")
            open = {
                guard let plugged = presence.device(for: entry), let vendor = plugged.vendor, let product = plugged.product else {
                    throw TransportError(.notFound, endpoint: identity, "no USB printer is plugged in at port \(port): plug it in and tilld opens it as soon as udev sees it (`tillctl devices` lists what is plugged in)")
                }
                return try USBPrinterStream.open(USBPrinterStream.Match(vendor: vendor, product: product, port: plugged.usbKernelName))
            }
        } else if let path = options["path"]?.stringValue {
            identity = path
            if path.hasPrefix("/dev/usb/lp") {
                transport = "usblp"
                open = { try LinePrinterDevice.open(path) }
            } else {
                transport = "serial"
                let serial = serialSettings(options)
                // A serial printer's buffer is small and the line slow: smaller pieces.
                settings.chunkBytes = profile.bufferBytes ?? 1024
                open = { try SerialPort.open(path, settings: serial) }
            }
        } else {
            throw DeviceError(device: entry.name, .invalidRequest, "escpos needs path, usb or host")
        }
        let info = DeviceInfo(name: entry.name, role: .printer, driver: entry.driver, transport: transport, model: "\(profile.vendor) \(profile.model)".trimmingCharacters(in: .whitespaces), identity: identity)
        return EscposPrinter(
            info: info, encoder: ReceiptEncoder(profile: profileInForce, options: encoderOptions, imaging: Imaging()), settings: settings, presence: environment.presence, open: open)
    }

    static func makePoleDisplay(_ entry: DeviceConfig, _ commandSet: DisplayCommandSet, _ environment: DriverEnvironment) throws -> any TillDevice {
        let via = entry.options["via"]?.stringValue
        let located = via == nil ? try locate(entry, environment) : nil
        var profile = DisplayProfile()
        if case .int(let rows)? = entry.options["rows"] { profile.rows = Int(rows) }
        if case .int(let columns)? = entry.options["columns"] { profile.columns = Int(columns) }
        if let page = entry.options["code_page"]?.stringValue {
            guard CodePage(named: page) != nil else {
                throw DeviceError(device: entry.name, .invalidRequest, "code_page \"\(page)\" is not a table tilld has (cp437, cp850, cp858, cp852, cp866, cp1252, ...)")
            }
            profile = DisplayProfile(rows: profile.rows, columns: profile.columns, codePage: page)
        }
        if case .int(let level)? = entry.options["brightness"] { profile.brightness = Int(level) }
        let settings = serialSettings(entry.options)
        let info = DeviceInfo(
            name: entry.name, role: .display, driver: entry.driver, transport: via.map { "via \($0)" } ?? "serial", model: "\(profile.rows)x\(profile.columns) pole display",
            identity: located?.identity ?? via.map { "\($0) display port" })
        var behaviour = PoleDisplay.Behaviour()
        behaviour.idleText = entry.options["idle_text"]?.stringValue
        if case .int(let seconds)? = entry.options["idle_after_seconds"] { behaviour.idleAfter = .seconds(seconds) }
        if behaviour.idleText != nil, behaviour.idleAfter == nil { behaviour.idleAfter = .seconds(30) }
        if case .bool(let on)? = entry.options["sale_driven"] { behaviour.saleDriven = on }
        let encoder = DisplayEncoder(commandSet, profile: profile)
        if let via {
            let directory = environment.directory
            return PoleDisplay(info: info, encoder: encoder, behaviour: behaviour, presence: environment.presence) { try ChainedDisplayLink.open(via: via, directory: directory) }
        }
        let node = located!.node
        return PoleDisplay(info: info, encoder: encoder, behaviour: behaviour, presence: environment.presence) { try SerialPort.open(try node(), settings: settings) }
    }

    static func makePrinterDrawer(_ entry: DeviceConfig, _ environment: DriverEnvironment) throws -> any TillDevice {
        guard let via = entry.options["via"]?.stringValue else {
            throw DeviceError(device: entry.name, .invalidRequest, "printer-drawer needs via = \"<the printer's name>\"")
        }
        var settings = PrinterDrawer.Settings()
        if case .int(let pin)? = entry.options["pin"] { settings.pin = Int(pin) }
        if case .int(let milliseconds)? = entry.options["pulse_ms"] { settings.pulseMilliseconds = Int(milliseconds) }
        if case .int(let pulses)? = entry.options["pulses"] { settings.pulses = Int(pulses) }
        if entry.options["open_when"]?.stringValue == "low" { settings.openWhenHigh = false }
        settings.timing = drawerTiming(entry.options)
        let info = DeviceInfo(name: entry.name, role: .drawer, driver: entry.driver, transport: "via \(via)", identity: "\(via) drawer port")
        return PrinterDrawer(info: info, via: via, settings: settings, directory: environment.directory)
    }

    static func makeSerialDrawer(_ entry: DeviceConfig, _ environment: DriverEnvironment) throws -> any TillDevice {
        let options = entry.options
        let (identity, node) = try locate(entry, environment)
        let opening: SerialDrawer.Opening
        if let text = options["open_sequence"]?.stringValue, let bytes = OptionSpec.hexBytes(text) {
            opening = .sequence(bytes)
        } else if let line = options["pulse_line"]?.stringValue {
            opening = .pulse(line == "rts" ? .rts : .dtr)
        } else {
            throw DeviceError(device: entry.name, .invalidRequest, "serial-drawer needs open_sequence or pulse_line")
        }
        var settings = SerialDrawer.Settings(opening: opening)
        if case .int(let milliseconds)? = options["pulse_ms"] { settings.pulse = .milliseconds(milliseconds) }
        if case .int(let pulses)? = options["pulses"] { settings.pulses = Int(pulses) }
        switch options["state_line"]?.stringValue {
        case "cts"?: settings.stateLine = .cts
        case "dsr"?: settings.stateLine = .dsr
        case "dcd"?: settings.stateLine = .dcd
        default: settings.stateLine = nil
        }
        if options["open_when"]?.stringValue == "low" { settings.openWhenHigh = false }
        if case .int(let seconds)? = options["poll_seconds"] { settings.pollInterval = seconds == 0 ? nil : .seconds(seconds) }
        settings.timing = drawerTiming(options)
        let serial = serialSettings(options)
        let info = DeviceInfo(name: entry.name, role: .drawer, driver: entry.driver, transport: "serial", model: "serial cash drawer", identity: identity)
        return SerialDrawer(info: info, settings: settings, presence: environment.presence) { try SerialPort.open(try node(), settings: serial) }
    }

    static func makeEvdevScanner(_ entry: DeviceConfig, _ environment: DriverEnvironment) throws -> any TillDevice {
        let (identity, node) = try locate(entry, environment)
        let terminator = entry.options["terminator"]?.stringValue.flatMap(EvdevScanner.Terminator.init(rawValue:)) ?? .enter
        var interKey = Duration.milliseconds(100)
        if case .int(let milliseconds)? = entry.options["inter_key_ms"] { interKey = .milliseconds(milliseconds) }
        let info = DeviceInfo(name: entry.name, role: .scanner, driver: entry.driver, transport: "evdev", identity: identity)
        return EvdevScanner(
            info: info, layout: entry.options["layout"]?.stringValue ?? "us", variant: entry.options["variant"]?.stringValue,
            terminator: terminator, interKey: interKey, classifier: environment.classifier, presence: environment.presence
        ) {
            try EvdevDevice(path: try node())
        }
    }

    static func makeHIDPOSScanner(_ entry: DeviceConfig, _ environment: DriverEnvironment) throws -> any TillDevice {
        let (identity, node) = try locate(entry, environment)
        var gap = Duration.milliseconds(500)
        if case .int(let milliseconds)? = entry.options["report_gap_ms"] { gap = .milliseconds(milliseconds) }
        let info = DeviceInfo(name: entry.name, role: .scanner, driver: entry.driver, transport: "hidraw", identity: identity)
        let name = entry.name
        return HIDPOSScanner(info: info, classifier: environment.classifier, reportGap: gap, onProblem: { environment.report(name, $0) }, presence: environment.presence) {
            try HidrawDevice(path: try node())
        }
    }

    static func makeSerialScanner(_ entry: DeviceConfig, _ environment: DriverEnvironment) throws -> any TillDevice {
        let (identity, node) = try locate(entry, environment)
        let settings = serialSettings(entry.options)
        var framing = ScanFraming()
        if let terminator = entry.options["terminator"]?.stringValue.flatMap(ScanFraming.Terminator.init(rawValue:)) { framing.terminator = terminator }
        if let prefix = entry.options["prefix"]?.stringValue { framing.prefix = Array(prefix.utf8) }
        if let suffix = entry.options["suffix"]?.stringValue { framing.suffix = Array(suffix.utf8) }
        if case .bool(let aim)? = entry.options["aim"] { framing.aim = aim }
        if case .int(let milliseconds)? = entry.options["inter_byte_ms"] { framing.interByteTimeout = .milliseconds(milliseconds) }
        let info = DeviceInfo(name: entry.name, role: .scanner, driver: entry.driver, transport: "serial", identity: identity)
        let name = entry.name
        return SerialScanner(
            info: info, framing: framing, classifier: environment.classifier,
            onProblem: { problem in environment.report(name, problem) }, presence: environment.presence
        ) {
            try SerialPort.open(try node(), settings: settings)
        }
    }
}
