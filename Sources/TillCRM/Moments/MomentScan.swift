public import Foundation

/// The moments no event announces: a regular going quiet. One pass over every regular's
/// activity (read), then the few moments found are kept (written), so a scan over a million
/// customers holds the store's writer only for what it found.
public struct MomentScan: Sendable {
    public var rules: MomentRules

    public init(rules: MomentRules) {
        self.rules = rules
    }

    public struct Result: Sendable {
        /// Regulars looked at.
        public var regulars = 0
        /// Regulars gone quiet (with or without consent to be contacted).
        public var quiet = 0
        /// New win-back moments kept.
        public var raised = 0
    }

    /// Scans as of `now`. Marketing consent is read for the quiet ones only.
    public func run(in store: any CRMStore, processor: TillEventProcessor, now: Date) async throws -> Result {
        let rules = self.rules
        let nowMs = now.milliseconds
        let (found, counts) = try await store.read { store -> ([Moment], Result) in
            var result = Result()
            var quiet: [(customer: String, visits: Int, activity: [Int64])] = []
            try store.forEachCustomer(minVisits: rules.settings.regularVisits) { summary in
                result.regulars += 1
                if rules.quietSpell(activityMs: summary.activityMs, visits: summary.visits, nowMs: nowMs) != nil {
                    quiet.append((summary.customer, summary.visits, summary.activityMs))
                }
            }
            result.quiet = quiet.count
            var moments: [Moment] = []
            for regular in quiet {
                guard let cluster = try Cluster.of(regular.customer, in: store) else { continue }
                let channels = ConsentRecord.current(try cluster.consentHistory(in: store))
                    .filter { $0.purpose == .marketing && $0.granted }.map(\.channel)
                if let moment = rules.winBack(
                    customer: regular.customer, activityMs: regular.activity, visits: regular.visits, marketingChannels: channels, nowMs: nowMs)
                {
                    moments.append(moment)
                }
            }
            return (moments, result)
        }
        var result = counts
        guard !found.isEmpty else { return result }
        result.raised = try await store.write { store in
            var raised = 0
            for moment in found where try processor.raise(moment, store) { raised += 1 }
            return raised
        }
        return result
    }
}
