import Foundation
import TOMLKit
public import TillCore
public import TillDevices
public import TillScanner
public import TillDrivers

/// One problem found in a config file, with the line it is on (when known).
public struct ConfigProblem: Error, Sendable, Hashable, CustomStringConvertible {
    public var line: Int?
    public var message: String

    public init(line: Int?, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}

public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var problems: [ConfigProblem]
    public var description: String {
        problems.map { "\(file): \($0)" }.joined(separator: "\n")
    }
}

/// `[access]`: who may do what, by user and group name.
public struct AccessRules: Sendable, Hashable {
    public var actUsers: [String] = []
    public var actGroups: [String] = []
    public var readUsers: [String] = []
    public var readGroups: [String] = ["till"]
    public init() {}
}

/// The daemon's configuration (`/etc/tilld/tilld.toml`). Every key has a default, so an
/// empty or missing default file is a valid configuration.
public struct DaemonConfig: Sendable, Hashable {
    public var socketGroup: String? = "till"
    public var maxLineBytes = 1 << 20
    public var queueBytes = 4 << 20
    public var maxClients = 256
    public var lagGraceSeconds = 10.0
    public var access = AccessRules()
    public var retainDays = 30
    public var retainEvents: Int? = nil
    public var synchronousFull = true
    /// Device events that may wait for a journal that cannot commit (`[journal] hold_events`).
    public var holdEvents = 10_000
    public var loyaltyPrefixes: [String] = []
    /// `[scanner] loyalty_pattern`: the shop's card numbers as a regular expression.
    public var loyaltyPatterns: [ScanPattern] = []
    /// `[scanner] coupon_prefixes`: GTIN-13 prefixes that are coupons (GS1's by default).
    public var couponPrefixes: [String] = ScanClassifier.gs1CouponPrefixes
    /// `[scanner] receipt_pattern`: the shop's receipt numbers, scanned for a refund.
    public var receiptPatterns: [ScanPattern] = []
    /// `[[scanner.variable_measure]]`: in-store EAN-13s with a price or weight inside.
    public var variableMeasures: [VariableMeasureScheme] = []
    public var devices: [DeviceConfig] = []
    /// `[devices] zero_config`: known models (by USB id in the quirks data) plugged in with no
    /// `[[device]]` entry are driven under a generated stable name.
    public var zeroConfig = true

    public init() {}

    /// How scans are classified under this config's `[scanner]` rules.
    public var scanClassifier: ScanClassifier {
        ScanClassifier(
            loyaltyPrefixes: loyaltyPrefixes, loyaltyPatterns: loyaltyPatterns, couponPrefixes: couponPrefixes,
            receiptPatterns: receiptPatterns, variableMeasures: variableMeasures)
    }

    /// Reads a file. `required` is false for the default path: a missing default file is fine.
    public static func load(path: String, required: Bool, knownProfiles: Set<String>? = nil) throws -> DaemonConfig {
        guard FileManager.default.fileExists(atPath: path) else {
            if required {
                throw ConfigErrors(file: path, problems: [ConfigProblem(line: nil, "file not found")])
            }
            return DaemonConfig()
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ConfigErrors(file: path, problems: [ConfigProblem(line: nil, "is a directory; give the config file's path, e.g. \(path.hasSuffix("/") ? path : path + "/")tilld.toml")])
        }
        // Read through a file handle: Foundation's String(contentsOfFile:) refuses character
        // devices (`--config /dev/null`) with a misleading "permission" error.
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigErrors(file: path, problems: [ConfigProblem(line: nil, "cannot open it: check that tilld's user may read it (`ls -l \(path)`)")])
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw ConfigErrors(file: path, problems: [ConfigProblem(line: nil, "cannot read it: \(error.localizedDescription)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigErrors(file: path, problems: [ConfigProblem(line: nil, "is not UTF-8 text; save it as UTF-8")])
        }
        let (config, problems) = parse(text, knownProfiles: knownProfiles)
        if !problems.isEmpty { throw ConfigErrors(file: path, problems: problems) }
        return config
    }

    /// Parses TOML text; returns the config and every problem found (not just the first).
    /// - Parameter knownProfiles: printer profiles in the quirks data; a `profile` naming
    ///   another is a problem (nil: not checked).
    public static func parse(_ text: String, registry: DriverRegistry = BuiltinDrivers.registry, knownProfiles: Set<String>? = nil) -> (DaemonConfig, [ConfigProblem]) {
        var config = DaemonConfig()
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            return (config, [ConfigProblem(line: error.source.begin.line, error.description)])
        } catch {
            return (config, [ConfigProblem(line: nil, "\(error)")])
        }
        var reader = ConfigReader(locator: KeyLocator(text: text))
        config.read(table, &reader, registry: registry)
        if let knownProfiles {
            for device in config.devices {
                guard let profile = device.options["profile"]?.stringValue, !knownProfiles.contains(profile) else { continue }
                let near = knownProfiles.sorted().first { EditDistance.isOneEditAway(profile, $0) || $0.caseInsensitiveCompare(profile) == .orderedSame }
                reader.problems.append(ConfigProblem(
                    line: device.optionLines["profile"] ?? device.line,
                    "device \"\(device.name)\": no printer profile \"\(profile)\" in the quirks data" + (near.map { "; did you mean \"\($0)\"?" } ?? " (docs/devices.md lists them; add one in /etc/tilld/quirks.d/)")))
            }
        }
        // In file order, whichever check found them (Swift's sort is stable).
        return (config, reader.problems.sorted { ($0.line ?? 0) < ($1.line ?? 0) })
    }

    private mutating func read(_ root: TOMLTable, _ r: inout ConfigReader, registry: DriverRegistry) {
        r.unknownKeys(in: root, section: "", known: ["socket", "access", "journal", "scanner", "device", "devices"])
        if let section = r.table(root, "devices", section: "") {
            r.unknownKeys(in: section, section: "devices", known: ["zero_config"])
            if let value = section["zero_config"] {
                if let flag = value.bool { zeroConfig = flag } else { r.problem(section: "devices", key: "zero_config", "zero_config must be true or false") }
            }
        }
        if let socket = r.table(root, "socket", section: "") {
            r.unknownKeys(in: socket, section: "socket", known: ["group", "max_line_bytes", "queue_bytes", "max_clients", "lag_grace_seconds"])
            if let group = r.string(socket, "group", section: "socket") { socketGroup = group.isEmpty ? nil : group }
            if let value = r.int(socket, "max_line_bytes", section: "socket", range: 1024...(64 << 20)) { maxLineBytes = value }
            if let value = r.int(socket, "queue_bytes", section: "socket", range: 65536...(1 << 30)) { queueBytes = value }
            if let value = r.int(socket, "max_clients", section: "socket", range: 1...65536) { maxClients = value }
            if let value = r.int(socket, "lag_grace_seconds", section: "socket", range: 0...3600) { lagGraceSeconds = Double(value) }
        }
        if let access = r.table(root, "access", section: "") {
            r.unknownKeys(in: access, section: "access", known: ["act_users", "act_groups", "read_users", "read_groups"])
            if let value = r.strings(access, "act_users", section: "access") { self.access.actUsers = value }
            if let value = r.strings(access, "act_groups", section: "access") { self.access.actGroups = value }
            if let value = r.strings(access, "read_users", section: "access") { self.access.readUsers = value }
            if let value = r.strings(access, "read_groups", section: "access") { self.access.readGroups = value }
        }
        if let journal = r.table(root, "journal", section: "") {
            r.unknownKeys(in: journal, section: "journal", known: ["retain_days", "retain_events", "sync", "hold_events"])
            if let value = r.int(journal, "retain_days", section: "journal", range: 1...3650) { retainDays = value }
            if let value = r.int(journal, "retain_events", section: "journal", range: 1000...Int(Int32.max)) { retainEvents = value }
            if let value = r.int(journal, "hold_events", section: "journal", range: 1...1_000_000) { holdEvents = value }
            if let value = r.string(journal, "sync", section: "journal") {
                switch value {
                case "full": synchronousFull = true
                case "normal": synchronousFull = false
                default: r.problem(section: "journal", key: "sync", "sync = \"\(value)\": must be \"full\" (survives power loss) or \"normal\" (survives crashes)")
                }
            }
        }
        if let scanner = r.table(root, "scanner", section: "") {
            r.unknownKeys(in: scanner, section: "scanner", known: ["loyalty_prefixes", "loyalty_pattern", "coupon_prefixes", "receipt_pattern", "variable_measure"])
            if let value = r.strings(scanner, "loyalty_prefixes", section: "scanner") { loyaltyPrefixes = value }
            if let value = r.strings(scanner, "coupon_prefixes", section: "scanner") { couponPrefixes = value }
            for (key, keyPath) in [("loyalty_pattern", \DaemonConfig.loyaltyPatterns), ("receipt_pattern", \DaemonConfig.receiptPatterns)] {
                guard let source = r.string(scanner, key, section: "scanner") else { continue }
                do {
                    self[keyPath: keyPath] = [try ScanPattern(source)]
                } catch {
                    r.problem(section: "scanner", key: key, "\(key) = \(error) (write it as a TOML literal string, '^R\\d{8}$', so backslashes stay)")
                }
            }
            if let entries = scanner["variable_measure"] {
                guard let array = entries.array else {
                    r.problem(section: "scanner", key: "variable_measure", "variable_measure must be written [[scanner.variable_measure]]")
                    return
                }
                for (index, entry) in array.enumerated() {
                    guard let table = entry.table else { continue }
                    let section = "scanner.variable_measure"
                    r.unknownKeys(in: table, section: section, known: ["prefix", "item_digits", "value_digits", "value", "decimals"])
                    guard let prefix = r.string(table, "prefix", section: section), let kindText = r.string(table, "value", section: section) else {
                        r.problem(section: section, key: nil, "[[scanner.variable_measure]] entry \(index + 1) needs prefix (\"28\") and value (\"price\" or \"weight\")")
                        continue
                    }
                    guard let kind = VariableMeasureScheme.Kind(rawValue: kindText) else {
                        r.problem(section: section, key: "value", "value = \"\(kindText)\": must be \"price\" or \"weight\"")
                        continue
                    }
                    let scheme = VariableMeasureScheme(
                        prefix: prefix, itemDigits: r.int(table, "item_digits", section: section, range: 1...9) ?? 5,
                        valueDigits: r.int(table, "value_digits", section: section, range: 1...9) ?? 5, kind: kind,
                        decimals: r.int(table, "decimals", section: section, range: 0...9) ?? (kind == .price ? 2 : 3))
                    if let problem = scheme.problem {
                        r.problem(section: section, key: "prefix", "[[scanner.variable_measure]] entry \(index + 1): \(problem)")
                        continue
                    }
                    variableMeasures.append(scheme)
                }
            }
        }
        if let entries = root["device"] {
            guard let array = entries.array else {
                r.problem(section: "", key: "device", "must be an array of tables: write [[device]]")
                return
            }
            var seen = Set<String>()
            for (index, entry) in array.enumerated() {
                guard let table = entry.table else {
                    r.problem(section: "", key: "device", "entry \(index + 1) is not a table")
                    continue
                }
                let section = "device#\(index)"
                let line = r.locator.line(section: section, key: nil)
                guard let name = r.string(table, "name", section: section), !name.isEmpty else {
                    r.problem(section: section, key: nil, "[[device]] entry \(index + 1) needs a name")
                    continue
                }
                if !seen.insert(name).inserted {
                    r.problem(section: section, key: "name", "device name \"\(name)\" is used twice")
                }
                guard let roleText = r.string(table, "role", section: section) else {
                    r.problem(section: section, key: nil, "device \"\(name)\" needs a role (printer, scanner, drawer or display)")
                    continue
                }
                guard let role = DeviceConfig.Role(rawValue: roleText) else {
                    r.problem(section: section, key: "role", "role \"\(roleText)\" is not one of printer, scanner, drawer, display")
                    continue
                }
                guard let driver = r.string(table, "driver", section: section) else {
                    r.problem(section: section, key: nil, "device \"\(name)\" needs a driver (\(registry.drivers.filter { $0.role == role }.map { "\"\($0.name)\"" }.joined(separator: " or ")) for a \(role.rawValue))")
                    continue
                }
                var options: [String: JSONValue] = [:]
                var optionLines: [String: Int] = [:]
                for key in table.keys where !["name", "role", "driver"].contains(key) {
                    options[key] = JSONValue(toml: table[key]!.tomlValue)
                    optionLines[key] = r.locator.line(section: section, key: key)
                }
                let entry = DeviceConfig(name: name, role: role, driver: driver, options: options, line: line, optionLines: optionLines)
                // The driver's own schema checks the rest: this parser knows no driver.
                let issues = registry.validate(entry)
                for issue in issues {
                    r.problems.append(ConfigProblem(line: issue.key.flatMap { optionLines[$0] ?? r.locator.line(section: section, key: $0) } ?? line, "device \"\(name)\": \(issue.message)"))
                }
                if issues.isEmpty { devices.append(entry) }
            }
        }
    }
}

extension JSONValue {
    init(toml value: TOMLValue) {
        if let text = value.string { self = .string(text) }
        else if let int = value.int { self = .int(Int64(int)) }
        else if let double = value.double { self = .double(double) }
        else if let bool = value.bool { self = .bool(bool) }
        else if let array = value.array { self = .array(array.map { JSONValue(toml: $0.tomlValue) }) }
        else if let table = value.table {
            var object: [String: JSONValue] = [:]
            for key in table.keys { object[key] = JSONValue(toml: table[key]!.tomlValue) }
            self = .object(object)
        } else { self = .string(value.debugDescription) }
    }
}

/// Typed access to TOML values that records a problem (with its line) instead of throwing,
/// so `--check-config` can list every mistake in one go.
struct ConfigReader {
    let locator: KeyLocator
    var problems: [ConfigProblem] = []

    mutating func problem(section: String, key: String?, _ message: String) {
        problems.append(ConfigProblem(line: locator.line(section: section, key: key), message))
    }

    mutating func unknownKeys(in table: TOMLTable, section: String, known: Set<String>) {
        for key in table.keys.sorted() where !known.contains(key) {
            let place = section.isEmpty ? "at the top level" : "in [\(section)]"
            let near = known.sorted().first { EditDistance.isOneEditAway(key, $0) }
            problem(section: section, key: key, "unknown key \"\(key)\" \(place)" + (near.map { "; did you mean \"\($0)\"?" } ?? "; known: \(known.sorted().joined(separator: ", "))"))
        }
    }

    mutating func table(_ parent: TOMLTable, _ key: String, section: String) -> TOMLTable? {
        guard let value = parent[key] else { return nil }
        guard let table = value.table else {
            problem(section: section, key: key, "\"\(key)\" must be a table: write [\(key)]")
            return nil
        }
        return table
    }

    mutating func string(_ table: TOMLTable, _ key: String, section: String) -> String? {
        guard let value = table[key] else { return nil }
        guard let text = value.string else {
            problem(section: section, key: key, "\(key) must be a string in quotes")
            return nil
        }
        return text
    }

    mutating func int(_ table: TOMLTable, _ key: String, section: String, range: ClosedRange<Int>) -> Int? {
        guard let value = table[key] else { return nil }
        guard let number = value.int else {
            problem(section: section, key: key, "\(key) must be a whole number")
            return nil
        }
        guard range.contains(number) else {
            problem(section: section, key: key, "\(key) = \(number) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return number
    }

    mutating func strings(_ table: TOMLTable, _ key: String, section: String) -> [String]? {
        guard let value = table[key] else { return nil }
        guard let array = value.array, let items = Optional(array.compactMap(\.string)), items.count == array.count else {
            problem(section: section, key: key, "\(key) must be a list of strings, e.g. [\"pos\"]")
            return nil
        }
        return items
    }
}

/// Finds the line a key is on, for error messages. TOMLKit reports lines for syntax
/// errors only; this scans the text for table headers and `key =` lines.
struct KeyLocator {
    /// (section name, line number, key) for every `key =` line; "device#N" for the Nth [[device]].
    private var entries: [(section: String, key: String?, line: Int)] = []

    init(text: String) {
        var section = ""
        var deviceCount = 0
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[[") {
                let name = line.dropFirst(2).prefix { $0 != "]" }.trimmingCharacters(in: .whitespaces)
                section = name == "device" ? "device#\(deviceCount)" : name
                if name == "device" { deviceCount += 1 }
                entries.append((section, nil, index + 1))
            } else if line.hasPrefix("[") {
                section = line.dropFirst().prefix { $0 != "]" }.trimmingCharacters(in: .whitespaces)
                entries.append((section, nil, index + 1))
            } else if let eq = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<eq].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                entries.append((section, key, index + 1))
            }
        }
    }

    func line(section: String, key: String?) -> Int? {
        if let key, let hit = entries.first(where: { $0.section == section && $0.key == key }) { return hit.line }
        // A top-level key written as a table: `[sockets]` is the key "sockets" on its header's line.
        if section.isEmpty, let key, let header = entries.first(where: { $0.section == key && $0.key == nil }) { return header.line }
        if key == nil || section != "" { return entries.first(where: { $0.section == section && $0.key == nil })?.line }
        return nil
    }
}
