public import Foundation

/// What is known of one customer for segmenting: when they came, how often, for how much.
public struct CustomerSummary: Sendable, Hashable {
    public var customer: String
    public var visits: Int
    /// When each activity happened (purchases, refunds, services, conversations).
    public var activityMs: [Int64]
    /// Purchases' totals less refunds' (in the shop's currency).
    public var spent: Decimal

    public init(customer: String, visits: Int, activityMs: [Int64], spent: Decimal) {
        self.customer = customer
        self.visits = visits
        self.activityMs = activityMs
        self.spent = spent
    }
}

/// RFM scores and the segments people act on. Pure: summaries and a time in, segments out.
///
/// - R, F, M are quintiles (1 to 5, 5 the best) of recency (days since the last activity),
///   frequency (visits) and money spent, among customers with at least one visit.
/// - The segments, first that fits:
///   - `lapsed`: quiet for a year, or a regular quiet beyond the win-back rule (their own habit);
///   - `at_risk`: a regular quiet for longer than half of that;
///   - `new`: first seen in the last 30 days, at most two visits;
///   - `vip`: top fifth by money and by frequency (M = 5, F ≥ 4);
///   - `regular`: at least `regularVisits` visits;
///   - `occasional`: everyone else.
public struct Segmentation: Sendable {
    public enum Segment: String, Sendable, Hashable, CaseIterable {
        case new, regular, vip, atRisk = "at_risk", lapsed, occasional
    }

    public struct Scored: Sendable, Hashable {
        public var summary: CustomerSummary
        public var segment: Segment
        public var recency: Int
        public var frequency: Int
        public var monetary: Int
        /// Days since the last activity.
        public var recencyDays: Int
        public var rfm: String { "\(recency)\(frequency)\(monetary)" }
    }

    public var rules: MomentRules

    public init(rules: MomentRules) {
        self.rules = rules
    }

    /// The quintile (1 to 5) of each value among `values`, higher values scoring higher.
    static func quintiles<Value: Comparable>(_ values: [Value]) -> [Int] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var scores = [Int](repeating: 1, count: values.count)
        var position = 0
        while position < order.count {
            // Equal values get one score: the quintile of the first of them.
            var end = position
            while end + 1 < order.count, values[order[end + 1]] == values[order[position]] { end += 1 }
            let score = min(5, position * 5 / max(1, order.count) + 1)
            for index in position...end { scores[order[index]] = score }
            position = end + 1
        }
        return scores
    }

    public func score(_ summaries: [CustomerSummary], nowMs: Int64) -> [Scored] {
        let day: Int64 = 86_400_000
        let lastActivity = summaries.map { $0.activityMs.max() ?? 0 }
        let recency = Self.quintiles(lastActivity)
        let frequency = Self.quintiles(summaries.map(\.visits))
        let monetary = Self.quintiles(summaries.map(\.spent))
        let settings = rules.settings
        return summaries.indices.map { index in
            let summary = summaries[index]
            let quietDays = Double(nowMs - lastActivity[index]) / Double(day)
            let regular = summary.visits >= settings.regularVisits
            let gap = MomentRules.medianGapDays(summary.activityMs)
            let lapseDays = regular && gap != nil ? rules.quietDays(medianGap: gap!, factor: settings.quietFactor) : 365
            let segment: Segment
            if quietDays > min(365, lapseDays) {
                segment = .lapsed
            } else if regular, quietDays > lapseDays / 2 {
                segment = .atRisk
            } else if let first = summary.activityMs.min(), nowMs - first <= 30 * day, summary.visits <= 2 {
                segment = .new
            } else if monetary[index] == 5, frequency[index] >= 4 {
                segment = .vip
            } else if regular {
                segment = .regular
            } else {
                segment = .occasional
            }
            return Scored(
                summary: summary, segment: segment, recency: recency[index], frequency: frequency[index], monetary: monetary[index],
                recencyDays: Int(quietDays))
        }
    }
}
