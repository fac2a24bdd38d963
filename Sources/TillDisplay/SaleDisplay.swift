import Foundation
public import TillCore

/// What a sale-driven display shows, from the POS's published events (pure: events in, lines
/// out). On `sale.line` the item and its amount on top and the running total below; on
/// `sale.tender` the total and what was tendered; on `sale.completed` the change due (when
/// there is any) and a thank-you; `sale.voided` clears it. Events of a sale the display is not
/// showing change nothing. Money stays decimal, never a float.
public struct SaleDisplay: Sendable {
    public let columns: Int
    private var sale: String?
    private var total = Decimal(0)
    private var tendered = Decimal(0)

    public init(columns: Int) {
        self.columns = columns
    }

    public enum Update: Sendable, Hashable {
        /// Show these lines.
        case show([String])
        /// The sale is over: show these, then the idle text after a while.
        case finish([String])
        /// Nothing to show for this event.
        case none
    }

    public mutating func apply(topic: String, data: JSONValue) -> Update {
        let id = data["sale"]?.stringValue
        switch topic {
        case "sale.started":
            start(id)
            return .none
        case "sale.line":
            if id != sale { start(id) }
            let amount = Self.decimal(data["amount"])
            total += amount ?? 0
            let quantity = data["qty"].flatMap { $0.stringValue ?? $0.intValue.map(String.init) } ?? "1"
            let name = (quantity == "1" ? "" : "\(quantity)x ") + (data["name"]?.stringValue ?? "")
            return .show([
                DisplayLayout.priceRow(name, Self.money(amount), columns: columns),
                DisplayLayout.priceRow("TOTAL", Self.money(total), columns: columns),
            ])
        case "sale.tender":
            guard id == sale, sale != nil else { return .none }
            let amount = Self.decimal(data["amount"]) ?? 0
            tendered += amount
            let method = (data["method"]?.stringValue ?? "paid").uppercased()
            return .show([
                DisplayLayout.priceRow("TOTAL", Self.money(total), columns: columns),
                DisplayLayout.priceRow(method, Self.money(amount), columns: columns),
            ])
        case "sale.completed":
            // Only the sale on the glass: a sale it never showed (no lines seen) changes nothing.
            guard id == sale, sale != nil else { return .none }
            if let given = Self.decimal(data["total"]) { total = given }
            let change = tendered - total
            sale = nil
            if change > 0 {
                return .finish([DisplayLayout.priceRow("CHANGE", Self.money(change), columns: columns), "Thank you!"])
            }
            return .finish([DisplayLayout.priceRow("TOTAL", Self.money(total), columns: columns), "Thank you!"])
        case "sale.voided":
            guard id == sale, sale != nil else { return .none }
            sale = nil
            return .finish([])
        default:
            return .none
        }
    }

    private mutating func start(_ id: String?) {
        sale = id
        total = 0
        tendered = 0
    }

    static func decimal(_ value: JSONValue?) -> Decimal? { DecimalString.decimal(value) }
    static func money(_ value: Decimal?) -> String { value.map(DecimalString.twoPlaces) ?? "" }
}
