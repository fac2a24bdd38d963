public import Foundation
public import TillCore

/// A moment worth a follow-up: something a person at the shop (or the shop's email tool)
/// should do for a customer, and when. Made by `MomentRules` from the timeline, kept once
/// (by `id`), published once as `crm.moment`.
public struct Moment: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// After a high-ticket purchase: how is it going, here is how to look after it.
        case careFollowUp = "care_follow_up"
        /// After a service: how was it.
        case serviceFollowUp = "service_follow_up"
        /// A service with an interval is due again (a bike service every six months).
        case serviceReminder = "service_reminder"
        /// A regular has gone quiet for much longer than their own habit.
        case winBack = "win_back"

        /// Transactional moments follow from what the customer bought and need no marketing
        /// consent; a win-back is marketing and needs it, per channel.
        public var purpose: ConsentRecord.Purpose {
            self == .winBack ? .marketing : .transactional
        }
    }

    public enum Status: String, Sendable, Hashable, CaseIterable { case open, done, snoozed, dismissed }

    /// The same moment is made the same way every time (kind, customer and what it follows
    /// from), so a replay, a restart or a second scan cannot make it twice.
    public var id: String
    public var customer: String
    public var kind: Kind
    public var dueMs: Int64
    /// Why, in words a person at the counter reads ("bought a 1,299.00 EUR e-bike").
    public var reason: String
    /// The channels it may use: for a marketing moment only those the customer consented to.
    public var channels: [ConsentRecord.Channel]
    public var status: Status = .open
    public var createdMs: Int64
    /// Until when a snoozed moment sleeps.
    public var snoozedUntilMs: Int64?
    /// The tilld seq of its `crm.moment` event, once published.
    public var publishedSeq: Int64?
    /// Set just before it is published: tilld's newest seq then. A moment with this and no
    /// `publishedSeq` may or may not have reached the journal (a crash in between), and is
    /// looked for there before it is published again.
    public var publishAfterSeq: Int64?

    public init(
        id: String, customer: String, kind: Kind, dueMs: Int64, reason: String, channels: [ConsentRecord.Channel], status: Status = .open,
        createdMs: Int64, snoozedUntilMs: Int64? = nil, publishedSeq: Int64? = nil, publishAfterSeq: Int64? = nil
    ) {
        self.publishAfterSeq = publishAfterSeq
        self.id = id
        self.customer = customer
        self.kind = kind
        self.dueMs = dueMs
        self.reason = reason
        self.channels = channels
        self.status = status
        self.createdMs = createdMs
        self.snoozedUntilMs = snoozedUntilMs
        self.publishedSeq = publishedSeq
    }

    /// The id of the care follow-up a sale raises (at most one per sale).
    public static func careID(sale: String) -> String { "care:\(sale)" }

    /// The source of the timeline entry that records a moment being raised.
    public static func timelineSource(_ id: String) -> String { "moment:\(id)" }
    public var timelineSource: String { Self.timelineSource(id) }

    /// The `crm.moment` event's data.
    public var event: JSONValue {
        [
            "id": .string(id), "customer": .string(customer), "moment": .string(kind.rawValue),
            "due": .string(Timestamp.format(Date(milliseconds: dueMs))), "reason": .string(reason),
            "purpose": .string(kind.purpose.rawValue), "channels": .array(channels.map { .string($0.rawValue) }),
        ]
    }
}

/// The thresholds the moments follow; `[moments]` in till-crm.toml, with these defaults.
public struct MomentSettings: Sendable, Hashable {
    /// A purchase at or over this total is high-ticket (in the sale's currency).
    public var highTicket: Decimal = 250
    /// Per category (a sale line's `category`): a line at or over its category's amount makes
    /// the sale high-ticket whatever its total ("bikes" at 500, "coffee" never).
    public var highTicketByCategory: [String: Decimal] = [:]
    /// Days after a high-ticket purchase the care follow-up is due.
    public var careAfterDays = 14
    /// Days after a service its follow-up is due.
    public var serviceFollowUpDays = 2
    /// Service intervals in days, by the service's name (`service.completed`'s `service`),
    /// for a reminder when it is due again; a `service.completed` may carry `interval_days`.
    public var serviceIntervalDays: [String: Int] = [:]
    /// A regular has at least this many visits...
    public var regularVisits = 4
    /// ...and has gone quiet when the days since their last activity exceed this many times
    /// their own median gap between activities.
    public var quietFactor = 3.0
    /// Never sooner than this many days of quiet (a daily regular missing three days is not lost).
    public var quietMinimumDays = 21
    /// A customer back after this many times their median gap (and at least the minimum) is
    /// greeted as returning after a long gap (`welcome_back` in `customer.recognized`).
    public var welcomeBackFactor = 3.0

    public init() {}
}

/// The moments, as pure rules over what is known about one customer. Nothing here reads the
/// store or the clock: the caller passes both in, so each rule is a table test.
public struct MomentRules: Sendable {
    public var settings: MomentSettings

    public init(settings: MomentSettings = MomentSettings()) {
        self.settings = settings
    }

    static let dayMs: Int64 = 86_400_000

    /// After a purchase: a care follow-up when it is high-ticket, by its total or by a line
    /// over its category's threshold.
    public func afterPurchase(customer: String, sale: SaleRecord, atMs: Int64) -> Moment? {
        let total = sale.total.flatMap { Decimal(string: $0) } ?? 0
        var why: String?
        if total >= settings.highTicket {
            why = "bought \(sale.total ?? "?") \(sale.currency ?? "")".trimmingCharacters(in: .whitespaces)
        }
        for line in sale.lines {
            guard let category = line["category"]?.stringValue, let threshold = settings.highTicketByCategory[category],
                let amount = line["amount"]?.stringValue.flatMap({ Decimal(string: $0) }), amount >= threshold
            else { continue }
            why = "bought \(line["name"]?.stringValue ?? category) (\(category)) for \(line["amount"]?.stringValue ?? "?") \(sale.currency ?? "")"
                .trimmingCharacters(in: .whitespaces)
            break
        }
        guard let why else { return nil }
        return Moment(
            id: Moment.careID(sale: sale.id), customer: customer, kind: .careFollowUp, dueMs: atMs + Int64(settings.careAfterDays) * Self.dayMs,
            reason: why + "; a care follow-up", channels: ConsentRecord.Channel.allCases, createdMs: atMs)
    }

    /// After a service: its follow-up, and the next reminder when the service recurs.
    /// `source` names the event it follows from (one follow-up per service done).
    public func afterService(customer: String, service: String, intervalDays: Int?, source: String, atMs: Int64) -> [Moment] {
        var moments = [Moment(
            id: "service:\(source)", customer: customer, kind: .serviceFollowUp, dueMs: atMs + Int64(settings.serviceFollowUpDays) * Self.dayMs,
            reason: "had a \(service); ask how it went", channels: ConsentRecord.Channel.allCases, createdMs: atMs)]
        if let days = intervalDays ?? settings.serviceIntervalDays[service], days > 0 {
            moments.append(Moment(
                id: "reminder:\(source)", customer: customer, kind: .serviceReminder, dueMs: atMs + Int64(days) * Self.dayMs,
                reason: "\(service) due again (every \(days) days)", channels: ConsentRecord.Channel.allCases, createdMs: atMs))
        }
        return moments
    }

    /// The median gap in days between activities (sorted or not); nil with fewer than two.
    public static func medianGapDays(_ activityMs: [Int64]) -> Double? {
        let sorted = Set(activityMs.map { $0 / dayMs }).sorted()  // one activity a day counts once
        guard sorted.count >= 2 else { return nil }
        let gaps = zip(sorted.dropFirst(), sorted).map { Double($0 - $1) }.sorted()
        let middle = gaps.count / 2
        return gaps.count % 2 == 1 ? gaps[middle] : (gaps[middle - 1] + gaps[middle]) / 2
    }

    /// How many quiet days make this customer's habit broken: m times their median gap, never
    /// less than the minimum.
    func quietDays(medianGap: Double, factor: Double) -> Double {
        max(Double(settings.quietMinimumDays), factor * medianGap)
    }

    /// A regular gone quiet: a win-back, if they have consented to marketing on some channel.
    /// `activityMs`: when they bought, returned, had a service or a conversation. `visits`:
    /// their completed purchases. `marketingChannels`: where marketing consent is given now.
    public func winBack(customer: String, activityMs: [Int64], visits: Int, marketingChannels: [ConsentRecord.Channel], nowMs: Int64) -> Moment? {
        guard let spell = quietSpell(activityMs: activityMs, visits: visits, nowMs: nowMs), !marketingChannels.isEmpty else { return nil }
        // One win-back per quiet spell: the spell is named by the last activity before it.
        return Moment(
            id: "winback:\(customer):\(spell.lastMs / Self.dayMs)", customer: customer, kind: .winBack, dueMs: nowMs,
            reason: String(format: "a regular (%d visits, usually every %.0f days) quiet for %.0f days", visits, spell.medianGap, spell.quietDays),
            channels: marketingChannels, createdMs: nowMs)
    }

    /// A regular's quiet spell, if they are in one now: when they were last active, their own
    /// median gap, and how many days they have been quiet.
    public func quietSpell(activityMs: [Int64], visits: Int, nowMs: Int64) -> (lastMs: Int64, medianGap: Double, quietDays: Double)? {
        guard visits >= settings.regularVisits, let last = activityMs.max(), let gap = Self.medianGapDays(activityMs) else { return nil }
        let quiet = Double(nowMs - last) / Double(Self.dayMs)
        guard quiet > quietDays(medianGap: gap, factor: settings.quietFactor) else { return nil }
        return (last, gap, quiet)
    }

    /// Whether a customer seen now, after `activityMs`, is back after a long gap: longer than
    /// `welcomeBackFactor` times their own habit (and the minimum), for the cashier's greeting.
    public func isWelcomeBack(activityMs: [Int64], nowMs: Int64) -> Bool {
        guard let last = activityMs.filter({ $0 < nowMs }).max() else { return false }
        let quiet = Double(nowMs - last) / Double(Self.dayMs)
        guard let gap = Self.medianGapDays(activityMs.filter { $0 < nowMs }) else {
            return quiet > Double(settings.quietMinimumDays) * settings.welcomeBackFactor
        }
        return quiet > quietDays(medianGap: gap, factor: settings.welcomeBackFactor)
    }
}
