import Foundation
import TOMLKit

/// `[store]` in till-crm.toml: where customer memory lives. Without it, SQLite in data_dir.
///
///     [store]
///     url = "postgres://till_crm@db.shop.lan:5432/till_crm"
///     password_file = "/etc/till-crm/db.password"   # or TILL_CRM_DB_PASSWORD in the environment
///     pool_size = 4                                  # connections, 1 to 64
///     schema = "shop_north"                          # optional: tables in this schema
extension CRMConfig {
    static let storeKeys = ["url", "password_file", "pool_size", "schema"]

    static func parseStore(_ table: TOMLTable, into config: inout CRMConfig, file: String, line: (String) -> String, problems: inout [String]) {
        guard let value = table["store"] else { return }
        guard let section = value.table else {
            problems.append("\(file)\(line("store")): store is a table: write [store] on a line of its own, its settings below")
            return
        }
        func problem(_ key: String, _ text: String) { problems.append("\(file)\(line(key)): [store] \(key) \(text)") }
        for key in section.keys.sorted() where !storeKeys.contains(key) {
            problem(key, "is not a setting; known: \(storeKeys.joined(separator: ", "))")
        }
        guard let url = section["url"]?.string else {
            problem("url", "is missing: url = \"postgres://USER@HOST:5432/DATABASE\" (leave [store] out to keep the SQLite file in data_dir)")
            return
        }
        var password: String?
        if let path = section["password_file"]?.string {
            password = secretFile(path, "database password", file: file, line: line("password_file"), problems: &problems)
        } else if let value = ProcessInfo.processInfo.environment["TILL_CRM_DB_PASSWORD"], !value.isEmpty {
            password = value
        }
        do {
            var settings = try PostgresSettings(url: url, password: password)
            if let value = section["pool_size"] {
                if let size = value.int, (1...64).contains(size) { settings.poolSize = size } else { problem("pool_size", "must be a whole number from 1 to 64") }
            }
            if let value = section["schema"] {
                if let schema = value.string, !schema.isEmpty, schema.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
                    settings.schema = schema
                } else {
                    problem("schema", "must be a name of letters, digits and _")
                }
            }
            config.postgres = settings
        } catch {
            problems.append("\(file)\(line("url")): \(error)")
        }
    }
}
