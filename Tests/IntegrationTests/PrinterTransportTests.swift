import Foundation
import Testing
import TillClient
import TillCore
import TillESCPOS

/// A fake printer process (Fixtures/fake_printer.py) on loopback TCP or a pseudo-terminal: what
/// tilld's escpos driver sends is read back from the wire, and the printer answers DLE EOT.
final class FakePrinterProcess: @unchecked Sendable {
    let directory: String
    let process: Process
    let address: String

    init(_ mode: String) async throws {
        directory = NSTemporaryDirectory() + "fake-printer-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/fake_printer.py").path, mode, directory]
        try process.run()
        let file = directory + "/address"
        try await poll("the fake printer to listen") { FileManager.default.fileExists(atPath: file) }
        address = try String(contentsOfFile: file, encoding: .utf8)
    }

    deinit {
        _ = FileManager.default.createFile(atPath: directory + "/stop", contents: nil)
        process.terminate()
    }

    func set(_ condition: String) throws { try condition.write(toFile: directory + "/condition", atomically: true, encoding: .utf8) }

    var received: [UInt8] { Array(FileManager.default.contents(atPath: directory + "/received") ?? Data()) }
}

@Suite("escpos printers over TCP and serial, end to end", .serialized, .timeLimit(.minutes(2)))
struct PrinterTransportTests {
    static let receipt: JSONValue = ["lines": [
        ["text": "Grüße aus Köln", "align": "center", "bold": true],
        ["columns": [["text": "Flat white x2"], ["text": "7,00 €", "align": "right"]]],
        ["barcode": ["type": "code128", "data": "R-1001"]],
        ["cut": "partial"],
    ]]

    private func config(_ locator: String) -> String {
        """
        [[device]]
        name = "front-printer"
        role = "printer"
        driver = "escpos"
        profile = "TM-T20II"
        \(locator)
        """
    }

    private func printAndRead(_ fake: FakePrinterProcess, locator: String) async throws {
        let daemon = try await DaemonUnderTest(config: config(locator), demo: false)
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.*", "device.*"], "since": 0])
            _ = try await till.collect { $0.contains { $0.topic == "device.added" && $0.data["state"] == "online" } }
            let job = try await till.request("print", ["receipt": Self.receipt])["job"]!
            _ = try await till.collect { $0.contains { $0.data["job"] == job && $0.data["state"] == "done" } }
        }
        try await poll("the job's last byte on the wire") { fake.received.suffix(4) == [0x1D, 0x56, 66, 0] }
        // What crossed the wire reads back as the receipt, in the printer's own code page.
        let lines = VirtualPrinter.decode(fake.received, profile: try Self.profile("TM-T20II"))
        let texts = lines.map(\.text).filter { !$0.isEmpty }
        #expect(texts.contains("Grüße aus Köln"), "\(texts)")
        #expect(texts.contains { $0.hasPrefix("Flat white x2") && $0.hasSuffix("7,00 €") }, "\(texts)")
        #expect(lines.contains { $0.kind == .barcode(type: "code128", data: "R-1001") })
        #expect(fake.received.count(of: [0x1B, 0x40]) == 1, "the job once")
    }

    @Test("TCP 9100: the receipt's bytes leave on the wire once, status answered")
    func tcp() async throws {
        let fake = try await FakePrinterProcess("tcp")
        try await printAndRead(fake, locator: "host = \"127.0.0.1\"\nport = \(fake.address)")
    }

    @Test("serial through a pty: the same receipt, with the line's settings")
    func serial() async throws {
        let fake = try await FakePrinterProcess("pty")
        try await printAndRead(fake, locator: "path = \"\(fake.address)\"\nbaud = 38400")
    }

    @Test("a pole display through a pty: set up once, each update rewrites both rows, display.updated says what shows")
    func poleDisplay() async throws {
        let fake = try await FakePrinterProcess("pty")
        let config = """
            [[device]]
            name = "pole"
            role = "display"
            driver = "cd5220-display"
            path = "\(fake.address)"
            code_page = "cp858"
            brightness = 4
            """
        let daemon = try await DaemonUnderTest(config: config, demo: false)
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["display.*"]])
            try await till.request("display", ["lines": ["Flat white x2", "7,00 € and more than fits"]])
            let shown = try await till.collect { $0.count >= 1 }[0]
            #expect(shown.data["lines"] == ["Flat white x2", "7,00 € and more than"])
        }
        func padded(_ bytes: [UInt8]) -> [UInt8] { bytes + [UInt8](repeating: 0x20, count: 20 - bytes.count) }
        let expected: [UInt8] = [0x1B, 0x40, 0x1B, 0x2A, 4, 0x1B, 0x74, 19]
            + [0x1B, 0x51, 0x41] + padded(Array("Flat white x2".utf8)) + [0x0D]
            + [0x1B, 0x51, 0x42] + Array("7,00 ".utf8) + [0xD5] + Array(" and more than".utf8) + [0x0D]
        try await poll("the update on the line") { fake.received.count >= expected.count }
        // What follows, on a loaded machine, is the second row scrolling (it is longer than the
        // glass): the update itself is the first bytes.
        #expect(Array(fake.received.prefix(expected.count)) == expected)
    }

    @Test("paper out on a TCP printer: the job waits, the state says why, and it prints once when paper is back")
    func paperOutThenBack() async throws {
        let fake = try await FakePrinterProcess("tcp")
        try fake.set("paper-out")
        let daemon = try await DaemonUnderTest(config: config("host = \"127.0.0.1\"\nport = \(fake.address)"), demo: false)
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.*", "device.*"], "since": 0])
            _ = try await till.collect { $0.contains { $0.topic == "printer.status" && $0.data["paper"] == "out" } }
            let job = try await till.request("print", ["receipt": Self.receipt])["job"]!
            let devices = try await till.request("devices")["devices"]?.arrayValue ?? []
            #expect(devices.first?["state"] == "error" && devices.first?["reason"] == "paper out: load a new roll", "\(devices)")
            try fake.set("ok")
            let events = try await till.collect { $0.contains { $0.data["job"] == job && $0.data["state"] == "done" } }
            #expect(events.contains { $0.topic == "printer.status" && $0.data["paper"] == "ok" })
        }
        #expect(fake.received.count(of: [0x1B, 0x40]) == 1, "printed once")
    }
}

extension PrinterTransportTests {
    /// A profile's code pages as the printer database has them (the printer's view of `ESC t`).
    static func profile(_ name: String) throws -> PrinterProfile {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/TillDrivers/Quirks/printer-profiles.json")
        let root = try JSONText.decode(try Data(contentsOf: file))
        var pages: [Int: String] = [:]
        for (number, page) in root["profiles"]?[name]?["code_pages"]?.objectValue ?? [:] { pages[Int(number)!] = page.stringValue }
        return PrinterProfile(name: name, codePages: pages)
    }
}

extension Array where Element == UInt8 {
    func count(of needle: [UInt8]) -> Int {
        guard count >= needle.count else { return 0 }
        return (0...(count - needle.count)).filter { self[$0..<$0 + needle.count].elementsEqual(needle) }.count
    }
}
