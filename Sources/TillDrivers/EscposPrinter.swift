import Synchronization
import TillCore
public import TillDevices
public import TillESCPOS
public import TillTransport

/// `escpos`: a receipt printer over any byte stream (libusb, /dev/usb/lp*, serial, TCP 9100).
///
/// One task (`run`) owns the link: it opens the transport (again, with back-off, after an
/// unplug), turns on Automatic Status Back, asks `DLE EOT` 1 to 4 now and then, and reads what
/// the printer says into `printer.status` (on change only). `print` writes a job's bytes in
/// pieces no larger than the printer's buffer, with no status query ever sent in between (so
/// none lands inside picture data); a printer that stops taking data (paper out, cover open)
/// is waited for, not given up on, since it prints the rest once it is ready. A printer that
/// never answers status is "status unknown" and still prints (HARDWARE.md 6 and 13).
public final class EscposPrinter: ReceiptPrinter, DrawerPort, DisplayPort {
    public struct Settings: Sendable {
        /// How often status is asked while idle (Automatic Status Back covers the changes on
        /// printers that have it; this catches the rest, and a printer that went quiet).
        public var statusInterval: Duration = .seconds(5)
        /// How long one status round may take before it counts as unanswered.
        public var statusTimeout: Duration = .milliseconds(800)
        /// Unanswered rounds before the status is called unknown.
        public var unansweredRounds = 2
        /// Bytes per write; the profile's buffer size when it has one.
        public var chunkBytes = 4096
        /// How long a write may stall before the printer's state says it stopped taking data.
        public var stallTimeout: Duration = .seconds(3)
        /// Whether the link carries bytes back (a usblp device opened write-only does not).
        public var bidirectional = true
        /// How often status is asked after a drawer kick, until the drawer is shut again.
        public var drawerInterval: Duration = .milliseconds(250)
        /// How long after a kick the drawer is watched closely at most.
        public var drawerWatch: Duration = .seconds(120)
        /// A customer display hangs on the printer (`display = true`): `ESC = 2` pass-through.
        public var chainedDisplay = false

        public init() {}
    }

    public let info: DeviceInfo
    public let encoder: ReceiptEncoder
    private let settings: Settings
    private let open: @Sendable () async throws -> any ByteStream

    private struct Link {
        var stream: (any ByteStream)?
        var reason = "not opened yet"
        var reader = StatusReader()
        var answered = false
        var unanswered = 0
        var printing = false
        var stalled = false
        /// The tail of a command that a stall cut in two: it goes out before anything else, or
        /// the printer would read the next bytes as that command's arguments.
        var owed: [UInt8] = []
        /// What `printer.status` last said (all clear until the printer says otherwise, so a
        /// printer that is fine at start adds no event).
        var reported = PrinterState()
        /// Watch the drawer closely (status every `drawerInterval`) until then.
        var drawerWatchUntil: ContinuousClock.Instant?
    }
    private let drawerObservers = Mutex<[UInt64: AsyncStream<Bool>.Continuation]>([:])
    /// Cuts the status loop's idle wait short (a kick: the drawer is to be watched now).
    private let wakeup = Wakeup()
    private let nextObserver = Mutex<UInt64>(0)
    private let link = Mutex(Link())
    private let statusCell = StatusCell(DeviceStatus(.offline, reason: "not opened yet"))

    private let presence: (any DevicePresence)?

    public init(
        info: DeviceInfo, encoder: ReceiptEncoder, settings: Settings = Settings(), presence: (any DevicePresence)? = nil,
        open: @escaping @Sendable () async throws -> any ByteStream
    ) {
        self.presence = presence
        self.info = info
        self.encoder = encoder
        var settings = settings
        if let buffer = encoder.profile.bufferBytes { settings.chunkBytes = max(64, buffer) }
        self.settings = settings
        self.open = open
    }

    public var status: DeviceStatus { statusCell.current }

    /// What the printer last said, for `status` and tests.
    public var condition: PrinterState { link.withLock { $0.reader.state } }

    public func prepare() async {
        do {
            let stream = try await open()
            link.withLock { $0.stream = stream }
            statusCell.setQuietly(derivedStatus())
        } catch {
            link.withLock { $0.reason = "\(DeviceStatus(failure: error).reason ?? "\(error)")" }
            statusCell.setQuietly(DeviceStatus(failure: error))
        }
    }

    public func run(events: any EventSink) async throws {
        // On every way out (shutdown, or the device retired by a reload) the link is closed, so
        // the printer is free for whoever opens it next (a network printer takes one connection).
        try await closing(closeLink) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.keepLinked(events: events) }
                if let presence { group.addTask { await self.letGoWhenRemoved(presence, events: events) } }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// udev says the printer's node went away: the link is dropped now, not at the next job
    /// (a USB printer that is not asked for its status would not notice), so a job sent
    /// meanwhile waits, queued, for the printer to be back.
    private func letGoWhenRemoved(_ presence: any DevicePresence, events: any EventSink) async {
        for await node in presence.departures() {
            guard let stream = link.withLock({ $0.stream }), stream.devicePath == node else { continue }
            lost(stream, reason: "\(node) went away (unplugged or switched off); tilld opens it again when it is back")
            stream.cancelWaits()
            await stream.close()
            await statusCell.set(derivedStatus(), device: info.name, events)
        }
    }

    private func closeLink() async {
        if let stream = link.withLock({ link -> (any ByteStream)? in
            defer { link.stream = nil; link.reason = "closed by tilld" }
            return link.stream
        }) {
            await stream.close()
        }
    }

    private func keepLinked(events: any EventSink) async throws {
        var reopening = Reopening(presence: presence)
        while !Task.isCancelled {
            reopening.attempting()
            let stream: any ByteStream
            do {
                // The stream `prepare` opened (or none: opened now).
                if let ready = link.withLock({ $0.stream }) {
                    stream = ready
                } else {
                    stream = try await open()
                }
            } catch {
                link.withLock { $0.reason = DeviceStatus(failure: error).reason ?? "\(error)" }
                await statusCell.set(DeviceStatus(failure: error), device: info.name, events)
                try await reopening.wait(after: error)
                continue
            }
            reopening.opened()
            link.withLock { link in
                link.stream = stream
                link.reader = StatusReader()
                link.reported = PrinterState()
                link.stalled = false
                link.owed = []
                link.answered = false
                link.unanswered = 0
            }
            await statusCell.set(derivedStatus(), device: info.name, events)
            do {
                try await watchStatus(on: stream, events: events)
            } catch let error as TransportError {
                lost(stream, reason: error.message)
                await stream.close()
                await statusCell.set(derivedStatus(), device: info.name, events)
            } catch {
                lost(stream, reason: "stopped")
                await stream.close()
                throw error
            }
        }
    }

    public func print(_ job: PrintJob, events: any EventSink) async throws {
        let (stream, problem) = try await claim(ready: true)
        guard let stream else {
            throw DeviceError(device: info.name, .notReady, "\(problem ?? "not ready"); the job stays queued and prints when the printer is ready")
        }
        let owed = takeOwed()
        let bytes = owed.isEmpty ? job.bytes : owed + job.bytes
        var sent = 0  // of `bytes`: what was owed, then the job
        defer {
            link.withLock { link in
                link.printing = false
                link.stalled = false  // a stall belongs to the job: the next starts clean
            }
        }
        do {
            while sent < bytes.count {
                try Task.checkCancellation()
                let end = min(bytes.count, sent + settings.chunkBytes)
                do {
                    try await stream.write(Array(bytes[sent..<end]), timeout: settings.stallTimeout)
                    sent = end
                    if link.withLock({ $0.stalled }) { await setStalled(false, events: events) }
                } catch let error as TransportError where error.kind == .timedOut {
                    // The printer holds the rest (paper out, cover open): wait for it, keep what it took.
                    sent += error.bytesWritten ?? 0
                    await setStalled(true, events: events)
                }
            }
            try await stream.drain(timeout: .seconds(30))
        } catch let error as TransportError {
            lost(stream, reason: error.message)
            await stream.close()
            await statusCell.set(derivedStatus(), device: info.name, events)
            sent += error.bytesWritten ?? 0
            let printed = max(0, sent - owed.count)
            if printed == 0 {
                throw DeviceError(device: info.name, .notReady, "\(error.message); nothing was sent, the job stays queued")
            }
            throw DeviceError(device: info.name, .interrupted, "\(error.message); \(printed) of \(job.bytes.count) bytes were sent, so the job is printed again in full, marked REPRINT, when the printer is back")
        } catch is CancellationError {
            let printed = max(0, sent - owed.count)
            if printed == 0 {
                keepOwed(owed, sent: sent)
                throw DeviceError(device: info.name, .notReady, "tilld stopped before the job began; it stays queued")
            }
            throw DeviceError(device: info.name, .interrupted, "tilld stopped part-way through the job (\(printed) of \(job.bytes.count) bytes sent); it is printed again in full, marked REPRINT")
        }
    }

    /// What a stall left owed to the printer, taken to be sent first by the caller.
    private func takeOwed() -> [UInt8] {
        link.withLock { link in
            defer { link.owed = [] }
            return link.owed
        }
    }

    /// The part of `owed` beyond the first `sent` bytes is still owed.
    private func keepOwed(_ owed: [UInt8], sent: Int) {
        guard sent < owed.count else { return }
        link.withLock { $0.owed = Array(owed[max(0, sent)...]) + $0.owed }
    }

    /// Takes the link for a job or a kick (they never interleave: a kick inside picture data
    /// would be printed as dots). A kick is short; a job waits for it, and a kick waits for a
    /// job up to 10 s. `ready`: refuse when the printer said it cannot print.
    private func claim(ready: Bool, waitUpTo limit: Duration = .seconds(10)) async throws -> ((any ByteStream)?, String?) {
        let deadline = ContinuousClock.now + limit
        while true {
            let outcome = link.withLock { link -> ((any ByteStream)?, String?)? in
                guard let stream = link.stream else { return (nil, "offline: \(link.reason)") }
                if ready, link.answered, let problem = link.reader.state.problem { return (nil, problem) }
                if link.printing { return nil }
                link.printing = true
                return (stream, nil)
            }
            if let outcome { return outcome }
            guard ContinuousClock.now < deadline else { return (nil, "busy printing a job; try again when it is done") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: drawer port

    public func kickDrawer(pin: Int, pulseMilliseconds: Int, pulses: Int) async throws {
        let (stream, problem) = try await claim(ready: false)
        guard let stream else {
            throw DeviceError(device: info.name, .notReady, "the drawer cannot be opened: the printer it hangs on is \(problem ?? "not ready")")
        }
        defer { link.withLock { $0.printing = false } }
        var kick = (0..<max(1, pulses)).flatMap { _ in ESCPOS.drawerKick(pin: pin, onMilliseconds: pulseMilliseconds) }
        // Now the drawer can move: its state is asked for often until it is shut again.
        link.withLock { $0.drawerWatchUntil = ContinuousClock.now + settings.drawerWatch }
        if stream.readsWhileWriting, encoder.profile.realTimeStatus, settings.bidirectional {
            // Ask for the drawer's pin at once: the answer wakes the status loop, which then
            // watches the drawer closely.
            link.withLock { $0.reader.sent(.printer) }
            kick += StatusQuery.printer.command
        }
        let owed = takeOwed()
        do {
            try await stream.write(owed + kick, timeout: settings.stallTimeout)
        } catch let error as TransportError {
            keepOwed(owed, sent: error.bytesWritten ?? 0)
            throw DeviceError(device: info.name, .notReady, "the drawer kick did not reach the printer: \(error.message)")
        }
        // The status loop re-plans with the shorter interval (a USB link's loop is asleep, not reading).
        wakeup.signal()
    }

    // MARK: display port

    public var chainsDisplay: Bool { settings.chainedDisplay }

    public func passToDisplay(_ bytes: [UInt8]) async throws {
        let (stream, problem) = try await claim(ready: false)
        guard let stream else {
            throw TransportError(.unplugged, endpoint: "printer \(info.name)", "the display hangs on printer \"\(info.name)\", which is \(problem ?? "not ready"); it is shown again when the printer is back")
        }
        defer { link.withLock { $0.printing = false } }
        let owed = takeOwed()
        do {
            try await stream.write(owed + ESCPOS.selectPeripheral(.display) + bytes + ESCPOS.selectPeripheral(.printer), timeout: settings.stallTimeout)
        } catch let error as TransportError {
            keepOwed(owed, sent: error.bytesWritten ?? 0)
            throw error
        }
    }

    public func drawerPinChanges() -> AsyncStream<Bool> {
        let (stream, continuation) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(8))
        let id = nextObserver.withLock { next -> UInt64 in
            defer { next += 1 }
            return next
        }
        drawerObservers.withLock { $0[id] = continuation }
        if let level = condition.drawerPinHigh { continuation.yield(level) }
        continuation.onTermination = { [weak self] _ in _ = self?.drawerObservers.withLock { $0.removeValue(forKey: id) } }
        return stream
    }

    public func drawerSettled() {
        link.withLock { $0.drawerWatchUntil = nil }
    }

    // MARK: status

    /// One loop owns the link's reading: it turns on Automatic Status Back, asks `DLE EOT` 1-4
    /// every `statusInterval` (never while a job is being written), and folds in what comes
    /// back (replies and ASB blocks) as it arrives. One reader, in order, so a transport that
    /// replays a scripted dialogue (umockdev) sees the same sequence every time.
    private func watchStatus(on stream: any ByteStream, events: any EventSink) async throws {
        guard settings.bidirectional else {
            try await Task.sleep(for: .seconds(86_400 * 365))
            return
        }
        let asks = encoder.profile.realTimeStatus
        // Automatic Status Back is turned on before the first round of queries.
        var automaticStatusOn = !asks
        let clock = ContinuousClock()
        var nextAsk = clock.now
        var askedAt: ContinuousClock.Instant? = nil
        while !Task.isCancelled {
            // Let go of (udev said it was removed): the loop ends, and the printer is opened anew.
            guard link.withLock({ $0.stream === stream }) else {
                throw TransportError(.unplugged, endpoint: stream.endpoint, "\(stream.endpoint) went away; tilld opens it again when it is back")
            }
            let watching = link.withLock { link -> Bool in
                guard let until = link.drawerWatchUntil else { return false }
                if clock.now < until { return true }
                link.drawerWatchUntil = nil
                return false
            }
            let interval = watching ? settings.drawerInterval : settings.statusInterval
            if asks, nextAsk > clock.now + interval { nextAsk = clock.now + interval }
            if asks, clock.now >= nextAsk {
                nextAsk = clock.now + interval
                // Automatic Status Back first, in a write of its own (a USB printer takes each
                // as one transfer).
                if !automaticStatusOn {
                    automaticStatusOn = try await ask([], after: ESCPOS.automaticStatusBack(0x0F), on: stream, events: events)
                }
                if automaticStatusOn, try await ask(StatusQuery.allCases, after: [], on: stream, events: events) {
                    askedAt = clock.now
                }
            }
            let wait = askedAt.map { min(nextAsk, $0 + settings.statusTimeout) } ?? (asks ? nextAsk : clock.now + .seconds(3600))
            if !stream.readsWhileWriting, askedAt == nil || link.withLock({ $0.reader.pending.isEmpty }) {
                // One transfer at a time (USB): read only while answers are due; else just wait.
                askedAt = nil
                await wakeup.wait(until: wait)
                try Task.checkCancellation()
                continue
            }
            let bytes = try await withTaskCancellationHandler {
                try await stream.read(maxCount: 64, timeout: max(.milliseconds(1), wait - clock.now))
            } onCancel: {
                stream.cancelWaits()
            }
            var changed = false
            if !bytes.isEmpty {
                let pinBefore = link.withLock { $0.reader.state.drawerPinHigh }
                let report = link.withLock { link -> PrinterState? in
                    changed = link.reader.receive(bytes) || !link.answered
                    link.answered = true
                    link.unanswered = 0
                    // printer.status carries online, cover, paper and error (not the drawer pin).
                    var shown = link.reader.state
                    shown.drawerPinHigh = nil
                    guard shown != link.reported else { return nil }
                    link.reported = shown
                    return link.reader.state
                }
                if let report { await events.emit(.printerStatus(report), device: info.name) }
                if let pin = condition.drawerPinHigh, pin != pinBefore {
                    for observer in drawerObservers.withLock({ Array($0.values) }) { observer.yield(pin) }
                }
            }
            if let asked = askedAt, clock.now >= asked + settings.statusTimeout {
                askedAt = nil
                // Replies still missing will not come: forget them, so later bytes are not misread.
                link.withLock { link in
                    if !link.reader.pending.isEmpty {
                        link.reader.forgetPending()
                        link.unanswered += 1
                    }
                }
                changed = true
            } else if bytes.isEmpty {
                continue
            }
            if changed || link.withLock({ $0.reader.pending.isEmpty }) {
                await statusCell.set(derivedStatus(), device: info.name, events)
            }
        }
    }

    /// Sends `prefix` and `queries` unless a job, a kick or a display message holds the link
    /// (never inside one: a query inside picture data is printed as dots). Returns whether they
    /// went out. A printer that takes nothing for `stallTimeout` has stopped taking data (a
    /// full buffer: paper out, a cover open), which is not gone: the link stays, the printer is
    /// shown stalled until it takes data again, the queries that did not leave are not waited
    /// for, and the tail of one cut in two is owed to the printer before anything else, so a
    /// job that follows is never read as its argument (nor cut off and reprinted).
    private func ask(_ queries: [StatusQuery], after prefix: [UInt8], on stream: any ByteStream, events: any EventSink) async throws -> Bool {
        let owed = link.withLock { link -> [UInt8]? in
            guard !link.printing, link.stream === stream else { return nil }
            link.printing = true
            queries.forEach { link.reader.sent($0) }
            defer { link.owed = [] }
            return link.owed
        }
        guard let owed else { return false }
        defer { link.withLock { $0.printing = false } }
        do {
            try await stream.write(owed + prefix + queries.flatMap(\.command), timeout: settings.stallTimeout)
            if link.withLock({ $0.stalled }) { await setStalled(false, events: events) }
            return true
        } catch let error as TransportError where error.kind == .timedOut {
            let written = error.bytesWritten ?? 0
            let started = link.withLock { link -> Int in
                guard written >= owed.count else {
                    link.owed = Array(owed[written...])
                    link.reader.unsent(queries.count)
                    return 0
                }
                // Whole commands that went out, and the tail of the one cut in two.
                var left = written - owed.count
                var started = 0  // queries that left, whole or in part: their replies may come
                for (index, command) in ([prefix] + queries.map(\.command)).enumerated() where !command.isEmpty {
                    guard left > 0 else { break }
                    if index > 0 { started += 1 }
                    if left < command.count { link.owed = Array(command[left...]) }
                    left -= min(left, command.count)
                }
                link.reader.unsent(queries.count - started)
                return started
            }
            await setStalled(true, events: events)
            return started > 0
        }
    }

    private func setStalled(_ stalled: Bool, events: any EventSink) async {
        link.withLock { $0.stalled = stalled }
        await statusCell.set(derivedStatus(), device: info.name, events)
    }

    private func lost(_ stream: any ByteStream, reason: String) {
        let mine = link.withLock { link -> Bool in
            guard link.stream === stream else { return false }
            link.stream = nil
            link.reason = reason
            return true
        }
        // The status loop may be asleep for long (a USB printer not asked for its status): it
        // must see the link gone now and open the printer again, not in an hour.
        if mine { wakeup.signal() }
    }

    /// The device state from the link and what the printer said.
    private func derivedStatus() -> DeviceStatus {
        link.withLock { link in
            guard link.stream != nil else { return DeviceStatus(.offline, reason: link.reason) }
            if link.answered, let problem = link.reader.state.problem { return DeviceStatus(.error, reason: problem) }
            if link.stalled {
                return DeviceStatus(.error, reason: "the printer stopped taking data (its buffer is full): load paper or close the cover; it goes on by itself")
            }
            if !settings.bidirectional {
                return DeviceStatus(.online, reason: "status unknown: the link carries nothing back, so paper out is not seen")
            }
            if link.unanswered >= settings.unansweredRounds {
                return DeviceStatus(.online, reason: "status unknown: the printer does not answer DLE EOT (a Star printer in Star mode?); it still prints")
            }
            return .online
        }
    }
}
