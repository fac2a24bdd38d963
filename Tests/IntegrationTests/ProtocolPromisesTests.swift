import Foundation
import Glibc
import Testing
import TillClient
import TillCore

/// The smaller promises of docs/protocol.md, each with a test that fails if it breaks.
@Suite("Protocol promises", .timeLimit(.minutes(2)))
struct ProtocolPromisesTests {
    /// Sends `status` and returns every line up to and including its reply.
    private func linesUntilStatusReply(_ client: RawClient, id: String = "probe") throws -> [JSONValue] {
        try client.send(#"{"id":"\#(id)","op":"status"}"# + "\n")
        var lines: [JSONValue] = []
        while let line = try client.readJSON() {
            lines.append(line)
            if line["type"] == "reply", line["id"] == .string(id) { return lines }
        }
        throw TimedOut(what: "the status reply (connection closed)")
    }

    /// A raw connection past the greeting, subscribed to `topics` (everything by default).
    private func subscribedClient(_ daemon: DaemonUnderTest, topics: String = #"["*"]"#) throws -> RawClient {
        let client = try RawClient(path: daemon.socket)
        _ = try client.readLine()
        #expect(try client.request(#"{"id":"sub","op":"subscribe","topics":\#(topics)}"#)["ok"] == true)
        return client
    }

    @Test("a lagged client that never reads is cut off after lag_grace_seconds")
    func lagGrace() async throws {
        let daemon = try await DaemonUnderTest(config: "[socket]\nqueue_bytes = 65536\nlag_grace_seconds = 1\n", demo: false)
        let baseline = try openDescriptors(daemon.pid)
        let stalled = try subscribedClient(daemon)
        stalled.shrinkReceiveBuffer(to: 4096)
        // It never reads again, and keeps its end open.
        let payload = String(repeating: "x", count: 1000)
        try await daemon.connect { till in
            for index in 0..<400 {
                try await till.request("publish", ["topic": "pos.note", "data": ["n": .int(Int64(index)), "pad": .string(payload)]])
            }
        }
        try await poll("tilld to close the stalled connection after the grace period", timeout: .seconds(20)) {
            try openDescriptors(daemon.pid) <= baseline
        }
        #expect(daemon.log.contains("subscriber lagged"))
        stalled.close()
    }

    @Test("blank lines are keep-alives: no reply, no error")
    func keepAlive() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        let client = try RawClient(path: daemon.socket)
        _ = try client.readLine()
        try client.send("\n\n\r\n\n")
        let lines = try linesUntilStatusReply(client)
        #expect(lines.count == 1 && lines[0]["ok"] == true, "only the status reply: \(lines)")
    }

    @Test("past max_clients a connection is answered busy and closed; the others are served")
    func busy() async throws {
        let daemon = try await DaemonUnderTest(config: "[socket]\nmax_clients = 2\n", demo: false)
        // Connect until one is refused. The start-up probe's connection may still be counted for
        // a moment, so one or two are served; never more.
        var served: [RawClient] = []
        var refusal: JSONValue? = nil
        for _ in 0..<5 {
            let client = try RawClient(path: daemon.socket)
            let first = try client.readJSON()
            if first?["type"] == "hello" {
                served.append(client)
                continue
            }
            refusal = first
            #expect(try client.readLine() == nil, "then closed")
            break
        }
        #expect((1...2).contains(served.count), "\(served.count) clients served with max_clients = 2")
        #expect(refusal?["error"]?["code"] == "busy", "\(String(describing: refusal))")
        #expect(refusal?["error"]?["message"]?.stringValue?.contains("max_clients") == true)
        #expect(try linesUntilStatusReply(served[0]).last?["ok"] == true, "the served ones carry on")
    }

    @Test("a device that cannot do the op answers device_error naming it")
    func deviceError() async throws {
        let daemon = try await DaemonUnderTest(config: """
            [[device]]
            name = "till-drawer"
            role = "drawer"
            driver = "serial-drawer"
            path = "/dev/null"
            pulse_line = "dtr"
            """, demo: false)
        _ = try await daemon.connect { till in
            await #expect { _ = try await till.request("drawer.open", ["device": "till-drawer"]) } throws: { error in
                let error = error as? WireError
                return error?.code == .deviceError && error?.message.contains("till-drawer") == true
            }
        }
    }

    @Test("after unsubscribe no event arrives on the connection")
    func unsubscribe() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        let client = try subscribedClient(daemon)
        #expect(try client.request(#"{"id":2,"op":"unsubscribe"}"#)["id"] == 2)
        try await daemon.connect { till in _ = try await till.request("publish", ["topic": "pos.after", "data": [:]]) }
        let lines = try linesUntilStatusReply(client)
        #expect(lines.allSatisfy { $0["type"] != "event" }, "\(lines)")
    }

    @Test("a second subscribe replaces the first: only its topics arrive")
    func resubscribe() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        let client = try subscribedClient(daemon, topics: #"["a.*"]"#)
        #expect(try client.request(#"{"id":2,"op":"subscribe","topics":["b.*"]}"#)["ok"] == true)
        try await daemon.connect { till in
            _ = try await till.request("publish", ["topic": "a.one", "data": [:]])
            _ = try await till.request("publish", ["topic": "b.two", "data": [:]])
        }
        var topics: [String] = []
        while topics.isEmpty {
            guard let line = try client.readJSON() else { break }
            if line["type"] == "event" { topics.append(line["topic"]?.stringValue ?? "?") }
        }
        topics += try linesUntilStatusReply(client).filter { $0["type"] == "event" }.map { $0["topic"]?.stringValue ?? "?" }
        #expect(topics == ["b.two"])
    }

    @Test("a subscriber that half-closes its sending side keeps receiving")
    func halfClose() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        let client = try subscribedClient(daemon)
        client.shutdownWrite()
        try await daemon.connect { till in _ = try await till.request("publish", ["topic": "pos.after", "data": ["n": 1]]) }
        let event = try client.readJSON()
        #expect(event?["type"] == "event" && event?["topic"] == "pos.after", "\(String(describing: event))")
    }
}
