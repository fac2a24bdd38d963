public import Foundation
public import TillCore
public import TillDevices

/// `sim-drawer`: the `printer-drawer` driver on sim-printer's drawer port, so the demo runs the
/// real drawer code: `drawer.open` (or a receipt's open_drawer) kicks through the printer
/// driver, the simulated drawer in the port springs open, and the driver learns it from pin 3
/// in the printer's status, as it would from a real one. The drawer shuts itself `close_after`
/// seconds later (3 by default; null: it stays open, and `drawer.left_open` follows).
/// `simulate {"state":"open"}` opens it as its key would, `{"state":"closed"}` pushes it shut,
/// `{"left_open_after": N}` sets the reminder time.
public final class SimDrawer: CashDrawer, SimulatedDevice {
    private let driver: PrinterDrawer
    private let mechanism: SimDrawerMechanism

    init(name: String = "sim-drawer", printer: SimPrinter) {
        let directory = DeviceDirectory()
        directory.register([printer.port])
        var settings = PrinterDrawer.Settings()
        settings.leftOpenAfter = .seconds(30)
        settings.leftOpenEvery = .seconds(30)
        let info = DeviceInfo(
            name: name, role: .drawer, driver: "sim", transport: "via \(printer.info.name)", model: "Simulated cash drawer (printer-drawer on \(printer.info.name)'s port)",
            identity: "demo:\(name)")
        driver = PrinterDrawer(info: info, via: printer.info.name, settings: settings, directory: directory)
        mechanism = printer.drawer
    }

    public var info: DeviceInfo { driver.info }
    public var status: DeviceStatus { driver.status }
    public var isOpen: Bool? { driver.isOpen }
    public var openSince: Date? { driver.openSince }

    public func open(events: any EventSink) async throws { try await driver.open(events: events) }
    public func run(events: any EventSink) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.driver.run(events: events) }
            group.addTask { try await self.mechanism.run() }
            try await group.next()
            group.cancelAll()
        }
    }

    public func simulate(_ data: JSONValue, events: any EventSink) async throws {
        let fields = try FieldReader(data, path: "data")
        try fields.allowOnly(["state", "close_after", "left_open_after"])
        if fields.has("close_after") {
            let seconds = try fields.optionalInt("close_after", range: 0...86400)
            mechanism.closeAfter = seconds.map(Double.init)
        }
        if let seconds = try fields.optionalInt("left_open_after", range: 1...86400) {
            driver.watch.setTiming { timing in
                timing.leftOpenAfter = .seconds(seconds)
                timing.leftOpenEvery = .seconds(seconds)
            }
        }
        let wanted: Bool?
        switch try fields.optionalString("state") {
        case "open"?: wanted = true
        case "closed"?: wanted = false
        case nil: wanted = nil
        case let other?: throw WireError.badRequest(field: "data.state", "\"\(other)\" is not open or closed")
        }
        guard let wanted else { return }
        mechanism.setSwitch(open: wanted)
        // The driver learns it from the printer's status; wait until it has, so the caller's
        // next request sees the new state.
        for _ in 0..<200 where driver.isOpen != wanted {
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
