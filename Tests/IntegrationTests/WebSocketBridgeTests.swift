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

/// A WebSocket client as small as a test can have: the handshake and text frames over a
/// blocking TCP socket (RFC 6455: the client masks what it sends; the server does not).
final class TinyWebSocket: @unchecked Sendable {
    let fd: Int32
    private var pending: [UInt8] = []

    /// Connects and asks for the upgrade; returns the HTTP status line's code and the client
    /// (usable only when the code is 101).
    static func open(port: Int, path: String, origin: String) throws -> (Int, TinyWebSocket) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { throw TimedOut(what: "a TCP connection to the bridge") }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let client = TinyWebSocket(fd: fd)
        client.send(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: \(origin)\r\n\r\n".utf8))
        var head: [UInt8] = []
        while !head.ends(with: Array("\r\n\r\n".utf8)) {
            guard let byte = client.byte() else { break }
            head.append(byte)
        }
        let status = String(decoding: head, as: UTF8.self).split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, client)
    }

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    private func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else { return }
            offset += written
        }
    }

    private func byte() -> UInt8? {
        if pending.isEmpty {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return nil }
            pending = Array(buffer[..<count])
        }
        return pending.removeFirst()
    }

    func sendText(_ text: String) {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        send(frame)
    }

    /// The next text message (nil at close or after 20 s of nothing).
    func receiveText() -> String? {
        while true {
            guard let first = byte(), let second = byte() else { return nil }
            var length = Int(second & 0x7F)
            if length == 126 {
                guard let a = byte(), let b = byte() else { return nil }
                length = Int(a) << 8 | Int(b)
            } else if length == 127 {
                length = 0
                for _ in 0..<8 { guard let next = byte() else { return nil }; length = length << 8 | Int(next) }
            }
            var payload: [UInt8] = []
            for _ in 0..<length { guard let next = byte() else { return nil }; payload.append(next) }
            switch first & 0x0F {
            case 0x1: return String(decoding: payload, as: UTF8.self)
            case 0x8: return nil
            default: continue
            }
        }
    }

    /// Messages until one satisfies `predicate`.
    func receive(until predicate: (JSONValue) -> Bool) throws -> JSONValue {
        while let text = receiveText() {
            let message = try JSONText.decode(text)
            if predicate(message) { return message }
        }
        throw TimedOut(what: "a WebSocket message")
    }
}

extension Array where Element: Equatable {
    fileprivate func ends(with suffix: [Element]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}

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
