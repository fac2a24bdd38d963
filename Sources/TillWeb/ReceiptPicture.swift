import CJPEG
public import Foundation
public import TillCore
public import TillESCPOS
import TillImaging

/// The receipt a browser POS renders and sends as a picture (Odoo: a base64 JPEG of the
/// receipt's HTML drawn on a canvas) turned into a receipt document tilld prints through its
/// spool: decoded to grey here, re-encoded as PNG, and left to tilld to fit to the printer's
/// dot width and dither, as any receipt picture is.
public enum ReceiptPicture {
    public struct Unreadable: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func gray(jpeg: Data) throws -> GrayImage {
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0
        var height: Int32 = 0
        var message = [CChar](repeating: 0, count: 200)
        let result = jpeg.withUnsafeBytes { raw in
            till_jpeg_decode_gray(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, Int32(ReceiptDocument.maxImageSide),
                                  &pixels, &width, &height, &message, message.count)
        }
        guard result == 0, let pixels else {
            throw Unreadable(description: "the receipt picture is not a JPEG tilld can read: " + String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        defer { free(pixels) }
        return GrayImage(width: Int(width), height: Int(height), pixels: Array(UnsafeBufferPointer(start: pixels, count: Int(width) * Int(height))))
    }

    /// The receipt document for a picture: the picture, a feed and a cut.
    public static func document(jpegBase64 text: String) throws -> JSONValue {
        guard let jpeg = Data(base64Encoded: text, options: .ignoreUnknownCharacters), !jpeg.isEmpty else {
            throw Unreadable(description: "the receipt is not base64")
        }
        let png = try Imaging.encodePNG(try gray(jpeg: jpeg))
        return ["lines": [["image": ["png": .string(png.base64EncodedString())]], ["feed": 2], ["cut": "partial"]]]
    }

    /// A grey picture as a JPEG (tests: what a browser's canvas would send).
    public static func jpeg(_ image: GrayImage, quality: Int = 90) -> Data? {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        let result = image.pixels.withUnsafeBufferPointer {
            till_jpeg_encode_gray($0.baseAddress, Int32(image.width), Int32(image.height), Int32(quality), &out, &size)
        }
        guard result == 0, let out else { return nil }
        defer { free(out) }
        return Data(bytes: out, count: size)
    }
}
