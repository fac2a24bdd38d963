public import Foundation

/// The receipt document of the `print` op: a list of lines, independent of any
/// printer's command set. Drivers turn it into bytes; the demo printer into text.
public struct ReceiptDocument: Sendable, Hashable {
    public enum Alignment: String, Sendable, Hashable { case left, center, right }
    public enum TextSize: String, Sendable, Hashable { case normal, double, tall, wide }
    public enum Cut: String, Sendable, Hashable { case full, partial }
    public enum BarcodeType: String, Sendable, Hashable, CaseIterable {
        case ean13, ean8, upca, upce, code39, code93, code128, itf, codabar
    }
    /// QR error correction: L 7 %, M 15 %, Q 25 %, H 30 % of the code may be damaged.
    public enum QRErrorLevel: String, Sendable, Hashable, CaseIterable { case l = "L", m = "M", q = "Q", h = "H" }
    /// How a picture's greys become dots (docs/printing.md).
    public enum Dithering: String, Sendable, Hashable, CaseIterable {
        case floydSteinberg = "floyd-steinberg", atkinson, threshold
    }

    public struct TextStyle: Sendable, Hashable {
        public var align: Alignment
        public var size: TextSize
        public var bold: Bool
        public var underline: Bool
        /// White on black.
        public var inverse: Bool

        public init(align: Alignment = .left, size: TextSize = .normal, bold: Bool = false, underline: Bool = false, inverse: Bool = false) {
            self.align = align
            self.size = size
            self.bold = bold
            self.underline = underline
            self.inverse = inverse
        }

        public static let plain = TextStyle()
    }

    public struct Column: Sendable, Hashable {
        public var text: String
        public var align: Alignment
        /// Share of the line width in characters; nil shares what is left equally.
        public var width: Int?

        public init(text: String, align: Alignment = .left, width: Int? = nil) {
            self.text = text
            self.align = align
            self.width = width
        }
    }

    public enum Line: Sendable, Hashable {
        case text(String, TextStyle)
        /// A row of columns; `style` applies to the whole row (its `align` is unused).
        case columns([Column], TextStyle)
        case rule(Character)
        case barcode(type: BarcodeType, data: String)
        case qr(data: String, size: Int, errorLevel: QRErrorLevel)
        case image(png: Data, dithering: Dithering)
        case feed(Int)
        case cut(Cut)
    }

    public var lines: [Line]
    public var openDrawer: Bool

    public init(lines: [Line], openDrawer: Bool = false) {
        self.lines = lines
        self.openDrawer = openDrawer
    }

    /// Parses and validates a document; errors name the offending field by path.
    public init(json: JSONValue, path: String = "receipt") throws {
        let fields = try FieldReader(json, path: path)
        try fields.allowOnly(["lines", "open_drawer"])
        let items = try fields.array("lines")
        guard items.count <= 10_000 else { throw WireError.badRequest(field: fields.name("lines"), "has more than 10000 lines") }
        self.lines = try items.enumerated().map { index, item in
            try Self.parseLine(item, path: "\(path).lines[\(index)]")
        }
        self.openDrawer = try fields.optionalBool("open_drawer") ?? false
    }

    private static func parseLine(_ json: JSONValue, path: String) throws -> Line {
        let fields = try FieldReader(json, path: path)
        func style() throws -> TextStyle {
            TextStyle(
                align: try enumValue(fields, "align", default: .left),
                size: try enumValue(fields, "size", default: .normal),
                bold: try fields.optionalBool("bold") ?? false,
                underline: try fields.optionalBool("underline") ?? false,
                inverse: try fields.optionalBool("inverse") ?? false
            )
        }
        let styleKeys: Set<String> = ["align", "size", "bold", "underline", "inverse"]
        if fields.has("text") {
            try fields.allowOnly(styleKeys.union(["text"]))
            guard try fields.string("text", nonEmpty: false).utf8.count <= 65_536 else {
                throw WireError.badRequest(field: fields.name("text"), "is longer than 64 KiB")
            }
            return .text(try fields.string("text", nonEmpty: false), try style())
        }
        if fields.has("columns") {
            try fields.allowOnly(styleKeys.subtracting(["align"]).union(["columns"]))
            let columns = try fields.array("columns").enumerated().map { index, item in
                let column = try FieldReader(item, path: "\(path).columns[\(index)]")
                try column.allowOnly(["text", "align", "width"])
                return Column(
                    text: try column.string("text", nonEmpty: false),
                    align: try enumValue(column, "align", default: .left),
                    width: try column.optionalInt("width", range: 1...255).map(Int.init)
                )
            }
            guard !columns.isEmpty else { throw WireError.badRequest(field: fields.name("columns"), "must not be empty") }
            return .columns(columns, try style())
        }
        if fields.has("rule") {
            try fields.allowOnly(["rule"])
            let rule = try fields.string("rule")
            guard rule.count == 1, let character = rule.first else {
                throw WireError.badRequest(field: fields.name("rule"), "must be a single character such as \"-\"")
            }
            return .rule(character)
        }
        if let barcode = try fields.optionalObject("barcode") {
            try fields.allowOnly(["barcode"])
            try barcode.allowOnly(["type", "data"])
            let type: BarcodeType = try enumValue(barcode, "type", default: nil)
            let data = try barcode.string("data")
            guard data.utf8.count <= 255, data.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw WireError.badRequest(field: barcode.name("data"), "must be at most 255 printable ASCII characters")
            }
            return .barcode(type: type, data: data)
        }
        if let qr = try fields.optionalObject("qr") {
            try fields.allowOnly(["qr"])
            try qr.allowOnly(["data", "size", "error"])
            let data = try qr.string("data")
            guard data.utf8.count <= 7089 else { throw WireError.badRequest(field: qr.name("data"), "is too long for a QR code") }
            return .qr(
                data: data, size: Int(try qr.optionalInt("size", range: 1...16) ?? 6),
                errorLevel: try enumValue(qr, "error", default: .m))
        }
        if let image = try fields.optionalObject("image") {
            try fields.allowOnly(["image"])
            try image.allowOnly(["png", "dither"])
            let base64 = try image.string("png")
            guard let png = Data(base64Encoded: base64), let header = PNGHeader(png) else {
                throw WireError.badRequest(field: image.name("png"), "must be a base64-encoded PNG image")
            }
            guard png.count <= Self.maxImageBytes, header.width <= Self.maxImageSide, header.height <= Self.maxImageSide else {
                throw WireError.badRequest(
                    field: image.name("png"),
                    "is \(header.width)x\(header.height) pixels, \(png.count) bytes: over the limit of \(Self.maxImageSide)x\(Self.maxImageSide) pixels and \(Self.maxImageBytes / 1_048_576) MiB; scale it down before printing")
            }
            return .image(png: png, dithering: try enumValue(image, "dither", default: .floydSteinberg))
        }
        if fields.has("feed") {
            try fields.allowOnly(["feed"])
            return .feed(Int(try fields.optionalInt("feed", range: 0...255) ?? 1))
        }
        if fields.has("cut") {
            try fields.allowOnly(["cut"])
            return .cut(try enumValue(fields, "cut", default: nil))
        }
        throw WireError.badRequest(
            field: path,
            "is not a receipt line: expected one of text, columns, rule, barcode, qr, image, feed, cut"
        )
    }

    /// Limits on a receipt's pictures: a logo is a few hundred pixels; these stop a mistake
    /// (a camera photo) from taking the daemon's memory, and keep the spool small.
    public static let maxImageBytes = 4 * 1_048_576
    public static let maxImageSide = 4096

    private static func enumValue<T: RawRepresentable<String>>(
        _ fields: FieldReader,
        _ key: String,
        default defaultValue: T?
    ) throws -> T where T: CaseIterableByName {
        guard let raw = try fields.optionalString(key) else {
            if let defaultValue { return defaultValue }
            throw WireError.missing(fields.name(key))
        }
        guard let value = T(rawValue: raw) else {
            throw WireError.badRequest(
                field: fields.name(key),
                "\"\(raw)\" is not one of \(T.allNames.joined(separator: ", "))"
            )
        }
        return value
    }
}

/// Lets error messages list the accepted values of an enum field.
protocol CaseIterableByName {
    static var allNames: [String] { get }
}

extension CaseIterableByName where Self: CaseIterable & RawRepresentable<String> {
    static var allNames: [String] { allCases.map(\.rawValue) }
}

extension ReceiptDocument.Alignment: CaseIterable, CaseIterableByName {}
extension ReceiptDocument.TextSize: CaseIterable, CaseIterableByName {}
extension ReceiptDocument.Cut: CaseIterable, CaseIterableByName {}
extension ReceiptDocument.BarcodeType: CaseIterableByName {}
extension ReceiptDocument.QRErrorLevel: CaseIterableByName {}
extension ReceiptDocument.Dithering: CaseIterableByName {}

/// The size of a PNG image, read from its IHDR chunk.
public struct PNGHeader: Sendable, Hashable {
    public var width: Int
    public var height: Int

    public init?(_ data: Data) {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24, Array(bytes[0..<8]) == signature, Array(bytes[12..<16]) == Array("IHDR".utf8) else {
            return nil
        }
        func be32(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        width = be32(16)
        height = be32(20)
        guard width > 0, height > 0 else { return nil }
    }
}
