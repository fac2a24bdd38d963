import AsyncHTTPClient
import Foundation
import Logging
import Testing
import TillCore
@testable import TillCRM

@Suite("Outbox: JSON-lines files", .timeLimit(.minutes(1)))
struct OutboxJSONLinesTests {
    func lines(in directory: String) throws -> [(file: String, id: String)] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".jsonl") }.sorted { a, b in
            // Rotated files first (in the order they were closed: their names end in the first seq), the open one last.
            func key(_ name: String) -> Int { name == "outbox.jsonl" ? .max : Int(name.split(separator: "-").last!.dropLast(6)) ?? 0 }
            return key(a) < key(b)
        }
        return try files.flatMap { file in
            try String(contentsOfFile: directory + "/" + file, encoding: .utf8).split(separator: "\n").map { line in
                let object = try JSONText.decode(String(line)).objectValue ?? [:]
                return (file, object["id"]?.stringValue ?? "?")
            }
        }
    }

    @Test("each entry written once, in order, across rotations, a batch cut off by a crash, and one written but never marked")
    func exactlyOnce() async throws {
        let ledger = try await Ledger()
        for n in 0..<40 { _ = try await ledger.sale("S\(n)", total: "4.00", identify: ["email": .string("p\(n % 7)@example.com")]) }
        let directory = NSTemporaryDirectory() + "till-crm-jsonl-" + UUID().uuidString
        var settings = JSONLinesTarget.Settings(directory: directory)
        settings.maxBytes = 8_192
        settings.rotateDaily = false
        settings.batch = 10
        let clock = OutboxClock()
        let target = JSONLinesTarget(settings, clock: clock)
        var outbox = OutboxSettings()
        outbox.pollMs = 20
        let service = OutboxService(store: ledger.store, targets: [target], settings: outbox, clock: clock, logger: Logger(label: "test"))
        try await ledger.store.outboxWrite { try $0.registerTarget(target.name) }
        let entries = try await ledger.entries()

        // One batch goes through.
        #expect(try await service.round(target).delivered > 0)
        // A crash half-way through appending the next: the length noted, half a line on disk.
        let size = FileSystem.size(target.activeFile) ?? 0
        try await ledger.store.outboxWrite { try $0.setTargetCheckpoint(target.name, to: #"{"file":"\#(target.activeFile)","offset":\#(size)}"#) }
        try FileSystem.appendDurably(target.activeFile, Array(#"{"id":"msg_torn","type":"custo"#.utf8), mode: 0o640)
        // And a batch written in full whose marking never committed (killed in between).
        let next = try await ledger.store.outboxRead { try $0.dueDeliveries(target: target.name, nowMs: .max, headsOnly: false, limit: 5) }
        _ = await target.deliver(next.map(\.entry), store: ledger.store)

        while try await service.round(target).delivered > 0 {}
        let written = try lines(in: directory)
        #expect(written.map(\.id) == entries.map(\.id), "every entry once, in order (\(written.count) lines for \(entries.count) entries)")
        #expect(Set(written.map(\.file)).count > 2, "rotated at max_bytes")
        let mode = try FileManager.default.attributesOfItem(atPath: target.activeFile)[.posixPermissions] as? Int
        #expect(mode == 0o640)
        let note = try await ledger.store.outboxRead { try $0.targetCheckpoint(target.name) }
        #expect(note == nil, "\(note ?? "")")
    }

    @Test("a folder that cannot be written: the entries wait, and the reason says what to do")
    func unwritable() async throws {
        let ledger = try await Ledger()
        _ = try await ledger.sale("S1", total: "4.00", identify: ["email": "ann@example.com"])
        let target = JSONLinesTarget(JSONLinesTarget.Settings(directory: "/proc/till-crm-cannot-be-here"), clock: OutboxClock())
        let service = OutboxService(store: ledger.store, targets: [target], settings: OutboxSettings(), clock: OutboxClock(), logger: Logger(label: "test"))
        try await ledger.store.outboxWrite { try $0.registerTarget(target.name) }
        let round = try await service.round(target)
        #expect(round.delivered == 0 && round.pausedUntilMs != nil)
        let status = try #require(try await ledger.store.outboxRead { try $0.outboxStatus() }.first)
        #expect(status.pending == (try await ledger.entries().count) && status.dead == 0)
        #expect(status.lastError?.hasPrefix("/proc/till-crm-cannot-be-here") == true, "\(status.lastError ?? "")")
    }
}

import TillSystem
