import Foundation
import Glibc
import Testing
import TillClient
import TillCore
import TillSystem

/// SIGHUP applies the config file's devices: entries removed, changed and added, while the
/// daemon runs. Subscribers stay connected, queued print jobs stay queued and print once.
@Suite("devices reloaded on SIGHUP", .serialized, .timeLimit(.minutes(2)))
struct ReloadDevicesTests {
    static func printer(port: String, status: Bool) -> String {
        """
        [[device]]
        name = "front-printer"
        role = "printer"
        driver = "escpos"
        profile = "TM-T20II"
        host = "127.0.0.1"
        port = \(port)
        status = \(status)

        """
    }

    @Test("a removed entry goes (device.removed), a changed one is built anew, an added one arrives; the subscriber stays, a queued job prints once")
    func reload() async throws {
        let fake = try await FakePrinterProcess("tcp")
        try fake.set("paper-out")
        let pty = try PseudoTerminal.open()
        defer { try? pty.controller.close() }
        let scanner = """
            [[device]]
            name = "old-scanner"
            role = "scanner"
            driver = "serial-scanner"
            path = "/dev/ttyNONE9"

            """
        let daemon = try await DaemonUnderTest(config: Self.printer(port: fake.address, status: true) + scanner, demo: false)
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.*", "device.*", "scanner.data"], "since": 0])
            _ = try await till.collect { $0.contains { $0.topic == "printer.status" && $0.data["paper"] == "out" } }
            let job = try await till.request("print", ["receipt": PrinterTransportTests.receipt])["job"]!

            // The scanner entry goes, the printer's options change, a scanner on a pty arrives.
            let display = """
                [[device]]
                name = "new-scanner"
                role = "scanner"
                driver = "serial-scanner"
                path = "\(pty.devicePath)"

                """
            try (Self.printer(port: fake.address, status: true).replacingOccurrences(of: "profile = \"TM-T20II\"", with: "profile = \"TM-T20II\"\ndrawer_pin = 5") + display)
                .write(toFile: daemon.configPath!, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            let changes = try await till.collect { events in
                events.contains { $0.topic == "device.added" && $0.device == "new-scanner" }
                    && events.contains { $0.topic == "device.added" && $0.device == "front-printer" }
            }
            let topics = changes.filter { $0.topic.hasPrefix("device.") && $0.topic != "device.state" }.map { "\($0.topic) \($0.device ?? "")" }
            #expect(topics.contains("device.removed old-scanner"), "\(topics)")
            #expect(topics.contains("device.removed front-printer") && topics.firstIndex(of: "device.removed front-printer")! < topics.firstIndex(of: "device.added front-printer")!, "\(topics)")
            let devices = try await till.request("devices")["devices"]?.arrayValue ?? []
            #expect(devices.compactMap { $0["name"]?.stringValue }.sorted() == ["front-printer", "new-scanner"], "\(devices)")

            // The new scanner works; the job queued before the reload prints once, on the new printer.
            var line = Array("4006381333931\r".utf8)
            _ = write(pty.controller.rawValue, &line, line.count)
            _ = try await till.collect { $0.contains { $0.topic == "scanner.data" && $0.device == "new-scanner" } }
            try fake.set("ok")
            _ = try await till.collect { $0.contains { $0.data["job"] == job && $0.data["state"] == "done" } }
        }
        #expect(fake.received.count(of: [0x1B, 0x40]) == 1, "printed once")
        #expect(daemon.log.contains("devices reconfigured"))
    }
}
