import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc
import Logging
import NIOCore
import Testing
import TillClient
import TillCore
import TillWeb
import TillWebPairing

/// A page paired with the till speaks the socket protocol over the bridge's WebSocket.
@Suite("till-web's WebSocket in front of tilld --demo", .timeLimit(.minutes(2)))
struct WebSocketBridgeTests {
    static let origin = "https://pos.example.com"

    @Test("tillctl web pair shows a code; the page trades it for a token; with it the WebSocket carries the protocol: hello, subscribe, a live scan, a print; without it, or from another origin, no upgrade")
    func pairedPage() async throws {
        let daemon = try await DaemonUnderTest()
        let state = daemon.directory + "/web"
        var quiet = Logger(label: "till-web-test")
        quiet.logLevel = .warning
        let logger = quiet
        let origins = OriginPolicy(allowed: [Self.origin])
        let pairing = PairedTokens(directory: PairingDirectory(path: state))
        let odoo = OdooProxy(till: SocketTillLink(socket: daemon.socket), scans: ScanFeed(), logger: logger)
        let server = HTTPServer(
            responder: Bridge(origins: origins, odoo: odoo, pairing: pairing, logger: logger),
            webSocket: WebSocketRelay(socket: daemon.socket, origins: origins, tokens: pairing, logger: logger), logger: logger)
        let listener = try await server.bind(host: "127.0.0.1", port: 0)
        let port = try #require(listener.channel.localAddress?.port)
        let serving = Task { try await server.serve(listener) }
        defer { serving.cancel() }

        // The technician: a code on the till's terminal.
        let (code, out, err) = try await offThePool { try runProcess(Binaries.directory.appendingPathComponent("tillctl").path, ["web", "pair", Self.origin, "--state-dir", state]) }
        #expect(code == 0, "\(err)")
        // "pairing code for https://pos.example.com: 123456"
        let firstLine = out.split(separator: "\n").first ?? ""
        let shown = String(firstLine.split(separator: " ").last ?? "")
        #expect(shown.count == 6, "\(out)")
        // The page: the code for a token.
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/pair")!)
        request.httpMethod = "POST"
        request.setValue(Self.origin, forHTTPHeaderField: "Origin")
        request.httpBody = Data(JSONText.encode(["code": .string(shown)]).utf8)
        let (body, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200, "\(String(decoding: body, as: UTF8.self))")
        let token = try #require(try JSONText.decode(body)["token"]?.stringValue)
        let (again, _) = try await URLSession.shared.data(for: request)
        #expect(try JSONText.decode(again)["token"] == nil, "a code is good once")

        // Without the token, with a wrong one, or from another origin: no upgrade.
        for (path, origin, expected) in [("/ws", Self.origin, 401), ("/ws?token=00", Self.origin, 401), ("/ws?token=\(token)", "https://evil.example", 403)] {
            let (status, _) = try await offThePool { try TinyWebSocket.open(port: port, path: path, origin: origin) }
            #expect(status == expected, "\(path) from \(origin)")
        }

        // With it: the protocol, one message per frame.
        let (status, page) = try await offThePool { try TinyWebSocket.open(port: port, path: "/ws?token=\(token)", origin: Self.origin) }
        #expect(status == 101)
        let hello = try await offThePool { try page.receive { $0["type"] == "hello" } }
        #expect(hello["protocol"] == 1)
        page.sendText(#"{"id":"s","op":"subscribe","topics":["scanner.data","printer.job"]}"#)
        #expect(try await offThePool { try page.receive { $0["type"] == "reply" } }["ok"] == true)
        try await daemon.connect { till in
            _ = try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "4006381333931"]])
        }
        let scan = try await offThePool { try page.receive { $0["type"] == "event" && $0["topic"] == "scanner.data" } }
        #expect(scan["data"]?["text"] == "4006381333931")
        page.sendText(#"{"id":"p","op":"print","receipt":{"lines":[{"text":"Paired page"},{"cut":"partial"}]}}"#)
        let printed = try await offThePool { try page.receive { $0["type"] == "reply" && $0["id"] == "p" } }
        #expect(printed["ok"] == true, "\(printed)")
        _ = try await offThePool { try page.receive { $0["topic"] == "printer.job" && $0["data"]?["state"] == "done" } }
        let paper = try String(contentsOfFile: daemon.stateDirectory + "/demo/sim-printer.txt", encoding: .utf8)
        #expect(paper.contains("Paired page"))
    }
}
