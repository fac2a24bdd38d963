public import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1

/// Entries POSTed as JSON to a URL, signed per Standard Webhooks. Each customer's entries go in
/// order; different customers' go concurrently. A redelivery carries the same `webhook-id` and
/// body (a fresh timestamp and signature), so a receiver that keeps the ids sees each entry once.
public struct WebhookTarget: OutboxTarget {
    public struct Settings: Sendable, Hashable {
        public var url: String
        public var secret: WebhookSecret
        public var timeoutSeconds: Double = 10
        /// Requests in flight at once (each for a different customer).
        public var concurrency = 16

        public init(url: String, secret: WebhookSecret) {
            self.url = url
            self.secret = secret
        }

        public var name: String { "webhook:" + url }
    }

    public let settings: Settings
    let client: HTTPClient

    public init(_ settings: Settings, client: HTTPClient) {
        self.settings = settings
        self.client = client
    }

    public var name: String { settings.name }
    public var concurrent: Bool { true }
    public var batchSize: Int { settings.concurrency }

    public func deliver(_ entries: [OutboxEntry], store: any OutboxStore) async -> [DeliveryOutcome] {
        await HTTPDelivery.concurrently(entries, post)
    }

    /// The request for an entry, signed now (the receiver checks the timestamp against its clock).
    public func request(for entry: OutboxEntry, at now: Date = Date()) -> HTTPClientRequest {
        let timestamp = Int64(now.timeIntervalSince1970)
        var request = HTTPClientRequest(url: settings.url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "till-crm")
        request.headers.add(name: "webhook-id", value: entry.id)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(
            name: "webhook-signature", value: WebhookSignature.sign(id: entry.id, timestamp: timestamp, body: entry.body, secret: settings.secret))
        request.body = .bytes(ByteBuffer(string: entry.body))
        return request
    }

    func post(_ entry: OutboxEntry) async -> DeliveryOutcome {
        switch await HTTPDelivery.send(request(for: entry), on: client, timeoutSeconds: settings.timeoutSeconds, url: settings.url, limit: 64 * 1024) {
        case .answered(let status, let body): HTTPDelivery.outcome(status: status, body: body)
        case .unreachable(let why): .unreachable(why)
        }
    }
}
