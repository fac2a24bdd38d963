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
        await withTaskGroup(of: (Int, DeliveryOutcome).self) { group in
            for (index, entry) in entries.enumerated() {
                group.addTask { (index, await post(entry)) }
            }
            var outcomes = Array(repeating: DeliveryOutcome.unreachable("not tried"), count: entries.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
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
        do {
            let response = try await client.execute(request(for: entry), timeout: .milliseconds(Int64(settings.timeoutSeconds * 1000)))
            let body = (try? await response.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
            return Self.outcome(status: Int(response.status.code), body: body)
        } catch {
            return .unreachable(HTTPFailure.describe(error, url: settings.url, timeout: settings.timeoutSeconds))
        }
    }

    /// 2xx delivers; "not now" answers pause the target; any other answer is a refusal.
    static func outcome(status: Int, body: String) -> DeliveryOutcome {
        switch status {
        case 200..<300: return .delivered
        case 408, 425, 429, 502, 503, 504: return .unreachable("HTTP \(status)" + Self.excerpt(body))
        default: return .refused("HTTP \(status)" + Self.excerpt(body))
        }
    }

    static func excerpt(_ body: String) -> String {
        let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "" : ": " + String(text.prefix(200))
    }
}

/// Transport errors in words that say what to check.
enum HTTPFailure {
    static func describe(_ error: any Error, url: String, timeout: Double) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout:
                return "no answer from \(url) within \(timeout) s (is the receiver up and reachable?)"
            case .remoteConnectionClosed:
                return "\(url) closed the connection before answering"
            default:
                return "\(url): \(error)"
            }
        }
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") {
            return "\(url) refused the connection (is the receiver running, on this port?)"
        }
        return "\(url): \(text)"
    }
}
