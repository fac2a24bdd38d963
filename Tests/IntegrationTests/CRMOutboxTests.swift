import Foundation
import Glibc
import GRDB
import Testing
import TillClient
import TillCore

/// A Standard Webhooks receiver in its own process (Fixtures/webhook_receiver.py): it checks
/// signatures with its own code and logs every request.
final class ReceiverUnderTest: @unchecked Sendable {
    let process = Process()
    let logPath: String
    let port: Int
    let secret: String

    init(directory: String, secret: String, delayMs: Int = 0, failFirst: Int = 0) throws {
        self.secret = secret
        logPath = directory + "/receiver.log"
        let portFile = directory + "/receiver.port"
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/webhook_receiver.py").path,
                             portFile, logPath, secret, "--delay-ms", String(delayMs), "--fail-first", String(failFirst)]
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: portFile), Date() < deadline { usleep(20_000) }
        port = Int((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "") ?? 0
    }

    deinit { kill(process.processIdentifier, SIGKILL) }

    struct Request { var id: String; var valid: Bool; var status: Int; var type: String }

    var requests: [Request] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            guard let object = (try? JSONText.decode(String(line)))?.objectValue else { return nil }
            return Request(
                id: object["id"]?.stringValue ?? "", valid: object["valid"]?.boolValue ?? false, status: Int(object["status"]?.intValue ?? 0),
                type: object["type"]?.stringValue ?? "")
        }
    }
}

@Suite("till-crm outbox, end to end", .timeLimit(.minutes(3)))
struct CRMOutboxTests {
    func waitFor(_ what: String, timeout: Duration = .seconds(90), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TimedOut(what: what)
    }

    /// How many entries the outbox has ever written (seqs are never reused; deleted ones were delivered).
    func written(_ crm: CRMUnderTest) throws -> Int {
        let database = try DatabaseQueue(path: crm.dataDirectory + "/crm.sqlite", configuration: { var c = Configuration(); c.readonly = true; return c }())
        return try database.read { try Int.fetchOne($0, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'") ?? 0 }
    }

    @Test("till-crm killed (-9) mid-delivery and restarted: every entry reaches the webhook, signed; only those in flight at the kill go twice")
    func killMidDelivery() async throws {
        let daemon = try await DaemonUnderTest()
        let secret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 % 251) }).base64EncodedString()
        let receiver = try ReceiverUnderTest(directory: daemon.directory, secret: secret, delayMs: 25)
        let config = daemon.directory + "/till-crm.toml"
        try """
            [[webhook]]
            url = "http://127.0.0.1:\(receiver.port)/till"
            secret = "\(secret)"
            concurrency = 8
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let crm = try CRMUnderTest(daemon: daemon, config: config)
        try await daemon.connect { till in
            for index in 0..<120 {
                try await till.sale("S\(index)", total: "12.00", identify: ["email": .string("c\(index % 24)@example.com")])
            }
        }
        try await waitFor("deliveries under way") { receiver.requests.count >= 40 }
        crm.crash()
        // Requests in flight at the kill are still answered (and logged) by the receiver.
        try await Task.sleep(for: .milliseconds(500))
        let beforeRestart = Set(receiver.requests.filter { $0.status == 204 }.map(\.id))
        try crm.start()
        try await waitFor("the outbox empty: every entry delivered") {
            let (code, out, _) = try crm.cli(["outbox", "status", "--json", "--config", config])
            let target = (try JSONText.decode(out)).objectValue?["targets"]?.arrayValue?.first?.objectValue
            return code == 0 && target?["pending"] == 0 && target?["waiting"] == 0 && (target?["delivered"]?.intValue ?? 0) > 0
        }
        let requests = receiver.requests
        let accepted = Set(requests.filter { $0.status == 204 }.map(\.id))
        #expect(accepted.count == (try written(crm)), "every entry written reached the receiver")
        #expect(requests.allSatisfy { $0.valid }, "every signature verified by an independent receiver")
        // An entry goes again only if it was in flight when till-crm died (its answer never recorded).
        let repeated = Dictionary(grouping: requests.filter { $0.status == 204 }, by: \.id).filter { $0.value.count > 1 }
        #expect(repeated.count <= 8, "at most the requests in flight (concurrency 8) go twice: \(repeated.count)")
        #expect(repeated.keys.allSatisfy { beforeRestart.contains($0) })
        #expect(Set(requests.map(\.type)).isSuperset(of: ["customer.updated", "timeline.added"]))
    }

    @Test("outbox status, dead and retry through the CLI; a bad [[webhook]] is refused with what to write")
    func cli() async throws {
        let daemon = try await DaemonUnderTest()
        let secret = "whsec_" + Data((0..<32).map { UInt8($0) }).base64EncodedString()
        // Refuses everything at first (503: the receiver says "not now").
        let receiver = try ReceiverUnderTest(directory: daemon.directory, secret: secret, failFirst: 1_000_000)
        let config = daemon.directory + "/till-crm.toml"
        try "[outbox]\nmax_days = 0.00001\n\n[[webhook]]\nurl = \"http://127.0.0.1:\(receiver.port)/till\"\nsecret = \"\(secret)\"\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let crm = try CRMUnderTest(daemon: daemon, config: config)
        try await daemon.connect { till in try await till.sale("S1", total: "5.00", identify: ["email": "ann@example.com"]) }
        try await waitFor("entries dead after max_days") {
            let (code, out, _) = try crm.cli(["outbox", "status", "--config", config])
            return code == 1 && out.contains("has dead entries")
        }
        let (deadCode, deadOut, _) = try crm.cli(["outbox", "dead", "--config", config])
        #expect(deadCode == 0 && deadOut.contains("msg_") && deadOut.contains("HTTP 503") && deadOut.contains("till-crm outbox retry"), "\(deadOut)")
        let (retryCode, retryOut, _) = try crm.cli(["outbox", "retry", "--config", config])
        #expect(retryCode == 0 && retryOut.contains("entries due now"), "\(retryOut)")
        let (unknownCode, _, unknownError) = try crm.cli(["outbox", "retry", "msg_nope", "--config", config])
        #expect(unknownCode == 1 && unknownError.contains("till-crm outbox dead lists them"))

        let bad = daemon.directory + "/bad.toml"
        try "[[webhook]]\nurl = \"http://hooks.example.com/till\"\nsecret = \"whsec_c2hvcnQ=\"\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let (badCode, _, badError) = try crm.cli(["outbox", "status", "--config", bad])
        #expect(badCode == 1 && badError.contains("use https") && badError.contains("at least 16"), "\(badError)")
        let (secretCode, secretOut, _) = try runProcess(Binaries.directory.appendingPathComponent("till-crm").path, ["outbox", "secret"])
        #expect(secretCode == 0 && secretOut.hasPrefix("whsec_"))
    }
}
