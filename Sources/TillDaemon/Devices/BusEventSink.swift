import Synchronization
public import TillDevices

/// The daemon's `EventSink`: a device event is journaled and fanned out by the bus (held, in
/// order, while the journal cannot commit), and a state change also tells whoever watches
/// (the print spool wakes the printer's worker).
public final class BusEventSink: EventSink {
    private let bus: EventBus
    private let observers = Mutex<[@Sendable (String) -> Void]>([])

    public init(bus: EventBus) {
        self.bus = bus
    }

    /// `observer` is called with the device's name after each of its state changes.
    public func observeStateChanges(_ observer: @escaping @Sendable (String) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Offers not yet journaled: past `maximumInFlight` an offer waits like `emit`, so a
    /// device that floods cannot queue without bound.
    private let inFlight = Atomic<Int>(0)
    static let maximumInFlight = 256

    public func offer(_ event: DeviceEvent, device: String) async {
        guard inFlight.add(1, ordering: .relaxed).newValue <= Self.maximumInFlight else {
            inFlight.subtract(1, ordering: .relaxed)
            await emit(event, device: device)
            return
        }
        bus.submit(topic: event.topic, device: device, data: event.data, origin: .device) { [self] _ in
            // A failure is the bus's to hold, log and report, as for `emit`.
            inFlight.subtract(1, ordering: .relaxed)
        }
    }

    public func emit(_ event: DeviceEvent, device: String) async {
        // A device never fails because of the journal: the bus holds the event and logs why.
        _ = try? await bus.publish(topic: event.topic, device: device, data: event.data, origin: .device)
    }

    public func stateChanged(_ device: String, _ status: DeviceStatus) async {
        await emit(.state(status), device: device)
        for observer in observers.withLock({ $0 }) { observer(device) }
    }
}
