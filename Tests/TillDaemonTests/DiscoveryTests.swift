import Foundation
import Testing
import TillCore
import TillDevices
@testable import TillDrivers
import TillTransport

@Suite("discovery: what tilld makes of what is plugged in (pure)")
struct DiscoveryTests {
    static let quirks: Quirks = {
        let (quirks, problems) = Quirks.load(directories: [URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/TillDrivers/Quirks").standardized.path])
        precondition(problems.isEmpty, "\(problems)")
        return quirks
    }()

    static func usbDevice(_ vendor: UInt16, _ product: UInt16, serial: String? = nil, port: String, interfaceClass: UInt8? = nil) -> UDevRecord {
        let syspath = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-\(port)"
        return UDevRecord(
            syspath: syspath, subsystem: "usb", devtype: "usb_device", sysname: "1-\(port)", devnode: "/dev/bus/usb/001/00\(port.count)",
            interfaceClass: interfaceClass, usb: .init(vendor: vendor, product: product, serial: serial, syspath: syspath),
            properties: ["ID_PATH": "pci-0000:00:14.0-usb-0:\(port)"])
    }

    static func tty(_ vendor: UInt16, _ product: UInt16, serial: String? = nil, port: String, node: String) -> UDevRecord {
        let usb = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-\(port)"
        return UDevRecord(
            syspath: usb + "/1-\(port):1.0/tty/\(node.dropFirst(5))", subsystem: "tty", sysname: String(node.dropFirst(5)), devnode: node, driver: "cdc_acm",
            interfaceClass: 2, usb: .init(vendor: vendor, product: product, serial: serial, syspath: usb),
            properties: ["ID_PATH": "pci-0000:00:14.0-usb-0:\(port):1.0", "DEVLINKS": "/dev/serial/by-id/usb-X-if00"])
    }

    static func keyboard(port: String) -> UDevRecord {
        let usb = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-\(port)"
        return UDevRecord(
            syspath: usb + "/1-\(port):1.0/input/input3/event3", subsystem: "input", sysname: "event3", devnode: "/dev/input/event3",
            usb: .init(vendor: 0x046d, product: 0xc31c, syspath: usb), properties: ["ID_INPUT_KEYBOARD": "1", "ID_PATH": "pci-0000:00:14.0-usb-0:\(port):1.0"])
    }

    @Test("an entry claims its device by path, by a udev link, by usb (serial when given) or by port; a driver only ever matches its kind of node")
    func matching() {
        let scanner = Self.tty(0x0c2e, 0x0720, serial: "S1", port: "1", node: "/dev/ttyACM0")
        func entry(_ options: [String: JSONValue], driver: String = "serial-scanner") -> DeviceConfig {
            DeviceConfig(name: "s", role: .scanner, driver: driver, options: options)
        }
        #expect(Discovery.matches(entry(["path": "/dev/ttyACM0"]), scanner))
        #expect(Discovery.matches(entry(["path": "/dev/serial/by-id/usb-X-if00"]), scanner))
        #expect(Discovery.matches(entry(["usb": ["vendor": "0c2e", "product": "0720"]]), scanner))
        #expect(Discovery.matches(entry(["usb": ["vendor": "0c2e", "product": "0720", "serial": "S1"]]), scanner))
        #expect(!Discovery.matches(entry(["usb": ["vendor": "0c2e", "product": "0720", "serial": "S2"]]), scanner))
        #expect(Discovery.matches(entry(["port": "pci-0000:00:14.0-usb-0:1:1.0"]), scanner))
        #expect(!Discovery.matches(entry(["port": "pci-0000:00:14.0-usb-0:2:1.0"]), scanner))
        #expect(!Discovery.matches(entry(["usb": ["vendor": "0c2e", "product": "0720"]], driver: "evdev-scanner"), scanner), "an evdev driver never takes a tty")
        let printer = Self.usbDevice(0x04b8, 0x0e15, port: "2", interfaceClass: 7)
        #expect(Discovery.matches(DeviceConfig(name: "p", role: .printer, driver: "escpos", options: ["usb": ["vendor": "04b8", "product": "0e15"]]), printer))
        #expect(!Discovery.matches(DeviceConfig(name: "p", role: .printer, driver: "escpos", options: ["host": "10.0.0.9", "port": 9100]), printer))
    }

    @Test("known models are taken on with zero config; an entry wins; unknown devices and keyboards are listed and left alone, with why")
    func decisions() {
        let records = [
            Self.usbDevice(0x04b8, 0x0e15, port: "1", interfaceClass: 7),  // TM-T20II, known
            Self.usbDevice(0x1234, 0x5678, port: "2"),  // unknown
            Self.keyboard(port: "3"),
            Self.tty(0x0c2e, 0x0720, port: "4", node: "/dev/ttyACM0"),  // known serial scanner, configured below
            Self.usbDevice(0x0c2e, 0x0720, port: "4"),  // its USB device: said once, by its node
            Self.usbDevice(0x1d6b, 0x0002, port: "0"),  // a root hub: not listed
        ]
        let entries = [DeviceConfig(name: "front-scanner", role: .scanner, driver: "serial-scanner", options: ["port": "pci-0000:00:14.0-usb-0:4:1.0"])]
        var names = Discovery.NameBook()
        let sightings = Discovery.decide(records, entries: entries, quirks: Self.quirks, names: &names, zeroConfig: true)
        #expect(sightings.count == 4, "\(sightings.map(\.identity))")
        func decision(_ identity: String) -> Discovery.Decision? { sightings.first { $0.identity.hasPrefix(identity) }?.decision }
        #expect(decision("usb 04b8:0e15") == .zeroConfig(name: "printer-1", driver: "escpos", model: "Epson TM-T20II"))
        #expect(decision("usb 0c2e:0720") == .configured(name: "front-scanner"))
        guard case .ignored(let unknown)? = decision("usb 1234:5678"), case .ignored(let keys)? = decision("usb 046d:c31c") else {
            Issue.record("\(sightings)")
            return
        }
        #expect(unknown.contains("unknown device") && keys.contains("keyboard"))

        var off = Discovery.NameBook()
        let withoutZeroConfig = Discovery.decide(records, entries: entries, quirks: Self.quirks, names: &off, zeroConfig: false)
        guard case .ignored(let why)? = withoutZeroConfig.first(where: { $0.identity.hasPrefix("usb 04b8:0e15") })?.decision else {
            Issue.record("\(withoutZeroConfig)")
            return
        }
        #expect(why.contains("zero_config = false") && why.contains("[[device]]"))
    }

    @Test("generated names: kept per device, never reused, never an entry's; two identical devices told apart by port, whatever order they come in")
    func names() {
        var book = Discovery.NameBook()
        let left = Discovery.stableKey(Self.usbDevice(0x04b8, 0x0e15, port: "1"), kind: .usbDevice)
        let right = Discovery.stableKey(Self.usbDevice(0x04b8, 0x0e15, port: "2"), kind: .usbDevice)
        #expect(left != right)
        #expect(book.name(for: right, role: .printer, taken: ["printer-1"]) == "printer-2", "an entry's name is never given")
        #expect(book.name(for: left, role: .printer, taken: ["printer-1"]) == "printer-3")
        #expect(book.name(for: right, role: .printer, taken: []) == "printer-2", "the same device, the same name")
        let serial = Discovery.stableKey(Self.usbDevice(0x04b8, 0x0e15, serial: "X9", port: "1"), kind: .usbDevice)
        #expect(serial == Discovery.stableKey(Self.usbDevice(0x04b8, 0x0e15, serial: "X9", port: "7"), kind: .usbDevice), "with a serial number, the port does not matter")
    }

    @Test("what is present: a second add of a known device changes nothing, a remove takes it away, an add wakes whoever waits")
    func presence() async {
        let present = PresentDevices()
        var record = Self.tty(0x0c2e, 0x0720, serial: "S1", port: "1", node: "/dev/ttyACM0")
        record.action = "add"
        let entry = DeviceConfig(name: "s", role: .scanner, driver: "serial-scanner", options: ["usb": ["vendor": "0c2e", "product": "0720", "serial": "S1"]])
        #expect(present.device(for: entry) == nil)
        let mark = present.arrivalMark()
        let waiting = Task { () -> Duration in
            let start = ContinuousClock.now
            await present.waitForArrival(since: mark, upTo: .seconds(600))
            return ContinuousClock.now - start
        }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(present.apply(record))
        // Minutes against the ten of the wait: a loaded machine may be slow to run the task.
        #expect(await waiting.value < .seconds(120), "woken by the arrival, not at the end of its wait")
        // An arrival between the mark and the wait (the attempt was failing meanwhile): no wait at all.
        let before = present.arrivalMark()
        var other = Self.tty(0x0c2e, 0x0720, serial: "S2", port: "2", node: "/dev/ttyACM1")
        other.action = "add"
        present.apply(other)
        let start = ContinuousClock.now
        await present.waitForArrival(since: before, upTo: .seconds(600))
        #expect(ContinuousClock.now - start < .seconds(120), "an arrival since the mark is not missed")
        #expect(!present.apply(record), "the monitor may say it twice")
        #expect(present.device(for: entry)?.node == "/dev/ttyACM0")
        record.action = "remove"
        #expect(present.apply(record))
        #expect(present.device(for: entry) == nil)
    }
}
