import TillSystem

/// The highest seq tilld may have handed out, kept in a small file beside the journal
/// (`seq.hwm` in the state directory) rather than inside it, so that a journal deleted,
/// replaced or restored from a backup cannot take seq backwards.
///
/// Writing the mark at every commit would double the syncs, so it is written ahead: before
/// a commit would pass the reserved seq, a new mark `reserved N+block` is made durable. A
/// clean stop writes `clean LAST`. At start:
/// - `clean N`: continue after max(journal's newest, N), with no gap;
/// - `reserved N` (the previous run did not stop cleanly): continue after max(journal's
///   newest, N). Seq may jump by up to one block there, but never repeats: a commit lost
///   with the power (`sync = "normal"`) or a journal put back from a backup cannot make an
///   already delivered seq be issued again.
struct SeqHighWaterMark: Sendable {
    static let block: Int64 = 4096

    enum Recorded: Equatable {
        case clean(Int64)
        case reserved(Int64)
    }

    let path: String
    private(set) var reserved: Int64

    /// What the file says, or nil if there is none (a new state directory, or an upgrade).
    static func read(_ path: String) throws -> Recorded? {
        guard let text = FileSystem.contents(path) else { return nil }
        let words = text.split(whereSeparator: \.isWhitespace)
        guard words.count == 2, let value = Int64(words[1]), value >= 0 else {
            throw StartupProblem("\(path) is damaged (it holds \"\(text.prefix(40))\"); it records the highest seq tilld issued. If you know that number, write \"clean N\" into it; otherwise write \"clean 0\" only if every client may see seq start over")
        }
        switch words[0] {
        case "clean": return .clean(value)
        case "reserved": return .reserved(value)
        default: throw StartupProblem("\(path) is damaged: it starts with \"\(words[0])\", not clean or reserved")
        }
    }

    /// Where seq continues after a start, and why it is ahead of the journal when it is.
    static func start(journalLastSeq: Int64, recorded: Recorded?) -> (lastSeq: Int64, note: String?) {
        switch recorded {
        case nil:
            return (journalLastSeq, nil)
        case .clean(let issued):
            guard journalLastSeq < issued else { return (journalLastSeq, nil) }
            return (issued, "the journal's newest seq is \(journalLastSeq) but tilld had issued up to \(issued): the journal was deleted, replaced or restored while tilld was stopped. Seq continues after \(issued), so none is issued twice; events \(journalLastSeq + 1)...\(issued) are not in this journal")
        case .reserved(let reserved):
            guard journalLastSeq < reserved else { return (journalLastSeq, nil) }
            return (reserved, "tilld did not stop cleanly last time: seq continues after \(reserved), the highest it may have issued, rather than after the journal's newest (\(journalLastSeq))")
        }
    }

    /// Opens the mark for a run that continues after `lastSeq`, reserving the first block.
    init(path: String, lastSeq: Int64) throws {
        self.path = path
        reserved = lastSeq
        try reserve(through: lastSeq + 1)
    }

    /// Makes sure `seq` is covered by the mark on disk before anyone can see it.
    mutating func reserve(through seq: Int64) throws {
        guard seq > reserved else { return }
        let next = seq + Self.block
        try FileSystem.replaceDurably(path, contents: "reserved \(next)\n")
        reserved = next
    }

    /// Records a clean stop: the next start continues right after `lastSeq`.
    func close(lastSeq: Int64) throws {
        try FileSystem.replaceDurably(path, contents: "clean \(lastSeq)\n")
    }
}

/// A reason tilld cannot start, said so a person can fix it.
public struct StartupProblem: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
