public import TillESCPOS

/// A customer display's size and character table, from its `[[device]]` entry.
public struct DisplayProfile: Sendable, Hashable {
    public var rows: Int
    public var columns: Int
    /// The character table's name ("CP437", "CP858") and its `ESC t` number on the display.
    public var codePage: String
    public var codePageNumber: Int
    /// 1 (dim) to 4.
    public var brightness: Int?

    public init(rows: Int = 2, columns: Int = 20, codePage: String = "CP437", codePageNumber: Int? = nil, brightness: Int? = nil) {
        self.rows = rows
        self.columns = columns
        self.codePage = codePage.uppercased()
        // Pole displays number their tables as Epson's printers do (ESC t n).
        self.codePageNumber = codePageNumber
            ?? PrinterProfile.generic80.codePages.first { $0.value == codePage.uppercased() }?.key ?? 0
        self.brightness = brightness
    }
}

/// The two command sets pole displays speak (HARDWARE.md, "Customer displays"). Pure: lines in,
/// bytes out; no I/O.
public enum DisplayCommandSet: String, Sendable, Hashable, CaseIterable {
    /// Epson DM-D: `ESC @`, `US X n` brightness, `ESC t n`, `US $ x y` cursor, text.
    case epson
    /// CD5220: `ESC @`, `ESC * n` brightness, `ESC t n`, `ESC Q A text CR` (upper line),
    /// `ESC Q B text CR` (lower line); rows past two by `ESC l x y` cursor.
    case cd5220
}

/// Lines to a display's bytes: every character in the display's one character table (others
/// transliterated, as on receipts), every row written in full (padded with spaces, so nothing
/// of the previous text stays), the cursor hidden.
public struct DisplayEncoder: Sendable {
    public let commandSet: DisplayCommandSet
    public let profile: DisplayProfile
    private let text: PrintableText

    public init(_ commandSet: DisplayCommandSet, profile: DisplayProfile) {
        self.commandSet = commandSet
        self.profile = profile
        text = PrintableText(codePages: [profile.codePageNumber: profile.codePage])
    }

    /// What is sent once the line is open: reset, brightness, character table, cursor off.
    public var setup: [UInt8] {
        var bytes: [UInt8] = [0x1B, 0x40]
        switch commandSet {
        case .epson:
            if let level = profile.brightness { bytes += [0x1F, 0x58, UInt8(min(max(level, 1), 4))] }
            bytes += [0x1B, 0x74, UInt8(profile.codePageNumber)]
            bytes += [0x1F, 0x43, 0]  // cursor off
        case .cd5220:
            if let level = profile.brightness { bytes += [0x1B, 0x2A, UInt8(min(max(level, 1), 4))] }
            bytes += [0x1B, 0x74, UInt8(profile.codePageNumber)]
        }
        return bytes
    }

    /// Bytes that show `lines` (at most `rows`; the rest of the glass blank). Each line is cut
    /// to the width; lay out with `DisplayLayout` first to choose what is cut.
    public func show(_ lines: [String]) -> [UInt8] {
        var printable = text
        var bytes: [UInt8] = []
        for row in 0..<profile.rows {
            let cells = row < lines.count ? printable.cells(lines[row]) : []
            var shown = cells.prefix(profile.columns).map(\.byte)
            shown += [UInt8](repeating: 0x20, count: profile.columns - shown.count)
            switch commandSet {
            case .epson:
                bytes += [0x1F, 0x24, 1, UInt8(row + 1)] + shown
            case .cd5220 where row < 2:
                bytes += [0x1B, 0x51, row == 0 ? 0x41 : 0x42] + shown + [0x0D]
            case .cd5220:
                bytes += [0x1B, 0x6C, 1, UInt8(row + 1)] + shown
            }
        }
        return bytes
    }

    /// Clears the glass.
    public var clear: [UInt8] { [0x0C] }
}

/// Fitting text to a small glass.
public enum DisplayLayout {
    /// "Flat white ... 3.20": the name cut to leave room for the price (and one space), the price
    /// never cut (a price longer than the line is shown alone, right-aligned, cut on the left).
    public static func priceRow(_ name: String, _ price: String, columns: Int, filler: Character = " ") -> String {
        let price = String(price.suffix(columns))
        let room = columns - price.count - 1
        guard room > 0 else { return String(repeating: " ", count: columns - price.count) + price }
        let shownName = String(name.prefix(room))
        return shownName + String(repeating: filler, count: columns - shownName.count - price.count) + price
    }

    /// The frames of a marquee: `text` scrolled one character at a time through `columns`,
    /// with a gap of three spaces before it comes round again.
    public static func marquee(_ text: String, columns: Int) -> [String] {
        guard text.count > columns else { return [text] }
        let loop = Array(text + "   ")
        return (0..<loop.count).map { start in String((0..<columns).map { loop[(start + $0) % loop.count] }) }
    }
}
