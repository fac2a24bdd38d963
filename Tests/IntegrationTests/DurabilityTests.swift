import Foundation
import Glibc
import Testing
import TillClient
import TillCore

/// What strace saw: for each publish reply written to a socket, whether the journal's WAL
/// had been written since its last completed sync (then the reply promised something that a
/// power cut could still take away).
struct SyncTrace {
    struct Reply: Equatable {
        var seq: Int64
        var walSyncedBeforeReply: Bool
    }

    var replies: [Reply] = []
    var walSyncs = 0

    /// Reads tilld's trace: every publish reply, and whether its commit was synced first.
    init(_ text: String) {
        let scan = Self.socketWrites(in: text, wal: "journal.sqlite-wal>", marker: #"\"type\":\"reply\""#)
        walSyncs = scan.walSyncs
        for (line, synced) in scan.writes {
            guard let range = line.range(of: #"\"seq\":"#), let seq = Int64(line[range.upperBound...].prefix { $0.isNumber }) else { continue }
            replies.append(Reply(seq: seq, walSyncedBeforeReply: synced))
        }
    }

    /// For each socket write that contains `marker`, whether the WAL named `wal` was synced since
    /// it was last written.
    static func writes(in text: String, wal: String, marker: String) -> [Bool] {
        socketWrites(in: text, wal: wal, marker: marker).writes.map(\.synced)
    }

    /// Reads `strace -f -y -e trace=fsync,fdatasync,pwrite64,write,writev,sendmsg` output.
    /// Lines are in the order strace saw the calls; a call interrupted by another thread's is
    /// split into `<unfinished ...>` and `<... NAME resumed>`, and a sync counts when it returns.
    static func socketWrites(in text: String, wal: String, marker: String) -> (writes: [(line: Substring, synced: Bool)], walSyncs: Int) {
        var walDirty = false
        var walSyncs = 0
        var writes: [(line: Substring, synced: Bool)] = []
        var syncInFlight: Set<Substring> = []  // pids with a WAL sync started, not yet returned
        for line in text.split(separator: "\n") {
            let pid = line.prefix { $0 != " " }
            let isSync = line.contains("fdatasync(") || line.contains("fsync(")
            if isSync, line.contains(wal) {
                if line.contains("<unfinished") {
                    syncInFlight.insert(pid)
                } else if line.contains(") = 0") {
                    walDirty = false
                    walSyncs += 1
                }
            } else if line.contains("<... fdatasync resumed>") || line.contains("<... fsync resumed>") {
                if syncInFlight.remove(pid) != nil, line.contains(") = 0") {
                    walDirty = false
                    walSyncs += 1
                }
            } else if line.contains("pwrite64("), line.contains(wal) {
                walDirty = true
            } else if line.contains("socket:["), line.contains(marker) {
                writes.append((line, !walDirty))
            }
        }
        return (writes, walSyncs)
    }
}

/// Calls in an strace that read the WAL's timestamps while publishes were answered (between
/// the first and the last socket write containing `marker`). On kernels with multigrain
/// timestamps (6.13 on), reading a file's mtime or ctime makes its next write take a
/// fine-grained one, so the inode is dirtied at every commit and every sync writes it too:
/// one more block write per publish. `statx` asking for the inode alone reads no timestamp.
func walTimestampReads(in text: String, wal: String, marker: String) -> [Substring] {
    let lines = text.split(separator: "\n")
    let replies = lines.indices.filter { lines[$0].contains("socket:[") && lines[$0].contains(marker) }
    guard let first = replies.first, let last = replies.last else { return [] }
    let statCalls = ["stat(", "statx(", "lstat(", "fstat(", "newfstatat(", "fstatat64("]
    let timestampMasks = ["STATX_BASIC_STATS", "STATX_ALL", "STATX_MTIME", "STATX_CTIME"]
    return lines[first...last].filter { line in
        guard line.contains(wal + "\"") || line.contains(wal + ">") else { return false }
        guard statCalls.contains(where: { line.contains($0) }) else { return false }
        // The mask asked for, not the one the kernel answers with (inside the braces).
        let request = line.prefix { $0 != "{" }
        let inodeOnly = request.contains("statx(") && !timestampMasks.contains(where: { request.contains($0) })
        return !inodeOnly
    }
}

@Suite("Durability and journal faults, observed from outside", .serialized, .timeLimit(.minutes(3)))
struct DurabilityTests {
    static let hasStrace = FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")

    /// Publishes one at a time to a tilld run under strace (tracing `syscalls`, descriptors
    /// named by `-y`) and returns the trace's text and the acknowledged seqs.
    private func publishUnderStrace(config: String? = nil, syscalls: String, publishes: Int) async throws -> (trace: String, acknowledged: [Int64]) {
        let directory = NSTemporaryDirectory() + "tilld-strace-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tracePath = directory + "/trace"
        let daemon = try await DaemonUnderTest(
            config: config, demo: false,
            wrapper: ["/usr/bin/strace", "-f", "-qq", "-y", "-s", "200", "-e", "signal=none",
                      "-e", "trace=\(syscalls)", "-o", tracePath])
        let acknowledged = try await daemon.connect { till in
            var seqs: [Int64] = []
            for index in 0..<publishes {
                let result = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": .string("S\(index)")]])
                seqs.append(result["seq"]!.intValue!)
            }
            return seqs
        }
        #expect(await daemon.stop() == 0)
        return (try String(contentsOfFile: tracePath, encoding: .utf8), acknowledged)
    }

    /// Publishes one at a time under strace and returns what the trace says about each reply.
    private func traced(sync: String, publishes: Int) async throws -> (trace: SyncTrace, acknowledged: [Int64]) {
        let (text, acknowledged) = try await publishUnderStrace(
            config: "[journal]\nsync = \"\(sync)\"\n", syscalls: "fsync,fdatasync,pwrite64,write,writev,sendmsg", publishes: publishes)
        return (SyncTrace(text), acknowledged)
    }

    @Test("sync = full: every acknowledged publish was synced to disk before its reply was written (strace)", .enabled(if: hasStrace))
    func everyAcknowledgementFollowsASync() async throws {
        let (trace, acknowledged) = try await traced(sync: "full", publishes: 40)
        let replied = trace.replies.filter { acknowledged.contains($0.seq) }
        #expect(replied.count == acknowledged.count, "every reply was seen on the wire")
        let unsynced = replied.filter { !$0.walSyncedBeforeReply }.map(\.seq)
        #expect(unsynced.isEmpty, "acknowledged before their commit was synced: \(unsynced)")
        #expect(trace.walSyncs >= acknowledged.count, "one sync per commit at least (\(trace.walSyncs) for \(acknowledged.count))")
    }

    @Test("the check above can fail: with sync = normal it finds the unsynced acknowledgements", .enabled(if: hasStrace))
    func theCheckSeesMissingSyncs() async throws {
        let (trace, acknowledged) = try await traced(sync: "normal", publishes: 20)
        let replied = trace.replies.filter { acknowledged.contains($0.seq) }
        #expect(replied.count == acknowledged.count)
        #expect(replied.filter { !$0.walSyncedBeforeReply }.count >= acknowledged.count / 2)
        #expect(trace.walSyncs < acknowledged.count)
    }

    @Test("while publishes are answered, nothing reads the WAL's timestamps (strace), so a commit's sync need not write its inode", .enabled(if: hasStrace))
    func walTimestampsUnread() async throws {
        let (text, _) = try await publishUnderStrace(syscalls: "stat,lstat,fstat,newfstatat,statx,write,writev,sendmsg", publishes: 20)
        #expect(text.contains("journal.sqlite-wal\", AT_STATX_SYNC_AS_STAT, STATX_INO"), "the journal's replacement check is in the trace")
        let reads = walTimestampReads(in: text, wal: "journal.sqlite-wal", marker: #"\"type\":\"reply\""#)
        #expect(reads.isEmpty, "the WAL's timestamps were read between commits: \(reads.prefix(3))")
    }

    @Test("the check above can fail: a stat or a full statx of the WAL is found, an inode-only statx is not")
    func walTimestampCheckCanFail() {
        let trace = """
            7 write(9<socket:[1]>, "{\\"type\\":\\"reply\\",\\"id\\":1}\\n", 30) = 30
            7 statx(AT_FDCWD, "/s/journal.sqlite-wal", AT_STATX_SYNC_AS_STAT, STATX_INO, {stx_mask=STATX_BASIC_STATS|STATX_MNT_ID, stx_ino=12}) = 0
            7 newfstatat(AT_FDCWD, "/s/journal.sqlite-wal", {st_mode=S_IFREG|0640, st_size=1024}, 0) = 0
            7 fstat(8</s/journal.sqlite-wal>, {st_mode=S_IFREG|0640}) = 0
            7 statx(AT_FDCWD, "/s/journal.sqlite-wal", AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS, {stx_mask=STATX_BASIC_STATS}) = 0
            7 newfstatat(AT_FDCWD, "/s/journal.sqlite", {st_mode=S_IFREG|0640}, 0) = 0
            7 write(9<socket:[1]>, "{\\"type\\":\\"reply\\",\\"id\\":2}\\n", 30) = 30
            7 newfstatat(AT_FDCWD, "/s/journal.sqlite-wal", {st_mode=S_IFREG|0640}, 0) = 0
            """
        let reads = walTimestampReads(in: trace, wal: "journal.sqlite-wal", marker: #"\"type\":\"reply\""#)
        #expect(reads.count == 3)
        #expect(reads.allSatisfy { !$0.contains("STATX_INO,") })
    }

    @Test("the journal unwritable: publish, a device event, print and drawer say so; status and doctor fail; recovery keeps seqs continuous and loses nothing", .enabled(if: getuid() == 0, "chattr +i needs root"))
    func unwritableJournal() async throws {
        let daemon = try await DaemonUnderTest()
        let wal = daemon.stateDirectory + "/journal.sqlite-wal"
        let before = try await daemon.connect { till in
            let seq = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "S0"]])["seq"]!.intValue!
            // The drawer closes by itself 2 s after opening: that event will arrive during the fault.
            try await till.request("simulate", ["device": "sim-drawer", "data": ["close_after": 2]])
            try await till.request("drawer.open")
            return seq
        }
        try chattrInTest("+i", wal)
        defer { try? chattrInTest("-i", wal) }
        do {
            try await daemon.connect { till in
                _ = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "lost?"]])
            }
            Issue.record("a publish was acknowledged while the journal could not commit")
        } catch let error as WireError {
            #expect(error.code == .journalUnavailable)
            #expect(error.message.contains("chattr -i \(wal)"), "\(error.message)")
        }
        for command in [["simulate", "scan", "4006381333931"], ["drawer", "open"], ["print", "test"]] {
            let (code, _, stderr) = try await daemon.tillctl(command)
            #expect(code == 1, "tillctl \(command.joined(separator: " ")) must fail")
            #expect(stderr.contains("journal_unavailable") && stderr.contains("chattr -i"), "\(stderr)")
        }
        // Cancelling is an act too: its printer.job event could not be journaled.
        _ = try await daemon.connect { till in
            await #expect { try await till.request("print.cancel", ["job": "J1"]) } throws: { error in
                (error as? WireError)?.code == .journalUnavailable
            }
        }
        let (statusCode, statusOut, _) = try await daemon.tillctl(["status"])
        #expect(statusCode == 1)
        #expect(statusOut.contains("DEGRADED") && statusOut.contains("chattr -i"), "\(statusOut)")
        let (doctorCode, doctorOut, _) = try await daemon.tillctl(["doctor"])
        #expect(doctorCode == 1)
        #expect(doctorOut.contains("FAIL journal commits events"), "\(doctorOut)")
        // Wait for the drawer's own event to be held.
        try await poll("the drawer.closed event to be held") {
            let (_, out, _) = try await daemon.tillctl(["status", "--json"])
            return (try? JSONText.decode(out))?["journal"]?["held"]?.intValue ?? 0 >= 1
        }
        try chattrInTest("-i", wal)
        try await poll("the journal to recover") { try await daemon.tillctl(["status"]).0 == 0 }
        try await daemon.connect { till in
            let after = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "S1"]])["seq"]!.intValue!
            try await till.request("subscribe", ["since": .int(before - 1)])
            let events = try await till.collect { $0.last?.seq == after }
            #expect(events.map(\.seq) == Array(before...after), "no gap, no reuse across the fault")
            // The kick's audit entry and the drawer's own report of opening race (the printer
            // answers in microseconds); either order is right.
            #expect(events.map(\.topic).enumerated().map { $0.offset == 1 || $0.offset == 2 ? "drawer.kicked|opened" : $0.element }
                == ["sale.voided", "drawer.kicked|opened", "drawer.kicked|opened", "daemon.degraded", "drawer.closed", "sale.voided"], "\(events.map(\.topic))")
            #expect(Set(events[1...2].map(\.topic)) == ["drawer.opened", "drawer.kicked"])
            #expect(events.first?.data["sale"] == "S0" && events.last?.data["sale"] == "S1")
            let notice = events[3].data
            #expect(notice["held"] == 1)
            #expect(notice["dropped"] == 0)
            #expect(notice["refused"]?.intValue ?? 0 >= 5, "publish, scan, drawer, print, cancel")
            #expect(events[4].time < events[3].time, "a held event keeps the time it happened")
            #expect(!events.contains { $0.data["sale"] == "lost?" }, "a refused publish never appears")
        }
    }

    @Test("a journal deleted while tilld runs is refused and logged; after a restart seq goes on, never reused")
    func deletedJournal() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        let last = try await daemon.connect { till in
            try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "S0"]])["seq"]!.intValue!
        }
        for suffix in ["", "-wal", "-shm"] { try FileManager.default.removeItem(atPath: daemon.stateDirectory + "/journal.sqlite" + suffix) }
        do {
            try await daemon.connect { till in _ = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "S1"]]) }
            Issue.record("a publish into a deleted journal was acknowledged")
        } catch let error as WireError {
            #expect(error.code == .journalUnavailable)
            #expect(error.details?["cause"] == "replaced")
            #expect(error.message.contains("deleted") && error.message.contains("restart tilld"), "\(error.message)")
        }
        #expect(daemon.log.contains("was deleted while tilld was running"))
        let (code, out, _) = try await daemon.tillctl(["status"])
        #expect(code == 1 && out.contains("restart tilld"), "\(out)")
        #expect(await daemon.stop() == 0)
        try await daemon.start()
        try await daemon.connect { till in
            #expect(till.hello.seq >= last, "hello's seq does not go back with the journal")
            let next = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "S2"]])["seq"]!.intValue!
            #expect(next > last, "seq \(next) must not reuse \(last) or below")
        }
        #expect(daemon.log.contains("seq continues past the journal"))
    }

    @Test("till-crm's store syncs its WAL after writing a sale (strace), not only at checkpoints", .enabled(if: hasStrace))
    func crmStoreSyncs() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        let tracePath = daemon.directory + "/crm.trace"
        let dataDirectory = daemon.directory + "/crm"
        let crm = Process()
        crm.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        crm.arguments = ["-f", "-qq", "-y", "-e", "signal=none", "-e", "trace=fsync,fdatasync,pwrite64", "-o", tracePath,
                         Binaries.directory.appendingPathComponent("till-crm").path,
                         "serve", "--socket", daemon.socket, "--data-dir", dataDirectory, "--region", "GB"]
        crm.standardError = FileHandle.nullDevice
        crm.standardOutput = FileHandle.nullDevice
        let crmExit = ChildExit(crm)
        try crm.run()
        defer {
            // till-crm first: killing strace alone would leave it running, detached.
            let children = (try? String(contentsOfFile: "/proc/\(crm.processIdentifier)/task/\(crm.processIdentifier)/children", encoding: .utf8)) ?? ""
            for child in children.split(separator: " ").compactMap({ Int32($0) }) { kill(child, SIGKILL) }
            if !crmExit.hasExited { kill(crm.processIdentifier, SIGKILL) }
            crmExit.wait(seconds: 10)
        }
        try await daemon.connect { till in
            try await till.sale("S1", total: "12.00", identify: ["email": "ann@example.com"])
        }
        try await poll("till-crm to record the sale", timeout: .seconds(60)) {
            let (code, _, _) = try runProcess(Binaries.directory.appendingPathComponent("till-crm").path,
                                              ["customer", "show", "ann@example.com", "--data-dir", dataDirectory, "--region", "GB"])
            return code == 0
        }
        // Read the trace once till-crm is idle, while it still runs: its stop would checkpoint
        // (and sync) the WAL whatever the setting, and hide a missing sync per commit.
        var size = -1
        try await poll("till-crm to be idle", every: .milliseconds(500)) {
            let now = (try? FileManager.default.attributesOfItem(atPath: tracePath)[.size] as? Int) ?? 0
            defer { size = now }
            return now == size
        }
        let trace = try String(contentsOfFile: tracePath, encoding: .utf8).split(separator: "\n")
        let wal = "crm.sqlite-wal>"
        let lastWrite = trace.lastIndex { $0.contains("pwrite64(") && $0.contains(wal) }
        let lastSync = trace.lastIndex { ($0.contains("fdatasync(") || $0.contains("fsync(")) && $0.contains(wal) }
        #expect(lastWrite != nil, "till-crm wrote its WAL")
        #expect(lastSync.map { sync in lastWrite.map { sync > $0 } ?? false } ?? false,
                "the WAL was synced after the last write (last write at line \(lastWrite ?? -1), last sync at \(lastSync ?? -1))")
    }

    @Test("hello says seq 0 on a new journal")
    func newJournal() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        try await daemon.connect { till in #expect(till.hello.seq == 0) }
    }

    @Test("print to a device that is not a printer is bad_request, to an unknown one not_found")
    func printErrorCodes() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            let receipt: JSONValue = ["lines": [["text": "x"]]]
            await #expect { try await till.request("print", ["device": "sim-drawer", "receipt": receipt]) } throws: { error in
                (error as? WireError)?.code == .badRequest
            }
            await #expect { try await till.request("print", ["device": "nowhere", "receipt": receipt]) } throws: { error in
                (error as? WireError)?.code == .notFound
            }
        }
    }

    @Test("a flood of bad lines is logged a few times, not once per line")
    func badRequestLogIsRateLimited() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        let client = try RawClient(path: daemon.socket)
        _ = try client.readLine()
        for _ in 0..<60 { try client.send("{not json\n") }
        for _ in 0..<60 { _ = try client.reply() }
        let logged = daemon.log.components(separatedBy: "bad request").count - 1
        #expect(logged >= 1 && logged <= 10, "\(logged) log lines for 60 bad requests")
        client.close()
    }
}

/// Polls `condition` every 100 ms for at most `timeout`.
func poll(_ what: String, timeout: Duration = .seconds(15), every interval: Duration = .milliseconds(100), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        if ContinuousClock.now > deadline { throw TimedOut(what: what) }
        try await Task.sleep(for: interval)
    }
}

func chattrInTest(_ flag: String, _ path: String) throws {
    let (code, _, error) = try runProcess("/usr/bin/chattr", [flag, path])
    guard code == 0 else {
        throw SetupFailed(description: "chattr \(flag) \(path) failed: \(error); these tests need root and a file system with attributes (ext4, xfs) for TMPDIR")
    }
}

struct SetupFailed: Error, CustomStringConvertible { var description: String }
