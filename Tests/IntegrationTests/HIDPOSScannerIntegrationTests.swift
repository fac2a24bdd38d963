import Foundation
import Testing
import TillClient
import TillCore
import TillTransportTesting

/// A HID POS scanner emulated by umockdev (its hidraw node, the report descriptor in sysfs and
/// the reports it sends), read by the real daemon through hidraw.
@Suite("hidpos-scanner under umockdev", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/umockdev-run")), .timeLimit(.minutes(2)))
struct HIDPOSScannerIntegrationTests {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    private func scanner(sending reports: [[UInt8]]) throws -> [String] {
        let directory = NSTemporaryDirectory() + "hidraw-" + UUID().uuidString
        let generator = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/make_hidraw_device.py").path
        let (code, _, error) = try runProcess("/usr/bin/python3", [generator, directory, hex(HIDPOSRecordings.counted)] + reports.map(hex))
        guard code == 0 else { throw WireError(.deviceError, "fixture generator failed: \(error)") }
        return ["/usr/bin/umockdev-run", "--device", directory + "/hidraw.umockdev", "--script", "/dev/hidraw0=\(directory)/hidraw.script", "--"]
    }

    @Test("scans read from hidraw: the AIM identifier the scanner sends, a long code over two reports, the device online on hidraw")
    func scans() async throws {
        let long = "0104006381333931" + "10LOT-2026-11" + "\u{1D}" + "21" + String(repeating: "9", count: 20) + "\u{1D}" + "91" + String(repeating: "Q", count: 30)
        let reports = HIDPOSRecordings.countedReports("4006381333931", aim: "]E0") + HIDPOSRecordings.countedReports(long, aim: "]d2")
        let config = """
            [[device]]
            name = "hid-scanner"
            role = "scanner"
            driver = "hidpos-scanner"
            path = "/dev/hidraw0"
            """
        let daemon = try await DaemonUnderTest(config: config, demo: false, wrapper: try scanner(sending: reports))
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["scanner.*", "device.*"], "since": 0])
            let events = try await till.collect { $0.filter { $0.topic == "scanner.data" }.count >= 2 }
            let scans = events.filter { $0.topic == "scanner.data" }
            #expect(scans[0].device == "hid-scanner")
            #expect(scans[0].data["text"] == "4006381333931" && scans[0].data["aim"] == "]E0" && scans[0].data["kind"] == "product")
            #expect(scans[1].data["text"]?.stringValue == long && scans[1].data["symbology"] == "datamatrix", "\(scans[1].data)")
            #expect(scans[1].data["gs1"]?["10"] == "LOT-2026-11", "\(scans[1].data)")
            let added = try #require(events.first { $0.topic == "device.added" })
            #expect(added.data["state"] == "online" && added.data["transport"] == "hidraw", "\(added.data)")
        }
    }
}
