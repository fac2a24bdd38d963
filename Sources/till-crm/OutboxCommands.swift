import ArgumentParser
import Foundation
import TillCRM
import TillCore

/// `till-crm outbox`: what is waiting for the shop's other systems, what was given up on, and
/// putting it back.
struct OutboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "Delivery to webhooks, JSON-lines files and Twenty: status, dead entries, retry.",
        discussion: "Targets are configured in till-crm.toml ([[webhook]], [[jsonl]], [[twenty]]); `till-crm serve` delivers.",
        subcommands: [Status.self, Dead.self, Retry.self, Secret.self], defaultSubcommand: Status.self)

    static func time(_ ms: Int64?) -> JSONValue { ms.map { .string(Timestamp.format(Date(milliseconds: $0))) } ?? .null }

    static func ago(_ ms: Int64?, now: Int64) -> String {
        guard let ms else { return "never" }
        let seconds = max(0, (now - ms) / 1000)
        switch seconds {
        case ..<120: return "\(seconds) s ago"
        case ..<7200: return "\(seconds / 60) min ago"
        case ..<172_800: return "\(seconds / 3600) h ago"
        default: return "\(seconds / 86_400) days ago"
        }
    }

    static func store(_ options: StoreOptions, _ config: CRMConfig) async -> any CRMStore & OutboxStore {
        await options.openStore(config, creating: false)
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each target: waiting, pending and dead entries, the last delivery and the last error.",
            discussion: "Exits 1 when a target has dead entries or cannot be reached, so a monitor can watch it.")
        @OptionGroup var options: StoreOptions

        func run() async throws {
            let config = options.settings()
            let store = await OutboxCommand.store(options, config)
            let (targets, total) = await orFail {
                try await store.outboxRead { (try $0.outboxStatus(), try $0.outboxCount()) }
            }
            let configured = Set(config.outbox.targetNames)
            let now = Date().milliseconds
            var unhealthy = false
            var rows: [JSONValue] = []
            for name in config.outbox.targetNames where !targets.contains(where: { $0.name == name }) {
                rows.append(["target": .string(name), "configured": true, "state": "not started yet (till-crm serve registers it)"])
            }
            for target in targets {
                let paused = (target.pausedUntilMs ?? 0) > now
                unhealthy = unhealthy || target.dead > 0 || paused
                let state = !configured.contains(target.name) ? "not configured (its queue is kept)"
                    : [paused ? "unreachable" : nil, target.dead > 0 ? "has dead entries" : nil].compactMap { $0 }.joined(separator: ", ")
                let stateText = state.isEmpty ? "ok" : state
                rows.append([
                    "target": .string(target.name), "configured": .bool(configured.contains(target.name)), "state": .string(stateText),
                    "waiting": .int(Int64(target.waiting)), "pending": .int(Int64(target.pending)), "dead": .int(Int64(target.dead)),
                    "oldest_pending": OutboxCommand.time(target.oldestPendingMs), "delivered": .int(Int64(target.delivered)),
                    "last_delivered": OutboxCommand.time(target.lastDeliveredMs), "last_error": target.lastError.map(JSONValue.string) ?? .null,
                    "last_error_at": OutboxCommand.time(target.lastErrorMs), "paused_until": OutboxCommand.time(paused ? target.pausedUntilMs : nil),
                ])
            }
            if options.json {
                print(JSONText.encode(["entries": .int(Int64(total)), "targets": .array(rows)] as JSONValue))
            } else {
                print("outbox: \(total) entries kept")
                if rows.isEmpty {
                    print("no targets: add [[webhook]], [[jsonl]] or [[twenty]] to \(config.file ?? CRMConfig.defaultPath) (docs/crm.md, the outbox)")
                }
                for (row, target) in zip(rows.suffix(targets.count), targets) {
                    print("\(target.name): \(row.objectValue?["state"]?.stringValue ?? "")")
                    print("  waiting \(target.waiting), pending \(target.pending), dead \(target.dead), delivered \(target.delivered)"
                        + ", last delivery \(OutboxCommand.ago(target.lastDeliveredMs, now: now))")
                    if let oldest = target.oldestPendingMs { print("  oldest pending entry written \(OutboxCommand.ago(oldest, now: now))") }
                    if let error = target.lastError { print("  last error (\(OutboxCommand.ago(target.lastErrorMs, now: now))): \(error)") }
                    if target.dead > 0 { print("  see them: till-crm outbox dead; once the receiver is fixed: till-crm outbox retry") }
                }
                for row in rows.prefix(rows.count - targets.count) {
                    print("\(row.objectValue?["target"]?.stringValue ?? ""): \(row.objectValue?["state"]?.stringValue ?? "")")
                }
            }
            if unhealthy { throw ExitCode(1) }
        }
    }

    struct Dead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Entries given up on, with why.")
        @OptionGroup var options: StoreOptions
        @Option(help: "Only this target (as `outbox status` names it).") var target: String?
        @Option(help: "At most this many.") var limit = 100

        func run() async throws {
            let store = await OutboxCommand.store(options, options.settings())
            let dead = await orFail { [target, limit] in try await store.outboxRead { try $0.deliveries(target: target, state: .dead, limit: limit) } }
            let rows: [JSONValue] = dead.map { delivery in
                [
                    "entry": .string(delivery.entry.id), "target": .string(delivery.target), "customer": .string(delivery.entry.customer),
                    "type": .string(delivery.entry.type.rawValue), "written": OutboxCommand.time(delivery.entry.createdMs),
                    "attempts": .int(Int64(delivery.attempts)), "first_failed": OutboxCommand.time(delivery.firstFailedMs),
                    "last_error": delivery.lastError.map(JSONValue.string) ?? .null,
                ]
            }
            if options.json {
                print(JSONText.encode(JSONValue.array(rows)))
                return
            }
            if dead.isEmpty {
                print("no dead entries")
                return
            }
            for delivery in dead {
                print("\(delivery.entry.id)  \(delivery.entry.type.rawValue)  customer \(delivery.entry.customer)  → \(delivery.target)")
                print("  \(delivery.attempts) tries; last: \(delivery.lastError ?? "")")
            }
            print("once the receiver is fixed: till-crm outbox retry (all) or till-crm outbox retry ENTRY...")
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Puts dead entries back in their queue and makes waiting ones due now.",
            discussion: "A running `till-crm serve` picks them up within a second.")
        @OptionGroup var options: StoreOptions
        @Option(help: "Only this target.") var target: String?
        @Argument(help: "Entry ids (msg_...); all when none are given.") var entries: [String] = []

        func run() async throws {
            let store = await OutboxCommand.store(options, options.settings())
            let now = Date().milliseconds
            let count = await orFail { [target, entries] in
                try await store.outboxWrite { try $0.retryDeliveries(target: target, entries: entries, nowMs: now) }
            }
            if count == 0, !entries.isEmpty { fail("no queued entry has the id \(entries.joined(separator: ", ")) (till-crm outbox dead lists them)") }
            print(options.json ? JSONText.encode(["retried": .int(Int64(count))] as JSONValue) : "\(count) entries due now")
        }
    }

    struct Secret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prints a new webhook secret (whsec_...) for a [[webhook]] and its receiver.")

        func run() async throws {
            print(WebhookSecret.generate())
        }
    }
}
