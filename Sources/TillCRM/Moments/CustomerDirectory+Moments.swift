public import Foundation
public import TillCore

/// The moments people act on (`till-crm moments`): what is due, and marking each done,
/// snoozed or dismissed.
extension CustomerDirectory {
    public struct MomentView: Sendable, Hashable {
        public var moment: Moment
        /// The customer as people see them (the survivor, if the moment's record was merged).
        public var customer: String
        public var name: String?

        public var json: JSONValue {
            var object = moment.event.objectValue ?? [:]
            object["customer"] = .string(customer)
            object["record"] = .string(moment.customer)
            object["name"] = name.map(JSONValue.string) ?? .null
            object["status"] = .string(moment.status.rawValue)
            object["raised"] = .string(Timestamp.format(Date(milliseconds: moment.createdMs)))
            if let until = moment.snoozedUntilMs { object["snoozed_until"] = .string(Timestamp.format(Date(milliseconds: until))) }
            object["published_seq"] = moment.publishedSeq.map { .int($0) } ?? .null
            return .object(object)
        }
    }

    /// Open (and snoozed) moments, soonest first; with `dueBy`, only those due by then (a
    /// snoozed one when its snooze ends); with `customer`, only theirs (every merged record).
    public func moments(dueBy: Date?, includeClosed: Bool = false, customer: String? = nil, limit: Int = 200) async throws -> [MomentView] {
        var records: [String]?
        if let customer {
            let id = try await resolve(customer)
            records = try await store.read { try $0.members(of: id) }
        }
        let customers = records
        return try await store.read { store in
            let statuses: [Moment.Status] = includeClosed ? [] : [.open, .snoozed]
            return try store.moments(statuses: statuses, customers: customers, dueBeforeMs: dueBy?.milliseconds, limit: limit).map { moment in
                let cluster = try Cluster.of(moment.customer, in: store)
                return MomentView(moment: moment, customer: cluster?.root.id ?? moment.customer, name: cluster?.displayName)
            }
        }
    }

    public struct UnknownMoment: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Marks a moment done, snoozed until a time, or dismissed, and says so on the timeline.
    public func decide(moment id: String, _ status: Moment.Status, snoozedUntil: Date? = nil, actor: String, now: Date = Date()) async throws -> Moment {
        try await store.write { store in
            guard var moment = try store.moment(id) else {
                throw UnknownMoment(description: "no moment \(id); till-crm moments lists them with their ids")
            }
            let ms = now.milliseconds
            try store.setMoment(id, status: status, snoozedUntilMs: snoozedUntil?.milliseconds, actor: actor, atMs: ms)
            var payload = moment.event.objectValue ?? [:]
            payload["action"] = .string(status.rawValue)
            if let snoozedUntil { payload["until"] = .string(Timestamp.format(snoozedUntil)) }
            try store.append(TimelineEntry(
                customer: moment.customer, type: .moment, source: "\(moment.timelineSource):\(status.rawValue):\(ms)", payload: .object(payload),
                occurredMs: ms, recordedMs: ms, actor: actor))
            moment.status = status
            moment.snoozedUntilMs = snoozedUntil?.milliseconds
            return moment
        }
    }
}

/// Segments for people to act on (`till-crm segment`).
extension CustomerDirectory {
    public struct SegmentMember: Sendable, Hashable {
        public var scored: Segmentation.Scored
        public var name: String?
        public var emails: [String]
        public var phones: [String]
    }

    /// Every customer with a visit, scored and segmented as of `now`; with `segment`, only its
    /// members; with `consent`, only those whose current consent for that channel and purpose
    /// is given (an invitation list must hold no one who did not agree).
    public func segment(
        _ segment: Segmentation.Segment?, consent: (ConsentRecord.Channel, ConsentRecord.Purpose)?, rules: MomentRules, now: Date = Date()
    ) async throws -> [SegmentMember] {
        try await store.read { store in
            var summaries: [CustomerSummary] = []
            try store.forEachCustomer(minVisits: 1) { summaries.append($0) }
            let scored = Segmentation(rules: rules).score(summaries, nowMs: now.milliseconds)
            return try scored.filter { segment == nil || $0.segment == segment }.compactMap { scored -> SegmentMember? in
                guard let cluster = try Cluster.of(scored.summary.customer, in: store) else { return nil }
                if let (channel, purpose) = consent {
                    let current = ConsentRecord.current(try cluster.consentHistory(in: store))
                    guard current.contains(where: { $0.channel == channel && $0.purpose == purpose && $0.granted }) else { return nil }
                }
                let identifiers = try cluster.identifiers(in: store)
                return SegmentMember(
                    scored: scored, name: cluster.displayName, emails: identifiers.filter { $0.kind == .email }.map(\.normalized),
                    phones: identifiers.filter { $0.kind == .phone }.map(\.normalized))
            }
        }
    }
}
