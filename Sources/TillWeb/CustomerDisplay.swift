import Foundation
public import TillCore

/// What Odoo sends its customer display, as the two lines of a pole display (the common
/// 2×20 glass): the latest item and its price, then the total (or, once paid, the change).
/// Odoo 18 sends the order as data; Odoo 16/17 send the HTML their IoT box showed in a
/// browser, of which the total is taken (a pole display shows text, not pages).
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
        let name = last["productName"]?.stringValue ?? last["product_name"]?.stringValue ?? ""
        let quantity = last["qty"]?.stringValue.flatMap { $0 == "1" || $0 == "1.00" ? nil : $0 }
        let item = quantity.map { "\(name) x\($0)" } ?? name
        return [row(item, last["price"]?.stringValue ?? "", columns), row("Total", total, columns)]
    }

    /// Odoo 16/17's HTML: its text, and the amount that follows the word "Total" (nil when
    /// there is none: the glass keeps what it shows).
    public static func lines(html: String, columns: Int = columns) -> [String]? {
        var text = ""
        var inTag = false
        for character in html {
            if character == "<" { inTag = true; text.append(" "); continue }
            if character == ">" { inTag = false; continue }
            if !inTag { text.append(character) }
        }
        let words = text.replacingOccurrences(of: "&nbsp;", with: " ").split(whereSeparator: \.isWhitespace).map(String.init)
        guard let at = words.lastIndex(where: { $0.lowercased().hasPrefix("total") }) else { return nil }
        guard let amount = words[(at + 1)...].first(where: { $0.contains(where: \.isNumber) }) else { return nil }
        return [row("Total", amount, columns)]
    }

    /// `left` and `right` on one row of `columns`, the right one whole (an amount never cut).
    static func row(_ left: String, _ right: String, _ columns: Int) -> String {
        let room = max(0, columns - right.count - 1)
        let shown = String(left.prefix(room))
        return shown + String(repeating: " ", count: max(1, columns - shown.count - right.count)) + right
    }
}
