import Foundation
public import TillCore

/// What Odoo sends its customer display, as the two lines of a pole display (the common
/// 2×20 glass): the latest item and its price, then the total (or, once paid, the change).
/// Odoo 18 sends the order as data; Odoo 16/17 send the HTML their IoT box showed in a
/// browser, out of which the order is read (a pole display shows text, not pages).
public enum CustomerDisplay {
    public static let columns = 20

    /// Odoo 18's `getCustomerDisplayData()`: `lines` (each `productName`, `qty`, `price`,
    /// formatted), `amount` (the total, formatted), `change` (formatted, or false), `finalized`.
    public static func lines(odoo data: JSONValue, columns: Int = columns) -> [String] {
        let total = data["amount"]?.stringValue ?? ""
        if let change = data["change"]?.stringValue, !change.isEmpty, data["finalized"] == .bool(true) || data["paymentLines"]?.arrayValue?.isEmpty == false {
            return [row("Total", total, columns), row("Change", change, columns)]
        }
        guard let last = data["lines"]?.arrayValue?.last else {
            return total.isEmpty ? [] : [row("Total", total, columns)]
        }
        let name = productName(last)
        let price = last["price"]?.stringValue ?? ""
        // The quantity is kept whole and the name cut instead: "Croissant au x2", never
        // "Croissant au be" for two croissants.
        let item: String
        if let quantity = last["qty"]?.stringValue.map(shortQuantity), quantity != "1", !quantity.isEmpty {
            let tag = " x\(quantity)"
            let room = max(0, columns - price.count - 1 - tag.count)
            item = String(name.prefix(room)).trimmingCharacters(in: .whitespaces) + tag
        } else {
            item = name
        }
        return [row(item, price, columns), row("Total", total, columns)]
    }

    /// Odoo 16/17's HTML: the order read out of their template (`OdooDisplayHTML`), shown as
    /// Odoo 18's is. HTML that is not that template (a theme of the shop's own) gives the
    /// amount that follows the word "Total"; nil when there is none (the glass keeps what it
    /// shows: Odoo's welcome page, say).
    public static func lines(html: String, columns: Int = columns) -> [String]? {
        if let order = OdooDisplayHTML.order(html) { return lines(odoo: order, columns: columns) }
        return totalLines(html: html, columns: columns)
    }

    /// HTML that is not Odoo's template: the amount that follows the word "Total", or nil.
    static func totalLines(html: String, columns: Int = columns) -> [String]? {
        var text = ""
        var inTag = false
        for character in html {
            if character == "<" { inTag = true; text.append(" "); continue }
            if character == ">" { inTag = false; continue }
            if !inTag { text.append(character) }
        }
        let words = OdooDisplayHTML.Reader.decode(ArraySlice(text.utf8)).split(whereSeparator: \.isWhitespace).map(String.init)
        guard let at = words.lastIndex(where: { $0.lowercased().hasPrefix("total") }) else { return nil }
        guard let amount = words[(at + 1)...].first(where: { $0.contains(where: \.isNumber) }) else { return nil }
        return [row("Total", amount, columns)]
    }

    /// Odoo's order (18's data, or 16/17's read out of their page) for the customer screen:
    /// every line, the total and, once paid, the change, formatted as Odoo formatted them.
    /// Paid is Odoo 18's `finalized`; 16/17 say nothing of it, so there it is a payment made
    /// and change given.
    public static func shownOrder(odoo data: JSONValue) -> Basket.ShownOrder {
        let lines = (data["lines"]?.arrayValue ?? []).map { line in
            Basket.Line(name: productName(line),
                        quantity: shortQuantity(line["qty"]?.stringValue ?? "1"),
                        amount: line["price"]?.stringValue ?? "")
        }
        let change = data["change"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        let paying = data["paymentLines"]?.arrayValue?.isEmpty == false
        let changeGiven = change?.contains { $0.isNumber && $0 != "0" } == true
        let finished = data["finalized"] == .bool(true) || (data["finalized"] == nil && paying && changeGiven)
        return Basket.ShownOrder(lines: lines, total: data["amount"]?.stringValue ?? "", change: change, finished: finished)
    }

    /// A line's name: `productName` as Odoo 18 sends it (`product_name` in some of its builds).
    static func productName(_ line: JSONValue) -> String {
        line["productName"]?.stringValue ?? line["product_name"]?.stringValue ?? ""
    }

    /// A quantity as short as it reads: "2.00" is "2", "1,50" is "1,5" (Odoo formats with
    /// its unit's decimals; the glass has 20 columns).
    static func shortQuantity(_ quantity: String) -> String {
        let text = quantity.trimmingCharacters(in: .whitespaces)
        guard let separator = text.lastIndex(where: { $0 == "." || $0 == "," }),
              text[text.index(after: separator)...].allSatisfy(\.isNumber) else { return text }
        var short = Substring(text)
        while short.last == "0", short.index(before: short.endIndex) > separator { short.removeLast() }
        if short.index(before: short.endIndex) == separator { short.removeLast() }
        return String(short)
    }

    /// `left` and `right` on one row of `columns`, the right one whole (an amount never cut).
    static func row(_ left: String, _ right: String, _ columns: Int) -> String {
        let room = max(0, columns - right.count - 1)
        let shown = String(left.prefix(room)).trimmingCharacters(in: .whitespaces)
        return shown + String(repeating: " ", count: max(1, columns - shown.count - right.count)) + right
    }
}
