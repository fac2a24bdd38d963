import Synchronization
import TillDevices
import TillScanner
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

extension Scan {
    /// A scan as the classifier reads it: symbology, check digit, kind, GS1, embedded price.
    init(text: String, raw: [UInt8], aim: String?, classifier: ScanClassifier) {
        let result = classifier.classify(text: text, aim: aim)
        self.init(
            text: text, raw: raw, symbology: result.symbology, aim: aim, checkDigitOK: result.checkDigitOK, gs1: result.gs1,
            gs1Problem: result.gs1Problem, kind: result.kind,
            variableMeasure: result.variableMeasure.map { Scan.Measure(item: $0.item, kind: $0.kind.rawValue, value: $0.value) })
    }
}
