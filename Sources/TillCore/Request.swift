public import Foundation

/// What a peer must be allowed to do for an op (`[access]` in the config).
public enum Permission: String, Sendable, Hashable, Comparable {
    /// connect, subscribe, list devices and status
    case read
    /// print, open drawers, drive displays, publish, simulate
    case act

    public static func < (lhs: Permission, rhs: Permission) -> Bool { lhs == .read && rhs == .act }
}

/// One decoded and validated request line.
public struct Request: Sendable, Hashable {
    public var id: JSONValue
    public var operation: SocketOperation

    public init(id: JSONValue, operation: SocketOperation) {
        self.id = id
        self.operation = operation
    }
}

public enum PrintPayload: Sendable, Hashable {
    case receipt(ReceiptDocument)
    case raw(Data)
}

public enum DisplayContent: Sendable, Hashable {
    case lines([String])
    case clear
}

/// The ops of protocol 1.
public enum SocketOperation: Sendable, Hashable {
    case subscribe(topics: [String], since: Int64?)
    case unsubscribe
    case devices
    case status
    case publish(topic: String, data: JSONValue)
    case print(device: String?, payload: PrintPayload)
    case printCancel(job: String)
    /// `sale`: the sale it is for, when the client says (kept in the drawer's audit trail).
    case drawerOpen(device: String?, sale: String?)
    case display(device: String?, content: DisplayContent)
    case simulate(device: String, data: JSONValue)
    /// A follower (till-crm) says it has durably applied every event through `seq`, so
    /// `status` and `tillctl doctor` can warn before retention prunes what it has not applied.
    /// `topics`: the follower's subscription, so only events it would be sent count as behind.
    case followerAck(follower: String, seq: Int64, topics: [String])

    public var name: String {
        switch self {
        case .subscribe: "subscribe"
        case .unsubscribe: "unsubscribe"
        case .devices: "devices"
        case .status: "status"
        case .publish: "publish"
        case .print: "print"
        case .printCancel: "print.cancel"
        case .drawerOpen: "drawer.open"
        case .display: "display"
        case .simulate: "simulate"
        case .followerAck: "follower.ack"
        }
    }

    public var permission: Permission {
        switch self {
        case .subscribe, .unsubscribe, .devices, .status, .followerAck: .read
        case .publish, .print, .printCancel, .drawerOpen, .display, .simulate: .act
        }
    }

    public static let allNames = [
        "subscribe", "unsubscribe", "devices", "status", "publish", "print", "print.cancel", "drawer.open", "display",
        "simulate", "follower.ack",
    ]
}

/// Turns one line (without its newline) into a `Request`, or into the error to
/// answer with and the id to answer it under. Pure: the fuzz target drives this.
public enum RequestDecoder {
    public struct Failure: Error, Sendable, Hashable {
        public var id: JSONValue
        public var error: WireError
    }

    /// Raw print data above this is refused with `too_large` (a receipt, not a firmware image).
    public static let maxRawPrintBytes = 512 * 1024

    public static func decode(_ line: some Collection<UInt8>) -> Result<Request, Failure> {
        let json: JSONValue
        do {
            json = try JSONText.decode(line)
        } catch {
            let hint = String(decoding: line.prefix(40).filter { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") }, as: UTF8.self)
            return .failure(Failure(id: .null, error: WireError(
                .badRequest, "line is not valid JSON: \(error) (it starts with \"\(hint)\"); send one JSON object per line")))
        }
        guard let object = json.objectValue else {
            return .failure(Failure(id: .null, error: WireError(.badRequest, "a request must be a JSON object, not \(json.typeName)")))
        }
        let id = object["id"] ?? .null
        do {
            return .success(Request(id: id, operation: try decodeOperation(json)))
        } catch let error as WireError {
            return .failure(Failure(id: id, error: error))
        } catch {
            return .failure(Failure(id: id, error: WireError(.badRequest, "\(error)")))
        }
    }

    static func decodeOperation(_ json: JSONValue) throws -> SocketOperation {
        let fields = try FieldReader(json, path: "")
        switch fields.object["id"] {
        case nil, .null?: throw WireError.missing("id")
        case .string?, .int?, .double?: break
        case let other?: throw WireError.wrongType("id", expected: "a string or a number", got: other)
        }
        let op = try fields.string("op")
        switch op {
        case "subscribe":
            let topics = try fields.stringArray("topics") ?? ["*"]
            guard !topics.isEmpty, topics.count <= 64, topics.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 128 }) else {
                throw WireError.badRequest(field: "topics", "must hold 1 to 64 non-empty topic globs")
            }
            let since = try fields.optionalInt("since", range: 0...Int64.max)
            return .subscribe(topics: topics, since: since)
        case "unsubscribe":
            return .unsubscribe
        case "devices":
            return .devices
        case "status":
            return .status
        case "follower.ack":
            let follower = try fields.string("follower")
            guard !follower.isEmpty, follower.utf8.count <= 64, follower.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                throw WireError.badRequest(field: "follower", "must be a name of 1 to 64 printable ASCII characters, such as \"till-crm\"")
            }
            guard let seq = try fields.optionalInt("seq", range: 0...Int64.max) else { throw WireError.missing("seq") }
            let topics = try fields.stringArray("topics") ?? ["*"]
            guard !topics.isEmpty, topics.count <= 64, topics.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 128 }) else {
                throw WireError.badRequest(field: "topics", "must hold 1 to 64 non-empty topic globs (the follower's subscription)")
            }
            return .followerAck(follower: follower, seq: seq, topics: topics)
        case "publish":
            let topic = try fields.string("topic")
            guard let data = fields.object["data"] else { throw WireError.missing("data") }
            try PublishedEventValidator.validate(topic: topic, data: data)
            return .publish(topic: topic, data: data)
        case "print":
            let device = try fields.optionalString("device", nonEmpty: true)
            if let receipt = fields.object["receipt"], !receipt.isNull {
                if fields.has("raw") { throw WireError.badRequest(field: "raw", "give either receipt or raw, not both") }
                return .print(device: device, payload: .receipt(try ReceiptDocument(json: receipt)))
            }
            if let raw = try fields.optionalString("raw") {
                guard let bytes = Data(base64Encoded: raw) else {
                    throw WireError.badRequest(field: "raw", "must be base64")
                }
                guard bytes.count <= maxRawPrintBytes else {
                    throw WireError(.tooLarge, "raw print data is \(bytes.count) bytes; the limit is \(maxRawPrintBytes)")
                }
                return .print(device: device, payload: .raw(bytes))
            }
            throw WireError.badRequest(field: "receipt", "is required (or raw, base64 bytes)")
        case "print.cancel":
            return .printCancel(job: try fields.string("job"))
        case "drawer.open":
            return .drawerOpen(device: try fields.optionalString("device", nonEmpty: true), sale: try fields.optionalString("sale", nonEmpty: true))
        case "display":
            let device = try fields.optionalString("device", nonEmpty: true)
            if try fields.optionalBool("clear") == true { return .display(device: device, content: .clear) }
            guard let lines = try fields.stringArray("lines") else {
                throw WireError.badRequest(field: "lines", "is required (or clear: true)")
            }
            guard lines.count <= 8 else { throw WireError.badRequest(field: "lines", "a display shows at most 8 lines") }
            return .display(device: device, content: .lines(lines))
        case "simulate":
            let device = try fields.string("device")
            guard let data = fields.object["data"], data.objectValue != nil else {
                throw WireError.badRequest(field: "data", "is required and must be an object, e.g. {\"text\":\"4006381333931\"}")
            }
            return .simulate(device: device, data: data)
        default:
            throw WireError(.unknownOp, "unknown op \"\(op)\"; protocol 1 knows \(SocketOperation.allNames.joined(separator: ", "))")
        }
    }
}

/// Encodes requests for clients (tillctl, till-crm, tests).
public enum RequestEncoder {
    public static func line(id: JSONValue, op: String, params: [String: JSONValue] = [:]) -> String {
        var object = params
        object["id"] = id
        object["op"] = .string(op)
        return JSONText.encode(JSONValue.object(object))
    }
}
