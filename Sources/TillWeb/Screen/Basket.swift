public import Foundation
public import TillCore

/// What the customer-facing screen shows, from the POS's published sale events (pure: events
/// in, a snapshot out). One sale at a time: `sale.started` (or the first `sale.line` of a sale
/// it was not showing) opens a basket; lines add up; tenders count toward the change; on
/// `sale.completed` the screen shows the total, what was paid and the change due; `sale.voided`
/// empties it. A finished sale stays up for `lingers` (the customer reads the change and may
/// still leave their email), then the screen goes back to its welcome. Money stays decimal.
public struct Basket: Sendable {
    public enum State: String, Sendable {
        case idle, open, paid, voided
    }

    public struct Line: Sendable, Equatable {
        public var name: String
        public var quantity: String
        public var amount: String
    }

    /// How long a finished sale (paid or voided) stays on the screen.
    public let lingers: Duration
    public private(set) var state: State = .idle
    public private(set) var sale: String?
    public private(set) var lines: [Line] = []
    public private(set) var currency: String?
    /// Whether the customer of this sale has been identified (by this screen or at the till):
    /// the screen then thanks them instead of asking.
    public private(set) var identified = false
    private var total = Decimal(0)
    private var completedTotal: Decimal?
    private var tendered = Decimal(0)
    /// When the sale finished, by the event's own time (so a replay after a restart does not
    /// bring back a sale finished long ago).
    public private(set) var finishedAt: Date?
    /// The order as a POS that sends it whole shows it (Odoo's customer display), instead of
    /// the lines and sums built from events.
    public private(set) var shown: ShownOrder?

    /// An order from a POS that sends its display the whole order, formatted (Odoo), rather
    /// than sale events: its amounts are shown as they come. It has no sale on tilld's socket,
    /// so the screen offers no form for it.
    public struct ShownOrder: Sendable, Equatable {
        public var lines: [Line]
        public var total: String
        public var change: String?
        public var finished: Bool
    }

    public init(lingers: Duration = .seconds(90)) {
        self.lingers = lingers
    }

    /// Applies one event; true when what the screen shows changed.
    @discardableResult
    public mutating func apply(topic: String, data: JSONValue, time: Date) -> Bool {
        let id = data["sale"]?.stringValue
        switch topic {
        case "sale.started":
            start(id)
            return true
        case "sale.line":
            guard let id else { return false }
            if id != sale || state != .open { start(id) }
            let amount = DecimalString.decimal(data["amount"])
            total += amount ?? 0
            let quantity = data["qty"].flatMap(Self.quantity) ?? "1"
            lines.append(Line(name: data["name"]?.stringValue ?? "", quantity: quantity,
                              amount: amount.map(DecimalString.twoPlaces) ?? ""))
            return true
        case "sale.tender":
            guard id == sale, state == .open else { return false }
            tendered += DecimalString.decimal(data["amount"]) ?? 0
            return true
        case "sale.completed":
            guard id == sale, state == .open else { return false }
            completedTotal = DecimalString.decimal(data["total"])
            currency = data["currency"]?.stringValue
            state = .paid
            finishedAt = time
            return true
        case "sale.voided":
            guard id == sale, state == .open else { return false }
            state = .voided
            lines = []
            finishedAt = time
            return true
        case "customer.identified":
            guard let id, id == sale, !identified else { return false }
            identified = true
            return true
        default:
            return false
        }
    }

    /// Shows an order sent whole (nil, or one with no line that is not finished: the
    /// welcome). True when what the screen shows changed. A finished order keeps the time it
    /// first finished, however often the POS sends it again, so it lingers only `lingers`.
    @discardableResult
    public mutating func show(_ order: ShownOrder?, now: Date) -> Bool {
        guard let order, !order.lines.isEmpty || order.finished else {
            let wasIdle = state == .idle
            self = Basket(lingers: lingers)
            return !wasIdle
        }
        guard order != shown else { return false }
        let finishedBefore = shown?.finished == true ? finishedAt : nil
        self = Basket(lingers: lingers)
        shown = order
        state = order.finished ? .paid : .open
        finishedAt = order.finished ? finishedBefore ?? now : nil
        return true
    }

    /// Back to the welcome once a finished sale has lingered; true when that changed the screen.
    @discardableResult
    public mutating func expire(now: Date) -> Bool {
        guard let finishedAt, state == .paid || state == .voided,
              now.timeIntervalSince(finishedAt) >= Double(lingers.components.seconds) else { return false }
        self = Basket(lingers: lingers)
        return true
    }

    /// The sale a customer on the screen may still attach their email to: the open one, or
    /// the one just paid while it is still shown.
    public var identifiableSale: String? {
        state == .open || state == .paid ? sale : nil
    }

    /// A quantity as the POS sent it: 2, 0.35 (kg) or "1.5".
    static func quantity(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .double(let number): number.isFinite ? "\(number)" : nil
        default: nil
        }
    }

    private mutating func start(_ id: String?) {
        self = Basket(lingers: lingers)
        sale = id
        state = .open
    }

    /// What a screen is sent (one WebSocket message): everything it draws.
    public var snapshot: JSONValue {
        // An order shown whole has no sale, currency or tenders here (`show` starts afresh):
        // only its lines, total and change replace those built from events.
        var object: [String: JSONValue] = [
            "type": "basket",
            "state": .string(state.rawValue),
            "lines": .array((shown?.lines ?? lines).map { ["name": .string($0.name), "qty": .string($0.quantity), "amount": .string($0.amount)] }),
            "total": .string(shown?.total ?? DecimalString.twoPlaces(completedTotal ?? total)),
            "identified": .bool(identified),
        ]
        if let sale { object["sale"] = .string(sale) }
        if let currency { object["currency"] = .string(currency) }
        if tendered > 0 { object["paid"] = .string(DecimalString.twoPlaces(tendered)) }
        if state == .paid {
            if let shown {
                if let change = shown.change { object["change"] = .string(change) }
            } else {
                let change = tendered - (completedTotal ?? total)
                if change > 0 { object["change"] = .string(DecimalString.twoPlaces(change)) }
            }
        }
        return .object(object)
    }
}
