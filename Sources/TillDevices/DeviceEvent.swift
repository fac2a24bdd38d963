public import Foundation
public import TillCore
public import TillScanner

/// What a scanner read, as `scanner.data` carries it.
public struct Scan: Sendable, Hashable {
    public var text: String
    /// The bytes as the scanner sent them (before any prefix, suffix or terminator was removed
    /// they are not: these are the scan's own bytes).
    public var raw: [UInt8]
    public var symbology: Symbology
    public var aim: String?
    public var checkDigitOK: Bool?
    /// GS1 application identifiers to values, when the code is GS1.
    public var gs1: [String: String]?
    /// A code that is GS1 but does not parse: which AI failed and why (its text is kept).
    public var gs1Problem: GS1.ParseError?
    public var kind: ScanKind
    /// An in-store code's item number and the price or weight inside it.
    public var variableMeasure: Measure?

    public struct Measure: Sendable, Hashable {
        public var item: String
        /// "price" or "weight".
        public var kind: String
        /// A decimal string: "4.99", "1.250".
        public var value: String

        public init(item: String, kind: String, value: String) {
            self.item = item
            self.kind = kind
            self.value = value
        }
    }

    public init(
        text: String, raw: [UInt8], symbology: Symbology, aim: String?, checkDigitOK: Bool?, gs1: [String: String]? = nil,
        gs1Problem: GS1.ParseError? = nil, kind: ScanKind, variableMeasure: Measure? = nil
    ) {
        self.text = text
        self.raw = raw
        self.symbology = symbology
        self.aim = aim
        self.checkDigitOK = checkDigitOK
        self.gs1 = gs1
        self.gs1Problem = gs1Problem
        self.kind = kind
        self.variableMeasure = variableMeasure
    }
}

/// A printer's condition as `printer.status` carries it.
public struct PrinterCondition: Sendable, Hashable {
    public enum Paper: String, Sendable, Hashable { case ok, nearEnd = "near_end", out }
    public var online: Bool
    public var coverOpen: Bool
    public var paper: Paper
    public var error: String?

    public init(online: Bool, coverOpen: Bool, paper: Paper, error: String? = nil) {
        self.online = online
        self.coverOpen = coverOpen
        self.paper = paper
        self.error = error
    }
}

/// Every event a device (or the layer around it) publishes, typed; the one place they become
/// the contract's topics and JSON (CONTRACT.md, "Event topics").
public enum DeviceEvent: Sendable, Hashable {
    case added(listing: JSONValue)
    case removed
    case state(DeviceStatus)
    case scan(Scan)
    case printerStatus(PrinterCondition)
    case printerJob(job: String, state: JobState, error: String?)
    case drawerOpened
    case drawerClosed(openSeconds: Double?)
    case drawerLeftOpen(openSeconds: Double)
    case displayUpdated(lines: [String])

    public enum JobState: String, Sendable, Hashable { case queued, printing, done, failed, cancelled }

    public var topic: String {
        switch self {
        case .added: "device.added"
        case .removed: "device.removed"
        case .state: "device.state"
        case .scan: "scanner.data"
        case .printerStatus: "printer.status"
        case .printerJob: "printer.job"
        case .drawerOpened: "drawer.opened"
        case .drawerClosed: "drawer.closed"
        case .drawerLeftOpen: "drawer.left_open"
        case .displayUpdated: "display.updated"
        }
    }

    public var data: JSONValue {
        switch self {
        case .added(let listing): return listing
        case .removed: return [:]
        case .state(let status): return status.json
        case .scan(let scan):
            var object: [String: JSONValue] = [
                "text": .string(scan.text),
                "raw": .string(Data(scan.raw).base64EncodedString()),
                "symbology": .string(scan.symbology.rawValue),
                "aim": scan.aim.map(JSONValue.string) ?? .null,
                "check_digit_ok": scan.checkDigitOK.map(JSONValue.bool) ?? .null,
                "gs1": scan.gs1.map { .object($0.mapValues(JSONValue.string)) } ?? .null,
                "kind": .string(scan.kind.rawValue),
            ]
            // An extension of the contract's fields (docs/protocol.md), present only when known.
            if let problem = scan.gs1Problem {
                object["gs1_error"] = ["ai": problem.ai.map(JSONValue.string) ?? .null, "message": .string(problem.message)]
            }
            if let measure = scan.variableMeasure {
                object["variable_measure"] = .object(["item": .string(measure.item), measure.kind: .string(measure.value)])
            }
            return .object(object)
        case .printerStatus(let condition):
            return [
                "online": .bool(condition.online), "cover_open": .bool(condition.coverOpen),
                "paper": .string(condition.paper.rawValue), "error": condition.error.map(JSONValue.string) ?? .null,
            ]
        case .printerJob(let job, let state, let error):
            return ["job": .string(job), "state": .string(state.rawValue), "error": error.map(JSONValue.string) ?? .null]
        case .drawerOpened:
            return [:]
        case .drawerClosed(let seconds):
            return seconds.map { ["open_seconds": .double(Self.tenths($0))] } ?? [:]
        case .drawerLeftOpen(let seconds):
            return ["open_seconds": .double(Self.tenths(seconds))]
        case .displayUpdated(let lines):
            return ["lines": .array(lines.map(JSONValue.string))]
        }
    }

    private static func tenths(_ seconds: Double) -> Double { (seconds * 10).rounded() / 10 }
}

/// Where a device sends what it observes. The daemon implements it (journal, fan-out, waking
/// the spool); a test implements it with an array. Emitting never fails a device: when the
/// journal cannot commit, the daemon holds the event and says so itself.
public protocol EventSink: Sendable {
    /// Returns once the event is durable (journaled) and fanned out.
    func emit(_ event: DeviceEvent, device: String) async
    /// Hands the event over in order and returns without waiting for the journal's sync, so
    /// an input device reads its next input meanwhile (a scanner: the wait would cost a thread
    /// wake-up per scan on the subscriber's path). The sink may still make the caller wait
    /// when too many are in flight.
    func offer(_ event: DeviceEvent, device: String) async
    /// The device's state changed: `device.state` is emitted, and whoever waits on the device
    /// (the print spool) is woken.
    func stateChanged(_ device: String, _ status: DeviceStatus) async
}

extension EventSink {
    /// Unless a sink can do better: `emit`.
    public func offer(_ event: DeviceEvent, device: String) async {
        await emit(event, device: device)
    }
}
