public import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TillCRM
import TillCore
import UnixSignals

@main
struct TillCRMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "till-crm",
        abstract: "Customer memory from the till: who bought what, returned what, and what we promised them.",
        version: "0.1.0",
        subcommands: [Serve.self, CustomerCommand.self, NoteCommand.self, ConversationCommand.self, OpportunityCommand.self,
                      Attach.self, ConsentCommand.self, Export.self, Erase.self,
                      Duplicates.self, Merge.self, Unmerge.self, Dismiss.self, Import.self, Moments.self, SegmentCommand.self, OutboxCommand.self,
                      Status.self]
    )
}

func fail(_ reason: String) -> Never {
    FileHandle.standardError.write(Data(("till-crm: " + reason + "\n").utf8))
    exit(1)
}

/// Runs a directory operation, turning errors into a one-line reason and exit status 1.
func orFail<R>(_ body: () async throws -> R) async -> R {
    do {
        return try await body()
    } catch {
        fail("\(error)")
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Follow tilld and keep customer memory (a long-running service).")
    @OptionGroup var store: StoreOptions
    @Option(help: "tilld's socket (default: $TILLD_SOCKET, else socket in the config, else /run/tilld/tilld.sock).")
    var socket: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?

    func run() async throws {
        var config = store.settings()
        if let socket = socket ?? ProcessInfo.processInfo.environment["TILLD_SOCKET"] { config.socket = socket }
        if let logLevel { config.logLevel = logLevel }
        if logLevel != nil, let problem = CRMConfig.validate(config, source: "--log-level") { fail(problem) }
        let socket = config.socket
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "till-crm")
        for warning in config.warnings { logger.warning("\(warning)") }
        let database: any CRMStore & OutboxStore
        do {
            // The status file lives here whatever the store (PostgreSQL keeps no file of its own).
            try FileManager.default.createDirectory(
                atPath: config.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if let postgres = config.postgres {
                database = try await PostgresCRMStore(settings: postgres, logger: logger)
                logger.info("customer database open", metadata: ["postgres": "\(postgres.description)", "pool": "\(postgres.poolSize)"])
            } else {
                let sqlite = try SQLiteCRMStore(path: config.dataDirectory + "/crm.sqlite")
                logger.info("customer database open", metadata: ["path": "\(sqlite.path)", "synchronous": "\(sqlite.synchronous)"])
                database = sqlite
            }
        } catch {
            logger.critical(
                "cannot open the customer database",
                metadata: ["store": "\(config.postgres?.description ?? config.dataDirectory)", "error": "\(error)"])
            throw ExitCode(1)
        }
        var processor = TillEventProcessor(normalizer: IdentifierNormalizer(defaultRegion: config.region))
        processor.moments = MomentRules(settings: config.moments)
        let service = CRMService(
            socket: socket, store: database, processor: processor, logger: logger, scanInterval: .seconds(config.scanIntervalMinutes * 60),
            status: ServiceStatusFile(path: config.dataDirectory + "/serve-status.json"))
        // Delivery to the shop's other systems runs beside the follower: either goes on while
        // the other waits (tilld away, a receiver down).
        let outbox = OutboxService(store: database, settings: config.outbox, logger: logger)
        if outbox.targets.isEmpty {
            logger.info("no outbox targets configured; entries are kept \(config.outbox.keepDays) days for one added later (docs/crm.md, the outbox)")
        } else {
            logger.info("outbox delivering", metadata: ["targets": "\(outbox.targets.map(\.name).joined(separator: ", "))"])
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: service), .init(service: outbox)], gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [],
            logger: logger))
        try await group.run()
    }
}

struct CustomerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "customer", abstract: "Look customers up.", subcommands: [Show.self, Find.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A customer's record and timeline, by id, email, phone or card.")
        @OptionGroup var store: StoreOptions
        @Argument var reference: String
        @Option(help: "Timeline entries to show.") var limit = 50

        func run() async throws {
            let directory = try await store.directory()
            let profile = await orFail { try await directory.profile(try await directory.resolve(reference), timelineLimit: limit) }
            if store.json { return print(JSONText.encode(profile)) }
            print(ProfileFormatter.text(profile))
        }
    }

    struct Find: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Customers whose name, email, phone or card matches TEXT.")
        @OptionGroup var store: StoreOptions
        @Argument var text: String

        func run() async throws {
            let directory = try await store.directory()
            let matches = await orFail { try await directory.find(text) }
            for match in matches {
                if store.json {
                    print(JSONText.encode(["id": .string(match.id), "name": match.name.map(JSONValue.string) ?? .null, "identifiers": .array(match.identifiers.map(JSONValue.string))] as JSONValue))
                } else {
                    print("\(match.id)  \(match.name ?? "-")  \(match.identifiers.joined(separator: ", "))  last seen \(Timestamp.format(match.lastSeen).prefix(10))")
                }
            }
            if matches.isEmpty && !store.json { print("no customer matches \"\(text)\"") }
        }
    }
}

/// A profile as a person reads it in a terminal.
enum ProfileFormatter {
    static func text(_ profile: JSONValue) -> String {
        var out: [String] = []
        let visits = profile["visits"]?.intValue ?? 0
        out.append("\(profile["name"]?.stringValue ?? "(no name)")  [\(profile["id"]?.stringValue ?? "?")]  \(plural(Int(visits), "visit")), first \(profile["first_seen"]?.stringValue?.prefix(10) ?? "?"), last \(profile["last_seen"]?.stringValue?.prefix(10) ?? "?")")
        if let postcode = profile["postcode"]?.stringValue { out.append("  postcode: \(postcode)") }
        if let places = profile["shops_at"]?.arrayValue, !places.isEmpty {
            out.append("  shops at: " + places.map { place in
                "\(place["store"]?.stringValue ?? "?") (\(plural(Int(place["visits"]?.intValue ?? 0), "visit")), last \(place["last_visit"]?.stringValue?.prefix(10) ?? "?"))"
            }.joined(separator: ", "))
        }
        if let merged = profile["merged_records"]?.arrayValue, !merged.isEmpty {
            out.append("  also known as: \(merged.compactMap(\.stringValue).joined(separator: ", ")) (merged; till-crm unmerge ID separates)")
        }
        for identifier in profile["identifiers"]?.arrayValue ?? [] {
            out.append("  \(identifier["kind"]?.stringValue ?? "?"): \(identifier["normalized"]?.stringValue ?? "?")")
        }
        for consent in profile["consent"]?.arrayValue ?? [] {
            out.append("  consent \(consent["channel"]?.stringValue ?? "?") \(consent["purpose"]?.stringValue ?? "?"): \(consent["granted"]?.boolValue == true ? "yes" : "no") (\(consent["basis"]?.stringValue ?? "?"), \(consent["at"]?.stringValue?.prefix(10) ?? "?"))")
        }
        out.append("timeline:")
        for entry in profile["timeline"]?.arrayValue ?? [] {
            let data = entry["data"] ?? .null
            let summary: String
            switch entry["type"]?.stringValue {
            case "purchase"?:
                let tenders = (data["tenders"]?.arrayValue ?? []).map { "\($0["method"]?.stringValue ?? "?") \($0["amount"]?.stringValue ?? "?")" }
                summary = "bought \(data["total"]?.stringValue ?? "?") \(data["currency"]?.stringValue ?? "")" + (data["receipt"]?.stringValue.map { " (receipt \($0))" } ?? "")
                    + (data["store"]?.stringValue.map { " at \($0)" + (data["till"]?.stringValue.map { ", till \($0)" } ?? "") } ?? "")
                    + (data["staff"]?.stringValue.map { ", served by \($0)" } ?? "")
                    + (tenders.isEmpty ? "" : ", paid " + tenders.joined(separator: " + "))
                    + (data["lines"]?.arrayValue ?? []).map { line in
                        let qty = line["qty"].map { $0.stringValue ?? JSONText.encode($0) } ?? "1"
                        return "\n" + String(repeating: " ", count: 33) + "\(qty) × \(line["name"]?.stringValue ?? line["sku"]?.stringValue ?? "?")  \(line["amount"]?.stringValue ?? "")"
                    }.joined()
            case "refund"?: summary = "refund \(data["total"]?.stringValue ?? "?") \(data["currency"]?.stringValue ?? ""): \(data["reason"]?.stringValue ?? "")"
            case "note"?, "conversation"?, "opportunity"?: summary = data["text"]?.stringValue ?? JSONText.encode(data)
            case "service"?: summary = "service: \(data["service"]?.stringValue ?? "?")"
            case "merge"?:
                summary = data["action"]?.stringValue == "unmerge"
                    ? "unmerged \(data["absorbed"]?.stringValue ?? "?") from \(data["survivor"]?.stringValue ?? "?")"
                    : "merged \(data["absorbed"]?.stringValue ?? "?") into \(data["survivor"]?.stringValue ?? "?")"
                        + (data["automatic"]?.boolValue == true ? " automatically" : "") + (data["reason"]?.stringValue.map { ": \($0)" } ?? "")
            case "consent"?: summary = "\(data["channel"]?.stringValue ?? "?") \(data["purpose"]?.stringValue ?? "") consent \(data["granted"]?.boolValue == true ? "given" : "withdrawn")"
            default: summary = JSONText.encode(data)
            }
            out.append("  \(entry["at"]?.stringValue?.prefix(16).replacingOccurrences(of: "T", with: " ") ?? "?")  \((entry["type"]?.stringValue ?? "?").padding(toLength: 12, withPad: " ", startingAt: 0)) \(summary)")
        }
        return out.joined(separator: "\n")
    }
}

/// "1 visit", "2 visits".
func plural(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

/// `note add`, `conversation add`, `opportunity add`: one shape, three entry types.
struct EntryAdd: ParsableArguments {
    @OptionGroup var store: StoreOptions
    @Argument(help: "Customer id, email, phone or card.") var customer: String
    @Argument(help: "The text.") var text: String
    @Option(help: "Who wrote it.") var by: String?

    func add(_ type: CustomerDirectory.EntryType, extra: [String: JSONValue] = [:]) async throws {
        let directory = try await store.directory()
        var data = extra
        data["text"] = .string(text)
        let record = await orFail { try await directory.record(customer) }
        await orFail { try await directory.add(type, to: record, data: .object(data), actor: by ?? ProcessInfo.processInfo.environment["USER"]) }
        if !store.json { print("\(type.rawValue) added to \(await orFail { try await directory.resolve(record) })") }
    }
}

struct NoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "note", abstract: "Notes.", subcommands: [Add.self])
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a note to a customer's timeline.")
        @OptionGroup var entry: EntryAdd
        @Flag(help: "Show it to the cashier when the customer is recognised.") var forCashier = false
        func run() async throws { try await entry.add(.note, extra: forCashier ? ["for_cashier": true] : [:]) }
    }
}

struct ConversationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "conversation", abstract: "Conversations.", subcommands: [Add.self])
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record a conversation.")
        @OptionGroup var entry: EntryAdd
        @Option(help: "in_person, phone, email, message") var channel = "in_person"
        func run() async throws { try await entry.add(.conversation, extra: ["channel": .string(channel)]) }
    }
}

struct OpportunityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "opportunity", abstract: "Opportunities.", subcommands: [Add.self])
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record an opportunity (something the customer may buy).")
        @OptionGroup var entry: EntryAdd
        @Option(help: "Expected value, a decimal string.") var value: String?
        @Option(help: "When to follow up (YYYY-MM-DD).") var due: String?
        func run() async throws {
            if let value, !DecimalString.isValid(value) { fail("--value must be a decimal amount such as 120.00") }
            var extra: [String: JSONValue] = [:]
            if let value { extra["value"] = .string(value) }
            if let due { extra["due"] = .string(due) }
            try await entry.add(.opportunity, extra: extra)
        }
    }
}

struct Attach: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Attach a past sale (by receipt number) to a customer.")
    @OptionGroup var store: StoreOptions
    @Argument var receipt: String
    @Option(help: "Customer id, email, phone or card.") var customer: String
    @Option(name: .customLong("max-days"), help: "Refuse receipts older than this.") var maxDays = 30

    func run() async throws {
        let directory = try await store.directory()
        let record = await orFail { try await directory.record(customer) }
        await orFail { try await directory.attach(receipt: receipt, to: record, maxDays: maxDays) }
        if !store.json { print("receipt \(receipt) attached to \(await orFail { try await directory.resolve(record) })") }
    }
}

struct ConsentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "consent", abstract: "Consent records.", subcommands: [Set.self, Show.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record consent given or withdrawn (kept as history).")
        @OptionGroup var store: StoreOptions
        @Argument var customer: String
        @Option(help: "email, sms, post or phone") var channel: ConsentRecord.Channel
        @Option(help: "marketing, transactional or profiling") var purpose = ConsentRecord.Purpose.marketing
        @Option(help: "true or false") var granted: Bool
        @Option(help: "consent, soft_opt_in, contract or legitimate_interest") var basis = ConsentRecord.Basis.consent
        @Option(help: "Where it was given: till, staff, web...") var source = "staff"

        func run() async throws {
            let directory = try await store.directory()
            let record = await orFail { try await directory.record(customer) }
            await orFail { try await directory.setConsent(record, channel: channel, purpose: purpose, granted: granted, basis: basis, source: source) }
            let id = await orFail { try await directory.resolve(record) }
            if !store.json { print("\(channel.rawValue) \(purpose.rawValue) consent \(granted ? "given" : "withdrawn") for \(id)") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Current consent per channel and purpose.")
        @OptionGroup var store: StoreOptions
        @Argument var customer: String

        func run() async throws {
            let directory = try await store.directory()
            let id = await orFail { try await directory.resolve(customer) }
            let consent = await orFail { try await directory.consent(id) }
            if store.json { return print(JSONText.encode(consent)) }
            for row in consent.arrayValue ?? [] {
                print("\(row["channel"]?.stringValue ?? "?") \(row["purpose"]?.stringValue ?? "?"): \(row["granted"]?.boolValue == true ? "yes" : "no") (\(row["basis"]?.stringValue ?? "?"), \(row["source"]?.stringValue ?? "?"), \(row["at"]?.stringValue ?? "?"))")
            }
            if consent.arrayValue?.isEmpty ?? true { print("no consent recorded: do not contact for marketing") }
        }
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Everything held about a person, as JSON (subject access request); indented in a terminal, one line into a pipe or file.")
    @OptionGroup var store: StoreOptions
    @Argument var customer: String
    @Flag(help: "Indent the JSON even into a pipe or file.") var pretty = false

    func run() async throws {
        let directory = try await store.directory()
        let id = await orFail { try await directory.resolve(customer) }
        let export = await orFail { try await directory.export(id) }
        print(pretty || (isatty(STDOUT_FILENO) == 1 && !store.json) ? PrettyJSON.format(export) : JSONText.encode(export))
    }
}

struct Erase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Erase a person's data; keep anonymous sales totals; block silent re-creation. Asks first (or --yes).")
    @OptionGroup var store: StoreOptions
    @Argument var customer: String
    @Flag(help: "Do not ask: erase at once (for scripts).") var yes = false

    func run() async throws {
        let directory = try await store.directory()
        let id = await orFail { try await directory.resolve(customer) }
        if !yes {
            guard isatty(STDIN_FILENO) == 1 else {
                fail("erase cannot be undone, and there is no terminal to ask in: add --yes to erase \(id)")
            }
            let profile = await orFail { try await directory.profile(id, timelineLimit: Int.max) }
            let name = profile["name"]?.stringValue ?? "(no name)"
            let identifiers = profile["identifiers"]?.arrayValue?.count ?? 0
            let entries = profile["timeline"]?.arrayValue?.count ?? 0
            print("Erase \(name) [\(id)]: \(plural(identifiers, "identifier")), \(plural(entries, "timeline entry").replacingOccurrences(of: "entrys", with: "entries")), all consent records? This cannot be undone. [y/N] ", terminator: "")
            guard let answer = readLine()?.lowercased(), answer == "y" || answer == "yes" else {
                print("not erased")
                return
            }
        }
        let count = await orFail { try await directory.erase(id) }
        if !store.json { print("erased \(id); \(count) identifier\(count == 1 ? "" : "s") suppressed") }
    }
}

extension ConsentRecord.Channel: ExpressibleByArgument {}
extension ConsentRecord.Purpose: ExpressibleByArgument {}
extension ConsentRecord.Basis: ExpressibleByArgument {}

/// `till-crm status`: whether `till-crm serve` can reach the customer database, from the file
/// serve keeps in the data directory (it cannot be kept in a database that is out of reach).
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Whether till-crm serve can reach the customer database.",
        discussion: "Exits 1 when it cannot, or when no serve has run with this data directory, so a monitor can watch it.")
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let config = store.settings()
        let path = config.dataDirectory + "/serve-status.json"
        guard let status = ServiceStatusFile.read(path) else {
            fail("no status at \(path): till-crm serve has not run with this data directory (check --data-dir, or start the service: systemctl start till-crm)")
        }
        let reachable = status["store"]?.stringValue == "ok"
        if store.json {
            print(JSONText.encode(status))
        } else {
            let database = config.postgres?.description ?? config.dataDirectory + "/crm.sqlite"
            if reachable {
                print("customer database: ok (\(database)); serve pid \(status["pid"]?.intValue ?? 0), status written \(status["updated"]?.stringValue ?? "?")")
            } else {
                print("customer database: UNREACHABLE since \(status["unreachable_since"]?.stringValue ?? "?") (\(database))")
                print("  \(status["problem"]?.stringValue ?? "")")
                print("  till-crm applies nothing meanwhile; tilld keeps journaling, and till-crm goes on from its cursor when the database is back")
            }
        }
        if !reachable { throw ExitCode(1) }
    }
}
