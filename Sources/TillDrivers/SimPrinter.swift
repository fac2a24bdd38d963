import Foundation
import Synchronization
public import TillCore
public import TillDevices

/// `sim-printer`: renders each job as readable text in STATE_DIR/demo/sim-printer.txt.
/// `simulate` sets its condition (`{"paper":"out"}`, `{"cover_open":true}`, `{"online":false}`)
/// so the paper-out and offline paths can be tried without a printer, and how long a job takes
/// (`{"print_seconds":5}`: the header reaches the paper first, the rest after that long, as a
/// real printer is part-way through a receipt when the power goes).
public final class SimPrinter: ReceiptPrinter, SimulatedDevice {
    public let info: DeviceInfo
    private let output: DemoOutput
    private let renderer = ReceiptTextRenderer(width: 42)

    private struct Condition: Equatable {
        var online = true
        var coverOpen = false
        var paper = "ok"
        var printSeconds = 0
    }
    private let condition = Mutex(Condition())

    public init(name: String = "sim-printer", output: DemoOutput) {
        info = DeviceInfo(name: name, role: .printer, driver: "sim", transport: "sim", model: "Simulated 80 mm printer", identity: "demo:\(name)")
        self.output = output
    }

    public var status: DeviceStatus {
        let c = condition.withLock { $0 }
        if !c.online { return DeviceStatus(.offline, reason: "printer is offline: check power and cable") }
        if c.coverOpen { return DeviceStatus(.error, reason: "cover open: close the printer cover") }
        if c.paper == "out" { return DeviceStatus(.error, reason: "paper out: load a new roll") }
        return .online
    }

    public func print(_ job: PrintJob, events: any EventSink) async throws {
        let status = self.status
        guard status.state == .online else {
            throw DeviceError(device: info.name, .notReady, "\(status.reason ?? "not ready"); the job stays queued and prints when the printer is ready")
        }
        let body: [String]
        switch job.payload {
        case .receipt(let document, _): body = renderer.render(document)
        case .raw(let bytes): body = Self.printable(bytes)
        }
        let header = "--- job \(job.id) at \(Timestamp.format(Date())) ---"
        let text = ([header] + body.map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) } + [""])
            .joined(separator: "\n")
        let seconds = condition.withLock { $0.printSeconds }
        do {
            if seconds > 0 {
                let cut = text.firstIndex(of: "\n").map { text.index(after: $0) } ?? text.endIndex
                try output.append("sim-printer.txt", String(text[..<cut]))
                try await Task.sleep(for: .seconds(seconds))
                try output.append("sim-printer.txt", String(text[cut...]))
            } else {
                try output.append("sim-printer.txt", text)
            }
        } catch is CancellationError {
            throw DeviceError(device: info.name, .failed, "stopped part-way through the job; not reprinted automatically to avoid a duplicate receipt")
        } catch {
            throw DeviceError(device: info.name, .failed, "cannot write \(output.directory.path)/sim-printer.txt: \(error.localizedDescription)")
        }
    }

    public func simulate(_ data: JSONValue, events: any EventSink) async throws {
        let fields = try FieldReader(data, path: "data")
        let paper = try fields.optionalString("paper")
        if let paper, !["ok", "near_end", "out"].contains(paper) {
            throw WireError.badRequest(field: "data.paper", "must be ok, near_end or out")
        }
        let coverOpen = try fields.optionalBool("cover_open")
        let online = try fields.optionalBool("online")
        if let seconds = try fields.optionalInt("print_seconds", range: 0...60) {
            condition.withLock { $0.printSeconds = Int(seconds) }
        }
        let (before, after) = condition.withLock { c -> (Condition, Condition) in
            let before = c
            if let paper { c.paper = paper }
            if let coverOpen { c.coverOpen = coverOpen }
            if let online { c.online = online }
            return (before, c)
        }
        guard before != after else { return }
        let paperState = PrinterCondition.Paper(rawValue: after.paper) ?? .ok
        await events.emit(.printerStatus(PrinterCondition(online: after.online, coverOpen: after.coverOpen, paper: paperState, error: status.reason)), device: info.name)
        await events.stateChanged(info.name, status)
    }

    /// Raw bytes as a printer would show them: printable text kept, ESC/POS commands dropped.
    static func printable(_ bytes: Data) -> [String] {
        var text = ""
        for byte in bytes {
            switch byte {
            case 0x0A: text.append("\n")
            case 0x20..<0x7F: text.append(Character(UnicodeScalar(byte)))
            default: continue
            }
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
}
