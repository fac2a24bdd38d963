import Foundation
import GRDB
import Testing
import TillCore
@testable import TillCRM

private let day: Int64 = 86_400_000

/// The moment rules, as tables, on a clock of their own (no store, no wall clock).
@Suite("Moments: the rules", .timeLimit(.minutes(1)))
struct MomentRuleTests {
    let rules = MomentRules()
    let now: Int64 = 1_800_000_000_000

    /// Activity every `gap` days, `count` times, the last one `quiet` days before now.
    func habit(every gap: Int64, count: Int, quietFor quiet: Int64) -> [Int64] {
        (0..<Int64(count)).map { now - quiet * day - $0 * gap * day }
    }

    @Test("the median gap between days with activity", arguments: [
        ([], nil), ([0], nil), ([0, 7, 14], 7.0), ([0, 7, 14, 44], 7.0), ([0, 1, 11, 21], 10.0), ([0, 0, 0, 7], 7.0), ([14, 0, 7], 7.0),
    ] as [([Int64], Double?)])
    func medianGap(_ days: [Int64], _ gap: Double?) {
        #expect(MomentRules.medianGapDays(days.map { $0 * day + 3_600_000 }) == gap, "one activity a day counts once")
    }

    @Test("a regular quiet for longer than m times their own habit, and the minimum, is a win-back; interactions reset it", arguments: [
        // gap, visits, activities, quiet days, win-back?
        (7, 8, 8, 20, false),   // a weekly regular: 3 × 7 = 21 days (the minimum too)
        (7, 8, 8, 22, true),
        (30, 6, 6, 60, false),  // a monthly regular: own cadence, 90 days
        (30, 6, 6, 91, true),
        (2, 20, 20, 10, false), // every other day: 3 × 2 = 6, but never under 21 days
        (2, 20, 20, 22, true),
        (7, 3, 3, 100, false),  // three visits is not a regular (k = 4)
    ] as [(Int64, Int, Int, Int64, Bool)])
    func winBack(gap: Int64, visits: Int, activities: Int, quiet: Int64, expected: Bool) {
        let moment = rules.winBack(customer: "C1", activityMs: habit(every: gap, count: activities, quietFor: quiet), visits: visits, marketingChannels: [.email], nowMs: now)
        #expect((moment != nil) == expected)
        if let moment {
            #expect(moment.kind == .winBack && moment.kind.purpose == .marketing && moment.channels == [.email] && moment.dueMs == now)
            #expect(moment.reason.contains("\(visits) visits") && moment.reason.contains("every \(gap) days"), "\(moment.reason)")
        }
    }

    @Test("a conversation last week is activity: no win-back for a regular who talked to the shop")
    func interactionResets() {
        var activity = habit(every: 7, count: 8, quietFor: 40)
        #expect(rules.winBack(customer: "C1", activityMs: activity, visits: 8, marketingChannels: [.email], nowMs: now) != nil)
        activity.append(now - 5 * day)
        #expect(rules.winBack(customer: "C1", activityMs: activity, visits: 8, marketingChannels: [.email], nowMs: now) == nil)
    }

    @Test("a win-back needs marketing consent, and names only the consented channels; one per quiet spell")
    func consent() throws {
        let activity = habit(every: 7, count: 8, quietFor: 40)
        #expect(rules.winBack(customer: "C1", activityMs: activity, visits: 8, marketingChannels: [], nowMs: now) == nil)
        let moment = try #require(rules.winBack(customer: "C1", activityMs: activity, visits: 8, marketingChannels: [.sms], nowMs: now))
        #expect(moment.channels == [.sms])
        let later = try #require(rules.winBack(customer: "C1", activityMs: activity, visits: 8, marketingChannels: [.sms], nowMs: now + 3 * day))
        #expect(later.id == moment.id, "the same spell is the same moment, however often the scan runs")
        let afterAnother = try #require(rules.winBack(customer: "C1", activityMs: activity + [now + day], visits: 9, marketingChannels: [.sms], nowMs: now + 60 * day))
        #expect(afterAnother.id != moment.id, "a new spell after a new visit is a new moment")
    }

    func sale(_ total: String, lines: [JSONValue] = []) -> SaleRecord {
        SaleRecord(id: "S1", state: .completed, total: total, currency: "EUR", lines: lines, completedMs: now)
    }

    @Test("a high-ticket purchase, by its total or by a line over its category's threshold, gets a care follow-up")
    func highTicket() throws {
        var settings = MomentSettings()
        settings.highTicketByCategory = ["bikes": 500]
        let rules = MomentRules(settings: settings)
        #expect(rules.afterPurchase(customer: "C1", sale: sale("249.99"), atMs: now) == nil)
        let big = try #require(rules.afterPurchase(customer: "C1", sale: sale("250.00"), atMs: now))
        #expect(big.id == "care:S1" && big.kind == .careFollowUp && big.kind.purpose == .transactional)
        #expect(big.dueMs == now + 14 * day && big.channels == ConsentRecord.Channel.allCases && big.reason.contains("250.00 EUR"))
        let bike = sale("120.00", lines: [["name": "Inner tube", "category": "bikes", "amount": "20.00"]])
        #expect(rules.afterPurchase(customer: "C1", sale: bike, atMs: now) == nil)
        let ebike = try #require(rules.afterPurchase(customer: "C1", sale: sale("99.00", lines: [["name": "E-bike", "category": "bikes", "amount": "1299.00"]]), atMs: now))
        #expect(ebike.reason.contains("E-bike") && ebike.reason.contains("1299.00"))
    }

    @Test("a service gets its follow-up, and a reminder when it recurs (by config or by the event)")
    func service() {
        var settings = MomentSettings()
        settings.serviceIntervalDays = ["bike service": 182]
        let rules = MomentRules(settings: settings)
        let once = rules.afterService(customer: "C1", service: "puncture repair", intervalDays: nil, source: "tilld:9", atMs: now)
        #expect(once.map(\.kind) == [.serviceFollowUp] && once[0].dueMs == now + 2 * day)
        let recurring = rules.afterService(customer: "C1", service: "bike service", intervalDays: nil, source: "tilld:10", atMs: now)
        #expect(recurring.map(\.kind) == [.serviceFollowUp, .serviceReminder] && recurring[1].dueMs == now + 182 * day)
        #expect(recurring.allSatisfy { $0.kind.purpose == .transactional })
        let byEvent = rules.afterService(customer: "C1", service: "boiler check", intervalDays: 365, source: "tilld:11", atMs: now)
        #expect(byEvent.last?.dueMs == now + 365 * day)
    }

    @Test("welcome back: after much longer than their own habit, never for a regular on schedule", arguments: [
        (7, 8, 10, false), (7, 8, 30, true), (30, 6, 60, false), (30, 6, 100, true), (0, 1, 50, false), (0, 1, 70, true),
    ] as [(Int64, Int, Int64, Bool)])
    func welcomeBack(gap: Int64, count: Int, away: Int64, expected: Bool) {
        let activity = gap == 0 ? [now - away * day] : habit(every: gap, count: count, quietFor: away)
        #expect(rules.isWelcomeBack(activityMs: activity, nowMs: now) == expected)
    }
}

/// Moments raised as till events are applied, and by the scan, against a real store.
@Suite("Moments: raised once, kept, decided", .timeLimit(.minutes(1)))
struct MomentStoreTests {
    func moments(_ ledger: Ledger) async throws -> [Moment] {
        try await ledger.store.read { try $0.moments(statuses: [], customers: nil, dueBeforeMs: nil, limit: 100) }
    }

    @Test("a high-ticket sale raises one care follow-up, on the timeline; a replay raises nothing twice; a small sale none", arguments: StoreKind.all)
    func highTicketSale(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "4.50", identify: ["email": "ann@example.com"])
        #expect(try await moments(ledger).isEmpty)
        _ = try await ledger.sale("S2", total: "899.00", identify: ["email": "ann@example.com"])
        let raised = try await moments(ledger)
        #expect(raised.map(\.id) == ["care:S2"] && raised[0].publishedSeq == nil)
        #expect(try await ledger.count("SELECT COUNT(*) FROM timeline WHERE type = 'moment'") == 1)
        // tilld replays after a crash: the cursor skips what was applied, and an id is kept once.
        let processor = ledger.processor
        let replay = Event(seq: ledger.seq - 1, time: ledger.start, topic: "sale.completed", device: nil, data: ["sale": "S2", "total": "899.00", "currency": "EUR"])
        _ = try await ledger.store.write { try processor.process(replay, in: $0) }
        #expect(try await moments(ledger).count == 1)
    }

    @Test("moments whose publishing was cut off never hide those not yet tried behind a limit", arguments: StoreKind.all)
    func unpublishedSplit(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        for n in 0..<5 { _ = try await ledger.sale("S\(n)", total: "900.00", identify: ["email": "ann@example.com"]) }
        // The three oldest were being published when the process stopped.
        try await ledger.store.write { tx in for n in 0..<3 { try tx.markMomentPublishing("care:S\(n)", afterSeq: 1) } }
        let pending = try await ledger.store.read { try $0.unpublishedMoments(underWay: false, limit: 2) }
        let underWay = try await ledger.store.read { try $0.unpublishedMoments(underWay: true, limit: 10) }
        #expect(pending.map(\.id) == ["care:S3", "care:S4"])
        #expect(underWay.map(\.id) == ["care:S0", "care:S1", "care:S2"])
    }

    @Test("a sale moved to another customer takes its care follow-up with it", arguments: StoreKind.all)
    func moves(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "500.00", receipt: "R1", identify: ["email": "ann@example.com"])
        _ = try await ledger.sale("S2", total: "1.00", identify: ["email": "bea@example.com"])
        let bea = try await ledger.store.read { try $0.owner(of: CustomerIdentifier(kind: .email, raw: "", normalized: "bea@example.com")) }
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        try await directory.attach(receipt: "R1", to: try #require(bea), maxDays: 3650, now: ledger.start.addingTimeInterval(86400))
        #expect(try await moments(ledger).first?.customer == bea)
    }

    @Test("a service with an interval raises a follow-up and a reminder", arguments: StoreKind.all)
    func service(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "60.00", identify: ["email": "ann@example.com"])
        try await ledger.feed("service.completed", ["sale": "S1", "service": "bike service", "interval_days": 182])
        #expect(Set(try await moments(ledger).map(\.kind)) == [.serviceFollowUp, .serviceReminder])
    }

    @Test("the scan raises a win-back for a quiet regular who agreed to marketing, once; not for one who did not; erasure removes them", arguments: StoreKind.all)
    func scan(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        for week in 0..<8 {
            _ = try await ledger.sale("A\(week)", total: "5.00", identify: ["email": "ann@example.com", "consent": ["email_marketing": true]], daysLater: Double(week * 7))
            _ = try await ledger.sale("B\(week)", total: "5.00", identify: ["email": "bea@example.com"], daysLater: Double(week * 7))
        }
        let scan = MomentScan(rules: ledger.processor.moments)
        let early = try await scan.run(in: ledger.store, processor: ledger.processor, now: ledger.start.addingTimeInterval(60 * 86400))
        #expect(early.regulars == 2 && early.quiet == 0 && early.raised == 0)
        let late = ledger.start.addingTimeInterval(49 * 86400 + 25 * 86400)
        let first = try await scan.run(in: ledger.store, processor: ledger.processor, now: late)
        #expect(first.regulars == 2 && first.quiet == 2 && first.raised == 1, "Bea gave no marketing consent")
        let again = try await scan.run(in: ledger.store, processor: ledger.processor, now: late.addingTimeInterval(3600))
        #expect(again.raised == 0, "one win-back per quiet spell")
        let raised = try await moments(ledger)
        #expect(raised.count == 1 && raised[0].kind == .winBack && raised[0].channels == [.email])

        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        try await directory.erase(try await directory.resolve("ann@example.com"))
        #expect(try await moments(ledger).isEmpty)
    }

    @Test("done, snoozed (due again when the snooze ends) and dismissed; an unknown id says where to look", arguments: StoreKind.all)
    func decide(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "300.00", identify: ["email": "ann@example.com"])
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        let start = ledger.start
        #expect(try await directory.moments(dueBy: start.addingTimeInterval(13 * 86400)).isEmpty, "due 14 days after the purchase")
        #expect(try await directory.moments(dueBy: start.addingTimeInterval(15 * 86400)).count == 1)
        _ = try await directory.decide(moment: "care:S1", .snoozed, snoozedUntil: start.addingTimeInterval(30 * 86400), actor: "sam")
        #expect(try await directory.moments(dueBy: start.addingTimeInterval(15 * 86400)).isEmpty)
        #expect(try await directory.moments(dueBy: start.addingTimeInterval(31 * 86400)).count == 1)
        _ = try await directory.decide(moment: "care:S1", .done, actor: "sam")
        #expect(try await directory.moments(dueBy: nil).isEmpty)
        #expect(try await directory.moments(dueBy: nil, includeClosed: true).first?.moment.status == .done)
        #expect(try await directory.moments(dueBy: nil, includeClosed: true, customer: "ann@example.com").count == 1)
        #expect(try await ledger.count("SELECT COUNT(*) FROM timeline WHERE type = 'moment'") == 3, "raised, snoozed, done")
        await #expect { _ = try await directory.decide(moment: "care:S9", .done, actor: "sam") } throws: { "\($0)".contains("till-crm moments") }
    }

    @Test("a customer back after much longer than their habit is greeted with welcome_back", arguments: StoreKind.all)
    func welcomeBack(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        for week in 0..<6 { _ = try await ledger.sale("S\(week)", total: "3.00", identify: ["email": "ann@example.com"], daysLater: Double(week * 7)) }
        let onTime = try await ledger.sale("S6", total: "3.00", identify: ["email": "ann@example.com"], daysLater: 42)
        let back = try await ledger.sale("S7", total: "3.00", identify: ["email": "ann@example.com"], daysLater: 42 + 40)
        func flags(_ outcomes: [ProcessingOutcome]) -> [String] {
            outcomes.compactMap { if case .recognized(let greeting) = $0 { greeting.flags } else { nil } }.flatMap { $0 }
        }
        #expect(!flags(onTime).contains("welcome_back"))
        #expect(flags(back).contains("welcome_back"))
    }
}

@Suite("Moments: [moments] in till-crm.toml", .timeLimit(.minutes(1)))
struct MomentConfigTests {
    @Test("settings are read, and each mistake is named with its line and what to write")
    func settings() throws {
        let config = try CRMConfig.parse("""
            region = "GB"
            [moments]
            high_ticket = "400.00"
            high_ticket_by_category = { bikes = "500.00" }
            care_after_days = 7
            service_interval_days = { "bike service" = 182 }
            regular_visits = 5
            quiet_factor = 2.5
            scan_interval_minutes = 30
            """)
        #expect(config.moments.highTicket == 400 && config.moments.highTicketByCategory == ["bikes": 500])
        #expect(config.moments.careAfterDays == 7 && config.moments.serviceIntervalDays == ["bike service": 182])
        #expect(config.moments.regularVisits == 5 && config.moments.quietFactor == 2.5 && config.scanIntervalMinutes == 30)
        #expect(CRMConfig().moments == MomentSettings(), "an empty file keeps the defaults")

        let mistakes = [
            ("[moments]\nhigh_ticket = 250.0\n", "never a float"),
            ("[moments]\nquiet_factr = 3\n", "is not a setting"),
            ("[moments]\nregular_visits = 1\n", "from 2 to 1000"),
            ("[moments]\nservice_interval_days = { repair = \"six months\" }\n", "whole number of days"),
            ("moments = 3\n", "is a table"),
        ]
        for (text, message) in mistakes {
            #expect { _ = try CRMConfig.parse(text, file: "till-crm.toml") } throws: { "\($0)".contains(message) && "\($0)".contains("till-crm.toml:") }
        }
    }
}

@Suite("Segments: RFM and the segments people act on", .timeLimit(.minutes(1)))
struct SegmentTests {
    let now: Int64 = 1_800_000_000_000

    @Test("quintiles: five bands, ties share one, higher values score higher")
    func quintiles() {
        #expect(Segmentation.quintiles(Array(1...10)) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
        #expect(Segmentation.quintiles([3, 3, 3]) == [1, 1, 1])
        #expect(Segmentation.quintiles([10, 1]) == [3, 1])
        #expect(Segmentation.quintiles([Int]()) == [])
    }

    @Test("each segment, first that fits: lapsed, at risk, new, VIP, regular, occasional")
    func segments() {
        func weekly(_ count: Int, lastDaysAgo: Int64) -> [Int64] { (0..<Int64(count)).map { now - (lastDaysAgo + $0 * 7) * day } }
        let summaries = [
            CustomerSummary(customer: "lapsed-regular", visits: 8, activityMs: weekly(8, lastDaysAgo: 40), spent: 80),
            CustomerSummary(customer: "at-risk", visits: 8, activityMs: weekly(8, lastDaysAgo: 15), spent: 80),
            CustomerSummary(customer: "new", visits: 1, activityMs: [now - 3 * day], spent: 20),
            CustomerSummary(customer: "vip", visits: 30, activityMs: weekly(30, lastDaysAgo: 2), spent: 5000),
            CustomerSummary(customer: "regular", visits: 8, activityMs: weekly(8, lastDaysAgo: 3), spent: 60),
            CustomerSummary(customer: "occasional", visits: 2, activityMs: [now - 100 * day, now - 50 * day], spent: 30),
            CustomerSummary(customer: "gone", visits: 1, activityMs: [now - 400 * day], spent: 10),
        ]
        let scored = Segmentation(rules: MomentRules()).score(summaries, nowMs: now)
        let segments = Dictionary(uniqueKeysWithValues: scored.map { ($0.summary.customer, $0.segment) })
        #expect(segments == [
            "lapsed-regular": .lapsed, "at-risk": .atRisk, "new": .new, "vip": .vip, "regular": .regular, "occasional": .occasional, "gone": .lapsed,
        ])
        let vip = scored.first { $0.summary.customer == "vip" }!
        #expect(vip.rfm == "555" && vip.recencyDays == 2)
    }

    @Test("an invitation list holds only those who agreed to that channel, with money spent less refunds", arguments: StoreKind.all)
    func invitationList(_ kind: StoreKind) async throws {
        let ledger = try await Ledger(kind: kind)
        _ = try await ledger.sale("S1", total: "40.00", receipt: "R1", identify: ["email": "ann@example.com", "name": "Ann Lee", "consent": ["email_marketing": true]])
        _ = try await ledger.sale("S2", total: "25.00", identify: ["email": "bea@example.com", "consent": ["email_marketing": false, "sms_marketing": true]])
        try await ledger.feed("refund.completed", ["refund": "F1", "receipt": "R1", "lines": [], "total": "15.00", "currency": "EUR", "reason": "too big"])
        let directory = CustomerDirectory(store: ledger.store, normalizer: ledger.processor.normalizer)
        let everyone = try await directory.segment(nil, consent: nil, rules: MomentRules(), now: ledger.start.addingTimeInterval(86400))
        #expect(everyone.count == 2 && everyone.allSatisfy { $0.scored.segment == .new })
        #expect(everyone.first { $0.name == "Ann Lee" }?.scored.summary.spent == 25, "40.00 bought, 15.00 refunded")
        let email = try await directory.segment(.new, consent: (.email, .marketing), rules: MomentRules(), now: ledger.start.addingTimeInterval(86400))
        #expect(email.map(\.emails) == [["ann@example.com"]])
        let sms = try await directory.segment(.new, consent: (.sms, .marketing), rules: MomentRules(), now: ledger.start.addingTimeInterval(86400))
        #expect(sms.map(\.emails) == [["bea@example.com"]])
    }
}
