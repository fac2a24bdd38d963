import CLibPNG
public import Foundation
public import TillCore
public import TillESCPOS

/// PNGs through libpng's simplified API, QR codes through libqrencode: what the receipt
/// encoder needs beyond byte work (`ReceiptImaging`).
public struct Imaging: ReceiptImaging {
    public init() {}

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Decodes to 8-bit grey; transparent parts become paper white.
    public func decodePNG(_ data: Data) throws -> GrayImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = data.withUnsafeBytes { raw in
            png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count)
        }
        guard begun != 0 else { throw Failure(description: Self.message(image)) }
        defer { png_image_free(&image) }
        let width = Int(image.width)
        let height = Int(image.height)
        guard width > 0, height > 0, width <= ReceiptDocument.maxImageSide, height <= ReceiptDocument.maxImageSide else {
            throw Failure(description: "\(width)x\(height) pixels is over the limit of \(ReceiptDocument.maxImageSide) on a side")
        }
        // Without transparency: grey straight from libpng. With it: grey plus alpha,
        // composited on white here (a logo with a transparent background is the usual case,
        // and black on transparent must not print as a black box).
        if image.format & UInt32(PNG_FORMAT_FLAG_ALPHA) == 0 {
            image.format = UInt32(PNG_FORMAT_GRAY)
            var gray = [UInt8](repeating: 255, count: width * height)
            let finished = gray.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(width), nil) }
            guard finished != 0 else { throw Failure(description: Self.message(image)) }
            return GrayImage(width: width, height: height, pixels: gray)
        }
        image.format = UInt32(PNG_FORMAT_GA)
        var pixels = [UInt8](repeating: 0, count: width * height * 2)
        let finished = pixels.withUnsafeMutableBytes { buffer in
            png_image_finish_read(&image, nil, buffer.baseAddress, Int32(width * 2), nil)
        }
        guard finished != 0 else { throw Failure(description: Self.message(image)) }
        var gray = [UInt8](repeating: 255, count: width * height)
        for index in 0..<width * height {
            let value = Int(pixels[index * 2])
            let alpha = Int(pixels[index * 2 + 1])
            gray[index] = UInt8((value * alpha + 255 * (255 - alpha)) / 255)
        }
        return GrayImage(width: width, height: height, pixels: gray)
    }

    private static func message(_ image: png_image) -> String {
        var text = image.message
        let message = withUnsafeBytes(of: &text) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return message.isEmpty ? "libpng could not read it" : "libpng: \(message)"
    }
}

extension Imaging {
    /// An 8-bit grey PNG of `image` (libpng's simplified write API): the test page's logo.
    public static func encodePNG(_ image: GrayImage) throws -> Data {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = UInt32(PNG_FORMAT_GRAY)
        var size = 0
        var pixels = image.pixels
        // First call: how large it will be.
        guard pixels.withUnsafeMutableBytes({ png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, Int32(image.width), nil) }) != 0 else {
            throw Failure(description: "libpng could not size the picture")
        }
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBytes { buffer in
            pixels.withUnsafeMutableBytes { png_image_write_to_memory(&png, buffer.baseAddress, &size, 0, $0.baseAddress, Int32(image.width), nil) }
        }
        guard written != 0 else { throw Failure(description: "libpng could not write the picture") }
        return Data(out.prefix(size))
    }
}
