import TillCore

/// The byte stream of one receipt and the printer's state along it (styles, alignment, code
/// page), so a command is sent only when something changes. Text is laid out in cells (one per
/// printed character, after code-page mapping and transliteration), so columns line up exactly.
struct Writer {
    let profile: PrinterProfile
    var printable: PrintableText
    private(set) var bytes: [UInt8] = ESCPOS.initialize
    /// The row being laid out (kept to reuse its storage).
    private var line: [PrintCell] = []

    // What the printer has now (after ESC @: all off, page 0, left).
    private var page = 0
    private var align: UInt8 = 0
    private var bold = false
    private var underline = false
    private var inverse = false
    private var size = (width: 1, height: 1)

    init(profile: PrinterProfile, printable: PrintableText) {
        self.profile = profile
        self.printable = printable
        bytes.reserveCapacity(2048)
    }

    mutating func raw(_ command: [UInt8]) { bytes += command }

    mutating func feed(_ lines: Int) {
        if lines > 0 { bytes += ESCPOS.feed(lines: lines) }
    }

    /// Before a barcode, QR code or picture: plain, aligned as asked.
    mutating func block(align value: UInt8) {
        setStyle(.plain)
        setAlign(value)
    }

    mutating func text(_ text: String, style: ReceiptDocument.TextStyle) {
        setStyle(style)
        setAlign(Self.alignByte(style.align))
        let width = max(1, profile.columns / size.width)
        for line in Self.wrap(printable.cells(text), width: width) { emit(line) }
    }

    mutating func rule(_ character: Character) {
        setStyle(.plain)
        setAlign(0)
        let cell = printable.cells(String(character)).first ?? PrintCell(UInt8(ascii: "-"))
        emit(Array(repeating: cell, count: profile.columns))
    }

    /// A row of columns. A right-aligned column without a set width (an amount) gets the room
    /// its text needs and is never broken; the other columns share the rest and wrap within it.
    mutating func columns(_ columns: [ReceiptDocument.Column], style: ReceiptDocument.TextStyle) {
        setStyle(style)
        setAlign(0)
        let width = max(1, profile.columns / size.width)
        let cells = columns.map { printable.cells($0.text) }
        let widths = Self.columnWidths(columns, cells: cells, total: width)
        // The usual row fits as it is: laid out straight into the line, nothing wrapped.
        if zip(cells, widths).allSatisfy({ $0.count <= $1 }) {
            line.removeAll(keepingCapacity: true)
            for index in columns.indices {
                if index > 0 { line.append(.space) }
                Self.pad(cells[index], to: widths[index], columns[index].align, into: &line)
            }
            emitLine()
            return
        }
        let wrapped = zip(cells, widths).map { Self.wrap($0, width: $1) }
        let rows = wrapped.map(\.count).max() ?? 1
        for row in 0..<rows {
            line.removeAll(keepingCapacity: true)
            for (index, column) in columns.enumerated() {
                if index > 0 { line.append(.space) }
                Self.pad(row < wrapped[index].count ? wrapped[index][row] : [], to: widths[index], column.align, into: &line)
            }
            emitLine()
        }
    }

    static func columnWidths(_ columns: [ReceiptDocument.Column], cells: [[PrintCell]], total: Int) -> [Int] {
        let gaps = columns.count - 1
        var widths = columns.map { $0.width ?? 0 }
        // Amount columns: as wide as their text (at least their set width).
        var rigid = [Bool](repeating: false, count: columns.count)
        for (index, column) in columns.enumerated() where column.align == .right && (columns.count == 1 || index > 0) {
            widths[index] = max(widths[index], cells[index].count)
            rigid[index] = true
        }
        let flexible = columns.indices.filter { !rigid[$0] && columns[$0].width == nil }
        var left = total - gaps - widths.reduce(0, +)
        if left < flexible.count {
            // Set widths do not fit: shrink the widest non-amount columns first.
            var shrinkable = columns.indices.filter { !rigid[$0] }.sorted { widths[$0] > widths[$1] }
            while left < flexible.count, let widest = shrinkable.first, widths[widest] > 1 {
                widths[widest] -= 1
                left += 1
                shrinkable.sort { widths[$0] > widths[$1] }
            }
        }
        if !flexible.isEmpty {
            let share = max(1, left / flexible.count)
            for (position, index) in flexible.enumerated() {
                widths[index] = position == flexible.count - 1 ? max(1, left - share * (flexible.count - 1)) : share
            }
        }
        return widths.map { max(1, $0) }
    }

    /// Words to lines of at most `width` cells; a word longer than a line is split.
    static func wrap(_ cells: [PrintCell], width: Int) -> [[PrintCell]] {
        guard cells.count > width else { return [cells] }
        var lines: [[PrintCell]] = []
        var current: [PrintCell] = []
        for word in cells.split(omittingEmptySubsequences: true, whereSeparator: \.isSpace) {
            var word = Array(word)
            if !current.isEmpty, current.count + 1 + word.count <= width {
                current.append(.space)
                current += word
                continue
            }
            if !current.isEmpty { lines.append(current) }
            current = []
            while word.count > width {
                lines.append(Array(word[..<width]))
                word.removeFirst(width)
            }
            current = word
        }
        if !current.isEmpty || lines.isEmpty { lines.append(current) }
        return lines
    }

    static func pad(_ cells: [PrintCell], to width: Int, _ align: ReceiptDocument.Alignment, into line: inout [PrintCell]) {
        let room = max(0, width - cells.count)
        let before = align == .right ? room : align == .center ? room / 2 : 0
        for _ in 0..<before { line.append(.space) }
        line.append(contentsOf: cells)
        for _ in 0..<(room - before) { line.append(.space) }
    }

    static func alignByte(_ align: ReceiptDocument.Alignment) -> UInt8 {
        switch align {
        case .left: 0
        case .center: 1
        case .right: 2
        }
    }

    /// `line` without its trailing spaces (they would only cost bytes), then a line feed.
    private mutating func emitLine() {
        var end = line.count
        while end > 0, line[end - 1].isSpace { end -= 1 }
        if line[0..<end].allSatisfy({ $0.page == nil || $0.page == page }) {
            // One page for the whole line (the usual case): the bytes in one copy.
            bytes.append(contentsOf: line[0..<end].lazy.map(\.byte))
        } else {
            for index in 0..<end { put(line[index]) }
        }
        bytes.append(ESCPOS.lf)
    }

    private mutating func put(_ cell: PrintCell) {
        if let wanted = cell.page, wanted != page {
            bytes += ESCPOS.codePage(wanted)
            page = wanted
        }
        bytes.append(cell.byte)
    }

    private mutating func emit(_ cells: [PrintCell]) {
        for cell in cells { put(cell) }
        bytes.append(ESCPOS.lf)
    }

    private mutating func setAlign(_ value: UInt8) {
        if value != align {
            bytes += ESCPOS.align(value)
            align = value
        }
    }

    private mutating func setStyle(_ style: ReceiptDocument.TextStyle) {
        if style.bold != bold {
            bytes += ESCPOS.bold(style.bold)
            bold = style.bold
        }
        if style.underline != underline {
            bytes += ESCPOS.underline(style.underline)
            underline = style.underline
        }
        if style.inverse != inverse {
            bytes += ESCPOS.inverse(style.inverse)
            inverse = style.inverse
        }
        let wanted = switch style.size {
        case .normal: (width: 1, height: 1)
        case .double: (width: 2, height: 2)
        case .tall: (width: 1, height: 2)
        case .wide: (width: 2, height: 1)
        }
        if wanted != size {
            bytes += ESCPOS.size(width: wanted.width, height: wanted.height)
            size = wanted
        }
    }
}
