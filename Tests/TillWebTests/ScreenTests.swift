import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TillCore
@testable import TillWeb

/// The customer-facing screen: the basket it draws from the sale events, the form's checks,
/// one `customer.identified` per sale, and who may load and post the page.
@Suite("till-web: the customer screen", .timeLimit(.minutes(1)))
struct ScreenTests {
    static let now = Date()

    static func event(_ seq: Int64, _ topic: String, _ data: JSONValue, at time: Date = now) -> Event {
        Event(seq: seq, time: time, topic: topic, device: nil, data: data)
    }

    /// A sale of two lines, paid in cash with 20.00.
    static let sale: [(String, JSONValue)] = [
        ("sale.started", ["sale": "S1", "till": "T1"]),
        ("sale.line", ["sale": "S1", "name": "Flat white", "qty": 2, "unit_price": "3.50", "amount": "7.00"]),
        ("sale.line", ["sale": "S1", "name": "Croissant <b>", "qty": "1", "unit_price": "2.45", "amount": "2.45"]),
        ("sale.tender", ["sale": "S1", "method": "cash", "amount": "20.00"]),
        ("sale.completed", ["sale": "S1", "total": "9.45", "currency": "EUR"]),
    ]

    @Test("lines add up as they come; paid: the total, what was paid and the change; a voided sale empties the screen")
    func basket() {
        var basket = Basket()
        #expect(basket.snapshot["state"] == "idle")
        for (topic, data) in Self.sale.prefix(3) {
            let changed = basket.apply(topic: topic, data: data, time: Self.now)
            #expect(changed)
        }
        let open = basket.snapshot
        #expect(open["state"] == "open")
        #expect(open["sale"] == "S1")
        #expect(open["total"] == "9.45")
        #expect(open["lines"]?.arrayValue?[0]["qty"] == "2")
        #expect(open["lines"]?.arrayValue?[1]["name"] == "Croissant <b>", "a name is data; the page sets it as text")
        #expect(open["change"] == nil)
        // Another sale's tender changes nothing.
        let other = basket.apply(topic: "sale.tender", data: ["sale": "S0", "method": "card", "amount": "5"], time: Self.now)
        #expect(!other)
        for (topic, data) in Self.sale.suffix(2) { basket.apply(topic: topic, data: data, time: Self.now) }
        let paid = basket.snapshot
        #expect(paid["state"] == "paid")
        #expect(paid["paid"] == "20.00")
        #expect(paid["change"] == "10.55")
        #expect(paid["currency"] == "EUR")
        #expect(basket.identifiableSale == "S1", "the customer may still leave their email once paid")

        // The next sale's first line opens a new basket even without sale.started.
        basket.apply(topic: "sale.line", data: ["sale": "S2", "name": "Tea", "qty": 1, "unit_price": "2", "amount": "2"], time: Self.now)
        #expect(basket.snapshot["sale"] == "S2")
        #expect(basket.snapshot["lines"]?.arrayValue?.count == 1)
        basket.apply(topic: "sale.voided", data: ["sale": "S2"], time: Self.now)
        #expect(basket.snapshot["state"] == "voided")
        #expect(basket.snapshot["lines"]?.arrayValue?.isEmpty == true)
        #expect(basket.identifiableSale == nil)
    }

    @Test("a finished sale lingers, then the welcome; one finished long ago (a replay) is not brought back")
    func lingering() {
        var basket = Basket(lingers: .seconds(90))
        for (topic, data) in Self.sale { basket.apply(topic: topic, data: data, time: Self.now) }
        let early = basket.expire(now: Self.now.addingTimeInterval(30))
        let late = basket.expire(now: Self.now.addingTimeInterval(91))
        #expect(!early && late)
        #expect(basket.snapshot["state"] == "idle")

        var replayed = Basket(lingers: .seconds(90))
        let long = Self.now.addingTimeInterval(-3600)
        for (topic, data) in Self.sale { replayed.apply(topic: topic, data: data, time: long) }
        let gone = replayed.expire(now: Self.now)
        #expect(gone)
    }

    @Test("the form: an email is needed; a phone is optional but must look like one; texts need a phone; unticked boxes are not sent")
    func signup() throws {
        let good = try Signup(["sale": "S1", "email": "  anna@example.org ", "phone": "", "consent": ["email_marketing": true, "sms_marketing": false]])
        #expect(good.email == "anna@example.org")
        #expect(good.event == ["sale": "S1", "email": "anna@example.org", "consent": ["email_marketing": true]])
        let quiet = try Signup(["sale": "S1", "email": "a@b.co", "consent": ["email_marketing": false]])
        #expect(quiet.event["consent"] == nil, "an unticked box is not a withdrawal")
        let texts = try Signup(["sale": "S1", "email": "a@b.co", "phone": "+44 7700 900123", "consent": ["sms_marketing": true]])
        #expect(texts.event["phone"] == "+44 7700 900123")
        #expect(texts.event["consent"] == ["sms_marketing": true])

        for (body, field) in [
            (["sale": "S1", "email": "anna"] as JSONValue, "email"),
            (["sale": "S1", "email": "anna@example"], "email"),
            (["sale": "S1", "email": "an na@example.org"], "email"),
            (["sale": "S1", "email": "a@b@example.org"], "email"),
            (["sale": "S1"], "email"),
            (["sale": "S1", "email": "a@b.co", "phone": "call me"], "phone"),
            (["sale": "S1", "email": "a@b.co", "phone": "123"], "phone"),
            (["sale": "S1", "email": "a@b.co", "consent": ["sms_marketing": true]], "phone"),
            (["email": "a@b.co"], "sale"),
        ] {
            #expect(throws: Signup.Refusal.self, "\(body)") { try Signup(body) }
            do { _ = try Signup(body) } catch { #expect(error.field == field, "\(body)") }
        }
    }

    static func screen(_ till: FakeTill, lingers: Duration = .seconds(90)) async -> CustomerScreen {
        let screen = CustomerScreen(till: till, lingers: lingers, logger: Logger(label: "test"))
        for (index, (topic, data)) in sale.prefix(3).enumerated() { await screen.apply(event(Int64(index + 1), topic, data)) }
        return screen
    }

    @Test("the form publishes customer.identified for the sale on the screen, once, however often it is sent, and not for another sale")
    func identifyOnce() async throws {
        let till = FakeTill()
        let screen = await Self.screen(till)
        let form: JSONValue = ["sale": "S1", "email": "anna@example.org", "consent": ["email_marketing": true]]
        // A double tap: two submits at once.
        async let first = screen.identify(form)
        async let second = screen.identify(form)
        let outcomes = await [first, second]
        #expect(outcomes.contains(.published(1)))
        #expect(outcomes.contains(.already))
        #expect(await screen.identify(form) == .already)
        let published = till.state.withLock { $0.published }
        #expect(published.count == 1)
        #expect(published.first?.topic == "customer.identified")
        #expect(published.first?.data == ["sale": "S1", "email": "anna@example.org", "consent": ["email_marketing": true]])
        // The page learns it: the form gives way to a thank-you once tilld's event comes back.
        await screen.apply(Self.event(4, "customer.identified", published[0].data))
        #expect(await screen.snapshot["identified"] == true)

        #expect(await screen.identify(["sale": "S0", "email": "b@example.org"]) == .saleOver)
        #expect(till.state.withLock { $0.published.count } == 1)
    }

    @Test("identified at the till already: the screen thanks them and publishes nothing; tilld refusing: the customer may try again")
    func identifiedElsewhereAndFailures() async throws {
        let till = FakeTill()
        let screen = await Self.screen(till)
        till.state.withLock { $0.failPublishes = true }
        guard case .failed = await screen.identify(["sale": "S1", "email": "anna@example.org"]) else {
            Issue.record("a publish tilld refused must fail")
            return
        }
        till.state.withLock { $0.failPublishes = false }
        #expect(await screen.identify(["sale": "S1", "email": "anna@example.org"]) == .published(1))

        let other = FakeTill()
        let screen2 = await Self.screen(other)
        await screen2.apply(Self.event(9, "customer.identified", ["sale": "S1", "loyalty": "L-77"]))
        #expect(await screen2.snapshot["identified"] == true)
        #expect(await screen2.identify(["sale": "S1", "email": "anna@example.org"]) == .already)
        #expect(other.state.withLock { $0.published.isEmpty })
    }

    @Test("an event read again after a reconnect is not counted twice; watchers get the current basket, then each change")
    func replayAndWatchers() async throws {
        let screen = await Self.screen(FakeTill())
        await screen.apply(Self.event(2, "sale.line", Self.sale[1].1))
        #expect(await screen.snapshot["lines"]?.arrayValue?.count == 2)
        let (id, snapshots) = await screen.watch()
        var feed = snapshots.makeAsyncIterator()
        #expect(try JSONText.decode(try #require(await feed.next()))["total"] == "9.45")
        await screen.apply(Self.event(4, "sale.line", ["sale": "S1", "name": "Jam", "qty": 1, "unit_price": "1", "amount": "1.00"]))
        #expect(try JSONText.decode(try #require(await feed.next()))["total"] == "10.45")
        await screen.unwatch(id)
        #expect(await feed.next() == nil)
    }

    @Test("a paid sale goes back to the welcome on its own once it has lingered")
    func expiresOnItsOwn() async throws {
        let screen = CustomerScreen(till: FakeTill(), lingers: .seconds(1), logger: Logger(label: "test"))
        for (index, (topic, data)) in Self.sale.enumerated() { await screen.apply(Self.event(Int64(index + 1), topic, data, at: Date())) }
        #expect(await screen.snapshot["state"] == "paid")
        let (_, snapshots) = await screen.watch()
        for await text in snapshots where try JSONText.decode(text)["state"] == "idle" { return }
        Issue.record("the screen never went back to idle")
    }

    @Test("Odoo's order (18's data, 16/17's page) on the screen: every line, Odoo's own formatting, no form (no sale on tilld's socket); paid lingers from when it was first paid; close or an empty order is the welcome; a sale event takes over")
    func odooOrder() async throws {
        let till = FakeTill()
        let screen = CustomerScreen(till: till, lingers: .seconds(90), logger: Logger(label: "test"))
        let bridge = Self.bridge(till, screen: screen)
        let order: JSONValue = ["lines": [["productName": "Flat white", "qty": "1.00", "price": "€ 3.20"], ["productName": "Croissant <b>", "qty": "2.00", "price": "€ 5.00"]],
                                "amount": "€ 8.20", "change": false, "finalized": false, "paymentLines": []]
        _ = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["action": "set", "data": order]))
        var shown = await screen.snapshot
        #expect(shown["state"] == "open")
        #expect(shown["lines"]?.arrayValue?.map { $0["qty"] } == ["1", "2"])
        #expect(shown["lines"]?.arrayValue?[1]["name"] == "Croissant <b>")
        #expect(shown["total"] == "€ 8.20")
        #expect(shown["sale"] == nil && shown["currency"] == nil, "no sale to attach a form to; the amounts carry Odoo's currency")
        #expect(till.state.withLock { $0.shown.last } == ["Croissant x2  € 5.00", "Total         € 8.20"], "the pole display too")

        let paid: JSONValue = ["lines": order["lines"]!, "amount": "€ 8.20", "change": "€ 1.80", "finalized": true,
                               "paymentLines": [["name": "Cash", "amount": "€ 10.00"]]]
        _ = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["action": "set", "data": paid]))
        shown = await screen.snapshot
        #expect(shown["state"] == "paid" && shown["change"] == "€ 1.80")
        // Odoo sends the same order again and again: it lingers from when it was first paid.
        var basket = Basket(lingers: .seconds(90))
        let finished = CustomerDisplay.shownOrder(odoo: paid)
        let first = basket.show(finished, now: Self.now)
        let again = basket.show(finished, now: Self.now.addingTimeInterval(60))
        let expired = basket.expire(now: Self.now.addingTimeInterval(91))
        #expect(first && !again, "the same order again changes nothing")
        #expect(expired)

        _ = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["action": "close"]))
        #expect(await screen.snapshot["state"] == "idle")

        // Odoo 16/17: the page, read the same way; the next, empty order is the welcome.
        let page = OdooDisplayHTMLTests.page(lines: [("Flat white", "1.00", "€&nbsp;3.20")], total: "€&nbsp;3.20")
        _ = await bridge.respond(to: rpc("/hw_proxy/take_control", ["html": .string(page)], peer: "10.0.0.5"))
        shown = await screen.snapshot
        #expect(shown["state"] == "open" && shown["total"] == "€ 3.20" && shown["lines"]?.arrayValue?.first?["name"] == "Flat white")
        let cash = OdooDisplayHTMLTests.page(lines: [("Flat white", "1.00", "€&nbsp;3.20")], total: "€&nbsp;3.20", payments: [("Cash", "€&nbsp;5.00")], change: "€&nbsp;1.80")
        _ = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["html": .string(cash)], peer: "10.0.0.5"))
        shown = await screen.snapshot
        #expect(shown["state"] == "paid" && shown["change"] == "€ 1.80")
        _ = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["html": .string(OdooDisplayHTMLTests.page(lines: [], total: "€&nbsp;0.00"))], peer: "10.0.0.5"))
        #expect(await screen.snapshot["state"] == "idle")

        // A sale published on tilld's socket takes the screen back, with its form.
        _ = await bridge.respond(to: rpc("/hw_proxy/customer_facing_display", ["html": .string(page)], peer: "10.0.0.5"))
        await screen.apply(Self.event(1, "sale.started", Self.sale[0].1))
        shown = await screen.snapshot
        #expect(shown["sale"] == "S1" && shown["lines"]?.arrayValue?.isEmpty == true)
    }

    static func bridge(_ till: FakeTill, screen: CustomerScreen) -> Bridge {
        let logger = Logger(label: "test")
        return Bridge(origins: OriginPolicy(allowed: ["https://shop.example"]),
                      odoo: OdooProxy(till: till, scans: ScanFeed(), screen: screen, logger: logger), screen: screen, logger: logger)
    }

    static func request(_ method: HTTPMethod, _ uri: String, origin: String?, host: String = "192.168.1.10:8069", body: JSONValue? = nil) -> HTTPRequest {
        var headers = HTTPHeaders([("Host", host)])
        if let origin { headers.add(name: "Origin", value: origin) }
        return HTTPRequest(method: method, uri: uri, headers: headers, body: body.map { ByteBuffer(string: JSONText.encode($0)) } ?? ByteBuffer())
    }

    @Test("the page and its form: served to the bridge's own page at an address, refused to other origins and to a DNS name (rebinding)")
    func whoMayUseTheScreen() async throws {
        let till = FakeTill()
        let screen = await Self.screen(till)
        let logger = Logger(label: "test")
        let bridge = Bridge(origins: OriginPolicy(allowed: ["https://shop.example"]),
                            odoo: OdooProxy(till: till, scans: ScanFeed(), logger: logger), screen: screen, logger: logger)
        let page = await bridge.respond(to: Self.request(.GET, "/screen", origin: nil))
        #expect(page.status == .ok)
        #expect(String(buffer: page.body).contains("Receipt by email"))
        #expect(page.headers.contains { $0.0 == "Content-Security-Policy" && $0.1.contains("frame-ancestors 'none'") })
        #expect(page.headers.contains { $0.0 == "Cache-Control" && $0.1 == "no-store" })

        let form: JSONValue = ["sale": "S1", "email": "anna@example.org"]
        // A page on another site, and a site whose DNS name was pointed at the till.
        for (origin, host) in [("https://evil.example", "192.168.1.10:8069"), ("http://evil.example:8069", "evil.example:8069")] {
            let refused = await bridge.respond(to: Self.request(.POST, "/screen/identify", origin: origin, host: host, body: form))
            #expect(refused.status == .forbidden, "\(origin)")
        }
        #expect(till.state.withLock { $0.published.isEmpty })

        let bad = await bridge.respond(to: Self.request(.POST, "/screen/identify", origin: "http://192.168.1.10:8069", body: ["sale": "S1", "email": "anna"]))
        #expect(bad.status == .badRequest)
        #expect(try JSONText.decode(bad.body.readableBytesView)["field"] == "email")
        let ok = await bridge.respond(to: Self.request(.POST, "/screen/identify", origin: "http://192.168.1.10:8069", body: form))
        #expect(ok.status == .ok, "\(String(buffer: ok.body))")
        let over = await bridge.respond(to: Self.request(.POST, "/screen/identify", origin: "http://192.168.1.10:8069", body: ["sale": "S9", "email": "anna@example.org"]))
        #expect(over.status == .conflict)
        #expect(till.state.withLock { $0.published.count } == 1)

        let off = Bridge(origins: OriginPolicy(allowed: []), odoo: OdooProxy(till: till, scans: ScanFeed(), logger: logger), logger: logger)
        #expect(await off.respond(to: Self.request(.GET, "/screen", origin: nil)).status == .notFound)
    }

    @Test("own page: the Origin is the very address and port the request was sent to")
    func ownPage() {
        func own(_ origin: String, _ host: String) -> Bool {
            OriginPolicy.isOwnPage(HTTPHeaders([("Origin", origin), ("Host", host)]))
        }
        #expect(own("http://192.168.1.10:8069", "192.168.1.10:8069"))
        #expect(own("http://127.0.0.1:8069", "127.0.0.1:8069"))
        #expect(own("http://localhost:8069", "localhost:8069"))
        #expect(own("http://[::1]:8069", "[::1]:8069"))
        #expect(own("https://10.0.0.5", "10.0.0.5:443"))
        #expect(!own("http://192.168.1.10:8070", "192.168.1.10:8069"))
        #expect(!own("http://till.example:8069", "till.example:8069"), "a DNS name could be rebound")
        #expect(!own("null", "192.168.1.10:8069"))
        #expect(!OriginPolicy.isOwnPage(HTTPHeaders([("Host", "192.168.1.10:8069")])))
    }
}
