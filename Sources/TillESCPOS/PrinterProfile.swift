/// What differs between receipt printer models, as the encoder needs it: paper, columns, code
/// pages, and which commands the printer has. Read from the quirks data (the ESC/POS printer
/// database plus tilld's own entries), never hard-coded per vendor in the encoder.
public struct PrinterProfile: Sendable, Hashable {
    public struct Font: Sendable, Hashable {
        public var name: String
        public var columns: Int

        public init(name: String, columns: Int) {
            self.name = name
            self.columns = columns
        }
    }

    /// How a picture is sent (HARDWARE.md 15: the command that works differs by printer).
    public enum ImageCommand: String, Sendable, Hashable {
        /// `GS v 0`, raster bit image: most current printers.
        case raster
        /// `ESC *` 24-dot column bit image: older and cheaper printers without `GS v 0`.
        case bitImage = "bit-image"
        /// No pictures at all (impact printers): images are left out, and said so.
        case none
    }

    public var name: String
    public var vendor: String
    public var model: String
    public var paperMillimetres: Double?
    /// Printable width in dots; nil when the database does not know it.
    public var dots: Int?
    public var dpi: Int?
    public var fonts: [Font]
    /// `ESC t` number → code page name ("CP858").
    public var codePages: [Int: String]
    public var fullCut: Bool
    public var partialCut: Bool
    public var qr: Bool
    public var imageCommand: ImageCommand
    public var barcodes: Bool
    public var drawerPulse: Bool
    /// Drawer kick connector pins the printer has (2, 5).
    public var drawerPins: [Int]
    /// Kick pulses per open (HARDWARE.md 14: some drawers need more than one).
    public var drawerPulses: Int
    /// Whether the printer answers `DLE EOT` (Star printers in Star mode do not).
    public var realTimeStatus: Bool
    /// The printer's receive buffer, when known: how much may be sent before waiting.
    public var bufferBytes: Int?
    /// Rows per `GS v 0` band, so a picture never overflows a small buffer (HARDWARE.md 9).
    public var rasterBandRows: Int
    /// The file it came from (quirks data), for messages.
    public var file: String

    public init(
        name: String, vendor: String = "", model: String? = nil, paperMillimetres: Double? = nil, dots: Int? = nil, dpi: Int? = nil,
        fonts: [Font] = [Font(name: "Font A", columns: 48)], codePages: [Int: String] = [0: "CP437"],
        fullCut: Bool = true, partialCut: Bool = true, qr: Bool = true, imageCommand: ImageCommand = .raster, barcodes: Bool = true,
        drawerPulse: Bool = true, drawerPins: [Int] = [2, 5], drawerPulses: Int = 1, realTimeStatus: Bool = true,
        bufferBytes: Int? = nil, rasterBandRows: Int = 255, file: String = ""
    ) {
        self.name = name
        self.vendor = vendor
        self.model = model ?? name
        self.paperMillimetres = paperMillimetres
        self.dots = dots
        self.dpi = dpi
        self.fonts = fonts
        self.codePages = codePages
        self.fullCut = fullCut
        self.partialCut = partialCut
        self.qr = qr
        self.imageCommand = imageCommand
        self.barcodes = barcodes
        self.drawerPulse = drawerPulse
        self.drawerPins = drawerPins
        self.drawerPulses = drawerPulses
        self.realTimeStatus = realTimeStatus
        self.bufferBytes = bufferBytes
        self.rasterBandRows = rasterBandRows
        self.file = file
    }

    /// Characters per line in the normal font.
    public var columns: Int { fonts.first?.columns ?? 42 }

    /// Printable width in dots: the database's figure, else 12 dots per column of font A
    /// (Epson's 12×24 font), the width every ESC/POS printer's normal font has.
    public var printableDots: Int { dots ?? columns * 12 }

    /// An 80 mm printer with the pages receipts in Europe need, for `--demo` and for tests.
    public static let generic80 = PrinterProfile(
        name: "generic-80", vendor: "Generic", model: "Generic 80 mm ESC/POS printer", paperMillimetres: 80, dots: 576, dpi: 203,
        fonts: [Font(name: "Font A", columns: 48), Font(name: "Font B", columns: 64)],
        codePages: [0: "CP437", 2: "CP850", 16: "CP1252", 17: "CP866", 18: "CP852", 19: "CP858", 45: "CP1250", 46: "CP1251", 47: "CP1253"])
}
