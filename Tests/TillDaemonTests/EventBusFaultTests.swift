import Foundation
import Glibc
import Logging
import Synchronization
import Testing
import TillCore
@testable import TillDaemon

/// Runs `chattr` (e2fsprogs): an immutable file refuses writes even to root, through a
/// descriptor that is already open, which is how a journal that cannot commit is made here.
func chattr(_ flag: String, _ path: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
    process.arguments = [flag, path]
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        throw ChattrFailed(description: "chattr \(flag) \(path) failed (\(text)); these tests need root and a file system with attributes (ext4, xfs): set TMPDIR to one")
    }
}

struct ChattrFailed: Error, CustomStringConvertible { var description: String }

/// A bus over a real journal in a temporary directory, its writer thread running until `stop`.
final class BusUnderTest: Sendable {
    let directory: String
    let journal: Journal
    let bus: EventBus
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)

    init(holdLimit: Int = 10_000) throws {
        directory = try temporaryDirectory()
        journal = try Journal(path: directory + "/journal.sqlite")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        bus = try EventBus(
            journal: journal, highWaterMarkPath: directory + "/seq.hwm", logger: logger, holdLimit: holdLimit,
            retryInterval: 0.05, retention: { (3650, nil) })
        let bus = self.bus
        task.withLock { $0 = Task { try await bus.run() } }
    }

    func stop() async throws {
        let running = task.withLock { $0 }
        running?.cancel()
        try await running?.value
    }

    var walPath: String { journal.path + "-wal" }

    /// Waits (bounded) until the bus says the journal is ok again.
    func waitUntilHealthy(timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while bus.health.fault != nil {
            if ContinuousClock.now > deadline { throw TimedOutWaiting(what: "the journal to recover") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

struct TimedOutWaiting: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// `chattr +i` needs root (CAP_LINUX_IMMUTABLE); CI runs as root. The deleted-journal test needs no root.
let canMakeImmutable = getuid() == 0

@Suite("The bus when the journal cannot commit", .serialized, .timeLimit(.minutes(1)))
struct EventBusFaultTests {
    @Test("publishes fail with journal_unavailable naming the file; device events are held, then committed in order with continuous seqs", .enabled(if: canMakeImmutable, "chattr +i needs root"))
    func holdsDeviceEventsAndRecovers() async throws {
        let under = try BusUnderTest()
        let before = try await under.bus.publish(topic: "pos.tick", data: ["n": 0])
        try chattr("+i", under.walPath)
        do {
            _ = try await under.bus.publish(topic: "pos.tick", data: ["n": 1])
            Issue.record("a publish was acknowledged while the journal could not commit")
        } catch let error as WireError {
            #expect(error.code == .journalUnavailable)
            #expect(error.message.contains("chattr -i \(under.walPath)"), "the message names the file and the fix: \(error.message)")
            #expect(error.details?["cause"] == "read_only")
        }
        for n in 2...4 {
            // A device is told (nil from the sink) but its event is not lost.
            await #expect(throws: WireError.self) { try await under.bus.publish(topic: "scanner.data", device: "s", data: ["n": .int(Int64(n))], origin: .device) }
        }
        #expect(under.bus.health.fault?.cause == .readOnly)
        #expect(under.bus.health.held == 3)
        #expect(throws: WireError.self) { try under.bus.requireHealthy() }
        try chattr("-i", under.walPath)
        try await under.waitUntilHealthy()
        let after = try await under.bus.publish(topic: "pos.tick", data: ["n": 5])
        let events = try await under.journal.events(after: before.seq, limit: 100)
        #expect(events.map(\.seq) == Array((before.seq + 1)...after.seq), "seqs continue with no gap and no reuse")
        #expect(events.map(\.topic) == ["daemon.degraded", "scanner.data", "scanner.data", "scanner.data", "pos.tick"])
        #expect(events.dropFirst().dropLast().map { $0.event.data["n"] } == [2, 3, 4], "held events keep their order")
        let notice = events[0].event.data
        #expect(notice["held"] == 3)
        #expect(notice["dropped"] == 0)
        #expect(notice["refused"] == 2, "the publish and requireHealthy")
        #expect(notice["cause"] == "read_only")
        try await under.stop()
    }

    @Test("past the hold limit device events are counted as dropped, and the count is journaled", .enabled(if: canMakeImmutable, "chattr +i needs root"))
    func boundedHold() async throws {
        let under = try BusUnderTest(holdLimit: 2)
        try chattr("+i", under.walPath)
        for n in 1...5 {
            _ = try? await under.bus.publish(topic: "scanner.data", device: "s", data: ["n": .int(Int64(n))], origin: .device)
        }
        #expect(under.bus.health.held == 2)
        #expect(under.bus.health.dropped == 3)
        try chattr("-i", under.walPath)
        try await under.waitUntilHealthy()
        let events = try await under.journal.events(after: 0, limit: 100)
        #expect(events.map(\.topic) == ["daemon.degraded", "scanner.data", "scanner.data"])
        #expect(events[0].event.data["dropped"] == 3)
        #expect(events.dropFirst().map { $0.event.data["n"] } == [1, 2], "the oldest are kept, the newest dropped")
        #expect(under.bus.health.droppedTotal == 3, "status keeps the total after recovery")
        try await under.stop()
    }

    @Test("a fault with nothing waiting is still noticed and, once fixed, put on record", .enabled(if: canMakeImmutable, "chattr +i needs root"))
    func probeRecovers() async throws {
        let under = try BusUnderTest()
        try chattr("+i", under.walPath)
        await #expect(throws: WireError.self) { try await under.bus.publish(topic: "pos.tick", data: [:]) }
        try chattr("-i", under.walPath)
        // Nobody publishes: the writer's retry finds the journal writable by itself.
        try await under.waitUntilHealthy()
        let events = try await under.journal.events(after: 0, limit: 10)
        #expect(events.map(\.topic) == ["daemon.degraded"])
        try await under.stop()
    }

    @Test("a journal file deleted under the bus is detected before an acknowledgement, and stays refused")
    func deletedJournal() async throws {
        let under = try BusUnderTest()
        _ = try await under.bus.publish(topic: "pos.tick", data: [:])
        try FileManager.default.removeItem(atPath: under.walPath)
        do {
            _ = try await under.bus.publish(topic: "pos.tick", data: [:])
            Issue.record("a publish into a deleted journal was acknowledged")
        } catch let error as WireError {
            #expect(error.code == .journalUnavailable)
            #expect(error.details?["cause"] == "replaced")
            #expect(error.message.contains("restart tilld"))
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(under.bus.health.fault?.cause == .replaced, "a replaced journal does not come back by itself")
        try await under.stop()
    }

    @Test("a clean stop records the last seq; a new bus continues right after it, even over a new journal")
    func highWaterMarkAcrossJournals() async throws {
        let under = try BusUnderTest()
        var last: Int64 = 0
        for _ in 0..<3 { last = try await under.bus.publish(topic: "pos.tick", data: [:]).seq }
        try await under.stop()
        #expect(try SeqHighWaterMark.read(under.directory + "/seq.hwm") == .clean(last))
        // The journal is gone (a technician "reset" it); seq must not start over.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: under.journal.path + suffix) }
        let fresh = try Journal(path: under.journal.path)
        let bus = try EventBus(journal: fresh, highWaterMarkPath: under.directory + "/seq.hwm", logger: Logger(label: "test"), retention: { (30, nil) })
        #expect(bus.lastSeq == last)
    }
}

@Suite("Seq high-water mark", .timeLimit(.minutes(1)))
struct SeqHighWaterMarkTests {
    @Test(
        "where seq continues at start",
        arguments: [
            (journal: Int64(10), recorded: SeqHighWaterMark.Recorded?.none, expected: Int64(10), noted: false),
            (10, .clean(10), 10, false),
            (10, .clean(7), 10, false),
            (0, .clean(10), 10, true),  // journal deleted while stopped
            (4, .clean(10), 10, true),  // older backup restored
            (10, .reserved(4106), 4106, true),  // did not stop cleanly: skip the reserved block
            (5000, .reserved(4106), 5000, false),
        ]
    )
    func start(journal: Int64, recorded: SeqHighWaterMark.Recorded?, expected: Int64, noted: Bool) {
        let (seq, note) = SeqHighWaterMark.start(journalLastSeq: journal, recorded: recorded)
        #expect(seq == expected)
        #expect((note != nil) == noted)
    }

    @Test("the mark on disk always covers the seqs handed out")
    func reserveAhead() throws {
        let path = try temporaryDirectory() + "/seq.hwm"
        var mark = try SeqHighWaterMark(path: path, lastSeq: 100)
        #expect(try SeqHighWaterMark.read(path) == .reserved(101 + SeqHighWaterMark.block))
        try mark.reserve(through: 101 + SeqHighWaterMark.block)
        #expect(try SeqHighWaterMark.read(path) == .reserved(101 + SeqHighWaterMark.block), "still covered: no write")
        try mark.reserve(through: 102 + SeqHighWaterMark.block)
        #expect(try SeqHighWaterMark.read(path) == .reserved(102 + 2 * SeqHighWaterMark.block))
        try mark.close(lastSeq: 150)
        #expect(try SeqHighWaterMark.read(path) == .clean(150))
    }

    @Test("a damaged mark stops the start with a way out, rather than guessing")
    func damaged() throws {
        let path = try temporaryDirectory() + "/seq.hwm"
        try "garbage".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: StartupProblem.self) { try SeqHighWaterMark.read(path) }
    }
}

