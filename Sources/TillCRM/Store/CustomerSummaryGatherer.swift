import Foundation

/// What `forEachCustomer` does with the rows it reads, the same for every store (they differ
/// only in how they read them): activity rows arrive grouped by customer, a summary goes out
/// when the customer changes, and the activity of records merged into another is added to
/// their survivor's.
struct CustomerSummaryGatherer {
    private let minVisits: Int
    private var extraVisits: [String: Int] = [:]
    private var extraActivity: [String: [Int64]] = [:]
    private var extraSpent: [String: Decimal] = [:]
    private var current: String?
    private var visits = 0
    private var activity: [Int64] = []
    private var spent: Decimal = 0

    init(minVisits: Int) {
        self.minVisits = minVisits
    }

    /// A merged record's visits, counted for its survivor (`root`).
    mutating func addMerged(root: String, visits: Int) {
        extraVisits[root, default: 0] += visits
    }

    /// One of a merged record's activity rows, counted for its survivor.
    mutating func addMergedActivity(root: String, occurredMs: Int64, type: String, total: String?) {
        extraActivity[root, default: []].append(occurredMs)
        extraSpent[root, default: 0] += Self.spent(type: type, total: total)
    }

    /// One activity row of an active customer; rows come grouped by customer.
    mutating func add(customer: String, visits: Int, occurredMs: Int64, type: String, total: String?, _ body: (CustomerSummary) throws -> Void) throws {
        if customer != current {
            if let current { try emit(current, body) }
            current = customer
            self.visits = visits
            activity.removeAll(keepingCapacity: true)
            spent = 0
        }
        activity.append(occurredMs)
        spent += Self.spent(type: type, total: total)
    }

    /// The last customer, then survivors whose own record holds no activity, only their
    /// merged records'.
    mutating func finish(customer lookup: (String) throws -> CustomerRecord?, _ body: (CustomerSummary) throws -> Void) throws {
        if let current { try emit(current, body) }
        for (root, extra) in extraActivity.sorted(by: { $0.key < $1.key }) {
            guard let customer = try lookup(root), customer.status == .active else { continue }
            visits = customer.visits
            activity = extra
            spent = 0
            extraActivity[root] = nil
            try emit(root, body)
        }
    }

    private mutating func emit(_ customer: String, _ body: (CustomerSummary) throws -> Void) throws {
        let total = visits + (extraVisits.removeValue(forKey: customer) ?? 0)
        if let extra = extraActivity.removeValue(forKey: customer) { activity += extra }
        spent += extraSpent.removeValue(forKey: customer) ?? 0
        if total >= minVisits { try body(CustomerSummary(customer: customer, visits: total, activityMs: activity, spent: spent)) }
    }

    /// What an activity row adds to money spent: a purchase's total, less a refund's.
    static func spent(type: String, total: String?) -> Decimal {
        guard let total, let amount = Decimal(string: total) else { return 0 }
        switch type {
        case TimelineEntry.Kind.purchase.rawValue: return amount
        case TimelineEntry.Kind.refund.rawValue: return -amount
        default: return 0
        }
    }
}
