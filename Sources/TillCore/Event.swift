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
        wireLine(dataJSON: dataJSON, timeText: Timestamp.format(time))
    }

    /// The wire line with its time already formatted (the events of one commit share their
    /// time, so a batch formats it once).
    public func wireLine(dataJSON: String?, timeText: String) -> String {
        let data = dataJSON ?? JSONText.encode(self.data)
        let device = self.device.map { JSONText.encode($0) } ?? "null"
        return "{\"type\":\"event\",\"seq\":\(seq),\"time\":\"\(timeText)\",\"topic\":\(JSONText.encode(topic)),\"device\":\(device),\"data\":\(data)}"
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
/// Formatted by arithmetic, not a formatter: it runs once per event on the hot path, and
/// needs no locale or time-zone data.
public enum Timestamp {
    /// Rounds to the nearest millisecond (the journal's resolution), so a time reads the
    /// same before and after it went through the journal.
    public static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (days, msOfDay) = floorDivide(milliseconds, 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        let hour = msOfDay / 3_600_000
        let minute = msOfDay / 60_000 % 60
        let second = msOfDay / 1000 % 60
        let ms = msOfDay % 1000
        guard (0...9999).contains(year) else {
            return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T" + pad(hour, 2) + ":" + pad(minute, 2) + ":"
                + pad(second, 2) + "." + pad(ms, 3) + "Z"
        }
        // Digits written straight into the string's storage: building it from pieces was a
        // third of an event's wire line.
        return String(unsafeUninitializedCapacity: 24) { bytes in
            var at = 0
            func put(_ value: Int64, _ width: Int) {
                var value = value
                for index in stride(from: at + width - 1, through: at, by: -1) {
                    bytes[index] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                at += width
            }
            func put(_ ascii: Unicode.Scalar) {
                bytes[at] = UInt8(ascii: ascii)
                at += 1
            }
            put(year, 4); put("-"); put(month, 2); put("-"); put(day, 2); put("T")
            put(hour, 2); put(":"); put(minute, 2); put(":"); put(second, 2); put("."); put(ms, 3); put("Z")
            return at
        }
    }

    public static func parse(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }

    /// Year, month, day of a count of days since 1970-01-01 (proleptic Gregorian calendar;
    /// H. Hinnant's civil_from_days).
    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let (q, r) = a.quotientAndRemainder(dividingBy: b)
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
