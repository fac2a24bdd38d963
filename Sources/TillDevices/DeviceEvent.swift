public import Foundation
public import TillCore
public import TillESCPOS
public import TillScanner

/// What a scanner read, as `scanner.data` carries it: the scan as it came, and what the
/// shop's classifier makes of it (symbology, check digit, kind, GS1, an embedded price).
public struct Scan: Sendable, Hashable {
    public var text: String
    /// The code's own bytes as the scanner sent them (any prefix, suffix, AIM identifier or
    /// terminator removed).
    public var raw: [UInt8]
    public var aim: String?
    public var decoded: ScanClassifier.Result

    public init(text: String, raw: [UInt8], aim: String?, decoded: ScanClassifier.Result) {
        self.text = text
        self.raw = raw
        self.aim = aim
        self.decoded = decoded
    }

    /// A scan as `classifier` reads it.
    public init(text: String, raw: [UInt8], aim: String?, classifier: ScanClassifier) {
        self.init(text: text, raw: raw, aim: aim, decoded: classifier.classify(text: text, aim: aim))
    }

    /// A scan a framer or a HID POS assembler cut out of what the scanner sent.
    public init(_ frame: ScanFrame, classifier: ScanClassifier) {
        self.init(text: frame.text, raw: frame.data, aim: frame.aim, classifier: classifier)
    }
}

/// A printer's condition as `printer.status` carries it.
/// `printer.status`: what the printer says of itself (TillESCPOS reads it from the status bytes).
public typealias PrinterCondition = PrinterState

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
    /// Who asked for the drawer to open (the audit trail of `drawer.open`): the peer's uid,
    /// user name and pid as the kernel gave them, and the sale when the client said.
    case drawerKicked(uid: UInt32, user: String?, pid: Int32, sale: String?)
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
        case .drawerKicked: "drawer.kicked"
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
            let decoded = scan.decoded
            var object: [String: JSONValue] = [
                "text": .string(scan.text),
                "raw": .string(Data(scan.raw).base64EncodedString()),
                "symbology": .string(decoded.symbology.rawValue),
                "aim": scan.aim.map(JSONValue.string) ?? .null,
                "check_digit_ok": decoded.checkDigitOK.map(JSONValue.bool) ?? .null,
                "gs1": decoded.gs1.map { .object($0.mapValues(JSONValue.string)) } ?? .null,
                "kind": .string(decoded.kind.rawValue),
            ]
            // An extension of the contract's fields (docs/protocol.md), present only when known.
            if let problem = decoded.gs1Problem {
                object["gs1_error"] = ["ai": problem.ai.map(JSONValue.string) ?? .null, "message": .string(problem.message)]
            }
            if let measure = decoded.variableMeasure {
                object["variable_measure"] = .object(["item": .string(measure.item), measure.kind.rawValue: .string(measure.value)])
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
        case .drawerKicked(let uid, let user, let pid, let sale):
            return ["uid": .int(Int64(uid)), "user": user.map(JSONValue.string) ?? .null, "pid": .int(Int64(pid)), "sale": sale.map(JSONValue.string) ?? .null]
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
