import ArgumentParser
import Foundation
import TillCRM
import TillCore

/// Who is acting, for the merge log: --by, else the login name.
func actor(_ by: String?) -> String {
    by ?? ProcessInfo.processInfo.environment["SUDO_USER"] ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown"
}

struct Duplicates: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Possible duplicates to decide on, most likely first, with the evidence for each pair.",
        discussion: "Decide each pair with: till-crm merge A B, or till-crm dismiss A B (never asked again).")
    @OptionGroup var store: StoreOptions
    @Option(help: "Show at most this many pairs.") var limit = 50

    func run() async throws {
        let directory = try await store.directory()
        let pairs = Array(await orFail { try await directory.duplicates() }.prefix(limit))
        if store.json { return print(JSONText.encode(JSONValue.array(pairs.map(\.json)))) }
        if pairs.isEmpty { return print("no possible duplicates to review") }
        for (number, pair) in pairs.enumerated() {
            print("\(number + 1). score \(String(format: "%.1f", pair.score))  (queued \(Timestamp.format(pair.queued).prefix(10)))")
            for side in [pair.a, pair.b] {
                print("   \(side.id)  \(side.name ?? "(no name)")  \(side.postcode ?? "")  \(plural(side.visits, "visit")), last \(Timestamp.format(side.lastSeen).prefix(10))")
                if !side.identifiers.isEmpty { print("      \(side.identifiers.joined(separator: ", "))") }
            }
            print("   evidence: \(pair.evidence.joined(separator: "; "))")
            print("   till-crm merge \(pair.a.id) \(pair.b.id)   |   till-crm dismiss \(pair.a.id) \(pair.b.id)")
        }
    }
}

struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge two customers into one (the one with more visits survives; old ids keep resolving to it).",
        discussion: "Nothing is deleted: every identifier, timeline entry and consent record is kept, and till-crm unmerge restores both exactly.")
    @OptionGroup var store: StoreOptions
    @Argument(help: "A customer id, email, phone or card.") var first: String
    @Argument(help: "Another.") var second: String
    @Option(help: "Why (kept in the merge log).") var reason = "merged by hand"
    @Option(help: "Who merged (default: your login).") var by: String?

    func run() async throws {
        let directory = try await store.directory()
        let merge = await orFail { try await directory.merge(first, second, actor: actor(by), reason: reason) }
        if store.json {
            return print(JSONText.encode(["survivor": .string(merge.survivor), "absorbed": .string(merge.absorbed), "score": merge.score.map { .double($0) } ?? .null] as JSONValue))
        }
        print("merged \(merge.absorbed) into \(merge.survivor)" + (merge.score.map { String(format: " (score %.1f)", $0) } ?? ""))
        print("undo with: till-crm unmerge \(merge.absorbed)")
    }
}

struct Unmerge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Undo a merge: both people get back exactly their own records, including what happened to either since.")
    @OptionGroup var store: StoreOptions
    @Argument(help: "The absorbed customer's old id (or the survivor's, if it absorbed only one).") var customer: String
    @Option(help: "Who unmerged (default: your login).") var by: String?

    func run() async throws {
        let directory = try await store.directory()
        let merge = await orFail { try await directory.unmerge(customer, actor: actor(by)) }
        if store.json { return print(JSONText.encode(["survivor": .string(merge.survivor), "restored": .string(merge.absorbed)] as JSONValue)) }
        print("unmerged: \(merge.absorbed) and \(merge.survivor) are two customers again (and will not be merged automatically)")
    }
}

struct Dismiss: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Two customers are two people: take the pair off the review queue for good.")
    @OptionGroup var store: StoreOptions
    @Argument var first: String
    @Argument var second: String
    @Option(help: "Who decided (default: your login).") var by: String?

    func run() async throws {
        let directory = try await store.directory()
        await orFail { try await directory.dismiss(first, second, actor: actor(by)) }
        if !store.json { print("dismissed: \(first) and \(second) are two people") }
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import an existing customer list (CSV) through the same matcher as the till.",
        discussion: """
            Columns by default: record_id, captured_at, given_name, family_name, email, phone, loyalty_card, postcode \
            (and name, for a full name in one column). Rows go in captured_at order. A bad row is reported with its line \
            and skipped whole; a row imported before (same --source and record_id) is skipped, so importing twice changes \
            nothing. Exit status 2 when any row was bad.
            """)
    @OptionGroup var store: StoreOptions
    @Argument(help: "The CSV file (UTF-8, a header line first).") var file: String
    @Option(name: .customLong("column"), help: "FIELD=COLUMN, e.g. --column given_name=\"First Name\" (repeatable).") var columns: [String] = []
    @Option(help: "Names this list in the store, so a second import of it skips what the first imported (default: the file's name).") var source: String?
    @Flag(name: .customLong("dry-run"), help: "Change nothing: report what the import would do.") var dryRun = false
    @Option(name: .customLong("clusters-out"), help: "Write record_id,customer for every row imported (with --dry-run: the customers it would make).") var clustersOut: String?

    func run() async throws {
        var mapping: [CustomerImport.Field: String] = [:]
        for column in columns {
            let parts = column.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let field = CustomerImport.Field(rawValue: parts[0]) else {
                fail("--column \(column): write FIELD=COLUMN, FIELD one of \(CustomerImport.Field.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            mapping[field] = parts[1]
        }
        guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read \(file): \(FileManager.default.fileExists(atPath: file) ? "check its permissions" : "no such file")") }
        guard let text = String(data: data, encoding: .utf8) else { fail("\(file) is not UTF-8 text: save it from the spreadsheet as \"CSV UTF-8\"") }
        let directory = try await store.directory(creating: true)
        let importer = CustomerImport(
            normalizer: directory.normalizer, identification: Identification(), columns: mapping)
        let started = ContinuousClock.now
        let report = await orFail { try await importer.run(text, source: source ?? (file as NSString).lastPathComponent, dryRun: dryRun, in: directory.store) }
        let elapsed = ContinuousClock.now - started
        if let clustersOut {
            let lines = ["record_id,customer"] + report.clusters.map { "\(CSVField.quote($0.record)),\($0.customer)" }
            do {
                try (lines.joined(separator: "\n") + "\n").write(toFile: clustersOut, atomically: true, encoding: .utf8)
            } catch {
                fail("cannot write \(clustersOut): \(error)")
            }
        }
        if store.json {
            print(JSONText.encode([
                "rows": .int(Int64(report.rows)), "created": .int(Int64(report.created)), "attached": .int(Int64(report.attached)),
                "already_imported": .int(Int64(report.alreadyImported)), "merged": .int(Int64(report.merged)), "queued": .int(Int64(report.queued)),
                "bad": .array(report.bad.map { ["line": .int(Int64($0.line)), "reason": .string($0.reason)] }), "dry_run": .bool(report.dryRun),
                "seconds": .double(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18),
                "read_seconds": .double(report.readSeconds), "resolve_seconds": .double(report.resolveSeconds),
            ] as JSONValue))
        } else {
            let verb = dryRun ? "would make" : "made"
            print("\(file): \(plural(report.rows, "row")) read; \(verb) \(plural(report.created, "new customer")), attached \(report.attached) to known ones, \(report.alreadyImported) imported before, \(plural(report.merged, "merge")), \(report.queued) queued for review\(report.queued > 0 ? " (till-crm duplicates)" : "")\(dryRun ? "; nothing was changed (--dry-run)" : "")")
            if let clustersOut { print("clusters written to \(clustersOut)") }
        }
        for bad in report.bad {
            FileHandle.standardError.write(Data("till-crm: \(file) \(bad) (row skipped)\n".utf8))
        }
        if !report.bad.isEmpty {
            FileHandle.standardError.write(Data("till-crm: \(plural(report.bad.count, "bad row")) skipped; fix them and import again (rows already imported are skipped)\n".utf8))
            throw ExitCode(2)
        }
    }
}

enum CSVField {
    static func quote(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}
