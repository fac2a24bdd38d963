import Foundation
import Testing
import TillClient
import TillCore

/// A keyboard-wedge scanner emulated by umockdev (the kernel's evdev node, its ioctls and the
/// key events it sends), read by the real daemon through libevdev and libxkbcommon.
@Suite("evdev-scanner under umockdev", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/umockdev-run")), .timeLimit(.minutes(2)))
struct EvdevScannerTests {
    /// Writes the emulated scanner typing `keys` (US key positions; capitals with Shift), then Enter.
    /// With `keyboard`, a real keyboard types "qwerty" at /dev/input/event3 meanwhile.
    private func scanner(typing keys: String, keyboard: Bool = false) throws -> [String] {
        let directory = NSTemporaryDirectory() + "evdev-" + UUID().uuidString
        let generator = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/make_evdev_scanner.py").path
        let (code, _, error) = try runProcess("/usr/bin/python3", [generator, directory, keys] + (keyboard ? ["--keyboard"] : []))
        guard code == 0 else { throw WireError(.deviceError, "fixture generator failed: \(error)") }
        var arguments = [
            "/usr/bin/umockdev-run", "--device", directory + "/scanner.umockdev",
            "--ioctl", "/dev/input/event5=\(directory)/scanner.ioctl",
            "--script", "/dev/input/event5=\(directory)/scanner.script",
        ]
        if keyboard {
            arguments += [
                "--device", directory + "/keyboard.umockdev", "--ioctl", "/dev/input/event3=\(directory)/keyboard.ioctl",
                "--script", "/dev/input/event3=\(directory)/keyboard.script",
            ]
        }
        return arguments + ["--"]
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

    @Test("a real keyboard beside the scanner is never opened, let alone grabbed (strace): only the configured node is", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")))
    func keyboardLeftAlone() async throws {
        let trace = NSTemporaryDirectory() + "evdev-trace-" + UUID().uuidString
        let wrapper = try scanner(typing: "4006381333931", keyboard: true) + ["/usr/bin/strace", "-f", "-qq", "-o", trace, "-e", "trace=openat,open,ioctl", "-e", "signal=none"]
        let daemon = try await DaemonUnderTest(config: config(layout: "us"), demo: false, wrapper: wrapper)
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["scanner.*"], "since": 0])
            let scans = try await till.collect { $0.count >= 1 }
            #expect(scans.map { $0.data["text"] } == ["4006381333931"])
            let devices = try await till.request("devices")["devices"]?.arrayValue ?? []
            #expect(devices.count == 1 && devices.first?["state"] == "online", "only the scanner, grabbed: \(devices)")
            try await Task.sleep(for: .milliseconds(300))  // the keyboard's script has typed by now
        }
        let calls = try String(contentsOfFile: trace, encoding: .utf8)
        // umockdev redirects paths into its test bed (/tmp/umockdev.XXXX/dev/...) and answers
        // ioctls in the process, so the trace shows the opens by their path's end.
        #expect(calls.contains("/dev/input/event5\""), "the scanner's node was opened")
        #expect(!calls.contains("/dev/input/event3"), "the keyboard's node was touched: \(calls.split(separator: "\n").filter { $0.contains("event3") }.prefix(3))")
        #expect(!calls.contains("/dev/input\""), "no scan of /dev/input for devices to guess at")
    }
}
