import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing
import TillCore
@testable import TillCRM

/// A stand-in for Twenty's REST API, as far as till-crm uses it: records by object and id,
/// created or updated with `?upsert=true` (a create of an existing id without it is refused, as
/// Twenty does), the people merge, destroy, and the `personId[eq]:` filter on note and task targets.
final class FakeTwenty: @unchecked Sendable {
    let apiKey = "twenty-test-key"
    private let lock = NIOLock()
    private(set) var objects: [String: [String: [String: JSONValue]]] = [:]
    private(set) var requests: [String] = []
    var server: LocalHTTPServer!

    init() {
        server = LocalHTTPServer { [unowned self] request in self.handle(request) }
    }

    func records(_ object: String) -> [String: [String: JSONValue]] { lock.withLock { objects[object] ?? [:] } }

    private func handle(_ request: LocalHTTPServer.Request) -> LocalHTTPServer.Answer {
        lock.withLock {
            requests.append("\(request.method) \(request.uri)")
            guard request.headers["authorization"] == "Bearer \(apiKey)" else { return .status(401, #"{"error":"Unauthorized"}"#) }
            let parts = request.path.split(separator: "/").map(String.init)  // rest, object, id?
            guard parts.count >= 2, parts[0] == "rest" else { return .status(404) }
            let object = parts[1]
            let body = (try? JSONText.decode(request.body))?.objectValue ?? [:]
            switch (request.method, parts.count) {
            case ("POST", 2):
                guard let id = body["id"]?.stringValue else { return .status(400, #"{"error":"id required by this fake"}"#) }
                if objects[object]?[id] != nil, !request.query.contains("upsert=true") { return .status(400, #"{"messages":["Record already exists"]}"#) }
                objects[object, default: [:]][id, default: [:]].merge(body) { _, new in new }
                return .status(201, JSONText.encode(["data": .object(objects[object]![id]!)] as JSONValue))
            case ("PATCH", 3) where parts[2] == "merge":
                let ids = body["ids"]?.arrayValue?.compactMap(\.stringValue) ?? []
                guard ids.count == 2, objects[object]?[ids[0]] != nil else { return .status(400, #"{"error":"records to merge not found"}"#) }
                guard objects[object]?[ids[1]] != nil else { return .status(404) }
                for targets in ["noteTargets", "taskTargets"] {
                    for (id, record) in objects[targets] ?? [:] where record["personId"]?.stringValue == ids[1] {
                        objects[targets]![id]!["personId"] = .string(ids[0])
                    }
                }
                objects[object]![ids[1]] = nil
                return .status(200, "{}")
            case ("DELETE", 3):
                guard objects[object]?[parts[2]] != nil else { return .status(404, #"{"error":"not found"}"#) }
                objects[object]![parts[2]] = nil
                if object == "people" {
                    for targets in ["noteTargets", "taskTargets"] {
                        for (id, record) in objects[targets] ?? [:] where record["personId"]?.stringValue == parts[2] { objects[targets]![id] = nil }
                    }
                }
                return .status(200, "{}")
            case ("GET", 2):
                let filter = request.query.removingPercentEncoding ?? ""
                let person = filter.components(separatedBy: "personId[eq]:").dropFirst().first?.split(separator: "&").first.map(String.init)
                let found = (objects[object] ?? [:]).values.filter { person == nil || $0["personId"]?.stringValue == person }
                return .status(200, JSONText.encode(["data": [object: .array(found.map(JSONValue.object))]] as JSONValue))
            default:
                return .status(405)
            }
        }
    }
}

@Suite("Outbox: the Twenty mapping, against a fake Twenty", .serialized, .timeLimit(.minutes(1)))
struct TwentyTargetTests {
    @Test("names become the same UUIDs every time, of version 8")
    func uuids() {
        let id = TwentyMapping.person("C0001")
        #expect(id == TwentyMapping.person("C0001") && id != TwentyMapping.person("C0002"))
        #expect(id.count == 36 && Array(id)[14] == "8" && "89ab".contains(Array(id)[19]))
    }

    @Test("people with emails and phones, purchases as notes, moments as tasks, a merge, a redelivery, then an erasure that leaves nothing")
    func mapping() async throws {
        let twenty = FakeTwenty()
        try await twenty.server.start()
        let ledger = try await Ledger()
        let client = HTTPClient.shared
        let target = TwentyTarget(TwentyTarget.Settings(url: twenty.server.url + "/", apiKey: twenty.apiKey), client: client)
        let service = OutboxService(store: ledger.store, targets: [target], settings: OutboxSettings(), clock: OutboxClock(), logger: Logger(label: "test"))
        try await ledger.store.outboxWrite { try $0.registerTarget(target.name) }
        func drain() async throws {
            while try await !service.round(target).idle {}
            let status = try #require(try await ledger.store.outboxRead { try $0.outboxStatus() }.first)
            #expect(status.pending == 0 && status.dead == 0, "\(status.lastError ?? "")")
        }

        _ = try await ledger.sale("S1", total: "899.00", receipt: "R1", identify: ["email": "ann@example.com", "phone": "+447911123456", "name": "Ann Lee"])
        _ = try await ledger.sale("S2", total: "3.50", identify: ["email": "bea@example.com", "name": "Bea Young"])
        try await drain()
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        let ann = try await directory.resolve("ann@example.com")
        let person = try #require(twenty.records("people")[TwentyMapping.person(ann)])
        #expect(person["emails"]?.objectValue?["primaryEmail"] == "ann@example.com")
        #expect(person["phones"]?.objectValue?["primaryPhoneNumber"] == "+447911123456")
        #expect(person["name"]?.objectValue?["firstName"] == "Ann" && person["name"]?.objectValue?["lastName"] == "Lee")
        #expect(twenty.records("people").count == 2)
        let purchase = try #require(twenty.records("notes").values.first { $0["title"]?.stringValue?.hasPrefix("Purchase 899.00") == true })
        #expect(purchase["title"]?.stringValue?.contains("receipt R1") == true)
        #expect(twenty.records("noteTargets").values.contains { $0["noteId"] == purchase["id"] && $0["personId"] == .string(TwentyMapping.person(ann)) })
        let task = try #require(twenty.records("tasks")[TwentyMapping.task("care:S1")])
        #expect(task["status"] == "TODO" && task["title"] == "Care follow-up")

        // Done at the counter: the task is done in Twenty.
        _ = try await directory.decide(moment: "care:S1", .done, actor: "sam")
        try await drain()
        #expect(twenty.records("tasks")[TwentyMapping.task("care:S1")]?["status"] == "DONE")

        // A redelivery (a lost answer, a crash) changes nothing: the same ids, upserted.
        let all = try await ledger.entries()
        let counts = ["people", "notes", "noteTargets", "tasks", "taskTargets"].map { twenty.records($0).count }
        #expect(await target.deliver(all.filter { $0.type != .customerErased }, store: ledger.store).allSatisfy { $0 == .delivered })
        #expect(["people", "notes", "noteTargets", "tasks", "taskTargets"].map { twenty.records($0).count } == counts)

        // Bea turns out to be Ann's second record: Twenty merges them too.
        let bea = try await directory.resolve("bea@example.com")
        _ = try await directory.merge(ann, bea, actor: "sam", reason: "same person")
        try await drain()
        #expect(twenty.records("people").keys.sorted() == [TwentyMapping.person(ann)])
        #expect(twenty.records("noteTargets").values.allSatisfy { $0["personId"] == .string(TwentyMapping.person(ann)) })

        // Erased: the person, their notes and tasks are destroyed in Twenty.
        try await directory.erase(ann)
        try await drain()
        #expect(twenty.records("people").isEmpty && twenty.records("notes").isEmpty && twenty.records("tasks").isEmpty)
        #expect(twenty.records("noteTargets").isEmpty && twenty.records("taskTargets").isEmpty)
        try await twenty.server.stop()
    }

    @Test("a wrong API key pauses the target and says where to make a new one; nothing is lost")
    func badKey() async throws {
        let twenty = FakeTwenty()
        try await twenty.server.start()
        let ledger = try await Ledger()
        _ = try await ledger.sale("S1", total: "3.00", identify: ["email": "ann@example.com"])
        let client = HTTPClient.shared
        let target = TwentyTarget(TwentyTarget.Settings(url: twenty.server.url, apiKey: "wrong"), client: client)
        let service = OutboxService(store: ledger.store, targets: [target], settings: OutboxSettings(), clock: OutboxClock(), logger: Logger(label: "test"))
        try await ledger.store.outboxWrite { try $0.registerTarget(target.name) }
        let round = try await service.round(target)
        #expect(round.pausedUntilMs != nil && round.dead == 0)
        let status = try #require(try await ledger.store.outboxRead { try $0.outboxStatus() }.first)
        #expect(status.lastError?.contains("Settings → APIs") == true && status.pending > 0)
        try await twenty.server.stop()
    }
}
