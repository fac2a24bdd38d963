public import Foundation
import Synchronization
public import TillCore
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
        /// `drawer.left_open` this long after it opened, and again at this interval while open.
        public var leftOpenAfter: Duration = .seconds(60)
        public var leftOpenEvery: Duration = .seconds(60)

        public init() {}
    }

    public let info: DeviceInfo
    private let via: String
    private let settings: Settings
    private let directory: DeviceDirectory
    private let openedAt = Mutex<Date?>(nil)
    /// Open or shut as pin 3 last said (nil until it said).
    private let known = Mutex<Bool?>(nil)

    public var isOpen: Bool? { known.withLock { $0 } }
    public var openSince: Date? { openedAt.withLock { $0 } }

    public init(info: DeviceInfo, via: String, settings: Settings, directory: DeviceDirectory) {
        self.info = info
        self.via = via
        self.settings = settings
        self.directory = directory
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
        try await port.kickDrawer(pin: settings.pin, pulseMilliseconds: settings.pulseMilliseconds, pulses: settings.pulses)
    }

    /// When the next `drawer.left_open` is due (nil while shut).
    private let leftOpenAt = Mutex<ContinuousClock.Instant?>(nil)
    private let wakeup = Wakeup()

    public func run(events: any EventSink) async throws {
        guard let port else {
            // Nothing to watch: the state says why; stay until shutdown.
            try await Task.sleep(for: .seconds(86_400 * 365))
            return
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.follow(port, events: events) }
            group.addTask { try await self.remindWhileOpen(events: events) }
            try await group.next()
            group.cancelAll()
        }
    }

    /// `drawer.left_open` while the drawer stays open: a timer only while it is open.
    private func remindWhileOpen(events: any EventSink) async throws {
        while !Task.isCancelled {
            let due = leftOpenAt.withLock { $0 }
            await wakeup.wait(until: due ?? .now + .seconds(86_400 * 365))
            try Task.checkCancellation()
            let fire = leftOpenAt.withLock { at -> Bool in
                guard let due = at, due <= .now else { return false }
                at = due + settings.leftOpenEvery
                return true
            }
            if fire, let since = openedAt.withLock({ $0 }) {
                await events.emit(.drawerLeftOpen(openSeconds: Date().timeIntervalSince(since)), device: info.name)
            }
        }
    }

    private func follow(_ port: any DrawerPort, events: any EventSink) async {
        var wasOpen: Bool? = nil
        for await high in port.drawerPinChanges() {
            let open = high == settings.openWhenHigh
            known.withLock { $0 = open }
            defer { wasOpen = open }
            guard open != wasOpen else { continue }
            if open {
                openedAt.withLock { $0 = Date() }
                leftOpenAt.withLock { $0 = .now + settings.leftOpenAfter }
                wakeup.signal()
                // The first reading after start is not an opening someone did: said only if open.
                await events.emit(.drawerOpened, device: info.name)
            } else {
                let seconds = openedAt.withLock { at -> Double? in
                    defer { at = nil }
                    return at.map { Date().timeIntervalSince($0) }
                }
                leftOpenAt.withLock { $0 = nil }
                wakeup.signal()
                port.drawerSettled()
                if wasOpen != nil { await events.emit(.drawerClosed(openSeconds: seconds), device: info.name) }
            }
        }
    }
}
