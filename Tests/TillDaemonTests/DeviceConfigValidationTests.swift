import Foundation
import Testing
import TillCore
import TillDevices
import TillDrivers
import TillScanner
@testable import TillDaemon

/// Mistakes a new user makes in `[[device]]` entries, each with the line and key it is on and,
/// where a known key is one edit away, "did you mean". The parser knows no driver: these come
/// from the registry's schemas.
@Suite("Device entries checked against the driver registry", .timeLimit(.minutes(1)))
struct DeviceConfigValidationTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var body: String
        /// The line the problem must be on (the entry starts on line 1).
        var line: Int
        var says: [String]
        var testDescription: String { says[0] }
    }

    static let cases: [Case] = [
        Case(body: #"role = "scanner"\#ndriver = "serial-scanner"\#npathh = "/dev/ttyACM0""#, line: 5, says: [#"unknown key "pathh""#, #"did you mean "path"?"#]),
        Case(body: #"role = "scanner"\#ndriver = "serial-scanner"\#npath = "/dev/ttyACM0"\#nbauds = 9600"#, line: 6, says: [#"unknown key "bauds""#, #"did you mean "baud"?"#]),
        Case(body: #"role = "printer"\#ndriver = "escpos"\#nhost = "192.168.1.50"\#nport = "9100""#, line: 6, says: ["port must be a number", "write port = 9100"]),
        Case(body: #"role = "printer"\#ndriver = "escpos"\#nusb = "04b8:0e15""#, line: 5, says: ["usb must be a table", #"usb = { vendor = "04b8", product = "0e15" }"#]),
        Case(body: #"role = "printer"\#ndriver = "escpos"\#nhost = "10.0.0.9"\#npath = "/dev/usb/lp0""#, line: 6, says: ["give one of path, usb, port, host or via", "path and host"]),
        Case(body: #"role = "drawer"\#ndriver = "escpos"\#nvia = "front-printer""#, line: 4, says: [#"drives a printer, not a drawer"#, #"driver = "printer-drawer""#]),
        Case(body: #"role = "scanner"\#ndriver = "serial-scaner"\#npath = "/dev/ttyACM0""#, line: 4, says: [#"unknown driver "serial-scaner""#, #"did you mean "serial-scanner"?"#]),
        Case(body: #"role = "scanner"\#ndriver = "serial-scanner"\#npath = "/dev/ttyACM0"\#nbaud = 9601"#, line: 6, says: ["baud = 9601 is not one of", "9600"]),
        Case(body: #"role = "scanner"\#ndriver = "serial-scanner"\#npath = "/dev/ttyACM0"\#nparity = "evn""#, line: 6, says: [#"parity = "evn""#, #"did you mean "even"?"#]),
        Case(body: #"role = "scanner"\#ndriver = "serial-scanner""#, line: 1, says: ["needs path, usb, port to say where it is"]),
        Case(body: #"role = "scanner"\#ndriver = "serial-scanner"\#npath = "ttyACM0""#, line: 5, says: ["path must be absolute"]),
        Case(body: #"role = "drawer"\#ndriver = "printer-drawer"\#npath = "/dev/ttyS0""#, line: 5, says: [#"does not take path"#, "via"]),
        Case(body: #"role = "drawer"\#ndriver = "serial-drawer"\#npath = "/dev/ttyUSB0""#, line: 1, says: ["needs open_sequence", "pulse_line"]),
        Case(body: #"role = "drawer"\#ndriver = "serial-drawer"\#npath = "/dev/ttyUSB0"\#nopen_sequence = "1b7""#, line: 6, says: [#"open_sequence = "1b7" is not bytes in hex"#]),
        Case(body: #"role = "drawer"\#ndriver = "serial-drawer"\#npath = "/dev/ttyUSB0"\#nopen_sequence = "1b70"\#npulse_line = "dtr""#, line: 7, says: ["not both"]),
        Case(body: #"role = "drawer"\#ndriver = "serial-drawer"\#npath = "/dev/ttyUSB0"\#npulse_line = "dtr"\#nopen_when = "low""#, line: 7, says: ["open_when needs state_line"]),
    ]

    @Test("each mistake is reported on its line, naming its key", arguments: cases)
    func mistake(_ example: Case) {
        let text = "[[device]]\nname = \"d\"\n" + example.body + "\n"
        let (config, problems) = DaemonConfig.parse(text)
        #expect(problems.count == 1, "\(problems)")
        let problem = problems.first
        #expect(problem?.line == example.line, "\(problems)")
        for phrase in example.says {
            #expect(problem?.message.contains(phrase) == true, "\(phrase) in \(problem?.message ?? "nothing")")
        }
        #expect(config.devices.isEmpty, "an entry with a problem is not taken")
    }

    @Test("outside [[device]]: an unknown table gets its header's line and a did-you-mean; a bad sync value names sync")
    func topLevel() {
        let (_, problems) = DaemonConfig.parse("[sockets]\ngroup = \"till\"\n[journal]\nsync = \"ful\"\n")
        #expect(problems.map(\.line) == [1, 4], "\(problems)")
        #expect(problems[0].message.contains(#"unknown key "sockets""#) && problems[0].message.contains(#"did you mean "socket"?"#))
        #expect(problems[1].message.contains(#"sync = "ful""#))
    }

    @Test("valid entries pass, with the contract's usb form and a number for the ids; the driver's options reach the device")
    func valid() {
        let text = """
            [[device]]
            name = "front-scanner"
            role = "scanner"
            driver = "serial-scanner"
            path = "/dev/serial/by-id/usb-Honeywell-if00"
            baud = 115200
            parity = "none"
            terminator = "enter"
            aim = true
            [[device]]
            name = "front-printer"
            role = "printer"
            driver = "escpos"
            usb = { vendor = 0x04b8, product = "0e15", serial = "X123" }
            [[device]]
            name = "drawer"
            role = "drawer"
            driver = "printer-drawer"
            via = "front-printer"
            pin = 2
            """
        let (config, problems) = DaemonConfig.parse(text)
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.devices.map(\.driver) == ["serial-scanner", "escpos", "printer-drawer"])
        #expect(config.devices[0].optionLines["baud"] == 6)
    }

    @Test("a scanner entry builds the serial-scanner driver; a driver not in this build is listed in error with the reason")
    func building() {
        let registry = BuiltinDrivers.registry
        let scanner = registry.makeDevice(
            DeviceConfig(name: "s", role: .scanner, driver: "serial-scanner", options: ["path": "/dev/ttyACM9"]), environment: DriverEnvironment())
        #expect(scanner is SerialScanner)
        #expect(scanner.info.transport == "serial")
        let printer = registry.makeDevice(
            DeviceConfig(name: "p", role: .printer, driver: "escpos", options: ["host": "10.0.0.9"]), environment: DriverEnvironment())
        #expect(printer is EscposPrinter && printer.info.transport == "network" && printer.info.identity == "10.0.0.9:9100")
        let display = registry.makeDevice(
            DeviceConfig(name: "d", role: .display, driver: "epson-display", options: ["path": "/dev/ttyUSB7"]), environment: DriverEnvironment())
        #expect(display is PoleDisplay)
        let drawer = registry.makeDevice(
            DeviceConfig(name: "k", role: .drawer, driver: "serial-drawer", options: ["path": "/dev/ttyUSB8", "pulse_line": "rts"]), environment: DriverEnvironment())
        #expect(drawer is SerialDrawer && drawer.info.transport == "serial")
        let chained = registry.makeDevice(
            DeviceConfig(name: "c", role: .display, driver: "cd5220-display", options: ["via": "front-printer"]), environment: DriverEnvironment())
        #expect(chained is PoleDisplay && chained.info.transport == "via front-printer")
        // A registry entry with no factory: its entries are listed in error, never dropped.
        let partial = DriverRegistry([DriverDescriptor(name: "future-drawer", role: .drawer, summary: "", locators: [.path], options: [])])
        let future = partial.makeDevice(DeviceConfig(name: "f", role: .drawer, driver: "future-drawer", options: ["path": "/dev/ttyUSB9"]), environment: DriverEnvironment())
        #expect(future.status.state == .error)
        #expect(future.status.reason?.contains("not available in this build") == true)
    }

    @Test("one edit away, and no more")
    func editDistance() {
        #expect(EditDistance.isOneEditAway("pathh", "path"))
        #expect(EditDistance.isOneEditAway("bauds", "baud"))
        #expect(EditDistance.isOneEditAway("prot", "port") == false, "a swap is two edits")
        #expect(EditDistance.isOneEditAway("path", "path") == false)
        #expect(EditDistance.isOneEditAway("hots", "host") == false)
        #expect(EditDistance.isOneEditAway("evn", "even"))
    }
}

@Suite("Printer profiles named in the config", .timeLimit(.minutes(1)))
struct ProfileNameTests {
    @Test("a profile missing from the quirks data is reported on its line, with the near one")
    func unknownProfile() {
        let text = "[[device]]\nname = \"p\"\nrole = \"printer\"\ndriver = \"escpos\"\nhost = \"10.0.0.9\"\nprofile = \"TM-T20I\"\n"
        let (_, problems) = DaemonConfig.parse(text, knownProfiles: ["TM-T20II", "TM-T88V"])
        #expect(problems.map(\.line) == [6])
        #expect(problems.first?.message.contains(#"did you mean "TM-T20II"?"#) == true, "\(problems)")
        let (_, fine) = DaemonConfig.parse(text.replacingOccurrences(of: "TM-T20I\"", with: "TM-T20II\""), knownProfiles: ["TM-T20II"])
        #expect(fine.isEmpty)
    }
}

@Suite("[[scanner.variable_measure]] in the config", .timeLimit(.minutes(1)))
struct VariableMeasureConfigTests {
    @Test("schemes are read with their defaults; a prefix outside 20-29 is said on its line")
    func schemes() {
        let (config, problems) = DaemonConfig.parse("[scanner]\n[[scanner.variable_measure]]\nprefix = \"28\"\nvalue = \"price\"\n[[scanner.variable_measure]]\nprefix = \"23\"\nvalue = \"weight\"\nitem_digits = 4\n")
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.variableMeasures.map(\.prefix) == ["28", "23"])
        #expect(config.variableMeasures[0].decimals == 2 && config.variableMeasures[1].decimals == 3 && config.variableMeasures[1].itemDigits == 4)
        let (_, bad) = DaemonConfig.parse("[scanner]\n[[scanner.variable_measure]]\nprefix = \"40\"\nvalue = \"price\"\n")
        #expect(bad.count == 1 && bad[0].message.contains("20 to 29"), "\(bad)")
        #expect(bad.first?.line == 3)
        let (_, kind) = DaemonConfig.parse("[scanner]\n[[scanner.variable_measure]]\nprefix = \"28\"\nvalue = \"cost\"\n")
        #expect(kind.first?.message.contains("\"price\" or \"weight\"") == true, "\(kind)")
    }
}

@Suite("[scanner] classification rules in the config", .timeLimit(.minutes(1)))
struct ScannerRulesConfigTests {
    @Test("receipt and loyalty patterns and coupon prefixes are read and classify; a broken pattern is said on its line")
    func rules() {
        let (config, problems) = DaemonConfig.parse("[scanner]\nreceipt_pattern = 'R\\d{8}'\nloyalty_pattern = 'LOY-\\d+'\ncoupon_prefixes = [\"22\"]\n")
        #expect(problems.isEmpty, "\(problems)")
        let classifier = config.scanClassifier
        #expect(classifier.classify(text: "R00001234").kind == .receipt)
        #expect(classifier.classify(text: "LOY-77").kind == .loyalty)
        #expect(classifier.couponPrefixes == ["22"])
        #expect(DaemonConfig().scanClassifier.couponPrefixes == ScanClassifier.gs1CouponPrefixes)
        let (_, bad) = DaemonConfig.parse("[scanner]\n\nreceipt_pattern = 'R(\\d{8}'\n")
        #expect(bad.count == 1 && bad.first?.line == 3, "\(bad)")
        #expect(bad.first?.message.contains("not a regular expression") == true, "\(bad)")
    }
}
