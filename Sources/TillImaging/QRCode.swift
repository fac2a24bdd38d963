import CQREncode
import Synchronization
public import TillCore
public import TillESCPOS

extension Imaging {
    /// The symbol's size depends only on the data's length and the error level (byte mode),
    /// so it is worked out once per length: receipts print codes of the same few lengths.
    public func qrModules(_ text: String, errorLevel: ReceiptDocument.QRErrorLevel) throws -> Int {
        let key = QRSizeKey(length: text.utf8.count, level: errorLevel)
        if let known = Self.qrSizes.withLock({ $0[key] }) { return known }
        let modules = try withCode(text, errorLevel) { code in Int(code.width) + 8 }
        Self.qrSizes.withLock { sizes in
            if sizes.count > 4096 { sizes.removeAll() }
            sizes[key] = modules
        }
        return modules
    }

    private struct QRSizeKey: Hashable {
        var length: Int
        var level: ReceiptDocument.QRErrorLevel
    }
    private static let qrSizes = Mutex<[QRSizeKey: Int]>([:])

    public func qrImage(_ text: String, errorLevel: ReceiptDocument.QRErrorLevel, moduleDots: Int) throws -> GrayImage {
        try withCode(text, errorLevel) { code in
            let modules = Int(code.width)
            let dots = max(1, moduleDots)
            let side = (modules + 8) * dots
            var image = GrayImage(width: side, height: side)
            for y in 0..<modules {
                for x in 0..<modules where code.data[y * modules + x] & 1 == 1 {
                    for dy in 0..<dots {
                        let row = ((y + 4) * dots + dy) * side
                        for dx in 0..<dots { image.pixels[row + (x + 4) * dots + dx] = 0 }
                    }
                }
            }
            return image
        }
    }

    /// Byte mode (the data as UTF-8), the smallest version that holds it.
    private func withCode<T>(_ text: String, _ level: ReceiptDocument.QRErrorLevel, _ body: (QRcode) -> T) throws -> T {
        let qrLevel: QRecLevel = switch level {
        case .l: QR_ECLEVEL_L
        case .m: QR_ECLEVEL_M
        case .q: QR_ECLEVEL_Q
        case .h: QR_ECLEVEL_H
        }
        let bytes = Array(text.utf8)
        guard let code = bytes.withUnsafeBufferPointer({ QRcode_encodeData(Int32($0.count), $0.baseAddress, 0, qrLevel) }) else {
            throw Failure(description: "too long for a QR code at error level \(level.rawValue) (\(bytes.count) bytes)")
        }
        defer { QRcode_free(code) }
        return body(code.pointee)
    }
}
