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

    public func emit(_ event: DeviceEvent, device: String) async {
        // A device never fails because of the journal: the bus holds the event and logs why.
        _ = try? await bus.publish(topic: event.topic, device: device, data: event.data, origin: .device)
    }

    public func stateChanged(_ device: String, _ status: DeviceStatus) async {
        await emit(.state(status), device: device)
        for observer in observers.withLock({ $0 }) { observer(device) }
    }
}
