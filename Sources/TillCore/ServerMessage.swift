/// Lines the server writes that are not events: the greeting, replies, the lag notice.
public enum ServerMessage {
    public static let protocolVersion = 1

    /// `stream` (an extension of the contract's greeting, docs/protocol.md): which stream of
    /// seqs this till issues, so a follower of several tills keys its cursors by it.
    public static func hello(server: String, seq: Int64, stream: String? = nil) -> String {
        "{\"type\":\"hello\",\"protocol\":\(protocolVersion),\"server\":\(JSONText.encode(server)),\"seq\":\(seq)"
            + (stream.map { ",\"stream\":" + JSONText.encode($0) } ?? "") + "}"
    }

    public static func ok(id: JSONValue, result: JSONValue) -> String {
        "{\"type\":\"reply\",\"id\":\(JSONText.encode(id)),\"ok\":true,\"result\":\(JSONText.encode(result))}"
    }

    /// The reply to a publish: `{"seq":N}`, written directly (it is sent for every publish).
    public static func published(id: JSONValue, seq: Int64) -> String {
        "{\"type\":\"reply\",\"id\":\(JSONText.encode(id)),\"ok\":true,\"result\":{\"seq\":\(seq)}}"
    }

    public static func error(id: JSONValue, _ error: WireError) -> String {
        "{\"type\":\"reply\",\"id\":\(JSONText.encode(id)),\"ok\":false,\"error\":\(JSONText.encode(error))}"
    }

    public static func lagged(lastSent: Int64) -> String {
        "{\"type\":\"lagged\",\"seq\":\(lastSent)}"
    }
}

/// A parsed server line, for clients.
public enum ServerLine: Sendable {
    case hello(protocol: Int, server: String, seq: Int64, stream: String?)
    case reply(Reply)
    case event(Event)
    case lagged(seq: Int64)

    public struct Reply: Sendable {
        public var id: JSONValue
        public var result: Result<JSONValue, WireError>
    }

    public init(line: some Collection<UInt8>) throws {
        let value = try JSONText.decode(line)
        switch value["type"]?.stringValue {
        case "hello":
            self = .hello(
                protocol: Int(value["protocol"]?.intValue ?? 0),
                server: value["server"]?.stringValue ?? "",
                seq: value["seq"]?.intValue ?? 0,
                stream: value["stream"]?.stringValue
            )
        case "reply":
            let id = value["id"] ?? .null
            if value["ok"]?.boolValue == true {
                self = .reply(Reply(id: id, result: .success(value["result"] ?? .null)))
            } else {
                let err = value["error"]
                let code = err?["code"]?.stringValue.flatMap(ErrorCode.init(rawValue:)) ?? .badRequest
                let details = err?["details"]?.objectValue
                self = .reply(
                    Reply(id: id, result: .failure(WireError(code, err?["message"]?.stringValue ?? "", details: details)))
                )
            }
        case "event":
            self = .event(try Event(wire: value))
        case "lagged":
            self = .lagged(seq: value["seq"]?.intValue ?? 0)
        default:
            throw WireError(.badRequest, "unknown server line type")
        }
    }
}
