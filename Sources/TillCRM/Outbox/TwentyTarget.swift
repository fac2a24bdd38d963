public import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1
import TillCore

/// The outbox delivered to a Twenty CRM through its REST API (`TwentyMapping` says what each
/// entry becomes). The API key (Settings → APIs in Twenty) is sent as a bearer token.
public struct TwentyTarget: OutboxTarget {
    public struct Settings: Sendable, Hashable {
        /// The server, e.g. `https://crm.example.com` (the API is under /rest).
        public var url: String
        public var apiKey: String
        public var timeoutSeconds: Double = 15
        public var concurrency = 4

        public init(url: String, apiKey: String) {
            self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
            self.apiKey = apiKey
        }

        public var name: String { "twenty:" + url }
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
        await HTTPDelivery.concurrently(entries, deliver)
    }

    func deliver(_ entry: OutboxEntry) async -> DeliveryOutcome {
        var requests = TwentyMapping.requests(for: entry)
        if entry.type == .customerErased {
            // What was written about the person goes before the person does.
            switch await attachedRecords(of: TwentyMapping.person(entry.customer)) {
            case .success(let found): requests = found + requests
            case .failure(let outcome): return outcome
            }
        }
        for request in requests {
            let outcome = await send(request).outcome
            if outcome != .delivered { return outcome }
        }
        return .delivered
    }

    private enum Lookup { case success([TwentyMapping.Request]), failure(DeliveryOutcome) }

    /// DELETEs for the notes and tasks attached to a person.
    private func attachedRecords(of person: String) async -> Lookup {
        var deletes: [TwentyMapping.Request] = []
        for (targets, key, object) in [("noteTargets", "noteId", "notes"), ("taskTargets", "taskId", "tasks")] {
            let answer = await send(TwentyMapping.Request(method: .GET, path: "/rest/\(targets)?filter=personId%5Beq%5D%3A\(person)&limit=200"))
            guard answer.outcome == .delivered else { return .failure(answer.outcome) }
            let records = (try? JSONText.decode(answer.body))?.objectValue?["data"]?.objectValue?[targets]?.arrayValue ?? []
            for record in records {
                if let id = record.objectValue?[key]?.stringValue {
                    deletes.append(TwentyMapping.Request(method: .DELETE, path: "/rest/\(object)/\(id)?soft_delete=false", absentIsDone: true))
                }
            }
        }
        return .success(deletes)
    }

    private func send(_ request: TwentyMapping.Request) async -> (outcome: DeliveryOutcome, body: String) {
        var http = HTTPClientRequest(url: settings.url + request.path)
        http.method = HTTPMethod(rawValue: request.method.rawValue)
        http.headers.add(name: "authorization", value: "Bearer \(settings.apiKey)")
        http.headers.add(name: "user-agent", value: "till-crm")
        if let body = request.body {
            http.headers.add(name: "content-type", value: "application/json")
            http.body = .bytes(ByteBuffer(string: JSONText.encode(body)))
        }
        switch await HTTPDelivery.send(http, on: client, timeoutSeconds: settings.timeoutSeconds, url: settings.url, limit: 1 << 20) {
        case .unreachable(let why):
            return (.unreachable(why), "")
        case .answered(let status, let body):
            if status == 404, request.absentIsDone { return (.delivered, body) }
            if status == 401 || status == 403 {
                return (.unreachable("Twenty refused the API key (HTTP \(status)): make a new one under Settings → APIs & Webhooks and put it in api_key_file"), body)
            }
            let outcome = HTTPDelivery.outcome(status: status, body: body)
            if case .refused(let why) = outcome { return (.refused("\(request.method.rawValue) \(request.path): \(why)"), body) }
            return (outcome, body)
        }
    }
}
