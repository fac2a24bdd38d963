import Foundation

/// One character as the printer will print it: a byte, and the `ESC t` page it needs (nil for
/// ASCII, which every page holds). Layout counts these, so a column is exactly one cell.
public struct PrintCell: Sendable, Hashable {
    public var byte: UInt8
    /// The `ESC t` number, -1 for ASCII (four bytes a cell: receipts are laid out in these).
    private var pageNumber: Int16

    public init(_ byte: UInt8, page: Int? = nil) {
        self.byte = byte
        pageNumber = page.map(Int16.init) ?? -1
    }

    public var page: Int? { pageNumber < 0 ? nil : Int(pageNumber) }

    public static let space = PrintCell(0x20)
    public var isSpace: Bool { byte == 0x20 && pageNumber < 0 }
}

/// Turns UTF-8 text into cells of a printer's code pages: each character in a page the
/// printer has (preferring the page already selected, then the one that holds most of what
/// follows, so `ESC t` is sent only where needed); a character no page holds is transliterated
/// to the closest letters (ICU's Any-Latin and Latin-ASCII: "Ł" → "L", "ß" → "ss", Cyrillic
/// → Latin) rather than printed as a silent "?"; what is left is "?", and reported.
public struct PrintableText: Sendable {
    public let pages: [(number: Int, page: CodePage)]
    /// Characters that came out as "?" (nothing close in any page), for the job's result.
    public private(set) var unprintable: Set<Character> = []
    /// Characters that were transliterated, for the job's result.
    public private(set) var transliterated: Set<Character> = []
    private var cache: [Unicode.Scalar: [PrintCell]] = [:]

    /// `pages`: the profile's `ESC t` numbers and page names; pages without a table are skipped.
    public init(codePages: [Int: String]) {
        var pages = codePages.sorted { $0.key < $1.key }.compactMap { entry in
            CodePage(named: entry.value).map { (number: entry.key, page: $0) }
        }
        // The same page under two numbers: keep the lowest number.
        var seen: Set<String> = []
        pages.removeAll { !seen.insert($0.page.name).inserted }
        if pages.isEmpty, let cp437 = CodePage(named: "CP437") { pages = [(0, cp437)] }
        self.pages = pages
    }

    public mutating func cells(_ text: String) -> [PrintCell] {
        // Most receipt text is ASCII: every page holds it as it is, and it needs no
        // normalisation (the slow part below).
        var ascii: [PrintCell] = []
        ascii.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            guard byte < 0x80 else { return mapped(text) }
            ascii.append(PrintCell(byte < 0x20 || byte == 0x7F ? 0x20 : byte))
        }
        return ascii
    }

    private mutating func mapped(_ text: String) -> [PrintCell] {
        let scalars = Array(text.precomposedStringWithCanonicalMapping.unicodeScalars)
        var out: [PrintCell] = []
        out.reserveCapacity(scalars.count)
        var current: Int? = nil
        for index in scalars.indices {
            let scalar = scalars[index]
            if scalar.value < 0x80 {
                out.append(PrintCell(Self.ascii(scalar)))
                continue
            }
            if let current, let page = pages.first(where: { $0.number == current }), let byte = page.page.byte(for: scalar) {
                out.append(PrintCell(byte, page: current))
                continue
            }
            if let chosen = choosePage(for: scalars[index...]) {
                current = chosen.number
                out.append(PrintCell(chosen.page.byte(for: scalar)!, page: chosen.number))
                continue
            }
            out.append(contentsOf: fallback(scalar))
        }
        return out
    }

    /// Of the pages that hold `scalars.first`, the one that also holds the longest run of the
    /// non-ASCII characters after it.
    private func choosePage(for scalars: ArraySlice<Unicode.Scalar>) -> (number: Int, page: CodePage)? {
        var best: (number: Int, page: CodePage)? = nil
        var bestRun = 0
        for candidate in pages {
            var run = 0
            for scalar in scalars {
                if scalar.value < 0x80 { continue }
                guard candidate.page.byte(for: scalar) != nil else { break }
                run += 1
            }
            if run > bestRun {
                best = candidate
                bestRun = run
            }
        }
        return best
    }

    private mutating func fallback(_ scalar: Unicode.Scalar) -> [PrintCell] {
        if let cached = cache[scalar] { return cached }
        let character = Character(scalar)
        var cells: [PrintCell] = []
        if let special = Self.symbols[scalar] {
            cells = special.unicodeScalars.map { PrintCell(UInt8($0.value)) }
            transliterated.insert(character)
        } else if scalar.properties.generalCategory == .spaceSeparator {
            cells = [.space]
        } else if scalar.properties.generalCategory == .nonspacingMark || scalar.properties.generalCategory == .format {
            cells = []  // a combining mark no page composes with its letter, a zero-width joiner
        } else if let latin = String(character).applyingTransform(StringTransform("Any-Latin; Latin-ASCII"), reverse: false),
                  latin != String(character), !latin.isEmpty {
            // Letters first: a page may hold the transliteration's own accents.
            var nested = PrintableText(pages: pages)
            cells = nested.cells(latin)
            if cells.contains(where: { $0.byte == UInt8(ascii: "?") && !latin.contains("?") }) {
                cells = [PrintCell(UInt8(ascii: "?"))]
                unprintable.insert(character)
            } else {
                transliterated.insert(character)
            }
        } else {
            cells = [PrintCell(UInt8(ascii: "?"))]
            unprintable.insert(character)
        }
        cache[scalar] = cells
        return cells
    }

    private init(pages: [(number: Int, page: CodePage)]) {
        self.pages = pages
    }

    /// Control characters would be taken as commands: a tab is a space, the rest are dropped
    /// by the caller's layout (here: a space, so columns stay aligned).
    private static func ascii(_ scalar: Unicode.Scalar) -> UInt8 {
        scalar.value < 0x20 || scalar.value == 0x7F ? 0x20 : UInt8(scalar.value)
    }

    /// Symbols ICU's Latin-ASCII leaves as they are, with what a receipt should show instead.
    private static let symbols: [Unicode.Scalar: String] = [
        "€": "EUR", "₽": "RUB", "₴": "UAH", "₺": "TRY", "₹": "INR", "₪": "ILS", "₩": "KRW", "₫": "VND",
        "✓": "v", "✔": "v", "✗": "x", "✘": "x", "•": "*", "·": ".", "…": "...", "№": "No",
        "™": "TM", "℠": "SM", "←": "<-", "→": "->", "↑": "^", "↓": "v",
    ]
}
