public import TillCore

/// Reads the order out of the HTML that Odoo 16 and 17 send their customer display (their IoT
/// box showed it in a browser; a pole display shows text). The page is Odoo's
/// `CustomerFacingDisplayOrder` template, as the POS's browser serialised it:
///
///     .pos_orderlines_list > .pos_orderlines_item      one per order line, four cells:
///                                                      picture, name, quantity, price
///     .pos_total-amount                                the total, formatted
///     .pos-paymentlines                                "Cash:" "€ 10.00" ... then
///       .pos-change_title, .pos-change_amount          "Change" and the change, formatted
///
/// It gives the order in the shape Odoo 18 sends as data (`lines` of `productName`, `qty`,
/// `price`; `amount`; `change`; `paymentLines`), so one formatter serves both. Pure: no I/O,
/// no DOM; a tolerant scan that never fails on odd markup, only finds less in it.
public enum OdooDisplayHTML {
    /// The order, or nil when the HTML is not that template (no line and no total in it).
    public static func order(_ html: String) -> JSONValue? {
        var reader = Reader(Array(html.utf8))
        reader.run()
        let found = reader.found
        guard !found.items.isEmpty || found.total != nil else { return nil }
        let lines: [JSONValue] = found.items.compactMap { cells in
            // The picture's cell is empty text; name, quantity and price are the last three.
            guard cells.count >= 3 else { return nil }
            let tail = Array(cells.suffix(3))
            return ["productName": .string(tail[0]), "qty": .string(tail[1]), "price": .string(tail[2])]
        }
        let change = found.change.map { JSONValue.string($0) } ?? .bool(false)
        let payments: [JSONValue] = found.payments.isEmpty ? [] : [["name": .string(found.payments)]]
        return ["lines": .array(lines), "amount": .string(found.total ?? ""), "change": change, "paymentLines": .array(payments)]
    }

    struct Found {
        var items: [[String]] = []
        var total: String?
        var change: String?
        var payments = ""  // the payment lines' text, the change's title and amount left out
    }

    /// What an open element means for the text inside it.
    enum Role {
        case item(Int)         // an order line (its own text, outside a cell, is ignored)
        case cell(Int)         // a direct child of order line N: one of its cells
        case total, change, ignored, payments
        case plain
    }

    struct Reader {
        let bytes: [UInt8]
        var index = 0
        var stack: [(name: [UInt8], role: Role)] = []
        var found = Found()

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        static let voidElements: Set<String> = ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]

        mutating func run() {
            var textStart = 0
            while index < bytes.count {
                guard bytes[index] == UInt8(ascii: "<") else { index += 1; continue }
                text(bytes[textStart..<index])
                tag()
                textStart = index
            }
            text(bytes[textStart...])
        }

        /// At a `<`: a comment, a closing tag, an opening tag, or a stray `<` (text).
        mutating func tag() {
            let start = index
            index += 1
            if starts(with: "!--") {
                index = find("-->").map { $0 + 3 } ?? bytes.count
                return
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "!") || bytes[index] == UInt8(ascii: "?") {
                index = (bytes[index...].firstIndex(of: UInt8(ascii: ">")) ?? bytes.count - 1) + 1
                return
            }
            let closing = index < bytes.count && bytes[index] == UInt8(ascii: "/")
            if closing { index += 1 }
            let nameStart = index
            while index < bytes.count, Self.isNameByte(bytes[index]) { index += 1 }
            guard index > nameStart else {
                index = start + 1  // "a < b": text, not a tag
                text(bytes[start..<index])
                return
            }
            let name = bytes[nameStart..<index].map { $0 | 0x20 }  // lower case (names are ASCII)
            var classes: [String] = []
            var selfClosing = false
            // Attributes, with quoted values that may hold '>'.
            while index < bytes.count, bytes[index] != UInt8(ascii: ">") {
                if bytes[index] == UInt8(ascii: "/") { selfClosing = true; index += 1; continue }
                if Self.isNameByte(bytes[index]) {
                    let attributeStart = index
                    while index < bytes.count, Self.isNameByte(bytes[index]) { index += 1 }
                    let attribute = String(decoding: bytes[attributeStart..<index].map { $0 | 0x20 }, as: UTF8.self)
                    skipSpaces()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { continue }
                    index += 1
                    skipSpaces()
                    let value = attributeValue()
                    if attribute == "class" { classes = value.split(separator: " ").map(String.init) }
                    continue
                }
                selfClosing = false
                index += 1
            }
            index = min(index + 1, bytes.count)
            let nameText = String(decoding: name, as: UTF8.self)
            if closing {
                close(name)
            } else if nameText == "script" || nameText == "style" {
                // Their text is code, not the order: skipped to their end.
                index = find("</" + nameText) ?? bytes.count
            } else if !selfClosing, !Self.voidElements.contains(nameText) {
                stack.append((name, role(classes)))
            } else if case .cell(let item) = role(for: classes, parent: stack.last?.role) {
                // An empty cell, written <div/> or <img>: it still counts (the picture's).
                found.items[item].append("")
            }
        }

        /// The role of an element opening here, and the bookkeeping it starts.
        mutating func role(_ classes: [String]) -> Role {
            let role = role(for: classes, parent: stack.last?.role)
            switch role {
            case .item: found.items.append([])
            case .cell(let item): found.items[item].append("")
            case .total: found.total = ""
            case .change: found.change = ""
            default: break
            }
            return role
        }

        func role(for classes: [String], parent: Role?) -> Role {
            if classes.contains("pos_orderlines_item") {
                return classes.contains("pos_orderlines_header") ? .ignored : .item(found.items.count)
            }
            if classes.contains("pos_total-amount") { return .total }
            if classes.contains("pos-change_amount") { return .change }
            if classes.contains("pos-change_title") { return .ignored }
            if classes.contains("pos-paymentlines") { return .payments }
            if case .item(let item)? = parent { return .cell(item) }
            return .plain
        }

        /// Closes up to the innermost open element of that name (browsers' outerHTML is
        /// well formed; a stray closing tag with no opening one is ignored).
        mutating func close(_ name: [UInt8]) {
            guard let at = stack.lastIndex(where: { $0.name == name }) else { return }
            stack.removeSubrange(at...)
        }

        mutating func text(_ raw: ArraySlice<UInt8>) {
            guard !raw.isEmpty else { return }
            // The innermost element that gives text a meaning.
            for entry in stack.reversed() {
                switch entry.role {
                case .plain: continue
                case .ignored, .item: return
                case .cell(let item): Self.append(raw, to: &found.items[item][found.items[item].count - 1])
                case .total: Self.append(raw, to: &found.total!)
                case .change: Self.append(raw, to: &found.change!)
                case .payments: Self.append(raw, to: &found.payments)
                }
                return
            }
        }

        /// Text as shown: entities decoded, runs of white space (a no-break space included)
        /// one space, none at the ends.
        static func append(_ raw: ArraySlice<UInt8>, to text: inout String) {
            for word in decode(raw).split(whereSeparator: { $0.isWhitespace }) {
                if !text.isEmpty { text += " " }
                text += word
            }
        }

        static func decode(_ raw: ArraySlice<UInt8>) -> String {
            let text = String(decoding: raw, as: UTF8.self)
            guard text.contains("&") else { return text }
            var out = ""
            var rest = Substring(text)
            while let amp = rest.firstIndex(of: "&") {
                out += rest[..<amp]
                let after = rest[rest.index(after: amp)...]
                if let semicolon = after.prefix(10).firstIndex(of: ";"), let character = entity(after[..<semicolon]) {
                    out.append(character)
                    rest = after[after.index(after: semicolon)...]
                } else {
                    out += "&"
                    rest = after
                }
            }
            return out + rest
        }

        static func entity(_ name: Substring) -> Character? {
            switch name {
            case "amp": return "&"
            case "lt": return "<"
            case "gt": return ">"
            case "quot": return "\""
            case "apos": return "'"
            case "nbsp": return " "
            case "euro": return "€"
            case "pound": return "£"
            case "yen": return "¥"
            default:
                guard name.first == "#" else { return nil }
                let digits = name.dropFirst()
                let value = digits.first == "x" || digits.first == "X" ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
                return value.flatMap(Unicode.Scalar.init).map(Character.init)
            }
        }

        mutating func attributeValue() -> String {
            guard index < bytes.count else { return "" }
            let quote = bytes[index]
            if quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") {
                let start = index + 1
                let end = bytes[start...].firstIndex(of: quote) ?? bytes.count
                index = min(end + 1, bytes.count)
                return Self.decode(bytes[start..<end])
            }
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: ">"), !Self.isSpace(bytes[index]) { index += 1 }
            return Self.decode(bytes[start..<index])
        }

        mutating func skipSpaces() {
            while index < bytes.count, Self.isSpace(bytes[index]) { index += 1 }
        }

        func starts(with prefix: String) -> Bool {
            bytes[index...].starts(with: prefix.utf8)
        }

        /// Where `needle` next occurs (ASCII, any case), from the current index.
        func find(_ needle: String) -> Int? {
            let pattern = Array(needle.utf8)
            var at = index
            while at + pattern.count <= bytes.count {
                if zip(bytes[at..<(at + pattern.count)], pattern).allSatisfy({ $0 | 0x20 == $1 | 0x20 }) { return at }
                at += 1
            }
            return nil
        }

        static func isNameByte(_ byte: UInt8) -> Bool {
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":")
        }

        static func isSpace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C
        }
    }
}
