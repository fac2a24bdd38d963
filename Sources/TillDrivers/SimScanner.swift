import Foundation
public import TillCore
public import TillDevices
public import TillScanner

/// `sim-scanner`: a barcode scanner fed by `simulate` (`tillctl simulate scan TEXT`).
/// Emits the same `scanner.data` events a real scanner driver does.
public final class SimScanner: SimulatedDevice {
    public let info: DeviceInfo
    public var status: DeviceStatus { .online }
    private let classifier: ScanClassifier

    public init(name: String = "sim-scanner", classifier: ScanClassifier) {
        info = DeviceInfo(name: name, role: .scanner, driver: "sim", transport: "sim", model: "Simulated scanner", identity: "demo:\(name)")
        self.classifier = classifier
    }

    public func simulate(_ data: JSONValue, events: any EventSink) async throws {
        let fields = try FieldReader(data, path: "data")
        let text = try fields.string("text")
        guard text.utf8.count <= 4096 else {
            throw DeviceError(device: info.name, .invalidRequest, "a scan is at most 4096 bytes")
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\u{1D}" }) else {
            throw DeviceError(device: info.name, .invalidRequest, "scan text holds control characters (only GS, 0x1D, is allowed as the GS1 separator)")
        }
        let aim = try fields.optionalString("aim")
        let result = classifier.classify(text: text, aim: aim)
        await events.emit(.scan(Scan(text: text, raw: Array(text.utf8), symbology: result.symbology, aim: aim, checkDigitOK: result.checkDigitOK, kind: result.kind)), device: info.name)
    }
}
