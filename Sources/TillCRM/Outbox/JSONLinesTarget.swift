public import Foundation
import TillCore
import TillSystem

/// Entries appended as JSON lines to `DIR/outbox.jsonl`, one object per line with its `id`,
/// for shops whose other systems collect files. The file is closed and renamed
/// `outbox-YYYYMMDDTHHMMSSZ-SEQ.jsonl` when it reaches `max_bytes` or a new (UTC) day begins;
/// collectors take the renamed files only (the open one is still being written).
///
/// Exactly once, across crashes: before a batch is appended, the file's length is recorded in
/// the store; the batch is synced to disk; then the entries are marked delivered and the note
/// cleared in one transaction. A note still there at the next batch means the last one may
/// be partly written and was not marked: the file is cut back to the noted length first.
public struct JSONLinesTarget: OutboxTarget {
    public struct Settings: Sendable, Hashable {
        public var directory: String
        public var maxBytes = 16 << 20
        public var rotateDaily = true
        /// Entries per append (and fsync).
        public var batch = 2_000

        public init(directory: String) { self.directory = directory }

        public var name: String { "jsonl:" + directory }
    }

    public let settings: Settings
    let clock: OutboxClock

    public init(_ settings: Settings, clock: OutboxClock) {
        self.settings = settings
        self.clock = clock
    }

    public var name: String { settings.name }
    public var concurrent: Bool { false }
    public var batchSize: Int { settings.batch }
    public var activeFile: String { settings.directory + "/outbox.jsonl" }

    /// The line for an entry: its id, then the body's fields.
    public static func line(_ entry: OutboxEntry) -> String {
        "{\"id\":" + JSONText.encode(entry.id) + "," + entry.body.dropFirst() + "\n"
    }

    public func deliver(_ entries: [OutboxEntry], store: any OutboxStore) async -> [DeliveryOutcome] {
        guard !entries.isEmpty else { return [] }
        do {
            try await cutBackUnfinishedBatch(store)
            try rotateIfDue(nextSeq: entries.first?.seq ?? 0)
            let offset = FileSystem.size(activeFile) ?? 0
            let note = JSONText.encode(["file": .string(activeFile), "offset": .int(Int64(offset))] as JSONValue)
            try await store.outboxWrite { [name] in try $0.setTargetCheckpoint(name, to: note) }
            var bytes: [UInt8] = []
            for entry in entries { bytes += Array(Self.line(entry).utf8) }
            try FileSystem.appendDurably(activeFile, bytes, mode: 0o640)
            return Array(repeating: .delivered, count: entries.count)
        } catch {
            return Array(repeating: .unreachable(Self.advice(error, directory: settings.directory)), count: entries.count)
        }
    }

    /// A batch noted and never marked delivered (a crash, a full disk) is cut off the file: its
    /// entries are still pending and are written again.
    func cutBackUnfinishedBatch(_ store: any OutboxStore) async throws {
        guard let note = try await store.outboxRead({ [name] in try $0.targetCheckpoint(name) }),
            let object = (try? JSONText.decode(note))?.objectValue, let file = object["file"]?.stringValue,
            let offset = object["offset"]?.intValue
        else { return }
        if let size = FileSystem.size(file), size > offset { try FileSystem.truncate(file, to: Int(offset)) }
        try await store.outboxWrite { [name] in try $0.setTargetCheckpoint(name, to: nil) }
    }

    func rotateIfDue(nextSeq: Int64) throws {
        if !FileSystem.isDirectory(settings.directory) {
            try FileManager.default.createDirectory(
                atPath: settings.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        }
        guard let size = FileSystem.size(activeFile), size > 0 else { return }
        let now = Date(milliseconds: clock.nowMs)
        var due = size >= settings.maxBytes
        if settings.rotateDaily, let modified = (try? FileManager.default.attributesOfItem(atPath: activeFile))?[.modificationDate] as? Date {
            due = due || Self.day(modified) != Self.day(now)
        }
        guard due else { return }
        let stamp = Timestamp.format(now).prefix(19).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
        try FileSystem.renameDurably(activeFile, to: settings.directory + "/outbox-\(stamp)Z-\(nextSeq).jsonl")
    }

    static func day(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / 86_400).rounded(.down)) }

    static func advice(_ error: any Error, directory: String) -> String {
        let text = String(describing: error)
        if text.contains("errno 28") { return "\(directory): the disk is full (\(text)); free space there" }
        if text.contains("errno 13") || text.contains("errno 1)") {
            return "\(directory): till-crm may not write there (\(text)); give the till-crm user write access"
        }
        if text.contains("errno 30") { return "\(directory) is on a read-only file system (\(text))" }
        return "\(directory): \(text)"
    }
}
