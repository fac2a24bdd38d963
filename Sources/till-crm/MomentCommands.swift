import ArgumentParser
import Foundation
import TillCRM
import TillCore

/// `till-crm moments`: what to do today, and marking each done, snoozed or dismissed.
struct Moments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moments",
        abstract: "Follow-ups worth making: after a high-ticket purchase, after a service, a regular gone quiet.",
        discussion: """
            Each moment is raised once, published once on tilld's socket as crm.moment, and kept until done, snoozed \
            or dismissed. A win-back (marketing) is raised only for someone who agreed to marketing on some channel, \
            and names those channels; a care follow-up, a service follow-up and a service reminder are transactional.
            """,
        subcommands: [List.self, Done.self, Snooze.self, Dismiss.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open moments, soonest first (the default).")
        @OptionGroup var store: StoreOptions
        @Flag(help: "Only those due by the end of today.") var due = false
        @Flag(help: "Done and dismissed ones too.") var all = false
        @Option(help: "Only this customer's (an id, email, phone or card).") var customer: String?
        @Option(help: "Show at most this many.") var limit = 200

        func run() async throws {
            let directory = try await store.directory()
            let endOfToday = Calendar.current.startOfDay(for: Date()).addingTimeInterval(86_400)
            let moments = await orFail { try await directory.moments(dueBy: due ? endOfToday : nil, includeClosed: all, customer: customer, limit: limit) }
            if store.json { return print(JSONText.encode(JSONValue.array(moments.map(\.json)))) }
            if moments.isEmpty { return print(due ? "nothing due today" : "no open moments") }
            for view in moments {
                let moment = view.moment
                let due = Timestamp.format(Date(milliseconds: moment.snoozedUntilMs ?? moment.dueMs)).prefix(10)
                let state = moment.status == .open ? "" : " [\(moment.status.rawValue)]"
                print("\(due)  \(moment.kind.rawValue)\(state)  \(view.name ?? "(no name)") [\(view.customer)]")
                print("      \(moment.reason)")
                print("      \(moment.kind.purpose.rawValue); may use: \(moment.channels.map(\.rawValue).joined(separator: ", "))   id: \(moment.id)")
            }
        }
    }

    /// What deciding a moment takes: the store, its id, who decided.
    struct Decision: ParsableArguments {
        @OptionGroup var store: StoreOptions
        @Argument(help: "The moment's id (till-crm moments shows it).") var id: String
        @Option(help: "Who decided (default: your login).") var by: String?

        func decide(_ status: Moment.Status, until: Date? = nil, saying said: String) async throws {
            let directory = try await store.directory()
            _ = await orFail { try await directory.decide(moment: id, status, snoozedUntil: until, actor: actor(by)) }
            if !store.json { print("\(said): \(id)") }
        }
    }

    struct Done: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a moment done (it stays on the timeline).")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.decide(.done, saying: "done") }
    }

    struct Snooze: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a moment off until a later day.")
        @OptionGroup var decision: Decision
        @Option(help: "For this many days.") var days: Int?
        @Option(help: "Until this day (YYYY-MM-DD).") var until: String?
        func run() async throws {
            let wake: Date
            switch (days, until) {
            case (let days?, nil) where days > 0: wake = Date().addingTimeInterval(Double(days) * 86_400)
            case (nil, let until?):
                guard let date = Timestamp.parse(until + "T00:00:00Z"), date > Date() else { fail("--until \(until): give a day in the future as YYYY-MM-DD") }
                wake = date
            default: fail("say for how long: --days N (1 or more) or --until YYYY-MM-DD")
            }
            try await decision.decide(.snoozed, until: wake, saying: "snoozed until \(Timestamp.format(wake).prefix(10))")
        }
    }

    struct Dismiss: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Dismiss a moment: not worth doing (it stays on the timeline).")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.decide(.dismissed, saying: "dismissed") }
    }
}

/// `till-crm segment`: RFM scores and the segments people act on, as counts or a list.
struct SegmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "segment",
        abstract: "Customers by segment (new, regular, vip, at_risk, lapsed, occasional), with RFM scores.",
        discussion: """
            Without a segment: how many customers each holds. With one: its members, for an invitation list \
            (--csv) that, with --consent, holds only people who agreed to that channel and purpose \
            (email_marketing, sms_marketing, post_marketing, phone_marketing...). docs/crm.md says how each is defined.
            """)
    @OptionGroup var store: StoreOptions
    @Argument(help: "new, regular, vip, at_risk, lapsed or occasional.") var segment: String?
    @Option(help: "Only people whose current consent is given for CHANNEL_PURPOSE, e.g. email_marketing.") var consent: String?
    @Flag(help: "CSV: customer, name, email, phone, segment, rfm, recency_days, visits, spent.") var csv = false

    func run() async throws {
        let settings = store.settings()
        var wanted: Segmentation.Segment?
        if let segment {
            guard let known = Segmentation.Segment(rawValue: segment) else {
                fail("no segment \"\(segment)\"; the segments are \(Segmentation.Segment.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            wanted = known
        }
        var gate: (ConsentRecord.Channel, ConsentRecord.Purpose)?
        if let consent {
            let parts = consent.split(separator: "_", maxSplits: 1).map(String.init)
            guard parts.count == 2, let channel = ConsentRecord.Channel(rawValue: parts[0]), let purpose = ConsentRecord.Purpose(rawValue: parts[1]) else {
                fail("--consent \(consent): write CHANNEL_PURPOSE, CHANNEL one of \(ConsentRecord.Channel.allCases.map(\.rawValue).joined(separator: ", ")) and PURPOSE one of \(ConsentRecord.Purpose.allCases.map(\.rawValue).joined(separator: ", ")) (e.g. email_marketing)")
            }
            gate = (channel, purpose)
        }
        let directory = try await store.directory(settings: settings)
        let members = await orFail { try await directory.segment(wanted, consent: gate, rules: MomentRules(settings: settings.moments)) }
        if wanted == nil, !csv {
            let counts = Dictionary(grouping: members, by: \.scored.segment).mapValues(\.count)
            if store.json {
                return print(JSONText.encode(JSONValue.object(Dictionary(uniqueKeysWithValues: Segmentation.Segment.allCases.map { ($0.rawValue, JSONValue.int(Int64(counts[$0] ?? 0))) }))))
            }
            for segment in Segmentation.Segment.allCases { print("\(segment.rawValue): \(counts[segment] ?? 0)") }
            return
        }
        if csv {
            print("customer,name,email,phone,segment,rfm,recency_days,visits,spent")
            for member in members {
                let s = member.scored
                let fields = [s.summary.customer, member.name ?? "", member.emails.first ?? "", member.phones.first ?? "", s.segment.rawValue, s.rfm,
                              String(s.recencyDays), String(s.summary.visits), "\(s.summary.spent)"]
                print(fields.map(CSVField.quote).joined(separator: ","))
            }
            return
        }
        if store.json {
            return print(JSONText.encode(JSONValue.array(members.map { member in
                let s = member.scored
                return [
                    "customer": .string(s.summary.customer), "name": member.name.map(JSONValue.string) ?? .null, "segment": .string(s.segment.rawValue),
                    "rfm": .string(s.rfm), "recency_days": .int(Int64(s.recencyDays)), "visits": .int(Int64(s.summary.visits)),
                    "spent": .string("\(s.summary.spent)"), "emails": .array(member.emails.map(JSONValue.string)),
                ]
            })))
        }
        if members.isEmpty { return print("nobody in \(segment ?? "any segment")\(consent.map { " with \($0) consent" } ?? "")") }
        for member in members {
            let s = member.scored
            print("\(s.summary.customer)  \(member.name ?? "(no name)")  RFM \(s.rfm), \(plural(s.summary.visits, "visit")), last \(s.recencyDays) days ago, spent \(s.summary.spent)")
        }
    }
}
