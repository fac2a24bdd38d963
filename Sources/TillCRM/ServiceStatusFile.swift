public import Foundation
import Synchronization
public import TillCore
import TillSystem

/// How `till-crm serve` is doing, for `till-crm status` (another process) to read: a small
/// JSON file in the data directory, replaced whole on each change. It is there because the
/// one thing status must be able to say, "the customer database cannot be reached", cannot be
/// kept in that database.
public final class ServiceStatusFile: Sendable {
    public struct State: Sendable, Hashable {
        public var reachable = true
        public var unreachableSince: Date?
        public var problem: String?

        public mutating func storeUnreachable(since: Date, problem: String) {
            reachable = false
            unreachableSince = since
            self.problem = problem
        }

        public mutating func storeReachable() {
            reachable = true
            unreachableSince = nil
            problem = nil
        }

        var json: JSONValue {
            [
                "store": reachable ? "ok" : "unreachable",
                "unreachable_since": unreachableSince.map { .string(Timestamp.format($0)) } ?? .null,
                "problem": problem.map(JSONValue.string) ?? .null,
                "updated": .string(Timestamp.format(Date())),
                "pid": .int(Int64(ProcessInfo.processInfo.processIdentifier)),
            ]
        }
    }

    public let path: String
    private let state = Mutex(State())

    public init(path: String) {
        self.path = path
        write(State())
    }

    public func update(_ change: (inout State) -> Void) {
        let now = state.withLock { state -> State in
            change(&state)
            return state
        }
        write(now)
    }

    private func write(_ state: State) {
        // Best effort: a status that cannot be written must not stop the service.
        try? FileSystem.replaceDurably(path, contents: JSONText.encode(state.json) + "\n", mode: 0o640)
    }

    /// What the file says (nil: no serve has written one here).
    public static func read(_ path: String) -> JSONValue? {
        FileSystem.contents(path).flatMap { try? JSONText.decode($0) }
    }
}
