/// Renders a receipt document as plain monospaced text, the way a receipt
/// printer would lay it out: the demo printer's output and `tillctl` previews.
public struct ReceiptTextRenderer: Sendable {
    public var width: Int

    public init(width: Int = 42) {
        self.width = width
    }

    public func render(_ document: ReceiptDocument) -> [String] {
        var out: [String] = []
        for line in document.lines {
            switch line {
            case .text(let text, let align, let size, _, _):
                let lineWidth = (size == .double || size == .wide) ? width / 2 : width
                for part in wrap(text, width: lineWidth) {
                    let shown = (size == .double || size == .wide) ? part.map { String($0) }.joined(separator: " ") : part
                    out.append(aligned(shown, align, in: width))
                }
            case .columns(let columns):
                out.append(renderColumns(columns))
            case .rule(let character):
                out.append(String(repeating: character, count: width))
            case .barcode(let type, let data):
                out.append(aligned("|||| \(type.rawValue) \(data) ||||", .center, in: width))
            case .qr(let data, _):
                out.append(aligned("[QR \(data)]", .center, in: width))
            case .image(let png):
                let size = PNGHeader(png).map { "\($0.width)x\($0.height)" } ?? "?"
                out.append(aligned("[image \(size)]", .center, in: width))
            case .feed(let count):
                out.append(contentsOf: Array(repeating: "", count: count))
            case .cut(let cut):
                out.append(String(repeating: cut == .full ? "=" : "~", count: width))
            }
        }
        if document.openDrawer { out.append("[drawer kick]") }
        return out
    }

    private func renderColumns(_ columns: [ReceiptDocument.Column]) -> String {
        let fixed = columns.compactMap(\.width).reduce(0, +)
        let flexible = columns.filter { $0.width == nil }.count
        let share = flexible > 0 ? max(1, (width - fixed) / flexible) : 0
        var line = ""
        for (index, column) in columns.enumerated() {
            var columnWidth = column.width ?? share
            if index == columns.count - 1 { columnWidth = max(1, width - line.count) }
            let text = String(column.text.prefix(columnWidth))
            line += aligned(text, column.align, in: columnWidth)
        }
        return line
    }

    private func aligned(_ text: String, _ align: ReceiptDocument.Alignment, in width: Int) -> String {
        let pad = max(0, width - text.count)
        switch align {
        case .left: return text + String(repeating: " ", count: pad)
        case .right: return String(repeating: " ", count: pad) + text
        case .center: return String(repeating: " ", count: pad / 2) + text + String(repeating: " ", count: pad - pad / 2)
        }
    }

    private func wrap(_ text: String, width: Int) -> [String] {
        guard text.count > width, width > 0 else { return [text] }
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            var word = String(word)
            while word.count > width {
                if !current.isEmpty { lines.append(current); current = "" }
                lines.append(String(word.prefix(width)))
                word = String(word.dropFirst(width))
            }
            if current.isEmpty {
                current = word
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                lines.append(current)
                current = word
            }
        }
        lines.append(current)
        return lines
    }
}
