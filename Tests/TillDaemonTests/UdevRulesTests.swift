import Foundation
import Testing
import TillCore
import TillDevices
import TillDrivers

@Suite("udev rules made from the quirks data")
struct UdevRulesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    @Test("udev/60-tilld.rules is what the quirks data makes (regenerate: tilld --udev-rules --config /dev/null > udev/60-tilld.rules)")
    func committedRulesAreCurrent() throws {
        let committed = try String(contentsOf: Self.root.appendingPathComponent("udev/60-tilld.rules"), encoding: .utf8)
        #expect(committed == UdevRules.generate(quirks: DiscoveryTests.quirks), "udev/60-tilld.rules is out of date with the quirks data")
    }

    @Test("every known USB id has its rule; serial nodes are kept from ModemManager; an entry by usb gets its /dev/till link")
    func content() {
        let entries = [
            DeviceConfig(name: "front-scanner", role: .scanner, driver: "serial-scanner", options: ["usb": ["vendor": "0c2e", "product": "0720", "serial": "S1"]]),
            DeviceConfig(name: "front-printer", role: .printer, driver: "escpos", options: ["usb": ["vendor": "04b8", "product": "0e15"]]),
            DeviceConfig(name: "pole", role: .display, driver: "epson-display", options: ["path": "/dev/ttyUSB0"]),
        ]
        let rules = UdevRules.generate(quirks: DiscoveryTests.quirks, entries: entries)
        for device in DiscoveryTests.quirks.devices where device.role == .printer {
            guard let usb = device.usb else { continue }
            #expect(rules.contains("ATTR{idVendor}==\"\(String(format: "%04x", usb.vendor))\", ATTR{idProduct}==\"\(String(format: "%04x", usb.product))\""), "\(device.model)")
        }
        let tty = rules.split(separator: "\n").filter { $0.hasPrefix("SUBSYSTEM==\"tty\"") && !$0.contains("SYMLINK") }
        #expect(!tty.isEmpty && tty.allSatisfy { $0.contains("ENV{ID_MM_DEVICE_IGNORE}=\"1\"") })
        #expect(rules.contains("SUBSYSTEM==\"tty\", ATTRS{idVendor}==\"0c2e\", ATTRS{idProduct}==\"0720\", ATTRS{serial}==\"S1\", GROUP=\"till\", MODE=\"0660\", TAG+=\"systemd\", SYMLINK+=\"till/front-scanner\""))
        #expect(rules.contains("ATTR{idVendor}==\"04b8\", ATTR{idProduct}==\"0e15\", GROUP=\"till\", MODE=\"0660\", TAG+=\"systemd\", SYMLINK+=\"till/front-printer\""))
        #expect(!rules.contains("till/pole"), "an entry by path needs no link")
        // Every rule line is key-op-value pairs udev can read: no stray quotes.
        for line in rules.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
            #expect(line.filter { $0 == "\"" }.count % 2 == 0, "\(line)")
        }
    }

    @Test("udevadm verify accepts the rules, where this udevadm has verify (systemd 254 and later)")
    func udevadmVerify() throws {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/udevadm")
        probe.arguments = ["verify", "--help"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return }
        probe.waitUntilExit()
        guard probe.terminationStatus == 0 else {
            print("skipped: this udevadm has no verify (systemd before 254)")
            return
        }
        let verify = Process()
        verify.executableURL = URL(fileURLWithPath: "/usr/bin/udevadm")
        verify.arguments = ["verify", Self.root.appendingPathComponent("udev/60-tilld.rules").path]
        try verify.run()
        verify.waitUntilExit()
        #expect(verify.terminationStatus == 0)
    }
}
