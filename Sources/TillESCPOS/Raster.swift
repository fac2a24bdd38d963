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
            for y in 0..<image.height {
                for x in 0..<image.width where image.pixels[y * image.width + x] < 128 {
                    rows[y * stride + x >> 3] |= 0x80 >> UInt8(x & 7)
                }
            }
        case .floydSteinberg, .atkinson:
            // Errors in 1/16 (Floyd-Steinberg) or 1/8 (Atkinson) steps, in three rolling rows.
            let w = image.width
            var error = [[Int32]](repeating: [Int32](repeating: 0, count: w + 4), count: 3)
            for y in 0..<image.height {
                for x in 0..<w {
                    let value = Int32(image.pixels[y * w + x]) + error[0][x + 2]
                    let black = value < 128
                    if black { rows[y * stride + x >> 3] |= 0x80 >> UInt8(x & 7) }
                    let e = value - (black ? 0 : 255)
                    if dithering == .floydSteinberg {
                        error[0][x + 3] += e * 7 / 16
                        error[1][x + 1] += e * 3 / 16
                        error[1][x + 2] += e * 5 / 16
                        error[1][x + 3] += e / 16
                    } else {
                        let eighth = e / 8
                        error[0][x + 3] += eighth
                        error[0][x + 4] += eighth
                        error[1][x + 1] += eighth
                        error[1][x + 2] += eighth
                        error[1][x + 3] += eighth
                        error[2][x + 2] += eighth
                    }
                }
                error.removeFirst()
                error.append([Int32](repeating: 0, count: w + 4))
            }
        }
        self.rows = rows
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
