import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import NIOCore
import Testing
import TillClient
import TillCore
import TillESCPOS
import TillWeb

/// The bridge in front of a real tilld (`--demo`), spoken to over HTTP the way Odoo 17/18's
/// POS does (hardware_proxy_service.js, hw_printer.js): hello, handshake, the status loop, a
/// receipt picture, the cash drawer, the barcode long-poll.
@Suite("till-web in front of tilld --demo, as Odoo's POS calls it", .timeLimit(.minutes(2)))
struct OdooBridgeTests {
    static let origin = "https://shop.example"

    /// The bridge on a free loopback port; cancel the task to stop it.
    static func startBridge(socket: String) async throws -> (URL, Task<Void, any Error>) {
        var quiet = Logger(label: "till-web-test")
        quiet.logLevel = .warning
        let logger = quiet
        let scans = ScanFeed()
        let odoo = OdooProxy(till: SocketTillLink(socket: socket), scans: scans, scannerWait: .seconds(20), logger: logger)
        let server = HTTPServer(responder: Bridge(origins: OriginPolicy(allowed: [origin]), odoo: odoo, logger: logger), logger: logger)
        let listener = try await server.bind(host: "127.0.0.1", port: 0)
        let port = try #require(listener.channel.localAddress?.port)
        let running = Task {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await scans.follow(socket: socket, logger: logger) }
                group.addTask { try await server.serve(listener) }
            }
        }
        return (URL(string: "http://127.0.0.1:\(port)")!, running)
    }

    /// A JSON-RPC call as Odoo's `rpc()` makes it, from the POS's page.
    static func rpc(_ base: URL, _ route: String, _ params: JSONValue = [:], origin: String = origin) async throws -> (Int, JSONValue?) {
        var request = URLRequest(url: base.appendingPathComponent(route))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue(origin, forHTTPHeaderField: "Origin")
        request.timeoutInterval = 60
        request.httpBody = Data(JSONText.encode(["id": 1, "jsonrpc": "2.0", "method": "call", "params": params]).utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        return (status, status == 200 ? try JSONText.decode(data)["result"] : nil)
    }

    static func receiptJPEG() -> String {
        let width = 512, height = 400
        var pixels = [UInt8](repeating: 255, count: width * height)
        for y in stride(from: 10, to: height - 10, by: 24) { for x in 20..<(width - 20) where (x / 8) % 3 != 0 { pixels[y * width + x] = 0 } }
        return ReceiptPicture.jpeg(GrayImage(width: width, height: height, pixels: pixels))!.base64EncodedString()
    }

    @Test("hello, handshake, status, a receipt picture printed once as a raster, the drawer once, a scan through the long-poll, the printer going away in the status")
    func odooSession() async throws {
        let daemon = try await DaemonUnderTest()
        let (base, bridge) = try await Self.startBridge(socket: daemon.socket)
        defer { bridge.cancel() }

        // checkProxyAvailability: a plain fetch of /hw_proxy/hello.
        var hello = URLRequest(url: base.appendingPathComponent("/hw_proxy/hello"))
        hello.setValue(Self.origin, forHTTPHeaderField: "Origin")
        let (pong, helloResponse) = try await URLSession.shared.data(for: hello)
        #expect(String(decoding: pong, as: UTF8.self) == "ping")
        #expect((helloResponse as? HTTPURLResponse)?.value(forHTTPHeaderField: "Access-Control-Allow-Origin") == Self.origin)
        #expect(try await Self.rpc(base, "/hw_proxy/handshake").1 == .bool(true))
        let status = try await Self.rpc(base, "/hw_proxy/status_json").1
        #expect(status?["printer"]?["status"] == "connected", "\(String(describing: status))")
        #expect(status?["scanner"]?["status"] == "connected")

        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.job", "drawer.kicked"]])
            // print_receipt: the canvas's JPEG, printed through the spool; the same request again is a retry.
            let picture = Self.receiptJPEG()
            let action: JSONValue = ["data": ["action": "print_receipt", "receipt": .string(picture)]]
            #expect(try await Self.rpc(base, "/hw_proxy/default_printer_action", action).1 == .bool(true))
            #expect(try await Self.rpc(base, "/hw_proxy/default_printer_action", action).1 == .bool(true))
            _ = try await till.collect { events in events.contains { $0.topic == "printer.job" && $0.data["state"] == "done" } }
            #expect(try await Self.rpc(base, "/hw_proxy/default_printer_action", ["data": ["action": "cashbox"]]).1 == .bool(true))
            let kicks = try await till.collect { events in events.contains { $0.topic == "drawer.kicked" } }
            #expect(kicks.filter { $0.topic == "drawer.kicked" }.count == 1)
        }
        let printed = try String(contentsOfFile: daemon.stateDirectory + "/demo/sim-printer.txt", encoding: .utf8)
        #expect(printed.components(separatedBy: "--- job").count == 2, "printed once: \(printed)")
        #expect(printed.contains("[image 512x400 dots]"), "the receipt reached the printer as a raster: \(printed)")

        // Odoo 18's customer display: the order's data, shown on the pole display.
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["display.updated"]])
            let order: JSONValue = ["lines": [["productName": "Flat white", "qty": "1", "price": "3.20"]], "amount": "3.20", "change": false, "finalized": false]
            #expect(try await Self.rpc(base, "/hw_proxy/customer_facing_display", ["action": "set", "data": order]).1?["status"] == "updated")
            let shown = try await till.collect { $0.contains { $0.topic == "display.updated" } }
            #expect(shown.last?.data["lines"] == ["Flat white      3.20", "Total           3.20"], "\(shown)")
        }

        // The barcode long-poll: a call waiting, then a scan at the till.
        async let scanned = Self.rpc(base, "/hw_proxy/scanner")
        try await Task.sleep(for: .milliseconds(300))
        try await daemon.connect { till in
            _ = try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "4006381333931"]])
        }
        #expect(try await scanned.1 == "4006381333931")

        // The printer goes away: the next status round says so.
        try await daemon.connect { till in
            _ = try await till.request("simulate", ["device": "sim-printer", "data": ["plugged": false]])
        }
        var printerStatus: JSONValue?
        for _ in 0..<50 {
            printerStatus = try await Self.rpc(base, "/hw_proxy/status_json").1?["printer"]
            if printerStatus?["status"] == "disconnected" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(printerStatus?["status"] == "disconnected", "\(String(describing: printerStatus))")
    }

    @Test("a page from an unknown origin is refused over HTTP, and its cashbox never reaches tilld")
    func unknownOrigin() async throws {
        let daemon = try await DaemonUnderTest()
        let (base, bridge) = try await Self.startBridge(socket: daemon.socket)
        defer { bridge.cancel() }
        let (status, _) = try await Self.rpc(base, "/hw_proxy/default_printer_action", ["data": ["action": "cashbox"]], origin: "https://evil.example")
        #expect(status == 403)
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["drawer.kicked"], "since": 0])
            let events = try? await till.collect(timeout: .milliseconds(500)) { !$0.isEmpty }
            #expect(events == nil, "no drawer kick: \(events ?? [])")
        }
    }
}
