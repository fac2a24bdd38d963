import Foundation
import Glibc
import Synchronization
import Testing
import TillClient
import TillCore

@Suite("Socket protocol under load and failure", .timeLimit(.minutes(3)))
struct SocketProtocolTests {
    @Test("64 subscribers each get every event exactly once, in order")
    func sixtyFourSubscribers() async throws {
        let daemon = try await DaemonUnderTest()
        let subscribers = 64
        let events = 200
        let (ready, readySignal) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: [Int64].self) { group in
            for _ in 0..<subscribers {
                group.addTask {
                    try await daemon.connect { till in
                        try await till.request("subscribe", ["topics": ["sale.*"]])
                        readySignal.yield()
                        return try await till.collect(timeout: .seconds(60)) { $0.count >= events }.map(\.seq)
                    }
                }
            }
            var count = 0
            for await _ in ready {
                count += 1
                if count == subscribers { break }
            }
            let published: [Int64] = try await daemon.connect { till in
                var seqs: [Int64] = []
                for index in 0..<events {
                    seqs.append(try await till.request("publish", ["topic": "sale.voided", "data": ["sale": .string("S\(index)")]])["seq"]!.intValue!)
                }
                return seqs
            }
            var received = 0
            for try await seqs in group {
                #expect(seqs == published)
                received += 1
            }
            #expect(received == subscribers)
        }
    }

    @Test("a stalled subscriber is lagged and dropped while the others receive everything")
    func stalledSubscriber() async throws {
        let daemon = try await DaemonUnderTest(config: """
            [socket]
            queue_bytes = 65536
            lag_grace_seconds = 60
            """)
        let stalled = try RawClient(path: daemon.socket)
        stalled.shrinkReceiveBuffer(to: 4096)
        _ = try stalled.readLine()  // hello
        try stalled.send(#"{"id":1,"op":"subscribe","topics":["pos.*"]}"# + "\n")
        #expect(try stalled.reply()["ok"] == true)
        // From here on the stalled client reads nothing.
        let total = 1500
        let payload = String(repeating: "x", count: 1000)
        let healthy: [Int64] = try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["pos.*"]])
            return try await withThrowingTaskGroup(of: [Int64].self) { group in
                group.addTask { try await till.collect(timeout: .seconds(90)) { $0.count >= total }.map(\.seq) }
                try await daemon.connect { publisher in
                    for index in 0..<total {
                        try await publisher.request("publish", ["topic": "pos.note", "data": ["n": .int(Int64(index)), "pad": .string(payload)]])
                    }
                }
                return try await group.next()!
            }
        }
        #expect(healthy.count == total)
        #expect(zip(healthy, healthy.dropFirst()).allSatisfy { $0 + 1 == $1 })
        // Now the stalled client reads: events with no gap, then the lag notice naming the
        // last seq it got, then the end of the connection.
        var seqs: [Int64] = []
        var lagged: Int64? = nil
        while let line = try stalled.readJSON(timeout: .seconds(30)) {
            if line["type"] == "event" { seqs.append(line["seq"]!.intValue!) }
            if line["type"] == "lagged" { lagged = line["seq"]?.intValue }
        }
        #expect(lagged != nil, "the stalled subscriber must be told it lagged")
        #expect(seqs.count < total, "it cannot have received everything: it was dropped")
        #expect(seqs.last == lagged, "lagged names the last seq sent")
        #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $0 + 1 == $1 })
        #expect(daemon.log.contains("subscriber lagged"))
        // And it can resume from there with since, missing nothing.
        try await daemon.connect { [seqs, lagged] till in
            try await till.request("subscribe", ["topics": ["pos.*"], "since": .int(lagged ?? 0)])
            let rest = try await till.collect { $0.last?.seq == healthy.last }.map(\.seq)
            #expect(rest.first == (lagged ?? 0) + 1)
            #expect(seqs + rest == healthy)
        }
    }

    @Test("since replays from the journal and joins the live stream with no gap and no duplicate")
    func replayThenLive() async throws {
        let daemon = try await DaemonUnderTest()
        let total = 600
        let published: [Int64] = try await withThrowingTaskGroup(of: [Int64].self) { group in
            group.addTask {
                try await daemon.connect { till in
                    var seqs: [Int64] = []
                    for index in 0..<total {
                        seqs.append(try await till.request("publish", ["topic": "sale.voided", "data": ["sale": .string("S\(index)")]])["seq"]!.intValue!)
                    }
                    return seqs
                }
            }
            return try await group.next()!
        }
        _ = published
        // Join while a second publisher is running: the switch from replay to live happens under load.
        let first = published[0]
        // The subscriber joins while the publisher is mid-way, by construction rather than by a
        // guess at timing: the publisher pauses after 50 until the subscribe was answered.
        let progress = ReplayProgress()
        let (received, more) = try await withThrowingTaskGroup(of: ([Int64], [Int64]).self) { group in
            group.addTask {
                let more: [Int64] = try await daemon.connect { till in
                    var seqs: [Int64] = []
                    for index in 0..<total {
                        if index == 50 {
                            while !progress.subscribed.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(1)) }
                        }
                        seqs.append(try await till.request("publish", ["topic": "sale.voided", "data": ["sale": .string("T\(index)")]])["seq"]!.intValue!)
                        progress.published.add(1, ordering: .releasing)
                    }
                    return seqs
                }
                return ([], more)
            }
            group.addTask {
                while progress.published.load(ordering: .acquiring) < 50 { try await Task.sleep(for: .milliseconds(1)) }
                let got: [Int64] = try await daemon.connect { till in
                    try await till.request("subscribe", ["topics": ["sale.*"], "since": .int(first + 99)])
                    progress.subscribed.store(true, ordering: .releasing)
                    return try await till.collect(timeout: .seconds(60)) { $0.count >= 2 * total - 100 }.map(\.seq)
                }
                return (got, [])
            }
            var received: [Int64] = []
            var more: [Int64] = []
            for try await (got, published) in group {
                received += got
                more += published
            }
            return (received, more)
        }
        #expect(received == Array(published.dropFirst(100)) + more)
    }

    @Test("pipelined publishes are answered in order, each with the next seq, and durable when answered")
    func pipelinedPublishes() async throws {
        let daemon = try await DaemonUnderTest()
        let client = try RawClient(path: daemon.socket)
        _ = try client.readLine()
        let count = 1000
        var batch = ""
        for index in 0..<count {
            batch += #"{"id":\#(index),"op":"publish","topic":"sale.voided","data":{"sale":"S\#(index)"}}"# + "\n"
            if index == 500 { batch += #"{"id":"status","op":"status"}"# + "\n" }
        }
        let writer = Thread { [batch] in try? client.send(batch) }
        writer.start()
        var seqs: [Int64] = []
        var ids: [String] = []
        for _ in 0...count {
            let reply = try client.reply(timeout: .seconds(30))
            #expect(reply["ok"] == true)
            ids.append(reply["id"].map { $0.intValue.map(String.init) ?? $0.stringValue ?? "?" } ?? "?")
            if let seq = reply["result"]?["seq"]?.intValue, reply["id"] != "status" { seqs.append(seq) }
        }
        let expectedIDs: [String] = (0...500).map { String($0) } + ["status"] + (501..<count).map { String($0) }
        #expect(ids == expectedIDs)
        #expect(seqs == Array(5..<Int64(5 + count)), "consecutive seqs in request order")
        daemon.crash()
        try await daemon.start()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["sale.*"], "since": 0])
            let events = try await till.collect { $0.count >= count }
            let sales: [String?] = events.map { $0.data["sale"]?.stringValue }
            let expected: [String?] = (0..<count).map { "S\($0)" }
            #expect(sales == expected)
        }
    }

    @Test("after kill -9 and restart no acknowledged event is lost and no seq is reused")
    func crashRecovery() async throws {
        let daemon = try await DaemonUnderTest()
        let acknowledged = AckLog()
        // Publish until the daemon dies under us.
        async let publishing: Void = {
            do {
                try await daemon.connect { till in
                    for index in 0..<100_000 {
                        let seq = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": .string("S\(index)")]])["seq"]!.intValue!
                        acknowledged.append(seq, "S\(index)")
                    }
                }
            } catch {}
        }()
        while acknowledged.count < 300 { try await Task.sleep(for: .milliseconds(10)) }
        daemon.crash()
        await publishing
        let acked = acknowledged.entries
        try await daemon.start()
        try await daemon.connect { till in
            #expect(till.hello.seq >= acked.last!.seq)
            try await till.request("subscribe", ["topics": ["sale.*"], "since": 0])
            let replayed = try await till.collect { $0.last.map { $0.seq >= acked.last!.seq } ?? false }
            let bySeq = Dictionary(replayed.map { ($0.seq, $0.data["sale"]?.stringValue ?? "") }, uniquingKeysWith: { a, _ in a })
            #expect(bySeq.count == replayed.count, "no seq delivered twice")
            #expect(zip(replayed, replayed.dropFirst()).allSatisfy { $0.seq < $1.seq })
            for entry in acked {
                #expect(bySeq[entry.seq] == entry.sale, "acknowledged event \(entry.seq) must survive the crash")
            }
            let next = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "after"]])["seq"]!.intValue!
            #expect(next > (replayed.last?.seq ?? 0), "seq is never reused after a crash")
        }
    }

    @Test("since older than the journal holds fails with journal_truncated naming the oldest seq")
    func truncated() async throws {
        let daemon = try await DaemonUnderTest(config: "[journal]\nretain_events = 1000\n")
        try await daemon.connect { till in
            for index in 0..<1100 {
                try await till.request("publish", ["topic": "pos.tick", "data": ["n": .int(Int64(index))]])
            }
            // Retention runs every 1024 events; wait for it to land.
            var oldest: Int64 = 0
            for _ in 0..<100 {
                oldest = try await till.request("status")["journal"]?["oldest"]?.intValue ?? 0
                if oldest > 1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(oldest > 1)
            do {
                try await till.request("subscribe", ["since": 0])
                Issue.record("replay from a pruned seq was accepted")
            } catch let error as WireError {
                #expect(error.code == .journalTruncated)
                #expect(error.details?["oldest"]?.intValue == oldest)
            }
            do {
                try await till.request("subscribe", ["since": 999_999])
                Issue.record("since in the future was accepted")
            } catch let error as WireError {
                #expect(error.code == .badRequest)
            }
        }
    }

    @Test("SIGHUP reloads the config and keeps subscribers connected")
    func reload() async throws {
        let daemon = try await DaemonUnderTest(config: "[journal]\nretain_days = 30\n")
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["pos.*"]])
            try "[journal]\nretain_days = 7\n".write(toFile: daemon.configPath!, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            for _ in 0..<100 where !daemon.log.contains("config reloaded") { try await Task.sleep(for: .milliseconds(50)) }
            #expect(daemon.log.contains("config reloaded"))
            try "[journal\n".write(toFile: daemon.configPath!, atomically: true, encoding: .utf8)
            daemon.signal(SIGHUP)
            for _ in 0..<100 where !daemon.log.contains("config reload failed") { try await Task.sleep(for: .milliseconds(50)) }
            #expect(daemon.log.contains("config reload failed"))
            try await daemon.connect { other in _ = try await other.request("publish", ["topic": "pos.ping", "data": [:]]) }
            let events = try await till.collect { $0.count >= 1 }
            #expect(events.first?.topic == "pos.ping")
        }
    }
}

final class AckLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(seq: Int64, sale: String)] = []
    func append(_ seq: Int64, _ sale: String) { lock.withLock { items.append((seq, sale)) } }
    var count: Int { lock.withLock { items.count } }
    var entries: [(seq: Int64, sale: String)] { lock.withLock { items } }
}

/// Shared by the two halves of `replayThenLive`.
private final class ReplayProgress: Sendable {
    let published = Atomic<Int>(0)
    let subscribed = Atomic<Bool>(false)
}
