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
    private let links = SimPrinterLinks()
    private let output: DemoOutput
    /// The drawer plugged into its port: a kick (ESC p, from `drawer.open` or a receipt's
    /// open_drawer) opens it, and it reports its switch on pin 3 as a real one does.
    let drawer: SimDrawerMechanism
    /// The real driver, as the drawer port `sim-drawer` (a `printer-drawer`) hangs on.
    var port: any DrawerPort { driver }

    public init(name: String = "sim-printer", output: DemoOutput, profile: PrinterProfile = .generic80) {
        let info = DeviceInfo(name: name, role: .printer, driver: "sim", transport: "sim", model: "Simulated 80 mm printer (\(profile.name))", identity: "demo:\(name)")
        let endpoint = "virtual printer \(name)"
        let links = self.links
        var settings = EscposPrinter.Settings()
        settings.statusInterval = .seconds(30)  // the link pushes its changes (ASB); no need to ask often
        settings.stallTimeout = .milliseconds(500)
        self.output = output
        let drawer = SimDrawerMechanism(links: links)
        self.drawer = drawer
        let drawerKicked: @Sendable () -> Void = { drawer.kicked() }
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
        let wanted = links.update(update)
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

/// The link now in use (a new one after each replug) and the simulated condition, which
/// outlives links (paper stays out across a replug; the drawer stays open).
final class SimPrinterLinks: Sendable {
    let state = Mutex<(current: VirtualPrinterLink?, condition: VirtualPrinterLink.Condition)>((nil, .init()))

    /// Changes the condition, and tells the link in use (an ASB block goes out): returns it.
    @discardableResult
    func update(_ change: @escaping (inout VirtualPrinterLink.Condition) -> Void) -> VirtualPrinterLink.Condition {
        let (link, condition) = state.withLock { state -> (VirtualPrinterLink?, VirtualPrinterLink.Condition) in
            change(&state.condition)
            return (state.current, state.condition)
        }
        link?.set(change)
        return condition
    }
}

/// The simulated cash drawer in sim-printer's drawer port: its switch is pin 3. A kick opens
/// it; it shuts itself `closeAfter` seconds later, as if the cashier pushed it shut (nil: it
/// stays open until told, which is how `drawer.left_open` is shown).
final class SimDrawerMechanism: Sendable {
    private let links: SimPrinterLinks
    private let state = Mutex<(closeAfter: Double?, episode: Int)>((3, 0))
    /// Each opening by a kick, for `run` to shut in time.
    private let openings: AsyncStream<(episode: Int, closeAfter: Double)>
    private let opened: AsyncStream<(episode: Int, closeAfter: Double)>.Continuation

    init(links: SimPrinterLinks) {
        self.links = links
        (openings, opened) = AsyncStream.makeStream(of: (episode: Int, closeAfter: Double).self, bufferingPolicy: .bufferingNewest(16))
    }

    var closeAfter: Double? {
        get { state.withLock { $0.closeAfter } }
        set { state.withLock { $0.closeAfter = newValue } }
    }

    /// The solenoid fired: the drawer springs open (if it was shut) and shuts itself in time.
    func kicked() {
        let (episode, closeAfter) = state.withLock { state -> (Int, Double?) in
            state.episode += 1
            return (state.episode, state.closeAfter)
        }
        setSwitch(open: true)
        if let closeAfter { opened.yield((episode, closeAfter)) }
    }

    /// Shuts each opening `closeAfter` later, unless it was opened again or shut meanwhile
    /// (that has its own time). Run by sim-drawer's `run`.
    func run() async throws {
        for await opening in openings {
            try await Task.sleep(for: .seconds(opening.closeAfter))
            if state.withLock({ $0.episode == opening.episode }) { setSwitch(open: false) }
        }
    }

    /// The drawer opened by its key, or pushed shut.
    func setSwitch(open: Bool) {
        if !open { state.withLock { $0.episode += 1 } }
        links.update { $0.drawerPinHigh = open }
    }
}
