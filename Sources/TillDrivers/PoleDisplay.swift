import Foundation
import Synchronization
public import TillCore
public import TillDevices
public import TillDisplay
public import TillTransport

/// `epson-display` and `cd5220-display`: a 2×20 (or 4×20) pole display on a serial line.
///
/// Each update rewrites every row in full through the command set's encoder. A line longer
/// than the glass scrolls as a marquee until the next update; after `idle_after_seconds`
/// without an update the idle text comes back (`{time}` in it shows the clock, HH:MM); with
/// `sale_driven` the display follows the sales the POS publishes. Its one loop sleeps until
/// the next thing that moves (a marquee step, the idle deadline, the clock's next minute) and
/// wakes for nothing else: an idle display with no clock wakes nothing. The display is opened
/// (and set up: brightness, character table, cursor off) before it is announced, and opened
/// again, with back-off, when it went away: an update meanwhile is refused with the reason.
public final class PoleDisplay: CustomerDisplay, SaleFollower {
    public struct Behaviour: Sendable {
        public var idleText: String?
        public var idleAfter: Duration?
        public var saleDriven = false
        /// How long a marquee frame stays.
        public var marqueeStep: Duration = .milliseconds(400)
        /// After a sale's last screen (change, thank-you): how long before the idle text.
        public var afterSale: Duration = .seconds(15)

        public init() {}
    }

    public let info: DeviceInfo
    public let encoder: DisplayEncoder
    private let behaviour: Behaviour
    private let open: @Sendable () async throws -> any ByteStream

    private struct Screen {
        var stream: (any ByteStream)?
        /// What the last update asked for (lines may be longer than the glass: marquee).
        var lines: [String] = []
        var frame = 0
        var nextFrame: ContinuousClock.Instant?
        /// When the idle text comes back; nil while it shows, or with no idle text.
        var idleAt: ContinuousClock.Instant?
        var showingIdle = false
        var nextClock: ContinuousClock.Instant?
        var writing = false
    }
    private let screen = Mutex(Screen())
    private let state = StatusCell(DeviceStatus(.offline, reason: "not opened yet"))
    private let wakeup = Wakeup()
    private let sale: Mutex<SaleDisplay>

    private let presence: (any DevicePresence)?

    public init(
        info: DeviceInfo, encoder: DisplayEncoder, behaviour: Behaviour = Behaviour(), presence: (any DevicePresence)? = nil,
        open: @escaping @Sendable () async throws -> any ByteStream
    ) {
        self.presence = presence
        self.info = info
        self.encoder = encoder
        self.behaviour = behaviour
        self.open = open
        sale = Mutex(SaleDisplay(columns: encoder.profile.columns))
    }

    public var status: DeviceStatus { state.current }
    public var followsSales: Bool { behaviour.saleDriven }

    public func prepare() async {
        do {
            let stream = try await connect()
            screen.withLock { $0.stream = stream }
            state.setQuietly(.online)
        } catch {
            state.setQuietly(DeviceStatus(failure: error))
        }
    }

    private func connect() async throws -> any ByteStream {
        let stream = try await open()
        do {
            try await stream.write(encoder.setup, timeout: .seconds(2))
        } catch {
            await stream.close()
            throw error
        }
        return stream
    }

    public func run(events: any EventSink) async throws {
        // On every way out the line is closed (a display retired by a reload frees its port).
        try await closing(closeLine) { try await keepShowing(events: events) }
    }

    private func closeLine() async {
        if let stream = screen.withLock({ s -> (any ByteStream)? in defer { s.stream = nil }; return s.stream }) { await stream.close() }
    }

    private func keepShowing(events: any EventSink) async throws {
        var reopening = Reopening(presence: presence)
        if behaviour.idleText != nil { await showIdle(events: events) }
        while !Task.isCancelled {
            reopening.attempting()
            guard screen.withLock({ $0.stream }) != nil else {
                do {
                    let stream = try await connect()
                    screen.withLock { $0.stream = stream }
                    reopening.opened()
                    await state.set(.online, device: info.name, events)
                    await redraw(events: events)
                } catch {
                    await state.set(DeviceStatus(failure: error), device: info.name, events)
                    try await reopening.wait(after: error)
                }
                continue
            }
            let due = screen.withLock { [$0.nextFrame, $0.idleAt, $0.nextClock].compactMap { $0 }.min() }
            await wakeup.wait(until: due ?? .now + .seconds(86_400 * 365))
            try Task.checkCancellation()
            let now = ContinuousClock.now
            let (idle, clock, frame) = screen.withLock { s in
                (s.idleAt.map { $0 <= now } ?? false, s.nextClock.map { $0 <= now } ?? false, s.nextFrame.map { $0 <= now } ?? false)
            }
            if idle || clock {
                await showIdle(events: events)
            } else if frame {
                await redraw(events: events, advance: true)
            }
        }
    }

    public func show(_ content: DisplayContent, events: any EventSink) async throws {
        let lines: [String]
        switch content {
        case .clear: lines = []
        case .lines(let given):
            guard given.count <= encoder.profile.rows else {
                throw DeviceError(device: info.name, .invalidRequest, "shows \(encoder.profile.rows) lines of \(encoder.profile.columns) characters; got \(given.count) lines")
            }
            lines = given
        }
        try await put(lines, idleAfter: behaviour.idleAfter, events: events)
    }

    public func follow(topic: String, data: JSONValue, events: any EventSink) async {
        let update = sale.withLock { $0.apply(topic: topic, data: data) }
        switch update {
        case .show(let lines): try? await put(lines, idleAfter: behaviour.idleAfter, events: events)
        case .finish(let lines): try? await put(lines, idleAfter: behaviour.idleAfter.map { min($0, behaviour.afterSale) } ?? behaviour.afterSale, events: events, idleOrClear: true)
        case .none: break
        }
    }

    /// Shows `lines` (a marquee for those longer than the glass) and plans what comes next.
    private func put(_ lines: [String], idleAfter: Duration?, events: any EventSink, idleOrClear: Bool = false) async throws {
        let columns = encoder.profile.columns
        let bytes = lines.isEmpty ? encoder.clear : encoder.show(lines.map { DisplayLayout.marquee($0, columns: columns)[0] })
        let stream = try await claim()
        defer { release() }
        do {
            try await stream.write(bytes, timeout: .seconds(2))
        } catch let error as TransportError {
            await lost(stream, error, events: events)
            throw DeviceError(device: info.name, .notReady, "\(error.message); not shown")
        }
        let now = ContinuousClock.now
        let moving = lines.contains { $0.count > columns }
        screen.withLock { s in
            s.lines = lines
            s.frame = 0
            s.nextFrame = moving ? now + behaviour.marqueeStep : nil
            s.showingIdle = false
            s.nextClock = nil
            // After a sale: the idle text, or a blank glass when there is none.
            s.idleAt = (behaviour.idleText != nil || idleOrClear) ? idleAfter.map { now + $0 } : nil
        }
        wakeup.signal()
        await events.emit(.displayUpdated(lines: lines.map { String($0.prefix(columns)) }), device: info.name)
    }

    private func showIdle(events: any EventSink) async {
        var text = behaviour.idleText ?? ""
        var nextClock: ContinuousClock.Instant? = nil
        if text.contains("{time}") {
            let now = Date()
            let formatter = DateFormatter()
            formatter.dateFormat = "HH:mm"
            text = text.replacingOccurrences(of: "{time}", with: formatter.string(from: now))
            let seconds = 60 - Calendar.current.component(.second, from: now)
            nextClock = .now + .seconds(seconds)
        }
        let lines = text.isEmpty ? [] : Array(text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).prefix(encoder.profile.rows))
        try? await put(lines, idleAfter: nil, events: events)
        screen.withLock { s in
            s.showingIdle = true
            s.idleAt = nil
            s.nextClock = nextClock
        }
    }

    /// The next marquee frame (no event: the lines have not changed), or with `advance` false
    /// the glass as it should be (after reopening).
    private func redraw(events: any EventSink, advance: Bool = false) async {
        guard let stream = try? await claim() else { return }
        defer { release() }
        // The lines are read only now, holding the link: an update that took it first has
        // replaced them (and planned its own frames), and a frame of the old lines must not
        // be drawn over it.
        let columns = encoder.profile.columns
        let lines = screen.withLock { s -> [String]? in
            if advance {
                guard let due = s.nextFrame, due <= .now else { return nil }
                s.frame += 1
            }
            let frame = s.frame
            s.nextFrame = s.lines.contains { $0.count > columns } ? .now + behaviour.marqueeStep : nil
            return s.lines.map { line in
                let frames = DisplayLayout.marquee(line, columns: columns)
                return frames[frame % frames.count]
            }
        }
        guard let lines else { return }
        do {
            try await stream.write(lines.isEmpty ? encoder.clear : encoder.show(lines), timeout: .seconds(2))
        } catch let error as TransportError {
            await lost(stream, error, events: events)
        } catch {}
    }

    /// Writes never interleave: an update and a marquee frame take turns.
    private func claim() async throws -> any ByteStream {
        while true {
            let outcome = screen.withLock { s -> (any ByteStream)?? in
                guard let stream = s.stream else { return .some(nil) }
                if s.writing { return nil }
                s.writing = true
                return .some(stream)
            }
            switch outcome {
            case .some(let stream?): return stream
            case .some(nil): throw DeviceError(device: info.name, .notReady, "\(status.reason ?? "not open"); the display is opened again when it is back")
            case .none: try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    private func release() { screen.withLock { $0.writing = false } }

    private func lost(_ stream: any ByteStream, _ error: TransportError, events: any EventSink) async {
        screen.withLock { s in if s.stream === stream { s.stream = nil } }
        await stream.close()
        await state.set(DeviceStatus(failure: error), device: info.name, events)
        wakeup.signal()
    }
}
