public import Foundation
import Synchronization
import TillCore
public import TillDevices

/// `printer-drawer`: a cash drawer on a receipt printer's drawer port (`via` names the
/// printer). Opened by the printer's kick (`ESC p`, the connector pin and pulse from the
/// entry); open or shut from pin 3 of the port as the printer reports it, with the polarity
/// the drawer's wiring has (`open_when = "high"` or `"low"`). `drawer.opened` and
/// `drawer.closed` (with how long it was open) are emitted on change only.
public final class PrinterDrawer: CashDrawer {
    public struct Settings: Sendable {
        public var pin = 2
        public var pulseMilliseconds = 100
        public var pulses = 1
        /// The pin-3 level that means "open".
        public var openWhenHigh = true
        /// `drawer.left_open` times, and how long a second kick is refused after one.
        public var timing = DrawerWatch.Timing()
        public var leftOpenAfter: Duration {
            get { timing.leftOpenAfter }
            set { timing.leftOpenAfter = newValue }
        }
        public var leftOpenEvery: Duration {
            get { timing.leftOpenEvery }
            set { timing.leftOpenEvery = newValue }
        }

        public init() {}
    }

    public let info: DeviceInfo
    private let via: String
    private let settings: Settings
    private let directory: DeviceDirectory
    /// Opened and closed on change, reminders while open, double kicks refused.
    public let watch: DrawerWatch

    public var isOpen: Bool? { watch.isOpen }
    public var openSince: Date? { watch.openSince }

    public init(info: DeviceInfo, via: String, settings: Settings, directory: DeviceDirectory) {
        self.info = info
        self.via = via
        self.settings = settings
        self.directory = directory
        watch = DrawerWatch(device: info.name, timing: settings.timing)
    }

    private var port: (any DrawerPort)? { directory.device(named: via) as? any DrawerPort }

    public var status: DeviceStatus {
        guard let port else {
            if let other = directory.device(named: via) {
                return DeviceStatus(.error, reason: "\"\(via)\" (\(other.info.driver)) has no drawer port: via must name an escpos printer")
            }
            return DeviceStatus(.error, reason: "no device named \"\(via)\": via must name the printer the drawer is plugged into")
        }
        let printer = port.status
        guard printer.state != .offline else {
            return DeviceStatus(.offline, reason: "its printer \"\(via)\" is offline: \(printer.reason ?? "")")
        }
        return .online
    }

    public func open(events: any EventSink) async throws {
        guard let port else { throw DeviceError(device: info.name, .notReady, status.reason ?? "no printer") }
        try watch.beginKick()
        do {
            try await port.kickDrawer(pin: settings.pin, pulseMilliseconds: settings.pulseMilliseconds, pulses: settings.pulses)
        } catch {
            watch.kickFailed()
            throw error
        }
    }

    public func run(events: any EventSink) async throws {
        guard let port else {
            // Nothing to watch: the state says why; stay until shutdown.
            try await Task.sleep(for: .seconds(86_400 * 365))
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.follow(port, events: events) }
            group.addTask { try await self.watch.run(events: events) }
            try await group.next()
            group.cancelAll()
        }
    }

    private func follow(_ port: any DrawerPort, events: any EventSink) async {
        for await high in port.drawerPinChanges() {
            let open = high == settings.openWhenHigh
            await watch.observe(open: open, events: events)
            // Shut again: the printer need not be asked for the drawer often any more.
            if !open { port.drawerSettled() }
        }
    }
}
