import Foundation
import TillCore
import TOMLKit
import TillPhoneNumber

/// till-crm's own settings, `/etc/till-crm/till-crm.toml` (or `$TILL_CRM_CONFIG`):
///
///     data_dir = "/var/lib/till-crm"   # holds crm.sqlite (mode 0600)
///     region = "GB"                    # phone numbers typed without a country code
///     socket = "/run/tilld/tilld.sock" # the tilld to follow
///     log_level = "info"
///
/// A flag beats the environment, which beats the file, which beats the default. Every
/// problem names the file and line and says what to write instead.
public struct CRMConfig: Sendable, Hashable {
    public static let defaultPath = "/etc/till-crm/till-crm.toml"

    public var dataDirectory = "/var/lib/till-crm"
    public var region = "GB"
    public var socket = "/run/tilld/tilld.sock"
    public var logLevel = "info"
    /// `[moments]`: what makes a moment worth a follow-up (docs/crm.md).
    public var moments = MomentSettings()
    /// `[moments] scan_interval_minutes`: how often regulars are scanned for going quiet.
    public var scanIntervalMinutes = 60
    /// `[outbox]` and the targets, `[[webhook]]`, `[[jsonl]]`, `[[twenty]]` (docs/crm.md, the outbox).
    public var outbox = OutboxSettings()
    /// `[store]`: customer memory in PostgreSQL (a chain of shops); nil keeps SQLite in data_dir.
    public var postgres: PostgresSettings?
    /// Things that work but should be fixed (a secret in a file anyone may read), for the log.
    public var warnings: [String] = []
    /// Whether a secret is written in the file itself (rather than in a secret_file).
    var holdsSecrets = false
    /// Where the values came from, for messages ("region \"XX\" (from /etc/till-crm/till-crm.toml)").
    public var file: String?

    public init() {}

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// The file's settings; a missing file at the default path is no error (the defaults hold).
    public static func load(path: String?) throws -> CRMConfig {
        let file = path ?? CRMConfig.defaultPath
        guard let data = FileManager.default.contents(atPath: file) else {
            if path != nil, !FileManager.default.fileExists(atPath: file) {
                throw Invalid(description: "no config file \(file) (leave the option out to use \(defaultPath), or create it)")
            }
            if FileManager.default.fileExists(atPath: file) {
                throw Invalid(description: "cannot read \(file): check its permissions (till-crm runs as its own user)")
            }
            return CRMConfig()
        }
        guard let text = String(data: data, encoding: .utf8) else { throw Invalid(description: "\(file) is not UTF-8 text; save it as UTF-8") }
        var config = try parse(text, file: file)
        config.file = file
        if config.holdsSecrets, let mode = (try? FileManager.default.attributesOfItem(atPath: file))?[.posixPermissions] as? Int, mode & 0o004 != 0 {
            config.warnings.append(
                "\(file) holds a webhook secret and any user may read it: chmod 0640 \(file) and chgrp it to till-crm's group, or move the secret to a secret_file")
        }
        return config
    }

    public static func parse(_ text: String, file: String = "till-crm.toml") throws -> CRMConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw Invalid(description: "\(file):\(error.source.begin.line): \(error.description)")
        }
        var config = CRMConfig()
        var problems: [String] = []
        let known = ["data_dir", "region", "socket", "log_level", "store", "moments", "outbox", "webhook", "jsonl", "twenty"]
        func line(of key: String) -> String {
            let number = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.trimmingCharacters(in: .whitespaces).hasPrefix(key) }
            return number.map { ":\($0 + 1)" } ?? ""
        }
        for key in table.keys.sorted() where !known.contains(key) {
            problems.append("\(file)\(line(of: key)): unknown key \"\(key)\"; known: \(known.joined(separator: ", "))")
        }
        func string(_ key: String) -> String? {
            guard let value = table[key] else { return nil }
            guard let text = value.string else {
                problems.append("\(file)\(line(of: key)): \(key) must be a string in quotes, e.g. \(key) = \"...\"")
                return nil
            }
            return text
        }
        if let value = string("data_dir") { config.dataDirectory = value }
        if let value = string("region") { config.region = value }
        if let value = string("socket") { config.socket = value }
        if let value = string("log_level") { config.logLevel = value }
        if let moments = table["moments"] {
            if let section = moments.table {
                parseMoments(section, into: &config, file: file, line: line(of:), problems: &problems)
            } else {
                problems.append("\(file)\(line(of: "moments")): moments is a table: write [moments] on a line of its own, its settings below")
            }
        }
        parseOutbox(table, into: &config, file: file, line: line(of:), problems: &problems)
        parseStore(table, into: &config, file: file, line: line(of:), problems: &problems)
        if let problem = validate(config, source: file) { problems.append(problem) }
        guard problems.isEmpty else { throw Invalid(description: problems.joined(separator: "\n")) }
        return config
    }

    static let momentKeys = [
        "high_ticket", "high_ticket_by_category", "care_after_days", "service_follow_up_days", "service_interval_days", "regular_visits",
        "quiet_factor", "quiet_minimum_days", "welcome_back_factor", "scan_interval_minutes",
    ]

    /// `[moments]`: amounts as decimal strings ("250.00"), days and visits as whole numbers,
    /// factors as numbers; each mistake named with its line and what to write.
    static func parseMoments(
        _ section: TOMLTable, into config: inout CRMConfig, file: String, line: (String) -> String, problems: inout [String]
    ) {
        func problem(_ key: String, _ text: String) { problems.append("\(file)\(line(key)): [moments] \(key) \(text)") }
        for key in section.keys.sorted() where !momentKeys.contains(key) {
            problem(key, "is not a setting; known: \(momentKeys.joined(separator: ", "))")
        }
        func amount(_ value: any TOMLValueConvertible, _ key: String) -> Decimal? {
            guard let text = value.string, DecimalString.isValid(text), let amount = Decimal(string: text), amount >= 0 else {
                problem(key, "must be an amount in quotes, e.g. \(key) = \"250.00\" (money is never a float)")
                return nil
            }
            return amount
        }
        func whole(_ key: String, _ range: ClosedRange<Int>) -> Int? {
            guard let value = section[key] else { return nil }
            guard let number = value.int, range.contains(number) else {
                problem(key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
                return nil
            }
            return number
        }
        func factor(_ key: String) -> Double? {
            guard let value = section[key] else { return nil }
            guard let number = value.double ?? value.int.map(Double.init), number >= 1, number <= 100 else {
                problem(key, "must be a number from 1 to 100 (how many times a customer's own gap between visits)")
                return nil
            }
            return number
        }
        if let value = section["high_ticket"], let amount = amount(value, "high_ticket") { config.moments.highTicket = amount }
        if let value = section["high_ticket_by_category"] {
            if let categories = value.table {
                for category in categories.keys {
                    if let amount = amount(categories[category]!, "high_ticket_by_category.\(category)") { config.moments.highTicketByCategory[category] = amount }
                }
            } else {
                problem("high_ticket_by_category", "is a table of category = \"amount\", e.g. high_ticket_by_category = { bikes = \"500.00\" }")
            }
        }
        if let days = whole("care_after_days", 0...3650) { config.moments.careAfterDays = days }
        if let days = whole("service_follow_up_days", 0...3650) { config.moments.serviceFollowUpDays = days }
        if let value = section["service_interval_days"] {
            if let services = value.table {
                for service in services.keys {
                    if let days = services[service]?.int, (1...3650).contains(days) {
                        config.moments.serviceIntervalDays[service] = days
                    } else {
                        problem("service_interval_days", "\"\(service)\" must be a whole number of days from 1 to 3650")
                    }
                }
            } else {
                problem("service_interval_days", "is a table of service = days, e.g. service_interval_days = { \"bike service\" = 182 }")
            }
        }
        if let visits = whole("regular_visits", 2...1000) { config.moments.regularVisits = visits }
        if let value = factor("quiet_factor") { config.moments.quietFactor = value }
        if let days = whole("quiet_minimum_days", 1...3650) { config.moments.quietMinimumDays = days }
        if let value = factor("welcome_back_factor") { config.moments.welcomeBackFactor = value }
        if let minutes = whole("scan_interval_minutes", 1...10080) { config.scanIntervalMinutes = minutes }
    }

    /// Why a setting cannot work, or nil. Checked at start, so a mistyped region is refused
    /// once instead of every phone number being skipped for good.
    public static func validate(_ config: CRMConfig, source: String) -> String? {
        if PhoneNumber.countryCode(ofRegion: config.region) == nil {
            let hint = config.region.uppercased() == "UK" ? " (the United Kingdom is GB)" : ""
            return "unknown region \"\(config.region)\" (from \(source))\(hint): use an ISO 3166 code such as GB, DE, FR, IE, NL"
        }
        if !levels.contains(config.logLevel) {
            return "unknown log level \"\(config.logLevel)\" (from \(source)): use one of \(levels.joined(separator: ", "))"
        }
        return nil
    }
}
