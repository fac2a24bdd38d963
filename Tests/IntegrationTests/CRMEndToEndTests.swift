import Foundation
import Glibc
import GRDB
import Testing
import TillClient
import TillCore

/// A real `till-crm serve` following a real `tilld --demo`.
final class CRMUnderTest: @unchecked Sendable {
    let daemon: DaemonUnderTest
    let dataDirectory: String
    let logPath: String
    private(set) var process = Process()
    private var exit: ChildExit?

    /// `wrapper`: what till-crm runs under (strace, setpriv), ending before till-crm's path;
    /// `executable`: another copy of till-crm (one another user can execute).
    init(daemon: DaemonUnderTest, wrapper: [String] = [], executable: String? = nil, config: String? = nil) throws {
        self.daemon = daemon
        self.wrapper = wrapper
        self.config = config
        self.executable = executable ?? Binaries.directory.appendingPathComponent("till-crm").path
        dataDirectory = daemon.directory + "/crm"
        logPath = daemon.directory + "/till-crm.log"
        try start()
    }

    private let wrapper: [String]
    private let executable: String
    /// A till-crm.toml for serve (`--config`).
    private let config: String?

    /// till-crm's own pid (under strace, strace's child; setpriv execs, so it is the same).
    var pid: Int32 {
        let started = process.processIdentifier
        let children = (try? String(contentsOfFile: "/proc/\(started)/task/\(started)/children", encoding: .utf8)) ?? ""
        return children.split(separator: " ").first.flatMap { Int32($0) } ?? started
    }

    func start() throws {
        let process = Process()
        let arguments = ["serve", "--socket", daemon.socket, "--data-dir", dataDirectory, "--region", "GB", "--log-level", "debug"]
            + (config.map { ["--config", $0] } ?? [])
        if let tool = wrapper.first {
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = Array(wrapper.dropFirst()) + [executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardError = log
        process.standardOutput = log
        let exit = ChildExit(process)
        try process.run()
        self.process = process
        self.exit = exit
    }

    func crash() {
        kill(pid, SIGKILL)
        kill(process.processIdentifier, SIGKILL)
        exit?.wait(seconds: 10)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func exists(_ reference: String) throws -> Bool { try profile(reference) != nil }

    /// Runs the till-crm CLI against the same data directory.
    func cli(_ arguments: [String]) throws -> (Int32, String, String) {
        try runProcess(Binaries.directory.appendingPathComponent("till-crm").path, arguments + ["--data-dir", dataDirectory, "--region", "GB"])
    }

    func profile(_ reference: String) throws -> JSONValue? {
        let (code, out, _) = try cli(["customer", "show", reference, "--json", "--limit", "100000"])
        return code == 0 ? try JSONText.decode(out) : nil
    }

    /// Waits until `condition` holds (till-crm is asynchronous by design).
    func eventually(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                if try await condition() { return }
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        // Say why: is till-crm alive, what did the check last throw, what did till-crm log (from
        // the crash report's first line when it died: its last lines are only registers).
        let lines = log.split(separator: "\n")
        let crashed = lines.firstIndex { $0.contains("Fatal error") || $0.contains("rogram crashed") || $0.contains("runtime failure") }
        let tail = (crashed.map { Array(lines[max(0, $0 - 10)...].prefix(60)) } ?? Array(lines.suffix(30))).joined(separator: "\n")
        // A till-crm that died: its whole log is kept (the test's directory is removed after).
        var kept = ""
        if !process.isRunning {
            let copy = FileManager.default.temporaryDirectory.appendingPathComponent("till-crm-died-\(UUID().uuidString).log").path
            if (try? FileManager.default.copyItem(atPath: logPath, toPath: copy)) != nil { kept = " (its whole log: \(copy))" }
        }
        throw TimedOut(what: "\(what) (till-crm running: \(process.isRunning)\(kept); last error: \(lastError.map { "\($0)" } ?? "none"))\n\(tail)")
    }

    deinit {
        if process.isRunning {
            kill(pid, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
            exit?.wait(seconds: 10)
        }
    }
}

extension TillConnection {
    /// A whole sale as a POS publishes it.
    func sale(_ id: String, total: String, receipt: String? = nil, identify: [String: JSONValue]? = nil, void: Bool = false, paidBy tender: String? = nil) async throws {
        try await request("publish", ["topic": "sale.started", "data": ["sale": .string(id), "till": "T1"]])
        try await request("publish", ["topic": "sale.line", "data": ["sale": .string(id), "name": "Item", "qty": 1, "unit_price": .string(total), "amount": .string(total)]])
        if let tender {
            try await request("publish", ["topic": "sale.tender", "data": ["sale": .string(id), "method": .string(tender), "amount": .string(total)]])
        }
        if var identify {
            identify["sale"] = .string(id)
            try await request("publish", ["topic": "customer.identified", "data": .object(identify)])
        }
        if void {
            try await request("publish", ["topic": "sale.voided", "data": ["sale": .string(id)]])
            return
        }
        var completed: [String: JSONValue] = ["sale": .string(id), "total": .string(total), "currency": "EUR"]
        if let receipt { completed["receipt"] = .string(receipt) }
        try await request("publish", ["topic": "sale.completed", "data": .object(completed)])
    }
}

@Suite("till-crm with the real tilld", .timeLimit(.minutes(5)))
struct CRMEndToEndTests {
    @Test("identified, anonymous and voided sales; a loyalty card mid-sale; a refund; a late attach; recognition on the socket")
    func flows() async throws {
        let daemon = try await DaemonUnderTest(config: "[scanner]\nloyalty_prefixes = [\"LOY\"]\n")
        let crm = try CRMUnderTest(daemon: daemon)
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["customer.recognized"]])
            try await till.sale("S1", total: "7.00", receipt: "R-1", identify: ["email": "Ann@Example.com", "name": "Ann", "consent": ["email_marketing": true]])
            let greeting = try await till.collect { $0.count >= 1 }[0]
            #expect(greeting.data["returning"] == false && greeting.data["sale"] == "S1")
            try await till.sale("S2", total: "2.00")  // anonymous
            try await till.sale("S3", total: "9.00", identify: ["email": "ann@example.com"], void: true)
            // A new card scanned mid-sale, enrolled when the POS identifies the customer.
            try await till.request("publish", ["topic": "sale.started", "data": ["sale": "S4", "till": "T1"]])
            try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "LOY-0042"]])
            try await crm.eventually("the scan to reach till-crm") { crm.log.contains("LOY-0042") }
            try await till.request("publish", ["topic": "customer.identified", "data": ["sale": "S4", "email": "ann@example.com"]])
            try await till.request("publish", ["topic": "sale.completed", "data": ["sale": "S4", "total": "3.00", "currency": "EUR", "receipt": "R-4"]])
            let returning = try await till.collect { $0.count >= 2 }.last!
            #expect(returning.data["returning"] == true && returning.data["visits"] == 1)
            // Next visit: the card alone is enough.
            try await till.request("publish", ["topic": "sale.started", "data": ["sale": "S5", "till": "T1"]])
            try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "LOY-0042"]])
            let byCard = try await till.collect { $0.count >= 1 }[0]
            #expect(byCard.data["sale"] == "S5" && byCard.data["visits"] == 2)
            try await till.request("publish", ["topic": "sale.completed", "data": ["sale": "S5", "total": "4.00", "currency": "EUR", "receipt": "R-5"]])
            try await till.request("publish", ["topic": "refund.completed", "data": ["refund": "F1", "receipt": "R-1", "lines": [], "total": "7.00", "currency": "EUR", "reason": "cold coffee"]])
            try await till.sale("S6", total: "5.50", receipt: "R-6", paidBy: "card")  // customer forgot their card
        }
        try await crm.eventually("S6 to reach till-crm") { try crm.log.contains("following tilld") && (crm.cli(["attach", "R-6", "--customer", "LOY-0042"]).0 == 0) }
        let profile = try #require(try crm.profile("ann@example.com"))
        #expect(profile["visits"] == 4, "S1, S4, S5 and the late-attached S6; not the voided S3 nor the anonymous S2")
        let types = profile["timeline"]?.arrayValue?.compactMap { $0["type"]?.stringValue } ?? []
        #expect(types.filter { $0 == "purchase" }.count == 4)
        #expect(profile["timeline"]?.arrayValue?.contains { $0["type"] == "refund" && $0["data"]?["reason"] == "cold coffee" } == true)
        #expect(profile["identifiers"]?.arrayValue?.contains { $0["normalized"] == "LOY-0042" } == true)
        #expect(try crm.profile("LOY-0042")?["id"] == profile["id"], "one customer, one record")
        let (_, text, _) = try crm.cli(["customer", "show", "ann@example.com"])
        #expect(text.contains("refund 7.00 EUR: cold coffee") && text.contains("bought 5.50 EUR (receipt R-6), paid card 5.50"), "\(text)")
        #expect(text.contains("1 × Item  5.50") && text.contains("4 visits"), "the purchase shows its items; \(text)")
    }

    @Test("kill -9 till-crm in the middle of 1,000 sales: after a restart every sale is counted exactly once")
    func crashMidStream() async throws {
        let daemon = try await DaemonUnderTest()
        let crm = try CRMUnderTest(daemon: daemon)
        let customers = (0..<10).map { "buyer\($0)@example.com" }
        try await daemon.connect { till in
            for index in 0..<1000 {
                try await till.sale("S\(index)", total: "1.00", identify: ["email": .string(customers[index % 10])])
                if index == 400 { crm.crash() }
                if index == 700 { try crm.start() }
            }
        }
        try await crm.eventually("all 1,000 sales", timeout: .seconds(120)) {
            try customers.reduce(0) { $0 + Int(try crm.profile($1)?["visits"]?.intValue ?? 0) } == 1000
        }
        for email in customers {
            let profile = try #require(try crm.profile(email))
            #expect(profile["visits"] == 100)
            #expect(profile["timeline"]?.arrayValue?.filter { $0["type"] == "purchase" }.count == 100)
        }
    }

    @Test("CLI writes while serve ingests a stream: both wait their turn, neither fails")
    func concurrentWriters() async throws {
        let daemon = try await DaemonUnderTest()
        let crm = try CRMUnderTest(daemon: daemon)
        try await daemon.connect { till in try await till.sale("S0", total: "1.00", identify: ["email": "ann@example.com"]) }
        try await crm.eventually("the first sale") { try crm.exists("ann@example.com") }
        let stream = Task {
            try await daemon.connect { till in
                for index in 1...300 { try await till.sale("S\(index)", total: "1.00", identify: ["email": "ann@example.com"]) }
            }
        }
        for index in 0..<20 {
            let (code, _, error) = try crm.cli(["note", "add", "ann@example.com", "note \(index)"])
            #expect(code == 0, "note add failed while serve was writing: \(error)")
        }
        try await stream.value
        try await crm.eventually("all 301 sales") { try crm.profile("ann@example.com")?["visits"] == 301 }
        let notes = try crm.profile("ann@example.com")?["timeline"]?.arrayValue?.filter { $0["type"] == "note" }
        #expect(notes?.count == 20)
    }

    @Test("tilld restarts under a running till-crm; it reconnects and resumes from its cursor")
    func tilldRestart() async throws {
        let daemon = try await DaemonUnderTest()
        let crm = try CRMUnderTest(daemon: daemon)
        try await daemon.connect { till in try await till.sale("S1", total: "1.00", identify: ["phone": "07911 123456"]) }
        try await crm.eventually("the first sale") { try crm.profile("+447911123456")?["visits"] == 1 }
        daemon.crash()
        try await daemon.start()
        try await daemon.connect { till in try await till.sale("S2", total: "1.00", identify: ["phone": "+44 7911 123456"]) }
        try await crm.eventually("the sale after the restart") { try crm.profile("07911123456")?["visits"] == 2 }
        #expect(crm.log.components(separatedBy: "following tilld").count >= 3, "it connected twice")
    }

    @Test("bad events give clear log lines and no partial records")
    func badEvents() async throws {
        let daemon = try await DaemonUnderTest()
        let crm = try CRMUnderTest(daemon: daemon)
        try await daemon.connect { till in
            try await till.request("publish", ["topic": "customer.identified", "data": ["email": "eve@example.com", "phone": "12345"]])
            try await till.request("publish", ["topic": "refund.completed", "data": ["refund": "F9", "sale": "UNKNOWN", "lines": [], "total": "1.00", "currency": "EUR", "reason": "x"]])
            try await till.request("publish", ["topic": "sale.line", "data": ["sale": "S-no-start", "name": "Pen", "qty": 1, "unit_price": "1.00", "amount": "1.00"]])
            try await till.sale("S-ok", total: "2.00", identify: ["email": "frank@example.com"])
        }
        try await crm.eventually("the good sale after the bad events") { try crm.profile("frank@example.com")?["visits"] == 1 }
        #expect(crm.log.contains("invalid phone \"12345\""))
        #expect(crm.log.contains("refund F9"))
        #expect(try !crm.exists("eve@example.com"), "the email of a refused identification was not kept")
    }

    @Test("export holds everything about a person; erase removes it all but the anonymous sale and blocks re-creation")
    func erase() async throws {
        let daemon = try await DaemonUnderTest()
        let crm = try CRMUnderTest(daemon: daemon)
        try await daemon.connect { till in
            try await till.sale("S1", total: "3.00", receipt: "R1", identify: [
                "email": "gina@example.com", "name": "Gina", "phone": "07911 123456", "consent": ["email_marketing": true],
            ])
        }
        try await crm.eventually("the sale") { try crm.profile("gina@example.com")?["visits"] == 1 }
        #expect(try crm.cli(["note", "add", "gina@example.com", "prefers oat milk"]).0 == 0)
        let (exportCode, exported, _) = try crm.cli(["export", "gina@example.com"])
        #expect(exportCode == 0)
        let export = try JSONText.decode(exported)
        #expect(export["name"] == "Gina")
        let kinds = Set((export["identifiers"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue })
        #expect(kinds == ["email", "phone"], "\(kinds)")
        #expect(export["sales"]?.arrayValue?.map { $0["receipt"] } == ["R1"])
        #expect(export["sales"]?.arrayValue?.first?["total"] == "3.00")
        #expect((export["consent_history"]?.arrayValue ?? []).contains { $0["granted"] == true })
        let timeline = export["timeline"]?.arrayValue ?? []
        #expect(timeline.contains { $0["type"] == "purchase" } && timeline.contains { $0["type"] == "note" && JSONText.encode($0).contains("prefers oat milk") })

        // Erasing cannot be undone: with no terminal to ask in, it wants --yes and erases nothing.
        let (unaskedCode, _, unaskedError) = try crm.cli(["erase", "gina@example.com"])
        #expect(unaskedCode != 0 && unaskedError.contains("--yes"), "\(unaskedError)")
        #expect(try crm.exists("gina@example.com"))
        let (eraseCode, _, eraseError) = try crm.cli(["erase", "gina@example.com", "--yes"])
        #expect(eraseCode == 0, "\(eraseError)")
        #expect(try !crm.exists("gina@example.com"))
        #expect(try !crm.exists("07911 123456"), "every identifier goes, not only the one asked for")
        // What is left in the file, read directly: nothing personal, the sale's totals, the suppression.
        let database = try DatabaseQueue(path: crm.dataDirectory + "/crm.sqlite", configuration: { var c = Configuration(); c.readonly = true; return c }())
        try await database.read { db in
            let customers = try Row.fetchAll(db, sql: "SELECT name, status, visits FROM customer")
            #expect(customers.count == 1)
            #expect(customers.first?["name"] as String? == nil && customers.first?["status"] == "erased" && customers.first?["visits"] == 0)
            for table in ["identifier", "consent", "timeline", "sale_link"] {
                #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") == 0, "\(table) still holds rows of the erased person")
            }
            let sale = try Row.fetchOne(db, sql: "SELECT total, receipt FROM sale WHERE sale_id = 'S1'")
            #expect(sale?["total"] == "3.00", "the anonymous sale total stays for the books")
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM suppression WHERE reason = 'erased'") == 2, "email and phone suppressed")
            let suppressed = try String.fetchAll(db, sql: "SELECT hash FROM suppression")
            #expect(suppressed.allSatisfy { !$0.contains("gina") && !$0.contains("07911") }, "kept hashed, never in clear")
        }
        try await daemon.connect { till in
            try await till.sale("S2", total: "4.00", identify: ["email": "Gina@example.com"])
            try await till.sale("S3", total: "1.00", identify: ["email": "hal@example.com"])
        }
        try await crm.eventually("a later sale") { try crm.profile("hal@example.com")?["visits"] == 1 }
        #expect(try !crm.exists("gina@example.com"))
        #expect(crm.log.contains("erased person"))
    }
}

@Suite("till-crm lifecycle", .timeLimit(.minutes(1)))
struct CRMLifecycleTests {
    @Test("till-crm processes creating a new data directory at once all succeed (imports starting together), and the row goes in once")
    func concurrentFirstOpen() async throws {
        let list = NSTemporaryDirectory() + "till-crm-list-" + UUID().uuidString.prefix(8) + ".csv"
        try "record_id,given_name,family_name,email\nR1,Ann,Lee,ann@example.com\n".write(toFile: list, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: list) }
        for _ in 0..<3 {
            let directory = NSTemporaryDirectory() + "till-crm-open-" + UUID().uuidString.prefix(8)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let results = try await withThrowingTaskGroup(of: (Int32, String, String).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try runProcess(Binaries.directory.appendingPathComponent("till-crm").path, ["import", list, "--data-dir", directory])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (code, _, error) in results { #expect(code == 0, "\(error)") }
            #expect(results.filter { $0.1.contains("made 1 new customer") }.count == 1, "\(results.map(\.1))")
        }
    }

    @Test("a command that only reads never creates a database: a mistyped --data-dir is named, and stays absent")
    func readOnlyCommandsCreateNothing() throws {
        let directory = NSTemporaryDirectory() + "till-crm-typo-" + UUID().uuidString.prefix(8)
        for arguments in [["customer", "find", "x"], ["customer", "show", "ann@example.com"], ["duplicates"], ["export", "C1"]] {
            let (code, _, error) = try runProcess(Binaries.directory.appendingPathComponent("till-crm").path, arguments + ["--data-dir", directory])
            #expect(code == 1 && error.contains("no customer database at \(directory)/crm.sqlite") && error.contains("--data-dir"), "\(arguments): \(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test("SIGTERM stops till-crm promptly, also while it is waiting for an absent tilld")
    func sigterm() async throws {
        let daemon = try await DaemonUnderTest()
        await daemon.stop()
        let crm = try CRMUnderTest(daemon: daemon)
        try await crm.eventually("a reconnect attempt") { crm.log.contains("tilld is not reachable") }
        kill(crm.process.processIdentifier, SIGTERM)
        #expect(await waitForExit(crm.process, timeout: .seconds(10)), "till-crm must not loop on after SIGTERM")
        #expect(crm.process.terminationStatus == 0)
    }
}
