/// The virtual printer: ESC/POS bytes back to what a receipt would show, as readable lines
/// (styles, barcodes and QR codes as tags, pictures as their size). `--demo`'s sim-printer
/// prints through it, `tillctl print --preview` shows receipts with it, and tests use it to
/// read the encoder's output back (round trips).
public struct VirtualPrinter: Sendable {
    public struct Line: Sendable, Hashable {
        public enum Kind: Sendable, Hashable {
            case text
            case barcode(type: String, data: String)
            case qr(data: String, size: Int, level: String)
            case image(width: Int, height: Int)
            case cut(partial: Bool)
            case drawerKick(pin: Int, milliseconds: Int)
            case unknown(String)
        }

        public var kind: Kind
        public var text: String = ""
        public var align: Int = 0
        public var bold = false
        public var underline = false
        public var inverse = false
        public var width = 1
        public var height = 1
        /// Code pages the line's characters came from ("CP858"), in order.
        public var pages: [String] = []
    }

    public let profile: PrinterProfile
    public private(set) var lines: [Line] = []
    /// What went to a customer display chained through the printer (`ESC = 2` selects the
    /// display, `ESC = 1` or `3` the printer again): passed on, never printed.
    public private(set) var displayBytes: [UInt8] = []
    private var displaySelected = false

    // The printer's state.
    private var page: CodePage?
    private var align = 0
    private var bold = false
    private var underline = false
    private var inverse = false
    private var size = (width: 1, height: 1)
    private var current: [Unicode.Scalar] = []
    private var currentPages: [String] = []
    private var qrSize = 3
    private var qrLevel = "L"
    private var qrData: [UInt8] = []
    private var rasterPending: (width: Int, height: Int)?
    private var afterBitImage = false

    public init(profile: PrinterProfile) {
        self.profile = profile
        page = CodePage(named: profile.codePages[0] ?? "CP437")
    }

    /// Decodes a whole job; call `finish()` (or read `lines` after `decode`) for the result.
    public static func decode(_ bytes: [UInt8], profile: PrinterProfile) -> [Line] {
        var printer = VirtualPrinter(profile: profile)
        printer.feed(bytes)
        printer.finish()
        return printer.lines
    }

    /// The receipt as text, `profile.columns` wide.
    public static func render(_ bytes: [UInt8], profile: PrinterProfile) -> [String] {
        decode(bytes, profile: profile).flatMap { $0.rendered(columns: profile.columns) }
    }

    public mutating func finish() {
        if !current.isEmpty { endLine() }
        flushRaster()
    }

    public mutating func feed(_ bytes: [UInt8]) {
        var i = 0
        func byte(_ offset: Int) -> Int { i + offset < bytes.count ? Int(bytes[i + offset]) : 0 }
        while i < bytes.count {
            let b = bytes[i]
            if displaySelected {
                if b == ESCPOS.esc, byte(1) == 0x3D, i + 2 < bytes.count {
                    displaySelected = byte(2) & 1 == 0
                    i += 3
                } else {
                    displayBytes.append(b)
                    i += 1
                }
                continue
            }
            switch b {
            case ESCPOS.lf:
                endLine()
                i += 1
            case 0x0D:
                i += 1
            case 0x09:
                current.append(" ")
                i += 1
            case ESCPOS.esc:
                i += escape(bytes, at: i)
            case ESCPOS.gs:
                i += groupSeparator(bytes, at: i)
            case ESCPOS.dle:
                if byte(1) == 0x04 {
                    i += 3  // a status query: no effect on the paper
                } else if byte(1) == 0x14 {
                    if byte(2) == 1 { emit(.drawerKick(pin: byte(3) == 1 ? 5 : 2, milliseconds: byte(4) * 100)) }
                    i += 5
                } else {
                    emit(.unknown(hex(bytes, i, 2)))
                    i += 2
                }
            case 0x1C:  // FS: Kanji and NV commands; none of ours, skipped by their length
                emit(.unknown(hex(bytes, i, 2)))
                i += 2
            case 0x00..<0x20, 0x7F:
                i += 1
            default:
                if let scalar = page?.scalar(for: b) ?? (b < 0x80 ? Unicode.Scalar(b) : nil) {
                    current.append(scalar)
                    if b >= 0x80, let name = page?.name, currentPages.last != name { currentPages.append(name) }
                } else {
                    current.append("\u{FFFD}")
                }
                i += 1
            }
        }
    }

    private mutating func escape(_ bytes: [UInt8], at i: Int) -> Int {
        func arg(_ n: Int) -> Int { i + n < bytes.count ? Int(bytes[i + n]) : 0 }
        switch arg(1) {
        case 0x40:
            page = CodePage(named: profile.codePages[0] ?? "CP437")
            align = 0
            bold = false
            underline = false
            inverse = false
            size = (1, 1)
            return 2
        case 0x45: bold = arg(2) & 1 == 1; return 3
        case 0x2D: underline = arg(2) != 0 && arg(2) != 0x30; return 3
        case 0x61: align = arg(2) % 48; return 3
        case 0x74:
            page = profile.codePages[arg(2)].flatMap { CodePage(named: $0) }
            return 3
        case 0x64:
            if !current.isEmpty { endLine() }
            for _ in 0..<arg(2) { endLine() }
            return 3
        case 0x70:
            emit(.drawerKick(pin: arg(2) % 48 == 1 ? 5 : 2, milliseconds: arg(3) * 2))
            return 5
        case 0x2A:
            let columns = arg(3) | arg(4) << 8
            let perColumn = arg(2) >= 32 ? 3 : 1
            appendRasterRows(width: columns, rows: perColumn * 8)
            afterBitImage = true
            return 5 + columns * perColumn
        case 0x3D:
            // Select the peripheral: 1 printer, 2 the chained display, 3 both.
            if arg(2) & 1 == 0 { displaySelected = true }
            return 3
        case 0x21, 0x33, 0x52, 0x4D, 0x4A, 0x7B, 0x56, 0x47, 0x20:
            if arg(1) == 0x21 {
                bold = arg(2) & 0x08 != 0
                underline = arg(2) & 0x80 != 0
                size = (arg(2) & 0x20 != 0 ? 2 : 1, arg(2) & 0x10 != 0 ? 2 : 1)
            }
            return 3
        case 0x32: return 2
        default:
            emit(.unknown(hex(bytes, i, 2)))
            return 2
        }
    }

    private mutating func groupSeparator(_ bytes: [UInt8], at i: Int) -> Int {
        func arg(_ n: Int) -> Int { i + n < bytes.count ? Int(bytes[i + n]) : 0 }
        switch arg(1) {
        case 0x21:
            size = ((arg(2) >> 4) + 1, (arg(2) & 7) + 1)
            return 3
        case 0x42: inverse = arg(2) & 1 == 1; return 3
        case 0x48, 0x68, 0x77, 0x66, 0x61, 0x72: return 3
        case 0x4C, 0x57: return 4
        case 0x56:
            if !current.isEmpty { endLine() }
            let m = arg(2)
            emit(.cut(partial: m == 1 || m == 49 || m == 66))
            return m >= 65 ? 4 : 3
        case 0x6B:
            let m = arg(2)
            if m <= 6 {
                var end = i + 3
                while end < bytes.count, bytes[end] != 0 { end += 1 }
                let data = String(decoding: bytes[min(i + 3, bytes.count)..<end], as: UTF8.self)
                emitBarcode(m, data)
                return end + 1 - i
            }
            let n = arg(3)
            let data = Array(bytes[min(i + 4, bytes.count)..<min(i + 4 + n, bytes.count)])
            emitBarcode(m, m == 73 ? Self.code128Text(data) : String(decoding: data, as: UTF8.self))
            return 4 + n
        case 0x28:
            let length = arg(3) | arg(4) << 8
            if arg(2) == 0x6B, arg(5) == 0x31 {
                switch arg(6) {
                case 0x43: qrSize = arg(7)
                case 0x45: qrLevel = ["L", "M", "Q", "H"][min(3, max(0, arg(7) - 48))]
                case 0x50: qrData = Array(bytes[min(i + 8, bytes.count)..<min(i + 5 + length, bytes.count)])
                case 0x51: emit(.qr(data: String(decoding: qrData, as: UTF8.self), size: qrSize, level: qrLevel))
                default: break
                }
            }
            return 5 + length
        case 0x76:
            let widthBytes = arg(4) | arg(5) << 8
            let rows = arg(6) | arg(7) << 8
            appendRasterRows(width: widthBytes * 8, rows: rows)
            return 8 + widthBytes * rows
        default:
            emit(.unknown(hex(bytes, i, 2)))
            return 2
        }
    }

    private mutating func emitBarcode(_ m: Int, _ data: String) {
        let names = [65: "upca", 66: "upce", 67: "ean13", 68: "ean8", 69: "code39", 70: "itf", 71: "codabar", 72: "code93", 73: "code128",
                     0: "upca", 1: "upce", 2: "ean13", 3: "ean8", 4: "code39", 5: "itf", 6: "codabar"]
        emit(.barcode(type: names[m] ?? "type \(m)", data: data))
    }

    /// Code 128 payload back to its text: code-set selections dropped, set C pairs as digits.
    static func code128Text(_ payload: [UInt8]) -> String {
        var text = ""
        var set: UInt8 = 0x42
        var i = 0
        while i < payload.count {
            if payload[i] == 0x7B, i + 1 < payload.count {
                if payload[i + 1] == 0x7B {
                    text.append("{")
                } else {
                    set = payload[i + 1]
                }
                i += 2
                continue
            }
            if set == 0x43 {
                text += payload[i] < 10 ? "0\(payload[i])" : "\(payload[i])"
            } else {
                text.append(Character(Unicode.Scalar(payload[i])))
            }
            i += 1
        }
        return text
    }

    /// Consecutive bands of one picture are one image line.
    private mutating func appendRasterRows(width: Int, rows: Int) {
        if !current.isEmpty { endLine() }
        afterBitImage = false
        if let pending = rasterPending, pending.width == width {
            rasterPending = (width, pending.height + rows)
        } else {
            flushRaster()
            rasterPending = (width, rows)
        }
    }

    private mutating func flushRaster() {
        if let pending = rasterPending {
            rasterPending = nil
            emit(.image(width: pending.width, height: pending.height))
        }
    }

    private mutating func emit(_ kind: Line.Kind) {
        if !current.isEmpty { endLine() }
        flushRaster()
        lines.append(Line(kind: kind, align: align))
    }

    private mutating func endLine() {
        // The line feed that ends each ESC * stripe: part of the picture, not a blank line.
        if current.isEmpty, rasterPending != nil, afterBitImage {
            afterBitImage = false
            return
        }
        flushRaster()
        var text = ""
        text.unicodeScalars.append(contentsOf: current)
        lines.append(Line(kind: .text, text: text, align: align, bold: bold, underline: underline, inverse: inverse,
                          width: size.width, height: size.height, pages: currentPages))
        current.removeAll()
        currentPages.removeAll()
    }

    private func hex(_ bytes: [UInt8], _ i: Int, _ count: Int) -> String {
        bytes[i..<min(i + count, bytes.count)].map { String($0, radix: 16, uppercase: true).leftPadded(2) }.joined(separator: " ")
    }
}

extension VirtualPrinter.Line {
    /// The line as a receipt shows it, `columns` wide; styles as a tag after the text.
    public func rendered(columns: Int) -> [String] {
        func placed(_ text: String) -> String {
            let room = max(0, columns - text.count)
            let before = align == 2 ? room : align == 1 ? room / 2 : 0
            return String(repeating: " ", count: before) + text
        }
        switch kind {
        case .text:
            let shown = width > 1 ? text.map { String($0) + String(repeating: " ", count: width - 1) }.joined() : text
            var tags: [String] = []
            if bold { tags.append("bold") }
            if underline { tags.append("underline") }
            if inverse { tags.append("inverse") }
            if width == 2 && height == 2 { tags.append("double") } else if width > 1 { tags.append("wide") } else if height > 1 { tags.append("tall") }
            let line = placed(shown).trailingSpacesRemoved
            return [tags.isEmpty ? line : line + "  <" + tags.joined(separator: " ") + ">"]
        case .barcode(let type, let data): return [placed("[barcode \(type): \(data)]")]
        case .qr(let data, let size, let level): return [placed("[qr size \(size) level \(level): \(data)]")]
        case .image(let width, let height): return [placed("[image \(width)x\(height) dots]")]
        case .cut(let partial): return [String(repeating: partial ? "~" : "=", count: columns)]
        case .drawerKick(let pin, let milliseconds): return ["[drawer kick: pin \(pin), \(milliseconds) ms]"]
        case .unknown(let bytes): return ["[unknown command \(bytes)]"]
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
    fileprivate var trailingSpacesRemoved: String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
