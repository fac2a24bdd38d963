import Foundation
import Testing
import TillClient
import TillCore

@Suite("Bad input never hurts the daemon or other clients", .timeLimit(.minutes(2)))
struct BadInputTests {
    static let cases: [(String, [UInt8], String)] = [
        ("invalid JSON", Array("{\"id\":1,\"op\":\n".utf8), "bad_request"),
        ("a JSON array", Array("[1,2]\n".utf8), "bad_request"),
        ("a JSON string", Array("\"status\"\n".utf8), "bad_request"),
        ("unknown op", Array("{\"id\":1,\"op\":\"reboot\"}\n".utf8), "unknown_op"),
        ("wrong type", Array("{\"id\":1,\"op\":\"subscribe\",\"topics\":7}\n".utf8), "bad_request"),
        ("missing id", Array("{\"op\":\"status\"}\n".utf8), "bad_request"),
        ("float money", Array("{\"id\":1,\"op\":\"publish\",\"topic\":\"sale.completed\",\"data\":{\"sale\":\"S\",\"total\":1.5,\"currency\":\"EUR\"}}\n".utf8), "bad_request"),
        ("binary garbage", [0x00, 0xFF, 0xFE, 0x1B, 0x40, 0x80, 0x0A], "bad_request"),
        ("invalid UTF-8 inside a string", [0x7B, 0x22, 0x69, 0x64, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D, 0x0A], "bad_request"),
    ]

    @Test("each bad line gets an error reply and the connection stays usable", arguments: cases.indices)
    func badLine(_ index: Int) async throws {
        let (name, bytes, code) = Self.cases[index]
        let daemon = try await DaemonUnderTest()
        let client = try RawClient(path: daemon.socket)
        _ = try client.readLine()
        try client.send(bytes)
        let reply = try client.reply()
        #expect(reply["ok"] == false, "\(name)")
        #expect(reply["error"]?["code"]?.stringValue == code, "\(name): \(reply)")
        #expect((reply["error"]?["message"]?.stringValue ?? "").count > 10, "the message says what is wrong")
        try client.send(#"{"id":"after","op":"status"}"# + "\n")
        let after = try client.reply()
        #expect(after["ok"] == true && after["id"] == "after", "\(name): the connection is still usable")
        #expect(daemon.process.isRunning)
    }

    @Test("an over-long line is answered with too_large and the connection closed; others carry on")
    func overLong() async throws {
        let daemon = try await DaemonUnderTest(config: "[socket]\nmax_line_bytes = 4096\n")
        try await daemon.connect { bystander in
            try await bystander.request("subscribe", ["topics": ["pos.*"]])
            let client = try RawClient(path: daemon.socket)
            _ = try client.readLine()
            try client.send(Array(repeating: UInt8(ascii: "a"), count: 10_000))
            let reply = try client.reply()
            #expect(reply["error"]?["code"] == "too_large")
            #expect(try client.readLine() == nil, "the connection is closed")
            try await bystander.request("publish", ["topic": "pos.ok", "data": [:]])
            #expect(try await bystander.collect { $0.count >= 1 }.first?.topic == "pos.ok")
        }
        #expect(daemon.process.isRunning)
    }

    @Test("a half line then disconnect is never executed, even when it would be a valid request; abrupt clients leave nothing behind")
    func halfLine() async throws {
        let daemon = try await DaemonUnderTest()
        let baseline = try openDescriptors(daemon.pid)
        for index in 0..<50 {
            let client = try RawClient(path: daemon.socket)
            _ = try client.readLine()
            // A complete, valid publish but for its newline: executing it would journal an event.
            try client.send(#"{"id":1,"op":"publish","topic":"sale.voided","data":{"sale":"HALF\#(index)"}}"#)
            client.close()
        }
        // Each close is handled asynchronously: wait (bounded) until the daemon holds no more
        // descriptors than before, which fails if any connection was leaked.
        try await poll("tilld to release the 50 connections") { try openDescriptors(daemon.pid) <= baseline }
        try await daemon.connect { till in
            let status = try await till.request("status")
            #expect(status["seq"]?.intValue == 4, "only the four device.added events: no half line was applied")
            try await till.request("subscribe", ["topics": ["sale.*"], "since": 0])
            try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "WHOLE"]])
            let events = try await till.collect { $0.contains { $0.data["sale"] == "WHOLE" } }
            #expect(events.map { $0.data["sale"] } == ["WHOLE"], "no HALF sale in the journal")
        }
        #expect(daemon.process.isRunning)
    }

    @Test("a client that pipelines many requests without reading gets every reply, in order")
    func pipelined() async throws {
        let daemon = try await DaemonUnderTest()
        let client = try RawClient(path: daemon.socket)
        _ = try client.readLine()
        let count = 2000
        var batch = ""
        for index in 0..<count { batch += #"{"id":\#(index),"op":"status"}"# + "\n" }
        // Write from another thread: the daemon applies backpressure while we are not reading.
        let writer = Thread { [batch] in try? client.send(batch) }
        writer.start()
        for index in 0..<count {
            let reply = try client.reply(timeout: .seconds(30))
            #expect(reply["id"]?.intValue == Int64(index))
        }
    }
}

/// How many file descriptors a process holds (its sockets included), from /proc.
func openDescriptors(_ pid: Int32) throws -> Int {
    try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
}
