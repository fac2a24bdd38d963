public import Foundation
import Synchronization
public import TillDevices

/// What every cash drawer driver shares, whatever opens it (a printer's drawer port, a serial
/// line's pulse, the demo): `drawer.opened` and `drawer.closed` (with how long it was open) on
/// change only, `drawer.left_open` after a set time and again at an interval while it stays
/// open (a timer only while it is open), and the refusal of a kick that would only wear the
/// solenoid: into a drawer already open, or a second one before the first has shown.
///
/// The driver tells it each reading of the drawer's switch (`observe`) and each kick
/// (`beginKick` before firing, `kickFailed` when it did not go out); it runs the reminders
/// (`run`). A drawer with no switch wired is never "open" here (`isOpen` stays nil): its kicks
/// are still kept apart by `kickSettle`.
public final class DrawerWatch: Sendable {
    public struct Timing: Sendable, Hashable {
        /// `drawer.left_open` this long after it opened, and again every `leftOpenEvery`.
        public var leftOpenAfter: Duration = .seconds(60)
        public var leftOpenEvery: Duration = .seconds(60)
        /// After a kick, how long a second kick is refused while the drawer has not said it is
        /// open (a double click on "open drawer", a retry racing the switch).
        public var kickSettle: Duration = .seconds(1)

        public init() {}
    }

    private struct State {
        var timing: Timing
        /// What the switch last said; kept while the line is gone, so a drawer that was open
        /// before an unplug and is open after it is not "opened" twice.
        var open: Bool? = nil
        /// Whether `open` is current (false while the line is gone).
        var known = false
        var openedAt: Date? = nil
        var leftOpenAt: ContinuousClock.Instant? = nil
        var kickedAt: ContinuousClock.Instant? = nil
    }

    private let device: String
    private let state: Mutex<State>
    private let wakeup = Wakeup()

    public init(device: String, timing: Timing = Timing()) {
        self.device = device
        state = Mutex(State(timing: timing))
    }

    /// Open or shut as the switch last said; nil while unknown (no switch, line gone).
    public var isOpen: Bool? { state.withLock { $0.known ? $0.open : nil } }
    public var openSince: Date? { state.withLock { $0.known && $0.open == true ? $0.openedAt : nil } }

    /// Changes the reminder times (the demo drawer's `simulate {"left_open_after": N}`).
    public func setTiming(_ update: (inout Timing) -> Void) {
        state.withLock { state in
            update(&state.timing)
            if state.open == true, let opened = state.openedAt {
                let elapsed = Date().timeIntervalSince(opened)
                state.leftOpenAt = .now + max(.zero, state.timing.leftOpenAfter - .seconds(elapsed))
            }
        }
        wakeup.signal()
    }

    /// Before a kick is fired: throws `busy` (nothing fired) when the drawer is open, or when a
    /// kick went out a moment ago and the drawer has not said it opened.
    public func beginKick() throws {
        try state.withLock { state in
            let now = ContinuousClock.now
            if state.known, state.open == true {
                let since = state.openedAt.map { " for \(Int(Date().timeIntervalSince($0))) s" } ?? ""
                throw DeviceError(device: device, .busy, "the drawer is already open\(since): close it, then open it again")
            }
            if let kicked = state.kickedAt, now - kicked < state.timing.kickSettle {
                let ms = (now - kicked).components.seconds * 1000 + (now - kicked).components.attoseconds / 1_000_000_000_000_000
                throw DeviceError(device: device, .busy, "a kick went out \(ms) ms ago and the drawer has not said it opened yet: wait a moment before trying again")
            }
            state.kickedAt = now
        }
    }

    /// The kick `beginKick` allowed did not go out (the line failed): another may be tried now.
    public func kickFailed() {
        state.withLock { $0.kickedAt = nil }
    }

    /// A reading of the drawer's switch. The first reading after start is not an opening anyone
    /// did: it is said only when the drawer is open (so `drawer.opened` is never missed).
    public func observe(open: Bool, events: any EventSink) async {
        enum Change { case none, opened, closed(Double?) }
        let change = state.withLock { state -> Change in
            let was = state.open
            state.open = open
            state.known = true
            guard open != was else { return .none }
            if open {
                state.openedAt = Date()
                state.leftOpenAt = .now + state.timing.leftOpenAfter
                state.kickedAt = nil
                return .opened
            }
            let seconds = state.openedAt.map { Date().timeIntervalSince($0) }
            state.openedAt = nil
            state.leftOpenAt = nil
            return was == nil ? .none : .closed(seconds)
        }
        switch change {
        case .none: return
        case .opened: await events.emit(.drawerOpened, device: device)
        case .closed(let seconds): await events.emit(.drawerClosed(openSeconds: seconds), device: device)
        }
        wakeup.signal()
    }

    /// The switch cannot be read now (the line went away): the state is unknown until it can.
    public func lost() {
        state.withLock { $0.known = false }
    }

    /// `drawer.left_open` while the drawer stays open. Sleeps without a deadline while it is
    /// shut: an idle drawer wakes nothing.
    public func run(events: any EventSink) async throws {
        while !Task.isCancelled {
            let due = state.withLock { $0.known ? $0.leftOpenAt : nil }
            await wakeup.wait(until: due ?? .now + .seconds(86_400 * 365))
            try Task.checkCancellation()
            let openFor = state.withLock { state -> Double? in
                guard state.known, state.open == true, let due = state.leftOpenAt, due <= .now, let opened = state.openedAt else { return nil }
                state.leftOpenAt = due + state.timing.leftOpenEvery
                if state.leftOpenAt! <= .now { state.leftOpenAt = .now + state.timing.leftOpenEvery }
                return Date().timeIntervalSince(opened)
            }
            if let openFor { await events.emit(.drawerLeftOpen(openSeconds: openFor), device: device) }
        }
    }
}
