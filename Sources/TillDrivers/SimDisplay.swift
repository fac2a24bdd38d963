import Synchronization
public import TillCore
import TillDisplay
public import TillDevices

/// `sim-display`: a 2×20 customer display whose current lines are in STATE_DIR/demo/sim-display.txt.
/// It follows the sales the POS publishes (on by default in the demo), as `sale_driven` does.
public final class SimDisplay: CustomerDisplay, SaleFollower {
    public var followsSales: Bool { true }
    private let sale = Mutex(SaleDisplay(columns: 20))
    public let info: DeviceInfo
    public var status: DeviceStatus { .online }
    public let rows = 2
    public let columns = 20
    private let output: DemoOutput

    public init(name: String = "sim-display", output: DemoOutput) {
        info = DeviceInfo(name: name, role: .display, driver: "sim", transport: "sim", model: "Simulated 2x20 display", identity: "demo:\(name)")
        self.output = output
    }

    public func follow(topic: String, data: JSONValue, events: any EventSink) async {
        let update = sale.withLock { $0.apply(topic: topic, data: data) }
        switch update {
        case .show(let lines), .finish(let lines):
            try? await show(lines.isEmpty ? .clear : .lines(lines), events: events)
        case .none:
            break
        }
    }

    public func show(_ content: DisplayContent, events: any EventSink) async throws {
        let lines: [String]
        switch content {
        case .clear: lines = []
        case .lines(let given):
            guard given.count <= rows else {
                throw DeviceError(device: info.name, .invalidRequest, "shows \(rows) lines of \(columns) characters; got \(given.count) lines")
            }
            // Longer text is cut, as the glass would: the event says what is actually shown.
            lines = given.map { String($0.prefix(columns)) }
        }
        do {
            try output.replace("sim-display.txt", lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n"))
        } catch {
            throw DeviceError(device: info.name, .failed, "cannot write the demo display file: \(error)")
        }
        await events.emit(.displayUpdated(lines: lines), device: info.name)
    }
}
