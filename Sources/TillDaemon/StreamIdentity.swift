import Foundation
import TillSystem

/// Which stream of seqs this tilld issues: a random id made once per state directory
/// (`stream.id`, beside `seq.hwm`) and given in `hello` and `status`.
///
/// Seqs are unique within a stream, not across tills. A follower that keeps a cursor for
/// several tills in one place (till-crm on a shared PostgreSQL database) keys each cursor by
/// the stream, so one till's seq 500 is never taken for another's; and a state directory made
/// anew (seqs start again at 1) is a new stream, not an old cursor gone backwards. A journal
/// deleted or replaced under the same state directory keeps its stream: `seq.hwm` carries the
/// seqs on past it.
public enum StreamIdentity {
    public static func load(stateDirectory: String) throws -> String {
        let path = stateDirectory + "/stream.id"
        if let text = FileSystem.contents(path)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty {
            guard UUID(uuidString: text) != nil else {
                throw StartupProblem("\(path) is damaged (it holds \"\(text.prefix(40))\"); it names this till's stream of seqs. Delete it only if every follower may start over (till-crm then treats this till as a new one)")
            }
            return text.lowercased()
        }
        let id = UUID().uuidString.lowercased()
        try FileSystem.replaceDurably(path, contents: id + "\n", mode: 0o644)
        return id
    }
}
