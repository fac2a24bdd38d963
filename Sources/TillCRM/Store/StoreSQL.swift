import Foundation

/// SQL text both stores' transactions build the same way.
enum StoreSQL {
    /// `text` anywhere, for LIKE with `\` as the escape (the default in PostgreSQL; SQLite
    /// says `ESCAPE '\'`): its own `%`, `_` and `\` match only themselves.
    static func likePattern(_ text: String) -> String {
        "%" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
    }

    /// The timeline types that count as the customer being active, as an SQL list.
    static let activityTypes = TimelineEntry.Kind.activity.map { "'\($0.rawValue)'" }.joined(separator: ", ")
}
