import CDither

/// An 8-bit grey picture (0 black … 255 white), what PNGs and rendered QR codes become before
/// they are dithered for a thermal head that prints dots, not greys.
public struct GrayImage: Sendable, Hashable {
    public var width: Int
    public var height: Int
    /// Row by row, `width × height` values.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height, "pixels must be width × height")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public init(width: Int, height: Int, fill: UInt8 = 255) {
        self.init(width: width, height: height, pixels: Array(repeating: fill, count: width * height))
    }

    /// Shrunk to at most `maxWidth` (never enlarged: a small logo stays sharp), each new pixel the
    /// average of the source area it covers (a box filter, so thin lines fade instead of vanishing).
    public func fitted(toWidth maxWidth: Int) -> GrayImage {
        guard width > maxWidth, maxWidth > 0 else { return self }
        let newWidth = maxWidth
        let newHeight = max(1, (height * newWidth + width / 2) / width)
        var out = [UInt8](repeating: 255, count: newWidth * newHeight)
        // Fixed point: source spans per destination pixel, in 1/256 of a pixel.
        let xScale = (width << 8) / newWidth
        let yScale = (height << 8) / newHeight
        pixels.withUnsafeBufferPointer { source in
            for y in 0..<newHeight {
                let y0 = (y * yScale) >> 8
                let y1 = max(y0 + 1, min(height, ((y + 1) * yScale) >> 8))
                for x in 0..<newWidth {
                    let x0 = (x * xScale) >> 8
                    let x1 = max(x0 + 1, min(width, ((x + 1) * xScale) >> 8))
                    var sum = 0
                    for sy in y0..<y1 {
                        let row = sy * width
                        for sx in x0..<x1 { sum += Int(source[row + sx]) }
                    }
                    out[y * newWidth + x] = UInt8(sum / ((y1 - y0) * (x1 - x0)))
                }
            }
        }
        return GrayImage(width: newWidth, height: newHeight, pixels: out)
    }
}

/// A picture as dots: 1 bit per dot, rows padded to whole bytes, most significant bit leftmost
/// (the layout `GS v 0` takes).
public struct Bitmap: Sendable, Hashable {
    public enum Dithering: String, Sendable, Hashable, CaseIterable {
        /// Error diffusion to four neighbours: smooth greys, the default for photos and logos.
        case floydSteinberg = "floyd-steinberg"
        /// Diffuses 3/4 of the error over six neighbours: more contrast, fewer dots (less heat,
        /// crisper logos on thermal paper).
        case atkinson
        /// A fixed threshold at mid-grey: line art and QR codes.
        case threshold
    }

    public var width: Int
    public var height: Int
    public var bytesPerRow: Int { (width + 7) / 8 }
    public var rows: [UInt8]

    public init(width: Int, height: Int, rows: [UInt8]) {
        self.width = width
        self.height = height
        self.rows = rows
    }

    public init(_ image: GrayImage, dithering: Dithering) {
        width = image.width
        height = image.height
        let stride = (image.width + 7) / 8
        var rows = [UInt8](repeating: 0, count: stride * image.height)
        switch dithering {
        case .threshold:
            Self.threshold(image, into: &rows, stride: stride)
        case .floydSteinberg where Self.isBlackAndWhite(image):
            // Pure black and white (most logos): no error to spread, the dots are the pixels.
            Self.threshold(image, into: &rows, stride: stride)
        case .floydSteinberg:
            Self.floydSteinberg(image, into: &rows, stride: stride)
        case .atkinson:
            Self.atkinson(image, into: &rows, stride: stride)
        }
        self.rows = rows
    }

    /// Error diffusion, 7/16 right and 3/16, 5/16, 1/16 below, in C (Sources/CDither): eight
    /// rows at once in the lanes of a vector, each two pixels behind the row above it, which
    /// one row at a time in Swift could not do (a row is a chain of dependent steps: 2.3 ns a
    /// pixel however it was written, against 0.6 ns for the eight-lane wavefront). The dots are
    /// the textbook algorithm's, checked against it by the tests.
    private static func floydSteinberg(_ image: GrayImage, into rows: inout [UInt8], stride: Int) {
        let result = image.pixels.withUnsafeBufferPointer { pixels in
            rows.withUnsafeMutableBufferPointer { out in
                till_floyd_steinberg(pixels.baseAddress, Int32(image.width), Int32(image.height), out.baseAddress, Int32(stride))
            }
        }
        precondition(result == 0, "out of memory dithering a \(image.width)x\(image.height) picture")
    }

    /// Atkinson: 1/8 of the error to two pixels right, three below and one two rows below.
    private static func atkinson(_ image: GrayImage, into rows: inout [UInt8], stride: Int) {
        let w = image.width
        let span = w + 4
        var error = [Int32](repeating: 0, count: span * 3)
        image.pixels.withUnsafeBufferPointer { pixels in
            rows.withUnsafeMutableBufferPointer { out in
                error.withUnsafeMutableBufferPointer { errors in
                    for y in 0..<image.height {
                        let current = (y % 3) * span, next = ((y + 1) % 3) * span, after = ((y + 2) % 3) * span
                        let row = y * w, outRow = y * stride
                        for x in 0..<w {
                            let value = Int32(pixels[row + x]) + errors[current + x + 2]
                            let black = value < 128
                            if black { out[outRow + x >> 3] |= 0x80 >> UInt8(x & 7) }
                            let eighth = (black ? value : value - 255) >> 3
                            errors[current + x + 3] += eighth
                            errors[current + x + 4] += eighth
                            errors[next + x + 1] += eighth
                            errors[next + x + 2] += eighth
                            errors[next + x + 3] += eighth
                            errors[after + x + 2] += eighth
                        }
                        // This row's slots serve the row after next from here on.
                        for i in current..<current + span { errors[i] = 0 }
                    }
                }
            }
        }
    }

    private static func threshold(_ image: GrayImage, into rows: inout [UInt8], stride: Int) {
        for y in 0..<image.height {
            for x in 0..<image.width where image.pixels[y * image.width + x] < 128 {
                rows[y * stride + x >> 3] |= 0x80 >> UInt8(x & 7)
            }
        }
    }

    private static func isBlackAndWhite(_ image: GrayImage) -> Bool {
        image.pixels.allSatisfy { $0 == 0 || $0 == 255 }
    }

    /// Whether the dot at (x, y) is printed.
    public func isSet(x: Int, y: Int) -> Bool {
        rows[y * bytesPerRow + x >> 3] & (0x80 >> UInt8(x & 7)) != 0
    }

    /// `GS v 0` commands, one per band of at most `bandRows` rows, so no single command is
    /// larger than a small printer's buffer and a status query never lands inside one.
    public func rasterCommands(bandRows: Int) -> [[UInt8]] {
        let band = max(1, min(bandRows, 2047))
        return stride(from: 0, to: height, by: band).map { top in
            let rowsInBand = min(band, height - top)
            return [ESCPOS.gs, 0x76, 0x30, 0] + ESCPOS.littleEndian16(bytesPerRow) + ESCPOS.littleEndian16(rowsInBand)
                + rows[top * bytesPerRow..<(top + rowsInBand) * bytesPerRow]
        }
    }

    /// `ESC *` 33 (24-dot double density) stripes, each followed by a line feed at 24-dot line
    /// spacing: for printers without `GS v 0`.
    public func bitImageCommands() -> [[UInt8]] {
        stride(from: 0, to: height, by: 24).map { top in
            var command: [UInt8] = [ESCPOS.esc, 0x2A, 33] + ESCPOS.littleEndian16(width)
            command.reserveCapacity(5 + width * 3 + 1)
            for x in 0..<width {
                for slice in 0..<3 {
                    var byte: UInt8 = 0
                    for bit in 0..<8 {
                        let y = top + slice * 8 + bit
                        if y < height, isSet(x: x, y: y) { byte |= 0x80 >> UInt8(bit) }
                    }
                    command.append(byte)
                }
            }
            command.append(ESCPOS.lf)
            return command
        }
    }
}
