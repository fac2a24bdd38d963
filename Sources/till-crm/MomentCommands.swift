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
            let directory = try store.directory()
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

    struct Done: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a moment done (it stays on the timeline).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The moment's id (till-crm moments shows it).") var id: String
        @Option(help: "Who did it (default: your login).") var by: String?
        func run() async throws {
            let directory = try store.directory()
            _ = await orFail { try await directory.decide(moment: id, .done, actor: actor(by)) }
            if !store.json { print("done: \(id)") }
        }
    }

    struct Snooze: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a moment off until a later day.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The moment's id.") var id: String
        @Option(help: "For this many days.") var days: Int?
        @Option(help: "Until this day (YYYY-MM-DD).") var until: String?
        @Option(help: "Who snoozed it (default: your login).") var by: String?
        func run() async throws {
            let wake: Date
            switch (days, until) {
            case (let days?, nil) where days > 0: wake = Date().addingTimeInterval(Double(days) * 86_400)
            case (nil, let until?):
                guard let date = Timestamp.parse(until + "T00:00:00Z"), date > Date() else { fail("--until \(until): give a day in the future as YYYY-MM-DD") }
                wake = date
            default: fail("say for how long: --days N (1 or more) or --until YYYY-MM-DD")
            }
            let directory = try store.directory()
            _ = await orFail { try await directory.decide(moment: id, .snoozed, snoozedUntil: wake, actor: actor(by)) }
            if !store.json { print("snoozed until \(Timestamp.format(wake).prefix(10)): \(id)") }
        }
    }

    struct Dismiss: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Dismiss a moment: not worth doing (it stays on the timeline).")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The moment's id.") var id: String
        @Option(help: "Who dismissed it (default: your login).") var by: String?
        func run() async throws {
            let directory = try store.directory()
            _ = await orFail { try await directory.decide(moment: id, .dismissed, actor: actor(by)) }
            if !store.json { print("dismissed: \(id)") }
        }
    }
}
