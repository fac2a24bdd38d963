import Foundation
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
        let known = ["data_dir", "region", "socket", "log_level"]
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
        if let problem = validate(config, source: file) { problems.append(problem) }
        guard problems.isEmpty else { throw Invalid(description: problems.joined(separator: "\n")) }
        return config
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
