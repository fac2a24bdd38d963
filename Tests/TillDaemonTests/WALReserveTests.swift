import Foundation
import GRDB
import Testing
import TillCore
import TillSystem
@testable import TillDaemon

/// The journal's WAL is written ahead so a commit overwrites blocks instead of appending
/// (a sync after an append also commits file-system metadata). Checked from outside: the
/// file's size, and what SQLite says after a reopen.
@Suite("The journal's WAL is written ahead", .timeLimit(.minutes(1)))
struct WALReserveTests {
    private func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? -1
    }

    private func rows(_ range: ClosedRange<Int64>) -> [(event: Event, dataJSON: String)] {
        range.map { seq in
            let data: JSONValue = ["sale": .string("S\(seq)")]
            return (Event(seq: seq, time: Date(), topic: "sale.voided", device: nil, data: data), JSONText.encode(data))
        }
    }

    @Test("a new journal has 1 KiB pages and a WAL written ahead that 900 commits do not grow; events survive a reopen")
    func reserveHolds() async throws {
        let path = try temporaryDirectory() + "/j.sqlite"
        let reserve = 32 + Journal.reservedFrames * (Journal.pageSize + 24)
        do {
            let journal = try Journal(path: path)
            #expect(size(path + "-wal") == reserve)
            for seq in Int64(1)...900 { try journal.append(rows(seq...seq)) }  // one commit each, under the checkpoint's 1000
            #expect(size(path + "-wal") == reserve, "commits overwrote the reserve instead of appending")
        }
        // Closed: SQLite checkpointed and removed the WAL. Reopened: the reserve is back, the events are there.
        let reopened = try Journal(path: path)
        #expect(size(path + "-wal") == reserve)
        #expect(try reopened.lastSeq() == 900)
        #expect(try await reopened.events(after: 899, limit: 5).map(\.event.data) == [["sale": "S900"]])
        let pageSize = try await DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") }
        #expect(pageSize == Journal.pageSize)
    }

    @Test("a journal made with 4 KiB pages keeps them, and its reserve is sized for them")
    func existingPageSizeKept() async throws {
        let path = try temporaryDirectory() + "/j.sqlite"
        do {
            let old = try DatabasePool(path: path)  // GRDB's default: 4 KiB pages, WAL
            try await old.write { db in try db.execute(sql: "CREATE TABLE legacy(x)") }
        }
        let journal = try Journal(path: path)
        try journal.append(rows(1...3))
        #expect(size(path + "-wal") == 32 + Journal.reservedFrames * (4096 + 24))
        #expect(try await journal.events(after: 0, limit: 10).count == 3)
    }

    @Test("extending with zeros never changes a byte already there, and is a no-op when long enough")
    func extendKeepsContents() throws {
        let path = try temporaryDirectory() + "/f"
        try Data("header".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try FileSystem.extendWithZeros(path, to: 4096, mode: 0o640) == 4090)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes.count == 4096)
        #expect(bytes.prefix(6) == Data("header".utf8))
        #expect(bytes.dropFirst(6).allSatisfy { $0 == 0 })
        #expect(try FileSystem.extendWithZeros(path, to: 100, mode: 0o640) == 0)
        #expect(size(path) == 4096)
        let created = path + "-new"
        #expect(try FileSystem.extendWithZeros(created, to: 10, mode: 0o600) == 10)
        let mode = (try FileManager.default.attributesOfItem(atPath: created)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
    }
}
