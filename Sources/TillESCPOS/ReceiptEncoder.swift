public import Foundation
public import TillCore

/// What the encoder needs that is not pure byte work: decoding PNGs (libpng) and drawing QR
/// codes as pictures for printers without `GS ( k` (libqrencode). `TillImaging` provides it;
/// tests may pass their own.
public protocol ReceiptImaging: Sendable {
    func decodePNG(_ data: Data) throws -> GrayImage
    /// The code's width in modules, quiet zone included (4 on each side).
    func qrModules(_ text: String, errorLevel: ReceiptDocument.QRErrorLevel) throws -> Int
    /// The code drawn with `moduleDots` dots per module, quiet zone included.
    func qrImage(_ text: String, errorLevel: ReceiptDocument.QRErrorLevel, moduleDots: Int) throws -> GrayImage
}

/// The receipt as the printer will get it, and what had to give way to the printer's
/// abilities (said in the job's result: never a silent downgrade).
public struct EncodedReceipt: Sendable, Hashable {
    public var bytes: [UInt8]
    /// "line 4: QR code printed as a picture (TM-U220 has no QR command)".
    public var notes: [String]
    public var opensDrawer: Bool
}

/// A receipt line the printer cannot take, named by its path for `bad_request`.
public struct ReceiptEncodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public var field: String
    public var message: String
    public var description: String { "\(field) \(message)" }
}

/// The receipt document (CONTRACT.md) to ESC/POS for one printer profile. Pure: bytes out,
/// no I/O; the same document and profile always give the same bytes (golden tests).
public struct ReceiptEncoder: Sendable {
    public struct Options: Sendable, Hashable {
        /// Drawer kick connector pin (2 or 5) and pulse length.
        public var drawerPin: Int = 2
        public var drawerPulseMilliseconds: Int = 100

        public init(drawerPin: Int = 2, drawerPulseMilliseconds: Int = 100) {
            self.drawerPin = drawerPin
            self.drawerPulseMilliseconds = drawerPulseMilliseconds
        }
    }

    public let profile: PrinterProfile
    public let options: Options
    public let imaging: (any ReceiptImaging)?

    /// The profile's pages, looked up once (each receipt starts from a copy).
    private let pages: PrintableText

    public init(profile: PrinterProfile, options: Options = Options(), imaging: (any ReceiptImaging)? = nil) {
        self.profile = profile
        self.options = options
        self.imaging = imaging
        pages = PrintableText(codePages: profile.codePages)
    }

    public func encode(_ document: ReceiptDocument, path: String = "receipt") throws(ReceiptEncodingError) -> EncodedReceipt {
        var writer = Writer(profile: profile, printable: pages)
        var notes: [String] = []
        for (index, line) in document.lines.enumerated() {
            // Only the lines that can fail or need a note name themselves (the path is a string to build).
            var field: String { "\(path).lines[\(index)]" }
            switch line {
            case .text(let text, let style):
                writer.text(text, style: style)
            case .columns(let columns, let style):
                writer.columns(columns, style: style)
            case .rule(let character):
                writer.rule(character)
            case .barcode(let type, let data):
                try barcode(type, data, field: field, into: &writer, notes: &notes)
            case .qr(let data, let size, let level):
                try qr(data, size: size, level: level, field: field, into: &writer, notes: &notes)
            case .image(let png, let dithering):
                try image(png, dithering: dithering, field: field, into: &writer, notes: &notes)
            case .feed(let lines):
                writer.feed(lines)
            case .cut(let cut):
                if cut == .partial && profile.partialCut {
                    writer.raw(ESCPOS.cut(partial: true))
                } else if profile.fullCut {
                    if cut == .partial { notes.append("line \(index): full cut instead of partial (\(profile.name) has no partial cut)") }
                    writer.raw(ESCPOS.cut(partial: false))
                } else {
                    notes.append("line \(index): no cut (\(profile.name) has no cutter); paper fed to tear off")
                    writer.feed(4)
                }
            }
        }
        if document.openDrawer {
            if profile.drawerPulse {
                for _ in 0..<max(1, profile.drawerPulses) {
                    writer.raw(ESCPOS.drawerKick(pin: options.drawerPin, onMilliseconds: options.drawerPulseMilliseconds))
                }
            } else {
                notes.append("open_drawer: \(profile.name) has no drawer port; the drawer was not kicked")
            }
        }
        if !writer.printable.unprintable.isEmpty {
            notes.append("no code page of \(profile.name) holds \(writer.printable.unprintable.sorted().map { String($0) }.joined(separator: " ")): printed as ?")
        }
        if !writer.printable.transliterated.isEmpty {
            notes.append("transliterated (no code page holds them): \(writer.printable.transliterated.sorted().map { String($0) }.joined(separator: " "))")
        }
        return EncodedReceipt(bytes: writer.bytes, notes: notes, opensDrawer: document.openDrawer && profile.drawerPulse)
    }

    /// A "REPRINT" banner to put before a job printed again after it was cut off part-way
    /// (an unplug mid-receipt): the customer and the cashier see it is not a second sale.
    public func reprintBanner(job: String) -> [UInt8] {
        var writer = Writer(profile: profile, printable: pages)
        writer.text("*** REPRINT ***", style: .init(align: .center, size: .double, bold: true))
        writer.text("job \(job) was interrupted and is printed again in full", style: .init(align: .center))
        writer.rule("=")
        return writer.bytes
    }

    private func barcode(_ type: ReceiptDocument.BarcodeType, _ data: String, field: String, into writer: inout Writer, notes: inout [String]) throws(ReceiptEncodingError) {
        let code: Barcode
        do {
            code = try Barcode(Barcode.Symbology(rawValue: type.rawValue)!, data: data)
        } catch {
            throw ReceiptEncodingError(field: "\(field).barcode.data", message: error.description)
        }
        guard profile.barcodes else {
            notes.append("\(field): barcode printed as text (\(profile.name) has no barcode command)")
            writer.text(data, style: .init(align: .center))
            return
        }
        guard let moduleWidth = code.moduleWidth(fitting: profile.printableDots) else {
            throw ReceiptEncodingError(
                field: "\(field).barcode.data",
                message: "is too long for \(type.rawValue) on this printer: \(code.modules * 2) dots at the narrowest bars, the paper has \(profile.printableDots); shorten it or use a QR code")
        }
        writer.block(align: 1)
        writer.raw([ESCPOS.gs, 0x48, 2])  // HRI text below the bars
        writer.raw([ESCPOS.gs, 0x68, 80])  // 80 dots (10 mm) high
        writer.raw([ESCPOS.gs, 0x77, UInt8(moduleWidth)])
        // Printing the bars leaves the position at the start of the line: no LF after it,
        // which would feed a blank line.
        writer.raw(code.command)
    }

    private func qr(_ data: String, size: Int, level: ReceiptDocument.QRErrorLevel, field: String, into writer: inout Writer, notes: inout [String]) throws(ReceiptEncodingError) {
        let bytes = Array(data.utf8)
        var size = size
        if let imaging {
            let modules: Int
            do {
                modules = try imaging.qrModules(data, errorLevel: level)
            } catch {
                throw ReceiptEncodingError(field: "\(field).qr.data", message: "does not fit in a QR code at error level \(level.rawValue): \(error)")
            }
            let fitting = profile.printableDots / modules
            guard fitting >= 1 else {
                throw ReceiptEncodingError(field: "\(field).qr.data", message: "makes a QR code too wide for the paper; shorten it")
            }
            if fitting < size {
                notes.append("\(field): QR size \(size) is wider than the paper; printed at size \(fitting)")
                size = fitting
            }
        }
        if profile.qr {
            let levelByte: UInt8 = switch level { case .l: 48; case .m: 49; case .q: 50; case .h: 51 }
            writer.block(align: 1)
            writer.raw([ESCPOS.gs, 0x28, 0x6B, 4, 0, 0x31, 0x41, 0x32, 0])  // model 2
            writer.raw([ESCPOS.gs, 0x28, 0x6B, 3, 0, 0x31, 0x43, UInt8(size)])  // module size
            writer.raw([ESCPOS.gs, 0x28, 0x6B, 3, 0, 0x31, 0x45, levelByte])  // error correction
            writer.raw([ESCPOS.gs, 0x28, 0x6B] + ESCPOS.littleEndian16(bytes.count + 3) + [0x31, 0x50, 0x30] + bytes)  // store
            writer.raw([ESCPOS.gs, 0x28, 0x6B, 3, 0, 0x31, 0x51, 0x30])  // print (position back at the line start)
            return
        }
        if let imaging, profile.imageCommand != .none {
            do {
                let drawn = try imaging.qrImage(data, errorLevel: level, moduleDots: size)
                notes.append("\(field): QR code printed as a picture (\(profile.name) has no QR command)")
                picture(Bitmap(drawn, dithering: .threshold), into: &writer)
                return
            } catch {
                throw ReceiptEncodingError(field: "\(field).qr.data", message: "cannot be drawn as a QR code: \(error)")
            }
        }
        notes.append("\(field): QR code printed as text (\(profile.name) prints neither QR codes nor pictures)")
        writer.text(data, style: .init(align: .center))
    }

    private func image(_ png: Data, dithering: ReceiptDocument.Dithering, field: String, into writer: inout Writer, notes: inout [String]) throws(ReceiptEncodingError) {
        guard profile.imageCommand != .none else {
            notes.append("\(field): image left out (\(profile.name) cannot print pictures)")
            return
        }
        guard let imaging else {
            notes.append("\(field): image left out (this build decodes no PNG)")
            return
        }
        let decoded: GrayImage
        do {
            decoded = try imaging.decodePNG(png)
        } catch {
            throw ReceiptEncodingError(field: "\(field).image.png", message: "is not a PNG tilld can read: \(error)")
        }
        let fitted = decoded.fitted(toWidth: profile.printableDots)
        if fitted.width != decoded.width {
            notes.append("\(field): image scaled from \(decoded.width) to \(fitted.width) dots wide")
        }
        let mode: Bitmap.Dithering = switch dithering {
        case .floydSteinberg: .floydSteinberg
        case .atkinson: .atkinson
        case .threshold: .threshold
        }
        picture(Bitmap(fitted, dithering: mode), into: &writer)
    }

    private func picture(_ bitmap: Bitmap, into writer: inout Writer) {
        writer.block(align: 1)
        switch profile.imageCommand {
        case .raster, .none:
            for band in bitmap.rasterCommands(bandRows: profile.rasterBandRows) { writer.raw(band) }
        case .bitImage:
            writer.raw(ESCPOS.lineSpacing(24))
            for stripe in bitmap.bitImageCommands() { writer.raw(stripe) }
            writer.raw(ESCPOS.lineSpacing(nil))
        }
    }
}
