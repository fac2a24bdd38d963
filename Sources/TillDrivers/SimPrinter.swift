import Foundation
import Synchronization
import TillTransport
public import TillCore
public import TillDevices
public import TillESCPOS
import TillImaging

/// `sim-printer`: the `escpos` driver over a virtual printer link, so the demo runs the real
/// driver: each job's bytes are decoded back to text in STATE_DIR/demo/sim-printer.txt.
/// `simulate` sets its condition (`{"paper":"out"}`, `{"cover_open":true}`, `{"online":false}`),
/// which the driver learns the way it would from a printer (status bytes), and how long a job
/// takes (`{"print_seconds":5}`: the first line reaches the paper at once, the rest that long
/// after, as a real printer is part-way through a receipt when the power goes), and whether it
/// is plugged in (`{"plugged":false}`: the link fails like a USB printer pulled out).
public final class SimPrinter: ReceiptPrinter, SimulatedDevice {
    public var info: DeviceInfo { driver.info }
    public var encoder: ReceiptEncoder { driver.encoder }
    public var status: DeviceStatus { driver.status }
    private let driver: EscposPrinter
    /// The link now in use (a new one after each replug) and the simulated condition.
    private final class Links: Sendable {
        let state = Mutex<(current: VirtualPrinterLink?, condition: VirtualPrinterLink.Condition)>((nil, .init()))
    }
    private let links = Links()
    private let output: DemoOutput

    /// `drawerKicked`: the printer's drawer port fired (a receipt's open_drawer).
    public init(name: String = "sim-printer", output: DemoOutput, profile: PrinterProfile = .generic80, drawerKicked: @escaping @Sendable () -> Void = {}) {
        let info = DeviceInfo(name: name, role: .printer, driver: "sim", transport: "sim", model: "Simulated 80 mm printer (\(profile.name))", identity: "demo:\(name)")
        let endpoint = "virtual printer \(name)"
        let links = self.links
        var settings = EscposPrinter.Settings()
        settings.statusInterval = .seconds(30)  // the link pushes its changes (ASB); no need to ask often
        settings.stallTimeout = .milliseconds(500)
        self.output = output
        driver = EscposPrinter(info: info, encoder: ReceiptEncoder(profile: profile, imaging: Imaging()), settings: settings) {
            // Plugged in again: a new link, as a replugged USB printer is a new device node.
            let condition = links.state.withLock { $0.condition }
            guard condition.plugged else {
                throw TransportError(.notFound, endpoint: endpoint, "no device at \(endpoint): is it plugged in and switched on?")
            }
            let link = VirtualPrinterLink(endpoint: endpoint, profile: profile, drawerKicked: drawerKicked) { text in
                try output.append("sim-printer.txt", text)
            }
            link.set { $0 = condition }
            links.state.withLock { $0.current = link }
            return link
        }
    }

    public func prepare() async { await driver.prepare() }

    public func run(events: any EventSink) async throws { try await driver.run(events: events) }

    public func print(_ job: PrintJob, events: any EventSink) async throws {
        guard status.state == .online else {
            throw DeviceError(device: info.name, .notReady, "\(status.reason ?? "not ready"); the job stays queued and prints when the printer is ready")
        }
        do {
            try output.append("sim-printer.txt", "--- job \(job.id) at \(Timestamp.format(Date())) ---\n")
        } catch {
            throw DeviceError(device: info.name, .notReady, "cannot write \(output.directory.path)/sim-printer.txt: \(error.localizedDescription)")
        }
        try await driver.print(job, events: events)
        try? output.append("sim-printer.txt", "\n")
    }

    public func simulate(_ data: JSONValue, events: any EventSink) async throws {
        let fields = try FieldReader(data, path: "data")
        try fields.allowOnly(["paper", "cover_open", "online", "print_seconds", "plugged"])
        let paper = try fields.optionalString("paper")
        if let paper, PrinterState.Paper(rawValue: paper) == nil {
            throw WireError.badRequest(field: "data.paper", "must be ok, near_end or out")
        }
        let coverOpen = try fields.optionalBool("cover_open")
        let online = try fields.optionalBool("online")
        let seconds = try fields.optionalInt("print_seconds", range: 0...60)
        let plugged = try fields.optionalBool("plugged")
        let update = { (condition: inout VirtualPrinterLink.Condition) in
            if let paper { condition.paper = PrinterState.Paper(rawValue: paper)! }
            if let coverOpen { condition.coverOpen = coverOpen }
            if let online { condition.online = online }
            if let seconds { condition.printSeconds = Int(seconds) }
            if let plugged { condition.plugged = plugged }
        }
        let (link, wanted) = links.state.withLock { links -> (VirtualPrinterLink?, VirtualPrinterLink.Condition) in
            update(&links.condition)
            return (links.current, links.condition)
        }
        link?.set(update)
        guard wanted.plugged else { return }
        // The driver learns it from the printer's status bytes (ASB); wait until it has, so the
        // caller's next request sees the new state.
        for _ in 0..<200 {
            let seen = driver.condition
            if seen.coverOpen == wanted.coverOpen && seen.paper == wanted.paper && seen.online == wanted.online { break }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
