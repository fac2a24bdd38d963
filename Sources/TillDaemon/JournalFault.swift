import Foundation
import GRDB
public import TillCore
import TillSystem

/// Why the journal cannot commit, said so that a technician knows what to check. Every op
/// whose effect would be an event fails with `journal_unavailable` and this message while
/// the fault lasts.
public struct JournalFault: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Cause: String, Sendable, Hashable {
        /// The file system is full.
        case diskFull = "disk_full"
        /// The file system or a journal file refuses writes (read-only mount, immutable file, permissions).
        case readOnly = "read_only"
        /// A journal file was deleted or replaced while tilld ran. Lasts until tilld restarts.
        case replaced
        /// The write or the sync failed (I/O error).
        case ioError = "io_error"
    }

    public var cause: Cause
    /// What happened and what to do, in one sentence or two.
    public var message: String

    public init(_ cause: Cause, _ message: String) {
        self.cause = cause
        self.message = message
    }

    public var description: String { message }

    /// A replaced journal cannot come back by itself; the other causes clear when fixed.
    public var needsRestart: Bool { cause == .replaced }

    /// What ends the fault: a restart for a replaced journal; otherwise fixing the cause, as
    /// tilld retries by itself and then commits the events it held.
    public var fix: String {
        needsRestart
            ? "restart tilld (systemctl restart tilld); seq continues where it was"
            : "fix the cause; tilld retries every second and commits the held events in order"
    }

    public var wireError: WireError {
        WireError(
            .journalUnavailable, "the event journal cannot commit, so nothing that would be an event is done: \(message); \(fix), then retry",
            details: ["cause": .string(cause.rawValue)]
        )
    }

    /// Turns a failed write into a fault: SQLite's result code says which kind, and a look at
    /// the files (the seam's `writeProblem`) says which file and what to do about it.
    static func classify(_ error: any Error, journalPath: String) -> JournalFault {
        let files = [journalPath + "-wal", journalPath, journalPath + "-shm", (journalPath as NSString).deletingLastPathComponent]
        let seen = files.lazy.compactMap(FileSystem.writeProblem).first
        guard let error = error as? DatabaseError else {
            if let seen { return JournalFault(seen, detail: "\(error)") }
            return JournalFault(.ioError, "writing the journal failed (\(error)): check the disk (dmesg), free space (df -h) and the state directory's files")
        }
        let detail = "SQLite: \(error.message ?? "\(error.resultCode)")"
        if error.extendedResultCode == .SQLITE_READONLY_DBMOVED {
            return JournalFault(.replaced, "\(journalPath) was deleted or moved while tilld was running (\(detail))")
        }
        if let seen { return JournalFault(seen, detail: detail) }
        switch error.resultCode {
        case .SQLITE_FULL:
            return JournalFault(.diskFull, "the file system holding \(journalPath) is full (\(detail)): free space (df -h)")
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN:
            return JournalFault(.readOnly, "\(journalPath) cannot be written (\(detail)): check the mount (read-only?), the files' modes and attributes (ls -l, lsattr)")
        default:
            return JournalFault(.ioError, "writing \(journalPath) failed (\(detail)): check the disk (dmesg), free space (df -h) and the files' attributes (lsattr)")
        }
    }

    /// A fault from what a look at the files found, with what the failed call said.
    private init(_ problem: WriteProblem, detail: String) {
        self.init(problem.kind == .full ? .diskFull : .readOnly, "\(problem) (\(detail))")
    }
}
