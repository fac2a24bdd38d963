import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing
import TillClient
import TillCore
import TillWeb

/// A page served from its own origin, for the browser to load (a web POS's page, in small).
struct StaticPage: HTTPResponder {
    let html: String
    func respond(to request: HTTPRequest) async -> HTTPResponse {
        HTTPResponse(.ok, headers: [("Content-Type", "text/html; charset=utf-8")], body: ByteBuffer(string: html))
    }
}

/// till-web in front of `tilld --demo`, used by a real browser (headless Chromium): a web POS
/// page of another origin pairs, subscribes over the WebSocket, prints and receives a scan;
/// the customer screen shows a live basket and its form publishes one `customer.identified`.
@Suite("till-web in a real browser (headless Chromium)", .serialized, .timeLimit(.minutes(4)))
struct BrowserTests {
    /// The bridge as till-web assembles it, on a free loopback port.
    static func startBridge(daemon: DaemonUnderTest, origins: [String]) async throws -> (port: Int, stop: Task<Void, any Error>) {
        let (port, _, stop) = try await startBridge(daemon: daemon, origins: origins, https: false)
        return (port, stop)
    }

    /// With `https`, HTTPS too on another free port (its authority made in the state directory).
    static func startBridge(daemon: DaemonUnderTest, origins: [String], https: Bool) async throws -> (port: Int, httpsPort: Int?, stop: Task<Void, any Error>) {
        var settings = WebConfig()
        settings.port = 0
        if https { settings.tlsListen = ("127.0.0.1", 0) }
        settings.socket = daemon.socket
        settings.origins = origins
        settings.stateDirectory = daemon.directory + "/web"
        var logger = Logger(label: "till-web-test")
        logger.logLevel = .warning
        let bridge = try WebBridge(settings: settings, logger: logger)
        let listeners = try await bridge.bind()
        let port = try #require(listeners.http.channel.localAddress?.port)
        return (port, listeners.https?.channel.localAddress?.port, Task { try await bridge.run(listeners) })
    }

    /// The POS's page: pairs with the code it is given, opens the WebSocket, subscribes,
    /// prints, and keeps what it receives in `window.state` for the test to read.
    static let posPage = #"""
    <!doctype html><html><body><pre id="log"></pre><script>
    const params = new URLSearchParams(location.search);
    const bridge = params.get("bridge");
    window.state = { step: "pairing", scans: [], printed: null, done: null, error: null };
    (async () => {
      try {
        // JSON: a preflighted request, as a real POS page makes it.
        const response = await fetch(bridge + "/pair", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code: params.get("code") }) });
        const answer = await response.json();
        if (!answer.token) throw new Error("pairing refused: " + response.status + " " + JSON.stringify(answer));
        state.step = "connecting";
        const ws = new WebSocket(bridge.replace(/^http/, "ws") + "/ws?token=" + encodeURIComponent(answer.token));
        ws.onmessage = (m) => {
          const msg = JSON.parse(m.data);
          if (msg.type === "hello") {
            ws.send(JSON.stringify({ id: "sub", op: "subscribe", topics: ["scanner.data", "printer.job"] }));
          } else if (msg.type === "reply" && msg.id === "sub") {
            state.step = "subscribed";
            ws.send(JSON.stringify({ id: "print", op: "print", receipt: { lines: [{ text: "Printed from a browser" }, { cut: "partial" }] } }));
          } else if (msg.type === "reply" && msg.id === "print") {
            state.printed = msg.ok ? msg.result.job : "refused: " + JSON.stringify(msg.error);
          } else if (msg.type === "event" && msg.topic === "scanner.data") {
            state.scans.push(msg.data.text);
          } else if (msg.type === "event" && msg.topic === "printer.job" && msg.data.state === "done") {
            state.done = msg.data.job;
          }
        };
        ws.onclose = (event) => { state.closed = event.code; };
      } catch (error) {
        state.error = String(error);
      }
    })();
    </script></body></html>
    """#

    @Test("a web POS page of an allowed origin pairs (through a real CORS preflight), subscribes over the WebSocket, prints, and receives a live scan")
    func posPageInChromium() async throws {
        let daemon = try await DaemonUnderTest()
        // The POS's own page, on its own origin.
        var quiet = Logger(label: "page-server")
        quiet.logLevel = .warning
        let pages = HTTPServer(responder: StaticPage(html: Self.posPage), logger: quiet)
        let pageListener = try await pages.bind(host: "127.0.0.1", port: 0)
        let pagePort = try #require(pageListener.channel.localAddress?.port)
        let serving = Task { try await pages.serve(pageListener) }
        defer { serving.cancel() }
        let origin = "http://127.0.0.1:\(pagePort)"
        let (port, bridge) = try await Self.startBridge(daemon: daemon, origins: [origin])
        defer { bridge.cancel() }

        let (code, out, err) = try await offThePool { try runProcess(Binaries.directory.appendingPathComponent("tillctl").path, ["web", "pair", origin, "--state-dir", daemon.directory + "/web"]) }
        #expect(code == 0, "\(err)")
        let shown = String(out.split(separator: "\n").first?.split(separator: " ").last ?? "")

        let browser = try await offThePool { try HeadlessChromium.launch() }
        defer { browser.quit() }
        try await offThePool {
            try browser.open("\(origin)/?bridge=http://127.0.0.1:\(port)&code=\(shown)")
            try browser.wait(for: "the page to pair and subscribe", until: "state.step === 'subscribed' || state.error !== null")
        }
        #expect(try await offThePool { try browser.evaluate("state.error") } == .null)
        try await daemon.connect { till in
            _ = try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "4006381333931"]])
        }
        try await offThePool {
            try browser.wait(for: "the scan in the page", until: "state.scans.includes('4006381333931')")
            try browser.wait(for: "the print to be done", until: "state.done !== null && state.done === state.printed")
        }
        let paper = try String(contentsOfFile: daemon.stateDirectory + "/demo/sim-printer.txt", encoding: .utf8)
        #expect(paper.contains("Printed from a browser"))
    }

    /// tilld, till-web and Chromium showing the customer screen's welcome, for `body`; all
    /// three stopped after it.
    static func onTheScreen(origins: [String], _ body: (DaemonUnderTest, Int, HeadlessChromium) async throws -> Void) async throws {
        let daemon = try await DaemonUnderTest()
        let (port, bridge) = try await startBridge(daemon: daemon, origins: origins)
        defer { bridge.cancel() }
        let browser = try await offThePool { try HeadlessChromium.launch() }
        defer { browser.quit() }
        try await offThePool {
            try browser.open("http://127.0.0.1:\(port)/screen")
            try browser.wait(for: "the welcome", until: "document.getElementById('heading').textContent === 'Welcome'")
        }
        try await body(daemon, port, browser)
    }

    static func publish(_ till: TillConnection, _ topic: String, _ data: JSONValue) async throws {
        _ = try await till.request("publish", ["topic": .string(topic), "data": data])
    }

    @Test("the customer screen shows the basket live; the customer's form produces one customer.identified for the sale; the change shows once paid")
    func customerScreenInChromium() async throws {
        try await Self.onTheScreen(origins: []) { daemon, port, browser in
            try await daemon.connect { till in
                try await Self.publish(till, "sale.started", ["sale": "S-1001", "till": "T1"])
                try await Self.publish(till, "sale.line", ["sale": "S-1001", "name": "Flat white", "qty": 2, "unit_price": "3.50", "amount": "7.00"])
                try await Self.publish(till, "sale.line", ["sale": "S-1001", "name": "Almond croissant", "qty": 1, "unit_price": "3.20", "amount": "3.20"])
            }
            try await offThePool {
                try browser.wait(for: "two lines and the total", until: "document.querySelectorAll('#lines li').length === 2 && document.getElementById('total').textContent === '10.20'")
                // The customer types their own email and ticks one box.
                try browser.click("#email")
                try browser.type("anna@example.org")
                try browser.click("#email_marketing")
            }
            if let path = ProcessInfo.processInfo.environment["TILL_SCREENSHOT"] {
                // docs/images/customer-screen.png was taken this way.
                try await offThePool { try browser.screenshot().write(to: URL(fileURLWithPath: path)) }
            }
            try await offThePool {
                try browser.click("#send")
                try browser.wait(for: "the thank-you", until: "!document.getElementById('thanks').hidden")
                // Sent again (a second tap, the form shown again): still one.
                _ = try browser.evaluate("fetch('/screen/identify', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({sale: 'S-1001', email: 'anna@example.org'})}).then(r => r.status)")
            }
            try await daemon.connect { till in
                try await Self.publish(till, "sale.line", ["sale": "S-1001", "name": "<b>Oat milk</b>", "qty": 1, "unit_price": "0.40", "amount": "0.40"])
            }
            try await offThePool {
                try browser.wait(for: "the third line", until: "document.querySelectorAll('#lines li').length === 3 && document.getElementById('total').textContent === '10.60'")
                // A name is text, never markup.
                #expect(try browser.evaluate("document.querySelector('#lines').innerText.includes('<b>Oat milk</b>')") == .bool(true))
                #expect(try browser.evaluate("document.querySelectorAll('#lines b').length") == .int(0))
            }
            try await daemon.connect { till in
                try await Self.publish(till, "sale.tender", ["sale": "S-1001", "method": "cash", "amount": "20.00"])
                try await Self.publish(till, "sale.completed", ["sale": "S-1001", "total": "10.60", "currency": "EUR"])
            }
            try await offThePool {
                try browser.wait(for: "the change", until: "document.getElementById('change').textContent === 'EUR 9.40'")
            }
            // Everything journaled so far, up to a marker published after it: one identification.
            let identified = try await daemon.connect { till in
                try await till.request("subscribe", ["topics": ["customer.identified", "test.marker"], "since": 0])
                try await Self.publish(till, "test.marker", [:])
                var found: [Event] = []
                for try await line in till.events {
                    guard case .event(let event) = line else { continue }
                    if event.topic == "test.marker" { break }
                    found.append(event)
                }
                return found
            }
            #expect(identified.count == 1, "\(identified)")
            #expect(identified.first?.data == ["sale": "S-1001", "email": "anna@example.org", "consent": ["email_marketing": true]])
        }
    }

    @Test("Odoo's POS, which publishes no sale events, still fills the customer screen: its customer display order shows line by line, with no form; close brings back the welcome")
    func odooOrderOnTheScreen() async throws {
        try await Self.onTheScreen(origins: [OdooBridgeTests.origin]) { _, port, browser in
            let base = try #require(URL(string: "http://127.0.0.1:\(port)"))
            let order: JSONValue = ["lines": [["productName": "Flat white", "qty": "1.00", "price": "€ 3.20"], ["productName": "<i>Croissant</i>", "qty": "2.00", "price": "€ 5.00"]],
                                    "amount": "€ 8.20", "change": false, "finalized": false, "paymentLines": []]
            #expect(try await OdooBridgeTests.rpc(base, "/hw_proxy/customer_facing_display", ["action": "set", "data": order]).1?["status"] == "updated")
            try await offThePool {
                try browser.wait(for: "Odoo's two lines and total", until: "document.querySelectorAll('#lines li').length === 2 && document.getElementById('total').textContent === '€ 8.20'")
                #expect(try browser.evaluate("document.getElementById('side').hidden") == .bool(true), "no sale on tilld's socket: no form")
                #expect(try browser.evaluate("document.querySelectorAll('#lines i').length") == .int(0), "a name is text, never markup")
            }
            #expect(try await OdooBridgeTests.rpc(base, "/hw_proxy/customer_facing_display", ["action": "close"]).1?["status"] == "closed")
            try await offThePool {
                try browser.wait(for: "the welcome again", until: "document.getElementById('heading').textContent === 'Welcome'")
            }
        }
    }

    @Test("HTTPS for the LAN: with till-web's local authority trusted (as `tillctl web trust` says), Chromium loads the customer screen at the till's address over https and its live basket over wss; a browser that does not trust it gets no page")
    func httpsWithTheLocalAuthority() async throws {
        let daemon = try await DaemonUnderTest()
        let (_, httpsPort, bridge) = try await Self.startBridge(daemon: daemon, origins: [], https: true)
        defer { bridge.cancel() }
        let port = try #require(httpsPort)
        let authority = daemon.directory + "/web/tls/ca.pem"

        let stranger = try await offThePool { try HeadlessChromium.launch() }
        try await offThePool {
            try stranger.open("https://127.0.0.1:\(port)/screen")
            try stranger.wait(for: "the certificate error page", until: "location.href.startsWith('chrome-error:')", timeout: 30)
        }
        stranger.quit()

        let browser = try await offThePool { try HeadlessChromium.launch(trusting: authority) }
        defer { browser.quit() }
        try await offThePool {
            try browser.open("https://127.0.0.1:\(port)/screen")
            try browser.wait(for: "the screen over https", until: "location.protocol === 'https:' && document.getElementById('heading').textContent === 'Welcome'")
        }
        try await daemon.connect { till in
            try await Self.publish(till, "sale.line", ["sale": "S-2002", "name": "Espresso", "qty": 1, "unit_price": "2.10", "amount": "2.10"])
        }
        try await offThePool {
            try browser.wait(for: "the basket over wss", until: "document.getElementById('total').textContent === '2.10'")
        }
    }
}
