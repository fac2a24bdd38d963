public import Foundation

/// One journaled event, as delivered to subscribers:
/// `{"type":"event","seq":N,"time":"...","topic":"...","device":"NAME"|null,"data":{...}}`.
public struct Event: Sendable, Hashable {
    public var seq: Int64
    public var time: Date
    public var topic: String
    public var device: String?
    public var data: JSONValue

    public init(seq: Int64, time: Date, topic: String, device: String?, data: JSONValue) {
        self.seq = seq
        self.time = time
        self.topic = topic
        self.device = device
        self.data = data
    }

    /// The wire line without the trailing newline. `dataJSON` lets the journal hand over the
    /// stored text so an event is serialised once, not once per subscriber.
    public func wireLine(dataJSON: String? = nil) -> String {
        let data = dataJSON ?? JSONText.encode(self.data)
        let device = self.device.map { JSONText.encode($0) } ?? "null"
        return "{\"type\":\"event\",\"seq\":\(seq),\"time\":\"\(Timestamp.format(time))\",\"topic\":\(JSONText.encode(topic)),\"device\":\(device),\"data\":\(data)}"
    }

    /// Parses an event line (clients and tests use this).
    public init(wire: JSONValue) throws {
        guard wire["type"]?.stringValue == "event" else { throw WireError(.badRequest, "not an event line") }
        guard let seq = wire["seq"]?.intValue else { throw WireError.missing("seq") }
        guard let topic = wire["topic"]?.stringValue else { throw WireError.missing("topic") }
        guard let timeText = wire["time"]?.stringValue, let time = Timestamp.parse(timeText) else {
            throw WireError.missing("time")
        }
        self.init(seq: seq, time: time, topic: topic, device: wire["device"]?.stringValue, data: wire["data"] ?? .object([:]))
    }
}

/// RFC 3339 UTC timestamps with milliseconds, as the contract requires.
public enum Timestamp {
    /// Rounds to the nearest millisecond (the journal's resolution), so a time reads the
    /// same before and after it went through the journal.
    public static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (seconds, fraction) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let (wholeSeconds, ms) = fraction < 0 ? (seconds - 1, fraction + 1000) : (seconds, fraction)
        let base = Date(timeIntervalSince1970: Double(wholeSeconds)).formatted(
            Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!)
        )
        let digits = String(ms)
        return base.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    public static func parse(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }
}
