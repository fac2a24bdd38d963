import Foundation
import Synchronization
import TillDevices
import TillTransport

/// A driver's current status, told to the sink when it changes (and only then).
final class StatusCell: Sendable {
    private let value: Mutex<DeviceStatus>

    init(_ initial: DeviceStatus) {
        value = Mutex(initial)
    }

    var current: DeviceStatus { value.withLock { $0 } }

    /// Before the device is announced: no event (`device.added` carries it).
    func setQuietly(_ new: DeviceStatus) { value.withLock { $0 = new } }

    func set(_ new: DeviceStatus, device: String, _ events: any EventSink) async {
        let changed = value.withLock { current -> Bool in
            defer { current = new }
            return current != new
        }
        if changed { await events.stateChanged(device, new) }
    }
}

extension DeviceStatus {
    /// What a failure to open or read a device makes of its state: offline when it may come
    /// back by itself (unplugged, not there yet), error when someone must act (permission, busy).
    init(failure error: any Error) {
        guard let error = error as? TransportError else {
            self.init(.error, reason: "\(error)")
            return
        }
        self.init(error.isTransient || error.kind == .notFound ? .offline : .error, reason: error.message)
    }
}

/// The life every input driver shares: open the device, read it until it fails, say why in
/// the device's state, and open it again with back-off until it is back (unplugged, the
/// adapter reset, a permission fixed). The source `prepare` opened is the first one `run` uses,
/// so `device.added` can say online. The source is closed on every way out, a cancellation
/// included, so a grabbed scanner is always given back.
final class ReopeningReader<Source: Sendable>: Sendable {
    let state = StatusCell(DeviceStatus(.offline, reason: "not opened yet"))
    private let prepared = Mutex<Source?>(nil)
    private let open: @Sendable () async throws -> Source
    private let close: @Sendable (Source) async -> Void
    private let presence: (any DevicePresence)?

    init(open: @escaping @Sendable () async throws -> Source, close: @escaping @Sendable (Source) async -> Void, presence: (any DevicePresence)? = nil) {
        self.open = open
        self.close = close
        self.presence = presence
    }

    func prepare() async {
        do {
            let source = try await open()
            prepared.withLock { $0 = source }
            state.setQuietly(.online)
        } catch {
            state.setQuietly(DeviceStatus(failure: error))
        }
    }

    /// Runs `read` on each opened source until the task is cancelled. `read` returns or throws
    /// a `TransportError` when the device went away; any other error ends the driver.
    func run(device: String, events: any EventSink, read: (Source) async throws -> Void) async throws {
        var reopening = Reopening(presence: presence)
        while !Task.isCancelled {
            reopening.attempting()
            let source: Source
            do {
                if let ready = prepared.withLock({ state -> Source? in defer { state = nil }; return state }) {
                    source = ready
                } else {
                    source = try await open()
                }
            } catch {
                await state.set(DeviceStatus(failure: error), device: device, events)
                try await reopening.wait(after: error)
                continue
            }
            reopening.opened()
            await state.set(.online, device: device, events)
            var stopped: (any Error)? = nil
            do {
                try await read(source)
            } catch let error as TransportError {
                await state.set(DeviceStatus(.offline, reason: error.message), device: device, events)
            } catch {
                stopped = error
            }
            await close(source)
            if let stopped { throw stopped }
        }
    }
}

/// Runs a driver's work, then `close` on every way out, a cancellation or an error included: a
/// driver that is stopped (shutdown, a reload retiring it) gives its port or connection back.
func closing(_ close: () async -> Void, after work: () async throws -> Void) async throws {
    do {
        try await work()
    } catch {
        await close()
        throw error
    }
    await close()
}

/// The wait between a driver's attempts to open its device: a back-off from 0.5 s doubling to
/// 30 s, cut short when udev says something was plugged in since the attempt began (`attempting`
/// takes that mark, so an arrival while the attempt fails is not missed). With hotplug, a device
/// that is not plugged in waits for udev alone, with a 5-minute safety net instead of the
/// back-off (an idle till with an unplugged scanner wakes nothing); other failures (permission,
/// busy, a network printer) keep the back-off, since their fix comes with no udev event.
struct Reopening {
    private var backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(30))
    private let presence: (any DevicePresence)?
    private var mark = 0

    init(presence: (any DevicePresence)?) {
        self.presence = presence
    }

    /// Before each attempt to open.
    mutating func attempting() { mark = presence?.arrivalMark() ?? 0 }

    /// The device opened: the next failure starts the back-off from the beginning.
    mutating func opened() { backoff.reset() }

    /// After a failed attempt: waits before the next one.
    mutating func wait(after error: any Error) async throws {
        var delay = backoff.next()
        guard let presence else { return try await Task.sleep(for: delay) }
        if presence.isLive, (error as? TransportError)?.kind == .notFound { delay = max(delay, .seconds(300)) }
        await presence.waitForArrival(since: mark, upTo: delay)
        try Task.checkCancellation()
    }
}

/// A signal for many waiters, none missed: take a `mark`, look at the state, then
/// `wait(since: mark, until:)` returns at once if `signal()` came after the mark, else at the
/// next signal, the deadline, or the task's cancellation. (`Wakeup` below is for one waiter.)
final class Broadcast: Sendable {
    private let state = Mutex<(generation: Int, waiters: [UUID: CheckedContinuation<Void, Never>])>((0, [:]))

    var mark: Int { state.withLock { $0.generation } }

    func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation += 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait(since mark: Int, until deadline: ContinuousClock.Instant) async {
        let id = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let now = self.state.withLock { state -> Bool in
                        if state.generation != mark || Task.isCancelled { return true }
                        state.waiters[id] = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(until: deadline)
                self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
            }
            await group.next()
            group.cancelAll()
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

/// A sleep another task can cut short: `wait(until:)` returns at the deadline, on `signal()`,
/// or when the task is cancelled. A signal with no one waiting is kept for the next wait (a
/// spurious wake-up is harmless to a loop that re-plans each time round).
final class Wakeup: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    func wait(until deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let now = self.state.withLock { state -> Bool in
                        if state.pending {
                            state.pending = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(until: deadline)
                self.signal()
            }
            await group.next()
            group.cancelAll()
            await group.waitForAll()
        }
        state.withLock { $0.pending = false }
    }
}
