import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TillCore
import TillESCPOS
@testable import TillWeb

/// A tilld that remembers what it was asked.
final class FakeTill: TillLink {
    struct State {
        var printed: [JSONValue] = []
        var drawers = 0
        var devices: [JSONValue] = [
            ["name": "front-printer", "role": "printer", "state": "online"],
            ["name": "scanner", "role": "scanner", "state": "offline"],
        ]
        var failPrints = false
        var shown: [[String]] = []
        var published: [(topic: String, data: JSONValue)] = []
        var failPublishes = false
    }
    let state = Mutex(State())

    func devices() async throws -> [JSONValue] { state.withLock { $0.devices } }
    func openDrawer() async throws { state.withLock { $0.drawers += 1 } }
    func display(_ lines: [String]) async throws { state.withLock { $0.shown.append(lines) } }
    func publish(_ topic: String, _ data: JSONValue) async throws -> Int64 {
        // A durable publish takes a moment: a second submit can arrive meanwhile.
        try await Task.sleep(for: .milliseconds(20))
        return try state.withLock { state in
            if state.failPublishes { throw WireError(.deviceError, "journal cannot commit") }
            state.published.append((topic, data))
            return Int64(state.published.count)
        }
    }
    func print(_ receipt: JSONValue) async throws -> String {
        try state.withLock { state in
            if state.failPrints { throw WireError(.deviceError, "printer offline") }
            state.printed.append(receipt)
            return "J\(state.printed.count)"
        }
    }
}

func rpc(_ path: String, _ params: JSONValue = [:], origin: String? = "https://shop.example", id: Int64 = 7, peer: String? = nil) -> HTTPRequest {
    var headers = HTTPHeaders([("Content-Type", "application/json")])
    if let origin { headers.add(name: "Origin", value: origin) }
    let body = JSONText.encode(["jsonrpc": "2.0", "method": "call", "params": params, "id": .int(id)])
    return HTTPRequest(method: .POST, uri: path, headers: headers, body: ByteBuffer(string: body), peer: peer)
}

func result(_ response: HTTPResponse) throws -> JSONValue? {
    try JSONText.decode(response.body.readableBytesView)["result"]
}

/// A receipt as Odoo's canvas would send it: a grey JPEG, base64.
func receiptJPEG(width: Int = 512, height: Int = 300) -> String {
    var pixels = [UInt8](repeating: 255, count: width * height)
    for y in stride(from: 20, to: height - 20, by: 30) { for x in 30..<(width - 30) { pixels[y * width + x] = 0 } }
    return ReceiptPicture.jpeg(GrayImage(width: width, height: height, pixels: pixels))!.base64EncodedString()
}

@Suite("till-web: origins, CORS and Odoo's hw_proxy routes")
struct BridgeTests {
    static func bridge(_ till: FakeTill = FakeTill(), retry: Duration = .seconds(60), scannerWait: Duration = .seconds(50)) -> Bridge {
        let logger = Logger(label: "test")
        return Bridge(origins: OriginPolicy(allowed: ["https://Shop.Example:443/"]),
                      odoo: OdooProxy(till: till, scans: ScanFeed(), retries: RetryWindow(window: retry), scannerWait: scannerWait, logger: logger), logger: logger)
    }

    @Test("an allowed origin is answered with its CORS headers; an unknown one is refused and never served")
    func origins() async throws {
        let till = FakeTill()
        let bridge = Self.bridge(till)
        let allowed = await bridge.respond(to: rpc("/hw_proxy/handshake"))
        #expect(allowed.status == .ok)
        #expect(try result(allowed) == .bool(true))
        #expect(allowed.headers.contains { $0 == ("Access-Control-Allow-Origin", "https://shop.example") })
        let refused = await bridge.respond(to: rpc("/hw_proxy/default_printer_action", ["data": ["action": "cashbox"]], origin: "https://evil.example"))
        #expect(refused.status == .forbidden)
        #expect(String(buffer: refused.body).contains("[web] origins"))
        #expect(!refused.headers.contains { $0.0 == "Access-Control-Allow-Origin" })
        #expect(till.state.withLock { $0.drawers } == 0, "a refused page opens nothing")
        let sandboxed = await bridge.respond(to: rpc("/hw_proxy/handshake", origin: "null"))
        #expect(sandboxed.status == .forbidden)
    }

    @Test("a preflight from an allowed origin gets the methods, the asked headers and Chrome's local network permission")
    func preflight() async throws {
        let bridge = Self.bridge()
        let headers = HTTPHeaders([
            ("Origin", "https://shop.example"), ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"), ("Access-Control-Request-Private-Network", "true"),
        ])
        let answer = await bridge.respond(to: HTTPRequest(method: .OPTIONS, uri: "/hw_proxy/status_json", headers: headers))
        #expect(answer.status == .noContent)
        let names = Dictionary(answer.headers, uniquingKeysWith: { a, _ in a })
        #expect(names["Access-Control-Allow-Origin"] == "https://shop.example")
        #expect(names["Access-Control-Allow-Methods"]?.contains("POST") == true)
        #expect(names["Access-Control-Allow-Headers"] == "content-type")
        #expect(names["Access-Control-Allow-Private-Network"] == "true")
        var evil = headers
        evil.replaceOrAdd(name: "Origin", value: "https://evil.example")
        #expect(await bridge.respond(to: HTTPRequest(method: .OPTIONS, uri: "/hw_proxy/status_json", headers: evil)).status == .forbidden)
    }

    @Test("hello is plain ping; status_json says connected or disconnected per driver from tilld's devices; the id comes back")
    func helloAndStatus() async throws {
        let bridge = Self.bridge()
        let hello = await bridge.respond(to: HTTPRequest(method: .GET, uri: "/hw_proxy/hello", headers: HTTPHeaders([("Origin", "https://shop.example")])))
        #expect(String(buffer: hello.body) == "ping")
        let status = await bridge.respond(to: rpc("/hw_proxy/status_json", id: 41))
        let body = try JSONText.decode(status.body.readableBytesView)
        #expect(body["id"] == .int(41) && body["jsonrpc"] == "2.0")
        #expect(body["result"]?["printer"]?["status"] == "connected")
        #expect(body["result"]?["scanner"]?["status"] == "disconnected")
        #expect(body["result"]?["scanner"]?["messages"]?.stringValue?.contains("offline") == true)
    }

    @Test("print_receipt: the JPEG becomes a receipt picture spooled once; the same picture again within the window is not printed twice; a failed print is retried")
    func printReceipt() async throws {
        let till = FakeTill()
        let bridge = Self.bridge(till)
        let picture = receiptJPEG()
        let first = await bridge.respond(to: rpc("/hw_proxy/default_printer_action", ["data": ["action": "print_receipt", "receipt": .string(picture)]]))
        #expect(try result(first) == .bool(true))
        let again = await bridge.respond(to: rpc("/hw_proxy/default_printer_action", ["data": ["action": "print_receipt", "receipt": .string(picture)]]))
        #expect(try result(again) == .bool(true))
        let printed = till.state.withLock { $0.printed }
        #expect(printed.count == 1, "a retry is answered, not printed")
        let png = try #require(printed.first?["lines"]?.arrayValue?.first?["image"]?["png"]?.stringValue)
        let document = try ReceiptDocument(json: try #require(printed.first))
        #expect(document.lines.count == 3)
        #expect(Data(base64Encoded: png)?.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "the picture goes to tilld as PNG")

        till.state.withLock { $0.failPrints = true }
        let other = receiptJPEG(width: 400)
        let failed = await bridge.respond(to: rpc("/hw_proxy/default_printer_action", ["data": ["action": "print_receipt", "receipt": .string(other)]]))
        #expect(try result(failed) == .bool(false), "the POS is told, and says the printer is not reachable")
        till.state.withLock { $0.failPrints = false }
        let retried = await bridge.respond(to: rpc("/hw_proxy/default_printer_action", ["data": ["action": "print_receipt", "receipt": .string(other)]]))
        #expect(try result(retried) == .bool(true))
        #expect(till.state.withLock { $0.printed.count } == 2, "after a failure the retry prints")
    }

    @Test("a receipt that is not a JPEG is refused with false and nothing is spooled; cashbox opens the drawer; an unknown action is false")
    func badInput() async throws {
        let till = FakeTill()
        let bridge = Self.bridge(till)
        for receipt in ["not base64 at all!", Data("GIF89a".utf8).base64EncodedString()] {
            let answer = await bridge.respond(to: rpc("/hw_proxy/default_printer_action", ["data": ["action": "print_receipt", "receipt": .string(receipt)]]))
            #expect(try result(answer) == .bool(false))
        }
        #expect(till.state.withLock { $0.printed.isEmpty })
        let cashbox = await bridge.respond(to: rpc("/hw_proxy/default_printer_action", ["data": ["action": "cashbox"]]))
        #expect(try result(cashbox) == .bool(true))
        #expect(till.state.withLock { $0.drawers } == 1)
        #expect(try result(await bridge.respond(to: rpc("/hw_proxy/default_printer_action", ["data": ["action": "print_label"]]))) == .bool(false))
        let notJSON = await bridge.respond(to: HTTPRequest(method: .POST, uri: "/hw_proxy/handshake", body: ByteBuffer(string: "{oops")))
        #expect(notJSON.status == .badRequest)
        let get = await bridge.respond(to: HTTPRequest(method: .GET, uri: "/hw_proxy/handshake"))
        #expect(get.status == .methodNotAllowed)
    }

    @Test("the scanner long-poll: a waiting call gets the next scan; a scan older than 5 s is not handed out; a new call ends the one before; nothing scanned answers empty")
    func scannerLongPoll() async throws {
        let feed = ScanFeed(freshFor: .milliseconds(300))
        let waiting = Task { await feed.next(timeout: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(50))
        await feed.arrived("4006381333931")
        #expect(await waiting.value == "4006381333931")
        // A scan nobody waited for is handed to the next call while fresh.
        await feed.arrived("LOY-1")
        #expect(await feed.next(timeout: .seconds(1)) == "LOY-1")
        // A second call ends the first one's wait, empty.
        let first = Task { await feed.next(timeout: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(50))
        let second = Task { await feed.next(timeout: .seconds(10)) }
        #expect(await first.value == "")
        try await Task.sleep(for: .milliseconds(50))
        await feed.arrived("X")
        #expect(await second.value == "X")
        #expect(await feed.next(timeout: .milliseconds(100)) == "", "nothing scanned: empty after the timeout")
        await feed.arrived("STALE")
        try await Task.sleep(for: .milliseconds(400))
        #expect(await feed.next(timeout: .milliseconds(100)) == "", "a scan nobody took while it was fresh is not handed out later")
    }

    @Test("Odoo 18's customer display: set shows the last item and the total (then the change), get gives the data back, close clears; bare bodies too")
    func customerDisplay18() async throws {
        let till = FakeTill()
        let bridge = Self.bridge(till)
        let order: JSONValue = ["lines": [["productName": "Flat white", "qty": "1", "price": "3.20"], ["productName": "Croissant au beurre", "qty": "2", "price": "5.00"]],
                                "amount": "8.20", "change": false, "finalized": false, "paymentLines": []]
        _ = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["action": "set", "data": order]))
        #expect(till.state.withLock { $0.shown.last } == ["Croissant au x2 5.00", "Total           8.20"])
        let got = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["action": "get"]))
        #expect(try result(got)?["data"]?["amount"] == "8.20")
        // Odoo 18 also sends the body bare, without JSON-RPC's params.
        let paid: JSONValue = ["action": "set", "data": ["lines": [], "amount": "8.20", "change": "1.80", "finalized": true, "paymentLines": [["name": "Cash", "amount": "10.00"]]]]
        _ = await bridge.respond(to: HTTPRequest(method: .POST, uri: "/hw_proxy/customer_facing_display", headers: HTTPHeaders([("Origin", "https://shop.example")]),
                                                 body: ByteBuffer(string: JSONText.encode(paid))))
        #expect(till.state.withLock { $0.shown.last } == ["Total           8.20", "Change          1.80"])
        _ = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["action": "close"]))
        #expect(till.state.withLock { $0.shown.last } == [])
    }

    @Test("Odoo 16/17's customer display: the machine that takes control owns it; the order comes out of the HTML; another machine is refused")
    func customerDisplay16() async throws {
        let till = FakeTill()
        let bridge = Self.bridge(till)
        let html = #"<div class="pos-customer_facing_display"><div class="pos_orderlines">Flat white 3.20</div><div class="pos-total"><span>Total</span> <span class="pos_total-amount">€&nbsp;3.20</span></div></div>"#
        #expect(try result(await bridge.respond(to: rpc("/hw_proxy/test_ownership", peer: "10.0.0.5")))?["status"] == "NOWNER")
        _ = await bridge.respond(to: rpc("/hw_proxy/take_control", ["html": .string(html)], peer: "10.0.0.5"))
        #expect(try result(await bridge.respond(to: rpc("/hw_proxy/test_ownership", peer: "10.0.0.5")))?["status"] == "OWNER")
        #expect(till.state.withLock { $0.shown.last } == ["Total         € 3.20"])
        let other = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["html": .string(html)], peer: "10.0.0.9"))
        #expect(try result(other)?["status"] == "failed")
        let mine = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["html": .string(html.replacingOccurrences(of: "3.20", with: "6.40"))], peer: "10.0.0.5"))
        #expect(try result(mine)?["status"] == "updated")
        #expect(till.state.withLock { $0.shown.last } == ["Total         € 6.40"])
        let page = OdooDisplayHTMLTests.page(lines: [("Flat white", "1.00", "€&nbsp;3.20")], total: "€&nbsp;3.20")
        _ = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["html": .string(page)], peer: "10.0.0.5"))
        #expect(till.state.withLock { $0.shown.last } == ["Flat white    € 3.20", "Total         € 3.20"])
    }

    @Test("config: listen, socket, origins and the retry window; a mistake names the key and what to write")
    func config() throws {
        let config = try WebConfig.parse("""
            [web]
            listen = "0.0.0.0:9000"
            socket = "/tmp/t.sock"
            origins = ["https://shop.odoo.com"]
            print_retry_seconds = 30
            tls_listen = "0.0.0.0:443"
            tls_names = ["till.shop.lan"]
            customer_screen = false
            """)
        #expect(config.host == "0.0.0.0" && config.port == 9000 && config.socket == "/tmp/t.sock")
        #expect(config.tlsListen?.host == "0.0.0.0" && config.tlsListen?.port == 443 && config.tlsNames == ["till.shop.lan"])
        #expect(!config.customerScreen)
        #expect(try WebConfig.parse("").tlsListen == nil, "no HTTPS unless asked")
        #expect(try WebConfig.parse("").customerScreen)
        do {
            _ = try WebConfig.parse("[web]\ntls_listen = \"https\"")
            Issue.record("a tls_listen without a port was accepted")
        } catch let error as WebConfig.Invalid {
            #expect(error.description.contains("tls_listen") && error.description.contains("443"))
        }
        #expect(config.origins == ["https://shop.odoo.com"] && config.printRetrySeconds == 30)
        #expect(try WebConfig.parse("").port == 8069, "Odoo's IoT port by default")
        #expect(throws: WebConfig.Invalid.self) { try WebConfig.parse("[web]\nlisten = \"localhost\"") }
        #expect(try WebConfig.parse("[web]\nlisten = \"9069\"").host == "127.0.0.1", "a bare port is loopback")
        do {
            _ = try WebConfig.parse("[web]\norigins = [\"shop.odoo.com\"]")
            Issue.record("a bare host was taken as an origin")
        } catch let error as WebConfig.Invalid {
            #expect(error.description.contains("scheme"))
        }
        do {
            _ = try WebConfig.parse("[web]\norigin = [\"https://a.b\"]")
            Issue.record("an unknown key was accepted")
        } catch let error as WebConfig.Invalid {
            #expect(error.description.contains("origins"))
        }
    }
}
