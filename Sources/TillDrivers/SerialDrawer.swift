public import Foundation
import Synchronization
import TillCore
public import TillDevices
public import TillSystem
public import TillTransport

/// `serial-drawer`: a stand-alone cash drawer on a serial port (RS-232 or a USB-serial
/// adapter). It is opened either by a byte sequence (`open_sequence`, for drawer interfaces
/// that fire on what they receive) or by pulsing an output line (`pulse_line = "dtr"` or
/// `"rts"`, for those wired to fire the solenoid from a control line). Whether it is open comes
/// from an input line wired to the drawer's switch (`state_line = "cts"`, `"dsr"` or `"dcd"`),
/// read with TIOCMGET, with the polarity of the wiring (`open_when`).
///
/// The line is read only while the drawer can change: every `watch` interval from a kick until
/// the drawer has opened and shut again (or it did not open), and otherwise on a slow timer
/// (`poll_seconds`, for a drawer opened by its key; 0 turns it off). Linux raises DTR and RTS
/// when a port is opened; the pulse line is dropped again at once, so the solenoid sees a pulse
/// only when a kick asks for one.
public final class SerialDrawer: CashDrawer {
    public enum Opening: Sendable, Hashable {
        /// These bytes sent on the line open it.
        case sequence([UInt8])
        /// This output (DTR or RTS) raised for `pulse` opens it.
        case pulse(ModemLines)
    }

    public struct Settings: Sendable {
        public var opening: Opening
        /// How long a pulse holds the line (pulse opening).
        public var pulse: Duration = .milliseconds(100)
        /// Kicks per open (some drawers need two). Between two, the line rests four times the
        /// pulse, so the solenoid is on a fifth of the time at most (HARDWARE.md).
        public var pulses = 1
        /// The input wired to the drawer's switch; nil when none is (the state is then unknown).
        public var stateLine: ModemLines? = nil
        /// The switch line's level that means "open".
        public var openWhenHigh = true
        /// How often the switch is read after a kick.
        public var watchInterval: Duration = .milliseconds(100)
        /// After a kick: how long the drawer has to open before it is taken not to have.
        public var openWithin: Duration = .seconds(5)
        /// The close watch ends this long after a kick at most (the slow timer goes on).
        public var watchLimit: Duration = .seconds(600)
        /// The slow timer for a drawer opened by hand (its key); nil: read only after a kick.
        public var pollInterval: Duration? = .seconds(5)
        public var timing = DrawerWatch.Timing()

        public init(opening: Opening) {
            self.opening = opening
        }
    }

    public let info: DeviceInfo
    public let settings: Settings
    public let watch: DrawerWatch
    private let open: @Sendable () async throws -> any SerialLine

    private struct Link {
        var line: (any SerialLine)?
        /// The close watch after a kick: until then, the switch is read every `watchInterval`.
        var kickedAt: ContinuousClock.Instant?
        var seenOpenSinceKick = false
        var kicking = false
    }
    private let link = Mutex(Link())
    private let state = StatusCell(DeviceStatus(.offline, reason: "not opened yet"))
    private let wakeup = Wakeup()

    private let presence: (any DevicePresence)?

    public init(info: DeviceInfo, settings: Settings, presence: (any DevicePresence)? = nil, open: @escaping @Sendable () async throws -> any SerialLine) {
        self.presence = presence
        self.info = info
        self.settings = settings
        self.open = open
        watch = DrawerWatch(device: info.name, timing: settings.timing)
    }

    public var status: DeviceStatus { state.current }
    public var isOpen: Bool? { watch.isOpen }
    public var openSince: Date? { watch.openSince }

    public func prepare() async {
        do {
            let line = try await connect()
            link.withLock { $0.line = line }
            state.setQuietly(.online)
        } catch {
            state.setQuietly(DeviceStatus(failure: error))
        }
    }

    /// Opens the port, drops the pulse line (Linux raised it), and reads the switch once, so a
    /// state line the port does not have is said at start, not at the first kick.
    private func connect() async throws -> any SerialLine {
        let line = try await open()
        do {
            if case .pulse(let output) = settings.opening { try await line.setModemLines(output, on: false) }
            if settings.stateLine != nil { _ = try await line.modemLines() }
        } catch {
            await line.close()
            throw error
        }
        return line
    }

    public func run(events: any EventSink) async throws {
        try await closing(closeLine) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.watchLine(events: events) }
                group.addTask { try await self.watch.run(events: events) }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// On every way out: the port is given back.
    private func closeLine() async {
        if let line = link.withLock({ link -> (any SerialLine)? in defer { link.line = nil }; return link.line }) { await line.close() }
    }

    /// Keeps the line open (again, with back-off, when it went away) and reads the switch when
    /// it can have moved.
    private func watchLine(events: any EventSink) async throws {
        var reopening = Reopening(presence: presence)
        while !Task.isCancelled {
            reopening.attempting()
            guard let line = link.withLock({ $0.line }) else {
                do {
                    let line = try await connect()
                    link.withLock { $0.line = line }
                    reopening.opened()
                    await state.set(.online, device: info.name, events)
                } catch {
                    await state.set(DeviceStatus(failure: error), device: info.name, events)
                    try await reopening.wait(after: error)
                }
                continue
            }
            if let stateLine = settings.stateLine {
                do {
                    let lines = try await line.modemLines()
                    let open = lines.contains(stateLine) == settings.openWhenHigh
                    endWatchIfSettled(open: open)
                    await watch.observe(open: open, events: events)
                } catch let error as TransportError {
                    await lost(line, error, events: events)
                    continue
                }
            }
            await wakeup.wait(until: nextReading())
            try Task.checkCancellation()
        }
    }

    /// When the switch is to be read next: soon while a kick is being watched, on the slow timer
    /// otherwise, never with no switch to read or no timer.
    private func nextReading() -> ContinuousClock.Instant {
        let never = ContinuousClock.now + .seconds(86_400 * 365)
        guard settings.stateLine != nil else { return never }
        if link.withLock({ $0.kickedAt != nil }) { return .now + settings.watchInterval }
        return settings.pollInterval.map { .now + $0 } ?? never
    }

    /// The close watch ends once the drawer opened and shut again, when it did not open in time,
    /// or at the limit.
    private func endWatchIfSettled(open: Bool) {
        link.withLock { link in
            guard let kicked = link.kickedAt else { return }
            if open { link.seenOpenSinceKick = true }
            let elapsed = ContinuousClock.now - kicked
            if (link.seenOpenSinceKick && !open) || (!link.seenOpenSinceKick && elapsed > settings.openWithin) || elapsed > settings.watchLimit {
                link.kickedAt = nil
                link.seenOpenSinceKick = false
            }
        }
    }

    public func open(events: any EventSink) async throws {
        guard let line = link.withLock({ link -> (any SerialLine)? in
            guard let line = link.line, !link.kicking else { return nil }
            link.kicking = true
            return line
        }) else {
            if link.withLock({ $0.kicking }) {
                throw DeviceError(device: info.name, .busy, "a kick is going out now: wait a moment before trying again")
            }
            throw DeviceError(device: info.name, .notReady, "\(status.reason ?? "the port is not open"); the drawer was not opened")
        }
        defer { link.withLock { $0.kicking = false } }
        try watch.beginKick()
        do {
            for pulse in 0..<max(1, settings.pulses) {
                if pulse > 0 { try await Task.sleep(for: settings.pulse * 4) }
                switch settings.opening {
                case .sequence(let bytes):
                    try await line.write(bytes, timeout: .seconds(2))
                case .pulse(let output):
                    try await line.setModemLines(output, on: true)
                    // Dropped again whatever happens: a line left high keeps the solenoid on.
                    do {
                        try await Task.sleep(for: settings.pulse)
                    } catch {
                        try? await line.setModemLines(output, on: false)
                        throw error
                    }
                    try await line.setModemLines(output, on: false)
                }
            }
        } catch let error as TransportError {
            watch.kickFailed()
            await lost(line, error, events: events)
            throw DeviceError(device: info.name, .notReady, "the kick did not reach the drawer: \(error.message)")
        } catch {
            watch.kickFailed()
            throw error
        }
        link.withLock { link in
            link.kickedAt = .now
            link.seenOpenSinceKick = false
        }
        wakeup.signal()
    }

    private func lost(_ line: any SerialLine, _ error: TransportError, events: any EventSink) async {
        let mine = link.withLock { link -> Bool in
            guard link.line === line else { return false }
            link.line = nil
            link.kickedAt = nil
            return true
        }
        guard mine else { return }
        watch.lost()
        await line.close()
        await state.set(DeviceStatus(failure: error), device: info.name, events)
        wakeup.signal()
    }
}
