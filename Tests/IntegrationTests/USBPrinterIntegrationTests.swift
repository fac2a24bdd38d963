import Foundation
import Testing
import TillClient
import TillCore

/// A USB receipt printer emulated by umockdev (its descriptors in sysfs, bulk transfers
/// replayed from a script that must see exactly the bytes tilld sends), driven by the real
/// daemon through libusb: enumeration, the serial number, claiming the printer interface, the
/// status round, the job's bytes on the bulk OUT endpoint.
@Suite("escpos over libusb under umockdev", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/umockdev-run")), .timeLimit(.minutes(2)))
struct USBPrinterIntegrationTests {
    private func printer(_ exchanges: [String]) throws -> [String] {
        let directory = NSTemporaryDirectory() + "usb-printer-" + UUID().uuidString
        let generator = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/make_usb_printer.py").path
        let (code, _, error) = try runProcess("/usr/bin/python3", [generator, directory] + exchanges)
        guard code == 0 else { throw WireError(.deviceError, "fixture generator failed: \(error)") }
        return ["/usr/bin/umockdev-run", "--device", directory + "/printer.umockdev", "--ioctl", "/dev/bus/usb/001/002=\(directory)/printer.ioctl", "--"]
    }

    static func config(serial: String) -> String {
        """
        [[device]]
        name = "usb-printer"
        role = "printer"
        driver = "escpos"
        usb = { vendor = "04b8", product = "0e15", serial = "\(serial)" }
        """
    }

    @Test("found by VID:PID and serial, status asked and read back, the receipt's bytes leave on the bulk OUT endpoint exactly")
    func prints() async throws {
        let exchanges = [
            "01:1D610F",  // GS a 15: Automatic Status Back on
            "01:100401100402100403100404",  // DLE EOT 1 to 4
            "82:1212121E",  // all clear, paper near its end
            "01:1B4068656C6C6F0A",  // the job: ESC @ "hello" LF
        ]
        let daemon = try await DaemonUnderTest(config: Self.config(serial: "X5TEST"), demo: false, wrapper: try printer(exchanges))
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.*", "device.*"], "since": 0])
            let first = try await till.collect { $0.contains { $0.topic == "printer.status" } }
            let added = try #require(first.first { $0.topic == "device.added" })
            #expect(added.data["state"] == "online" && added.data["transport"] == "usb", "\(added.data)")
            #expect(added.data["model"] == "Epson TM-T20II", "the profile found from the USB id")
            #expect(first.last?.data["paper"] == "near_end")
            let job = try await till.request("print", ["receipt": ["lines": [["text": "hello"]]]])["job"]!
            let done = try await till.collect { $0.contains { $0.data["job"] == job && ($0.data["state"] == "done" || $0.data["state"] == "failed") } }
            #expect(done.last?.data["state"] == "done", "umockdev accepts only the scripted bytes: \(done.last?.data ?? [:])")
        }
    }

    @Test("a serial number that no plugged-in printer has: offline, saying which printers are there and what to fix")
    func wrongSerial() async throws {
        let daemon = try await DaemonUnderTest(config: Self.config(serial: "OTHER"), demo: false, wrapper: try printer([]))
        try await daemon.connect { till in
            let device = try #require(try await till.request("devices")["devices"]?.arrayValue?.first)
            #expect(device["state"] == "error" || device["state"] == "offline")
            let reason = device["reason"]?.stringValue ?? ""
            #expect(reason.contains("none with serial OTHER") && reason.contains("fix the serial"), "\(reason)")
        }
    }
}
