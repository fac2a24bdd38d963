import ArgumentParser
import Foundation
import TillCRM
import TillCore

/// Where the customer database is and how phone numbers are read: a flag beats the
/// environment (TILL_CRM_DATA_DIR, TILL_CRM_REGION), which beats till-crm.toml, which beats
/// the defaults.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "till-crm's settings (default: $TILL_CRM_CONFIG, else /etc/till-crm/till-crm.toml).")
    var configPath: String?

    @Option(name: .customLong("data-dir"), help: "Holds crm.sqlite (mode 0600). Default: data_dir in the config, else /var/lib/till-crm.")
    var dataDirectoryOption: String?

    @Option(name: .customLong("region"), help: "Region for phone numbers without a country code (ISO 3166: GB, DE, FR...). Default: region in the config, else GB.")
    var regionOption: String?

    @Flag(help: "Machine output: JSON.")
    var json = false

    /// The settings in force; a bad one (an unknown region, a broken config file) ends the command
    /// here, at the start, with what to fix.
    func settings() -> CRMConfig {
        let environment = ProcessInfo.processInfo.environment
        var config: CRMConfig
        do {
            config = try CRMConfig.load(path: configPath ?? environment["TILL_CRM_CONFIG"])
        } catch {
            fail("\(error)")
        }
        var regionSource = config.file ?? "the default"
        if let value = environment["TILL_CRM_DATA_DIR"] { config.dataDirectory = value }
        if let value = environment["TILL_CRM_REGION"] {
            config.region = value
            regionSource = "TILL_CRM_REGION"
        }
        if let value = dataDirectoryOption { config.dataDirectory = value }
        if let value = regionOption {
            config.region = value
            regionSource = "--region"
        }
        if let problem = CRMConfig.validate(config, source: regionSource) { fail(problem) }
        return config
    }

    /// The directory over the store. Only `serve` and `import` create a store; every other
    /// command needs one to exist, so a mistyped --data-dir says so instead of answering
    /// "no customer matches" from a new empty database.
    func directory(creating: Bool = false, settings known: CRMConfig? = nil) async throws -> CustomerDirectory {
        let config = known ?? settings()
        let store = await openStore(config, creating: creating)
        return CustomerDirectory(store: store, normalizer: IdentifierNormalizer(defaultRegion: config.region))
    }

    /// The store the config names: PostgreSQL with `[store] url`, else the SQLite file in the
    /// data directory. A failure ends the command with what to check.
    func openStore(_ config: CRMConfig, creating: Bool) async -> any CRMStore & OutboxStore {
        if let postgres = config.postgres {
            do {
                return try await PostgresCRMStore(settings: postgres)
            } catch {
                fail("cannot open the customer database \(postgres.description): \(error)")
            }
        }
        let path = config.dataDirectory + "/crm.sqlite"
        if !creating, !FileManager.default.fileExists(atPath: path) {
            let from = dataDirectoryOption != nil ? "--data-dir" : ProcessInfo.processInfo.environment["TILL_CRM_DATA_DIR"] != nil ? "TILL_CRM_DATA_DIR" : config.file.map { "data_dir in \($0)" } ?? "the default"
            fail("no customer database at \(path) (the data directory comes from \(from)); till-crm serve creates it when it first follows tilld. Check the path, or point --data-dir at the directory holding crm.sqlite")
        }
        do {
            return try SQLiteCRMStore(path: path)
        } catch {
            fail("cannot open the customer database \(path): \(error)")
        }
    }
}

/// JSON for people: two-space indents, keys sorted, the same values `JSONText` writes.
enum PrettyJSON {
    static func format(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + format($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{\n" + members.sorted { $0.key < $1.key }.map { inner + JSONText.encode($0.key) + ": " + format($0.value, indent: inner) }
                .joined(separator: ",\n") + "\n" + indent + "}"
        default:
            return JSONText.encode(value)
        }
    }
}
