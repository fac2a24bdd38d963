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

    public var wireError: WireError {
        let next = needsRestart
            ? "restart tilld (systemctl restart tilld); seq continues where it was"
            : "tilld retries every second: retry once `tillctl status` shows the journal ok"
        return WireError(
            .journalUnavailable, "the event journal cannot commit, so nothing that would be an event is done: \(message); \(next)",
            details: ["cause": .string(cause.rawValue)]
        )
    }

    /// Turns a failed write into a fault: SQLite's result code says which kind, and a look at
    /// the files (the seam's `writeProblem`) says which file and what to do about it.
    static func classify(_ error: any Error, journalPath: String) -> JournalFault {
        let files = [journalPath + "-wal", journalPath, journalPath + "-shm", (journalPath as NSString).deletingLastPathComponent]
        let seen = files.lazy.compactMap(FileSystem.writeProblem).first
        if let error = error as? DatabaseError {
            let detail = "SQLite: \(error.message ?? "\(error.resultCode)")"
            if error.extendedResultCode == .SQLITE_READONLY_DBMOVED {
                return JournalFault(.replaced, "\(journalPath) was deleted or moved while tilld was running (\(detail))")
            }
            switch error.resultCode {
            case .SQLITE_FULL:
                return JournalFault(.diskFull, seen ?? "the file system holding \(journalPath) is full (\(detail)): free space (df -h)")
            case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN:
                return JournalFault(.readOnly, seen ?? "\(journalPath) cannot be written (\(detail)): check the mount (read-only?), the files' modes and attributes (ls -l, lsattr)")
            default:
                if let seen { return JournalFault(seen.contains("full") ? .diskFull : .readOnly, "\(seen) (\(detail))") }
                return JournalFault(.ioError, "writing \(journalPath) failed (\(detail)): check the disk (dmesg), free space (df -h) and the files' attributes (lsattr)")
            }
        }
        if let seen { return JournalFault(seen.contains("full") ? .diskFull : .readOnly, "\(seen) (\(error))") }
        return JournalFault(.ioError, "writing the journal failed (\(error)): check the disk (dmesg), free space (df -h) and the state directory's files")
    }
}
