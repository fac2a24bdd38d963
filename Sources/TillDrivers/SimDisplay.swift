import Synchronization
import TillDisplay
public import TillDevices
import TillTransport

/// `sim-display`: the `epson-display` driver (2×20) over a virtual display, so the demo runs the
/// real display code (rows rewritten, marquee, idle, sale-driven): what the glass shows is in
/// STATE_DIR/demo/sim-display.txt after every write. It follows the sales the POS publishes.
public enum SimDisplay {
    public static func make(name: String = "sim-display", output: DemoOutput) -> any TillDevice {
        let profile = DisplayProfile(rows: 2, columns: 20)
        let info = DeviceInfo(name: name, role: .display, driver: "sim", transport: "sim", model: "Simulated 2x20 display (epson-display)", identity: "demo:\(name)")
        var behaviour = PoleDisplay.Behaviour()
        behaviour.saleDriven = true
        return PoleDisplay(info: info, encoder: DisplayEncoder(.epson, profile: profile), behaviour: behaviour) {
            VirtualDisplayLink(endpoint: "virtual display \(name)", display: VirtualDisplay(.epson, profile: profile)) { lines in
                try output.replace("sim-display.txt", lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n")
            }
        }
    }
}

/// A display in software at the end of a byte stream: what it is sent goes through the
/// virtual display, and the glass, as text, to `show` (the demo's file) after each write.
final class VirtualDisplayLink: ByteStream {
    let endpoint: String
    private let display: Mutex<VirtualDisplay>
    private let show: @Sendable ([String]) throws -> Void
    private let oneWay: OneWayLink

    init(endpoint: String, display: VirtualDisplay, show: @escaping @Sendable ([String]) throws -> Void) {
        self.endpoint = endpoint
        self.display = Mutex(display)
        self.show = show
        oneWay = OneWayLink(endpoint: endpoint)
    }

    func read(maxCount: Int, timeout: Duration) async throws -> [UInt8] { try await oneWay.read(timeout: timeout) }

    func write(_ bytes: [UInt8], timeout: Duration) async throws {
        try oneWay.checkOpen()
        let rows = display.withLock { display in
            display.feed(bytes)
            return display.lines
        }
        // Trailing blanks trimmed, blank rows at the bottom dropped: the file reads as the glass.
        var shown = rows.map { String($0.reversed().drop { $0 == " " }.reversed()) }
        while shown.last?.isEmpty == true { shown.removeLast() }
        do {
            try show(shown)
        } catch {
            throw TransportError(.io, endpoint: endpoint, "cannot write the demo display's file: \(error)")
        }
    }

    func drain(timeout: Duration) async throws {}
    func cancelWaits() { oneWay.cancelWaits() }
    func close() async { oneWay.close() }
}
