public import Foundation
public import TillCore
import Crypto

/// The outbox in the words of Twenty (https://twenty.com), the open-source CRM, through its
/// REST API: a customer is a person; a timeline entry is a note on that person; a moment is a
/// task on them. Pure: entries in, requests out (`TwentyTarget` sends them).
///
/// Every record till-crm makes there has an id derived from till-crm's own (a name-based UUID),
/// and is written with `?upsert=true`: a request sent twice (a retry after a lost answer, a
/// crash) updates the same record instead of making a second one.
public enum TwentyMapping {
    public struct Request: Sendable, Hashable {
        public enum Method: String, Sendable { case GET, POST, PATCH, DELETE }
        public var method: Method
        /// Under the API's base (`/rest/people?upsert=true`).
        public var path: String
        public var body: JSONValue?
        /// A 404 is an answer this request accepts (deleting what is already gone).
        public var absentIsDone = false
    }

    /// A UUID made from a name, the same every time (SHA-256, the version and variant bits set
    /// as RFC 9562 asks of a name-based UUID).
    public static func uuid(_ name: String) -> String {
        var bytes = Array(SHA256.hash(data: Data(("till-crm:" + name).utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8: custom (name-based, SHA-256)
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 9562 variant
        let hex = bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return parts.joined(separator: "-")
    }

    public static func person(_ customer: String) -> String { uuid("person:" + customer) }
    public static func note(_ source: String) -> String { uuid("note:" + source) }
    public static func task(_ moment: String) -> String { uuid("task:" + moment) }

    /// The requests that carry an entry over, in order.
    public static func requests(for entry: OutboxEntry) -> [Request] {
        let data = entry.data.objectValue ?? [:]
        switch entry.type {
        case .customerUpdated:
            guard data["status"]?.stringValue == "active" else { return [] }  // merged: the merge entry says it
            return [Request(method: .POST, path: "/rest/people?upsert=true", body: personBody(data))]
        case .customerMerged:
            guard let survivor = data["survivor"]?.stringValue, let absorbed = data["absorbed"]?.stringValue else { return [] }
            // Twenty's own merge moves the absorbed person's notes and tasks to the survivor.
            return [Request(
                method: .PATCH, path: "/rest/people/merge",
                body: ["ids": [.string(person(survivor)), .string(person(absorbed))], "conflictPriorityIndex": 0, "dryRun": false],
                absentIsDone: true)]
        case .customerUnmerged:
            return []  // the next customer.updated of each brings the absorbed person back (upsert)
        case .customerErased:
            // Notes and tasks go with the person (`TwentyTarget` finds them by their targets).
            return [Request(method: .DELETE, path: "/rest/people/\(person(entry.customer))?soft_delete=false", absentIsDone: true)]
        case .timelineAdded:
            guard let source = data["source"]?.stringValue, data["type"]?.stringValue != "moment" else { return [] }
            let id = note(source)
            return [
                Request(method: .POST, path: "/rest/notes?upsert=true", body: ["id": .string(id), "title": .string(noteTitle(data)), "bodyV2": ["markdown": .string(noteMarkdown(data))]]),
                Request(
                    method: .POST, path: "/rest/noteTargets?upsert=true",
                    body: ["id": .string(uuid("note-target:" + source)), "noteId": .string(id), "personId": .string(person(entry.customer))]),
            ]
        case .timelineMoved:
            guard let source = data["source"]?.stringValue, let to = data["to"]?.stringValue else { return [] }
            return [Request(
                method: .POST, path: "/rest/noteTargets?upsert=true",
                body: ["id": .string(uuid("note-target:" + source)), "noteId": .string(note(source)), "personId": .string(person(to))])]
        case .momentRaised, .momentUpdated:
            guard let moment = data["id"]?.stringValue else { return [] }
            let id = task(moment)
            let status: String = switch data["status"]?.stringValue {
            case "done", "dismissed": "DONE"
            default: "TODO"
            }
            var body: [String: JSONValue] = [
                "id": .string(id), "title": .string(taskTitle(data)), "status": .string(status),
                "dueAt": data["snoozed_until"].flatMap { $0.isNull ? nil : $0 } ?? data["due"] ?? .null,
                "bodyV2": ["markdown": .string(taskMarkdown(data))],
            ]
            if body["dueAt"] == .null { body["dueAt"] = nil }
            return [
                Request(method: .POST, path: "/rest/tasks?upsert=true", body: .object(body)),
                Request(
                    method: .POST, path: "/rest/taskTargets?upsert=true",
                    body: ["id": .string(uuid("task-target:" + moment)), "taskId": .string(id), "personId": .string(person(entry.customer))]),
            ]
        }
    }

    /// Twenty's person: name, emails and phones (the first of each primary).
    static func personBody(_ data: [String: JSONValue]) -> JSONValue {
        let emails = data["emails"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let phones = data["phones"]?.arrayValue?.compactMap(\.stringValue) ?? []
        var given = data["given_name"]?.stringValue
        var family = data["family_name"]?.stringValue
        if given == nil, family == nil, let name = data["name"]?.stringValue { (given, family) = (name, nil) }
        func phone(_ number: String) -> JSONValue { ["number": .string(number)] }
        return [
            "id": .string(person(data["customer"]?.stringValue ?? "")),
            "name": ["firstName": .string(given ?? ""), "lastName": .string(family ?? "")],
            "emails": ["primaryEmail": .string(emails.first ?? ""), "additionalEmails": .array(emails.dropFirst().map(JSONValue.string))],
            "phones": [
                "primaryPhoneNumber": .string(phones.first ?? ""),
                "additionalPhones": .array(phones.dropFirst().map(phone)),
            ],
        ]
    }

    static func noteTitle(_ data: [String: JSONValue]) -> String {
        let payload = data["data"]?.objectValue ?? [:]
        let type = data["type"]?.stringValue ?? "entry"
        switch type {
        case "purchase", "refund", "exchange":
            let amount = [payload["total"]?.stringValue ?? payload["amount"]?.stringValue, payload["currency"]?.stringValue].compactMap { $0 }.joined(separator: " ")
            return type.capitalized + (amount.isEmpty ? "" : " " + amount) + (payload["receipt"]?.stringValue.map { " (receipt \($0))" } ?? "")
        default:
            return type.capitalized
        }
    }

    static func noteMarkdown(_ data: [String: JSONValue]) -> String {
        var lines: [String] = []
        let payload = data["data"]?.objectValue ?? [:]
        if let text = payload["text"]?.stringValue { lines.append(text) }
        for line in payload["lines"]?.arrayValue ?? [] {
            guard let object = line.objectValue else { continue }
            let name = object["name"]?.stringValue ?? object["sku"]?.stringValue ?? "item"
            let quantity = object["qty"].map { JSONText.encode($0) } ?? object["quantity"].map { JSONText.encode($0) } ?? "1"
            lines.append("- \(quantity) × \(name)" + (object["amount"]?.stringValue.map { " — \($0)" } ?? ""))
        }
        if let reason = payload["reason"]?.stringValue { lines.append("Reason: \(reason)") }
        lines.append("")
        lines.append("_From till-crm, \(data["occurred"]?.stringValue ?? "")\(data["actor"]?.stringValue.map { ", by \($0)" } ?? "")._")
        return lines.joined(separator: "\n")
    }

    static func taskTitle(_ data: [String: JSONValue]) -> String {
        switch data["moment"]?.stringValue {
        case "care_follow_up": "Care follow-up"
        case "service_follow_up": "Service follow-up"
        case "service_reminder": "Service reminder"
        case "win_back": "Win back a quiet regular"
        case let other?: other
        case nil: "Follow-up"
        }
    }

    static func taskMarkdown(_ data: [String: JSONValue]) -> String {
        let channels = data["channels"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return (data["reason"]?.stringValue ?? "") + "\n\n"
            + "Purpose: \(data["purpose"]?.stringValue ?? "")" + (channels.isEmpty ? "" : "; channels: \(channels.joined(separator: ", "))")
    }
}
