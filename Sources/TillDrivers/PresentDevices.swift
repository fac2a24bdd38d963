import Foundation
import Synchronization
public import TillDevices
public import TillTransport

/// What udev shows as plugged in now, kept by the daemon's hotplug service from the monitor's
/// events and read by drivers: the node of the device an entry names by `usb` or `port`
/// (which changes on replug: /dev/ttyACM0 may come back as /dev/ttyACM1), and a wake-up for
/// every driver waiting to reopen its device when anything is plugged in.
public final class PresentDevices: DevicePresence {
    private struct State {
        var records: [String: UDevRecord] = [:]
        var live = false
        var departureWatchers: [UUID: AsyncStream<String>.Continuation] = [:]
    }
    private let state = Mutex(State())
    private let arrivals = Broadcast()

    public init() {}

    public var isLive: Bool { state.withLock { $0.live } }

    /// The monitor is running (it delivered what is present), or has ended.
    public func setLive(_ live: Bool) {
        state.withLock { $0.live = live }
        // Drivers waiting on arrivals alone go back to their timers.
        if !live { arrived() }
    }

    /// Every record present, by syspath.
    public var records: [UDevRecord] { state.withLock { Array($0.records.values) } }

    /// Everything present at start (replaces what was known).
    public func replace(with records: [UDevRecord]) {
        state.withLock { state in
            state.records = Dictionary(records.map { ($0.syspath, $0) }, uniquingKeysWith: { _, last in last })
        }
        arrived()
    }

    /// One udev event. Returns whether it changed what is present (a second add of a device
    /// already known, as the monitor may deliver during start, changes nothing).
    public func departures() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(64))
        let id = UUID()
        state.withLock { $0.departureWatchers[id] = continuation }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.departureWatchers.removeValue(forKey: id) } }
        return stream
    }

    @discardableResult
    public func apply(_ record: UDevRecord) -> Bool {
        let changed = state.withLock { state -> Bool in
            switch record.action {
            case "remove":
                let removed = state.records.removeValue(forKey: record.syspath)
                if let node = removed?.devnode ?? record.devnode {
                    for watcher in state.departureWatchers.values { watcher.yield(node) }
                }
                return removed != nil
            case "add", "change", "bind", "unbind", "move", nil:
                let old = state.records[record.syspath]
                var updated = record
                updated.action = nil
                state.records[record.syspath] = updated
                return old != updated
            default:
                return false
            }
        }
        if changed, record.action != "remove" { arrived() }
        return changed
    }

    public func device(for entry: DeviceConfig) -> PluggedDevice? {
        record(for: entry).map { record in
            PluggedDevice(node: record.devnode, vendor: record.usb?.vendor, product: record.usb?.product, usbKernelName: record.usb.map { URL(fileURLWithPath: $0.syspath).lastPathComponent })
        }
    }

    /// The record an entry names, if plugged in (the first by syspath, should two match).
    public func record(for entry: DeviceConfig) -> UDevRecord? {
        state.withLock { Array($0.records.values) }.filter { Discovery.matches(entry, $0) }.min { $0.syspath < $1.syspath }
    }

    public func arrivalMark() -> Int { arrivals.mark }

    public func waitForArrival(since mark: Int, upTo duration: Duration) async {
        await arrivals.wait(since: mark, until: .now + duration)
    }

    private func arrived() { arrivals.signal() }
}
