import Foundation
import Glibc
import Testing
import TillClient
import TillCore

/// till-crm's promises about following tilld: it resumes after a lag and after retention
/// pruned what it had not seen, a greeting tilld refuses does not stop it, and a greeting is
/// sent only once the sale it describes is committed.
@Suite("till-crm following tilld", .serialized, .timeLimit(.minutes(5)))
struct CRMResumeTests {
    @Test("stopped (SIGSTOP) until tilld lags it, then continued: it resubscribes from its cursor and records every sale once")
    func resumesAfterLag() async throws {
        let daemon = try await DaemonUnderTest(config: "[socket]\nqueue_bytes = 65536\nlag_grace_seconds = 60\n", demo: false)
        let crm = try CRMUnderTest(daemon: daemon)
        try await crm.eventually("till-crm to follow") { crm.log.contains("following tilld") }
        kill(crm.pid, SIGSTOP)
        let sales: Int64 = 300
        let pad = String(repeating: "x", count: 2000)
        try await daemon.connect { till in
            for index in 0..<sales {
                try await till.request("publish", ["topic": "sale.started", "data": ["sale": .string("S\(index)"), "till": "T1", "staff": .string(pad)]])
                try await till.request("publish", ["topic": "customer.identified", "data": ["sale": .string("S\(index)"), "email": "lag@example.com"]])
                try await till.request("publish", ["topic": "sale.completed", "data": ["sale": .string("S\(index)"), "total": "1.00", "currency": "EUR"]])
            }
        }
        try await poll("tilld to lag the stopped till-crm") { daemon.log.contains("subscriber lagged") }
        kill(crm.pid, SIGCONT)
        try await crm.eventually("every sale") { try crm.profile("lag@example.com")?["visits"]?.intValue == sales }
        #expect(crm.log.contains("fell behind tilld; resubscribing"), "it read the lag notice and resubscribed")
        try await Task.sleep(for: .milliseconds(500))
        #expect(try crm.profile("lag@example.com")?["visits"]?.intValue == sales, "none twice")
    }

    @Test("started after retention pruned events it never saw: it says so and continues from the oldest held")
    func resumesAfterTruncation() async throws {
        let daemon = try await DaemonUnderTest(config: "[journal]\nretain_events = 1000\n", demo: false)
        try await daemon.connect { till in
            for index in 0..<1100 { try await till.request("publish", ["topic": "pos.tick", "data": ["n": .int(Int64(index))]]) }
        }
        try await poll("retention to prune") {
            let (_, out, _) = try await daemon.tillctl(["status", "--json"])
            return (try? JSONText.decode(out))?["journal"]?["oldest"]?.intValue ?? 0 > 1
        }
        try await daemon.connect { till in try await till.sale("S1", total: "2.00", identify: ["email": "late@example.com"]) }
        let crm = try CRMUnderTest(daemon: daemon)
        try await crm.eventually("the sale after the pruned events") { try crm.profile("late@example.com")?["visits"] == 1 }
        #expect(crm.log.contains("events were pruned from tilld's journal before till-crm saw them"))
    }

    @Test("till-crm tells tilld how far it has applied; stopped while the till sells on, doctor warns before retention would prune what it missed")
    func followerHorizon() async throws {
        let daemon = try await DaemonUnderTest(config: "[journal]\nretain_events = 1000\n", demo: false)
        let crm = try CRMUnderTest(daemon: daemon)
        try await crm.eventually("till-crm to follow") { crm.log.contains("following tilld") }
        func follower() async throws -> JSONValue? {
            let (_, out, _) = try await daemon.tillctl(["status", "--json"])
            return (try? JSONText.decode(out))?["followers"]?.arrayValue?.first { $0["name"] == "till-crm" }
        }
        try await daemon.connect { till in try await till.sale("S0", total: "2.00", identify: ["email": "horizon@example.com"]) }
        try await crm.eventually("till-crm to acknowledge the sale") {
            let seen = try await follower()
            return seen?["behind"] == 0 && (seen?["seq"]?.intValue ?? 0) >= 3
        }
        kill(crm.pid, SIGSTOP)
        defer { kill(crm.pid, SIGCONT) }
        // 810 events for it: 81% of retain_events before the first is pruned.
        try await daemon.connect { till in
            for index in 1...270 {
                try await till.request("publish", ["topic": "sale.started", "data": ["sale": .string("S\(index)"), "till": "T1"]])
                try await till.request("publish", ["topic": "customer.identified", "data": ["sale": .string("S\(index)"), "email": "horizon@example.com"]])
                try await till.request("publish", ["topic": "sale.completed", "data": ["sale": .string("S\(index)"), "total": "1.00", "currency": "EUR"]])
            }
        }
        let stopped = try #require(try await follower())
        #expect(stopped["state"] == "near_horizon", "\(stopped)")
        #expect(stopped["behind"] == 810)
        let (code, doctor, _) = try await daemon.tillctl(["doctor"])
        #expect(code == 1, "doctor fails on a follower near the horizon")
        #expect(doctor.contains("follower till-crm is 810 events behind") && doctor.contains("till-crm status"), "\(doctor)")
        kill(crm.pid, SIGCONT)
        try await crm.eventually("till-crm to catch up and say so") { try await follower()?["behind"] == 0 }
        #expect(try await follower()?["state"] == "ok")
        #expect(try crm.profile("horizon@example.com")?["visits"]?.intValue == 271)
    }

    @Test("a greeting tilld refuses (forbidden) is logged, and the stream goes on", .enabled(if: getuid() == 0))
    func refusedGreeting() async throws {
        // till-crm runs as nobody, who may read but not publish.
        let daemon = try await DaemonUnderTest(config: "[socket]\ngroup = \"nogroup\"\n[access]\nread_groups = [\"nogroup\"]\nact_users = []\n", demo: false)
        let binary = daemon.directory + "/till-crm"
        // Copied by cp, not in this process (see tillctlForOthers: ETXTBSY when a child forked
        // meanwhile inherits the copy's write descriptor).
        let (copied, _, copyError) = try runProcess("/bin/cp", [Binaries.directory.appendingPathComponent("till-crm").path, binary])
        #expect(copied == 0, "\(copyError)")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: binary)
        let data = daemon.directory + "/crm"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chown(data, 65534, 65534)
        chmod(daemon.directory, 0o755)
        let crm = try CRMUnderTest(daemon: daemon, wrapper: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], executable: binary)
        try await crm.eventually("till-crm to follow") { crm.log.contains("following tilld") }
        try await daemon.connect { till in
            try await till.sale("S1", total: "2.00", identify: ["email": "first@example.com"])
            try await till.sale("S2", total: "3.00", identify: ["email": "first@example.com"])  // a returning customer: a greeting
            try await till.sale("S3", total: "4.00", identify: ["email": "second@example.com"])
        }
        try await crm.eventually("the sales after the refused greetings") { try crm.profile("second@example.com")?["visits"] == 1 }
        #expect(try crm.profile("first@example.com")?["visits"] == 2)
        #expect(crm.log.contains("customer.recognized was not published") && crm.log.contains("forbidden"))
        #expect(crm.process.isRunning)
    }

    @Test("a greeting goes out only after the sale it describes is synced to till-crm's store (strace)", .enabled(if: DurabilityTests.hasStrace))
    func greetingAfterCommit() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        let trace = daemon.directory + "/crm.trace"
        let crm = try CRMUnderTest(daemon: daemon, wrapper: [
            "/usr/bin/strace", "-f", "-qq", "-y", "-s", "300", "-e", "signal=none",
            "-e", "trace=fdatasync,fsync,pwrite64,write,writev,sendmsg", "-o", trace,
        ])
        try await crm.eventually("till-crm to follow") { crm.log.contains("following tilld") }
        let greetings = try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["customer.recognized"]])
            for index in 0..<5 { try await till.sale("S\(index)", total: "1.00", identify: ["email": "greet@example.com"]) }
            return try await till.collect { $0.count >= 5 }
        }
        #expect(greetings.count == 5)
        let writes = SyncTrace.writes(in: try String(contentsOfFile: trace, encoding: .utf8), wal: "crm.sqlite-wal>", marker: "customer.recognized")
        #expect(writes.count >= 5, "the greetings were seen leaving till-crm")
        #expect(writes.allSatisfy { $0 }, "a greeting left before its sale's commit was synced: \(writes)")
    }
}
