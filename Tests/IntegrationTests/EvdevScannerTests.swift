import Foundation
import Testing
import TillClient
import TillCore

/// A keyboard-wedge scanner emulated by umockdev (the kernel's evdev node, its ioctls and the
/// key events it sends), read by the real daemon through libevdev and libxkbcommon.
@Suite("evdev-scanner under umockdev", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/umockdev-run")), .timeLimit(.minutes(2)))
struct EvdevScannerTests {
    /// Writes the emulated scanner typing `keys` (US key positions; capitals with Shift), then Enter.
    private func scanner(typing keys: String) throws -> [String] {
        let directory = NSTemporaryDirectory() + "evdev-" + UUID().uuidString
        let generator = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/make_evdev_scanner.py").path
        let (code, _, error) = try runProcess("/usr/bin/python3", [generator, directory, keys])
        guard code == 0 else { throw WireError(.deviceError, "fixture generator failed: \(error)") }
        return [
            "/usr/bin/umockdev-run", "--device", directory + "/scanner.umockdev",
            "--ioctl", "/dev/input/event5=\(directory)/scanner.ioctl",
            "--script", "/dev/input/event5=\(directory)/scanner.script", "--",
        ]
    }

    private func config(layout: String) -> String {
        """
        [[device]]
        name = "front-scanner"
        role = "scanner"
        driver = "evdev-scanner"
        path = "/dev/input/event5"
        layout = "\(layout)"
        """
    }

    @Test("a scanner typing in the US layout: one scanner.data, classified, and the device announced online on evdev")
    func usLayout() async throws {
        let daemon = try await DaemonUnderTest(config: config(layout: "us"), demo: false, wrapper: try scanner(typing: "4006381333931"))
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["scanner.*", "device.*"], "since": 0])
            let events = try await till.collect { $0.contains { $0.topic == "scanner.data" } }
            let scan = try #require(events.first { $0.topic == "scanner.data" })
            #expect(scan.device == "front-scanner")
            #expect(scan.data["text"] == "4006381333931" && scan.data["symbology"] == "ean13" && scan.data["kind"] == "product")
            let added = try #require(events.first { $0.topic == "device.added" })
            #expect(added.data["state"] == "online" && added.data["transport"] == "evdev", "\(added.data)")
        }
    }

    @Test("the same keys under the German layout type what a German scanner means: y and z swap, Shift makes capitals")
    func germanLayout() async throws {
        let daemon = try await DaemonUnderTest(config: config(layout: "de"), demo: false, wrapper: try scanner(typing: "yzYZ-12"))
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["scanner.*"], "since": 0])
            let scan = try await till.collect { $0.count >= 1 }[0]
            // US key positions y z Y Z - under "de": z y Z Y ß (the key right of 0 is ß).
            #expect(scan.data["text"] == "zyZYß12", "\(scan.data)")
        }
    }

    @Test("an unknown layout is said in the device's state, with where the layouts are")
    func unknownLayout() async throws {
        let daemon = try await DaemonUnderTest(config: config(layout: "klingon"), demo: false, wrapper: try scanner(typing: "1"))
        try await daemon.connect { till in
            let devices = try await till.request("devices")["devices"]?.arrayValue ?? []
            let scanner = try #require(devices.first)
            #expect(scanner["state"] == "error", "\(scanner)")
            #expect(scanner["reason"]?.stringValue?.contains("no keyboard layout \"klingon\"") == true, "\(scanner)")
        }
    }
}
