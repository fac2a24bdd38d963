import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TillClient
import TillCore

/// The customer screen's form, end to end: tilld, till-web and till-crm as on a till. The
/// customer leaves their email after paying (the common case: the form stays up while they
/// read the change) and till-crm links the sale to them, with the consent they ticked.
@Suite("The customer screen's form reaches till-crm", .timeLimit(.minutes(3)))
struct CustomerScreenChainTests {
    @Test("an email left on the screen after payment: till-crm links the sale, records the purchase and the ticked consent, and a second submit adds nothing")
    func formToCustomerMemory() async throws {
        let daemon = try await DaemonUnderTest()
        let crm = try CRMUnderTest(daemon: daemon)
        let (port, bridge) = try await BrowserTests.startBridge(daemon: daemon, origins: [])
        defer { bridge.cancel() }
        try await daemon.connect { till in
            try await till.request("publish", ["topic": "sale.started", "data": ["sale": "S-77", "till": "T1"]])
            try await till.request("publish", ["topic": "sale.line", "data": ["sale": "S-77", "name": "Descaler", "qty": 1, "unit_price": "12.00", "amount": "12.00"]])
            try await till.request("publish", ["topic": "sale.tender", "data": ["sale": "S-77", "method": "card", "amount": "12.00"]])
            try await till.request("publish", ["topic": "sale.completed", "data": ["sale": "S-77", "total": "12.00", "currency": "EUR", "receipt": "R-77"]])
        }
        // The screen's own page posts the form (Origin: the address it was loaded from).
        func submit() async throws -> Int {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/screen/identify")!)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue("http://127.0.0.1:\(port)", forHTTPHeaderField: "Origin")
            request.httpBody = Data(JSONText.encode(["sale": "S-77", "email": "Cara@Example.org", "phone": "",
                                                     "consent": ["email_marketing": true, "sms_marketing": false]]).utf8)
            let (_, response) = try await URLSession.shared.data(for: request)
            return (response as? HTTPURLResponse)?.statusCode ?? 0
        }
        // The screen follows the sale (its basket shows S-77 paid) before the form is taken.
        try await poll("the screen to show the paid sale", timeout: .seconds(30)) { try await submit() == 200 }
        #expect(try await submit() == 200, "a second submit is answered as done")

        try await crm.eventually("the sale linked to the customer") { try crm.profile("cara@example.org")?["visits"] == 1 }
        let profile = try #require(try crm.profile("cara@example.org"))
        let timeline = profile["timeline"]?.arrayValue ?? []
        #expect(timeline.filter { $0["type"] == "purchase" }.count == 1, "\(timeline)")
        #expect(timeline.contains { $0["type"] == "consent" && $0["data"]?["channel"] == "email" && $0["data"]?["granted"] == true }, "\(timeline)")
        #expect(!timeline.contains { $0["type"] == "consent" && $0["data"]?["channel"] == "sms" }, "an unticked box records nothing")
        try await Task.sleep(for: .seconds(1))
        #expect(try crm.profile("cara@example.org")?["visits"] == 1, "one visit, however often the form was sent")
    }
}
