import Foundation
import TOMLKit

/// `[outbox]` and its targets in till-crm.toml:
///
///     [outbox]
///     max_attempts = 12      # refusals before an entry is dead
///     max_days = 7           # days an entry may stay undelivered before it is dead
///     keep_days = 7          # with no target, entries are kept this long
///
///     [[webhook]]
///     url = "https://hooks.example.com/till"
///     secret = "whsec_..."   # or secret_file = "/etc/till-crm/webhook.secret"
///
///     [[jsonl]]
///     dir = "/var/lib/till-crm/export"
///
///     [[twenty]]
///     url = "https://crm.example.com"
///     api_key_file = "/etc/till-crm/twenty.key"
extension CRMConfig {
    static let outboxKeys = ["max_attempts", "max_days", "keep_days"]
    static let webhookKeys = ["url", "secret", "secret_file", "timeout_seconds", "concurrency"]
    static let jsonlKeys = ["dir", "max_bytes", "rotate_daily"]
    static let twentyKeys = ["url", "api_key_file", "timeout_seconds", "concurrency"]

    static func parseOutbox(_ table: TOMLTable, into config: inout CRMConfig, file: String, line: (String) -> String, problems: inout [String]) {
        if let value = table["outbox"] {
            if let section = value.table {
                func problem(_ key: String, _ text: String) { problems.append("\(file)\(line(key)): [outbox] \(key) \(text)") }
                for key in section.keys.sorted() where !outboxKeys.contains(key) {
                    problem(key, "is not a setting; known: \(outboxKeys.joined(separator: ", "))")
                }
                if let value = section["max_attempts"] {
                    if let number = value.int, (1...1000).contains(number) { config.outbox.maxAttempts = number } else {
                        problem("max_attempts", "must be a whole number from 1 to 1000")
                    }
                }
                for (key, path) in [("max_days", \OutboxSettings.maxDays), ("keep_days", \OutboxSettings.keepDays)] {
                    guard let value = section[key] else { continue }
                    if let days = value.double ?? value.int.map(Double.init), days > 0, days <= 3650 { config.outbox[keyPath: path] = days } else {
                        problem(key, "must be a number of days from 0.01 to 3650")
                    }
                }
            } else {
                problems.append("\(file)\(line("outbox")): outbox is a table: write [outbox] on a line of its own, its settings below")
            }
        }
        for section in sections("webhook", in: table, file: file, line: line, problems: &problems) {
            if let target = webhook(section, file: file, line: line, problems: &problems) { config.outbox.webhooks.append(target) }
            if section["secret"] != nil { config.holdsSecrets = true }
        }
        for section in sections("jsonl", in: table, file: file, line: line, problems: &problems) {
            if let target = jsonLines(section, file: file, line: line, problems: &problems) { config.outbox.jsonLines.append(target) }
        }
        for section in sections("twenty", in: table, file: file, line: line, problems: &problems) {
            if let target = twenty(section, file: file, line: line, problems: &problems) { config.outbox.twenty.append(target) }
        }
        let names = config.outbox.targetNames
        for name in Set(names) where names.filter({ $0 == name }).count > 1 {
            problems.append("\(file): the target \(name) is configured twice; keep one")
        }
    }

    /// `[[name]]` tables (an array of tables); a single `[name]` table is taken too.
    private static func sections(_ key: String, in table: TOMLTable, file: String, line: (String) -> String, problems: inout [String]) -> [TOMLTable] {
        guard let value = table[key] else { return [] }
        if let single = value.table { return [single] }
        if let array = value.array {
            let tables = array.compactMap { $0.table }
            if tables.count == array.count { return tables }
        }
        problems.append("\(file)\(line(key)): \(key) is a list of targets: write [[\(key)]] on a line of its own, its settings below")
        return []
    }

    private static func check(_ section: TOMLTable, _ name: String, keys: [String], file: String, line: (String) -> String, problems: inout [String]) {
        for key in section.keys.sorted() where !keys.contains(key) {
            problems.append("\(file)\(line(key)): [[\(name)]] \(key) is not a setting; known: \(keys.joined(separator: ", "))")
        }
    }

    /// An http(s) URL; plain http only to this machine (personal data never crosses a network in clear).
    private static func url(_ section: TOMLTable, _ name: String, file: String, line: (String) -> String, problems: inout [String]) -> String? {
        guard let text = section["url"]?.string else {
            problems.append("\(file)\(line("[[\(name)]]")): [[\(name)]] needs url = \"https://...\"")
            return nil
        }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, ["http", "https"].contains(scheme) else {
            problems.append("\(file)\(line("url")): [[\(name)]] url \"\(text)\" is not an http(s) URL; write e.g. url = \"https://hooks.example.com/till\"")
            return nil
        }
        let loopback = ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host.lowercased()) || host.hasPrefix("127.")
        if scheme == "http", !loopback {
            problems.append(
                "\(file)\(line("url")): [[\(name)]] url \"\(text)\" is plain http to another machine: customer data would cross the network unencrypted; use https")
            return nil
        }
        return text
    }

    static func secretFile(_ path: String, _ what: String, file: String, line: String, problems: inout [String]) -> String? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            problems.append("\(file)\(line): cannot read the \(what) file \(path): check it exists and the till-crm user may read it (mode 0640, group till-crm)")
            return nil
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func number(_ section: TOMLTable, _ key: String, _ name: String, range: ClosedRange<Double>, file: String, line: (String) -> String, problems: inout [String]) -> Double? {
        guard let value = section[key] else { return nil }
        guard let number = value.double ?? value.int.map(Double.init), range.contains(number) else {
            problems.append("\(file)\(line(key)): [[\(name)]] \(key) must be a number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return number
    }

    static func webhook(_ section: TOMLTable, file: String, line: (String) -> String, problems: inout [String]) -> WebhookTarget.Settings? {
        check(section, "webhook", keys: webhookKeys, file: file, line: line, problems: &problems)
        let url = url(section, "webhook", file: file, line: line, problems: &problems)
        var secretText: String?
        if let text = section["secret"]?.string {
            secretText = text
        } else if let path = section["secret_file"]?.string {
            secretText = secretFile(path, "webhook secret", file: file, line: line("secret_file"), problems: &problems)
        } else {
            problems.append(
                "\(file)\(line("url")): [[webhook]] needs secret = \"whsec_...\" or secret_file = \"...\" (make one: till-crm outbox secret)")
        }
        var secret: WebhookSecret?
        if let secretText {
            do { secret = try WebhookSecret(secretText) } catch { problems.append("\(file)\(line("secret")): [[webhook]] \(error)") }
        }
        guard let url, let secret else { return nil }
        var settings = WebhookTarget.Settings(url: url, secret: secret)
        if let seconds = number(section, "timeout_seconds", "webhook", range: 0.1...300, file: file, line: line, problems: &problems) { settings.timeoutSeconds = seconds }
        if let count = number(section, "concurrency", "webhook", range: 1...256, file: file, line: line, problems: &problems) { settings.concurrency = Int(count) }
        return settings
    }

    static func jsonLines(_ section: TOMLTable, file: String, line: (String) -> String, problems: inout [String]) -> JSONLinesTarget.Settings? {
        check(section, "jsonl", keys: jsonlKeys, file: file, line: line, problems: &problems)
        guard let directory = section["dir"]?.string, directory.hasPrefix("/") else {
            problems.append("\(file)\(line("[[jsonl]]")): [[jsonl]] needs dir = \"/absolute/path\" (the folder the files are written to)")
            return nil
        }
        var settings = JSONLinesTarget.Settings(directory: directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory)
        if let bytes = number(section, "max_bytes", "jsonl", range: 1024...1_099_511_627_776, file: file, line: line, problems: &problems) { settings.maxBytes = Int(bytes) }
        if let value = section["rotate_daily"] {
            if let flag = value.bool { settings.rotateDaily = flag } else {
                problems.append("\(file)\(line("rotate_daily")): [[jsonl]] rotate_daily must be true or false")
            }
        }
        return settings
    }

    static func twenty(_ section: TOMLTable, file: String, line: (String) -> String, problems: inout [String]) -> TwentyTarget.Settings? {
        check(section, "twenty", keys: twentyKeys, file: file, line: line, problems: &problems)
        let url = url(section, "twenty", file: file, line: line, problems: &problems)
        var key: String?
        if let path = section["api_key_file"]?.string {
            key = secretFile(path, "Twenty API key", file: file, line: line("api_key_file"), problems: &problems)
        } else if let value = ProcessInfo.processInfo.environment["TILL_CRM_TWENTY_API_KEY"], !value.isEmpty {
            key = value
        } else {
            problems.append(
                "\(file)\(line("[[twenty]]")): [[twenty]] needs api_key_file = \"/etc/till-crm/twenty.key\" (a key from Twenty's Settings → APIs), or TILL_CRM_TWENTY_API_KEY in the environment")
        }
        guard let url, let key, !key.isEmpty else { return nil }
        var settings = TwentyTarget.Settings(url: url, apiKey: key)
        if let seconds = number(section, "timeout_seconds", "twenty", range: 0.1...300, file: file, line: line, problems: &problems) { settings.timeoutSeconds = seconds }
        if let count = number(section, "concurrency", "twenty", range: 1...64, file: file, line: line, problems: &problems) { settings.concurrency = Int(count) }
        return settings
    }
}
