import Foundation
import Glibc
import Testing
import TillClient
import TillCore

@Suite("Access control, tillctl and the Python client", .timeLimit(.minutes(2)))
struct AccessAndToolsTests {
    static let isRoot = getuid() == 0

    /// A copy of tillctl that another uid can execute (the build tree may not be reachable).
    private func tillctlForOthers(in daemon: DaemonUnderTest) throws -> String {
        let copy = daemon.directory + "/tillctl"
        if !FileManager.default.fileExists(atPath: copy) {
            // Copied by cp, not in this process: a copy written here holds a descriptor open for
            // writing, which a child forked meanwhile by another test inherits, and executing
            // the copy then fails with ETXTBSY ("Text file busy"), as seen once in CI.
            let (code, _, error) = try runProcess("/bin/cp", [Binaries.tillctl, copy])
            guard code == 0 else { throw WireError(.deviceError, "cp tillctl: \(error)") }
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy)
        }
        return copy
    }

    @Test("a read-only peer may subscribe but not act; the refusal is logged with uid and pid", .enabled(if: isRoot))
    func readOnlyPeer() async throws {
        let daemon = try await DaemonUnderTest(config: """
            [socket]
            group = "nogroup"
            [access]
            read_groups = ["nogroup"]
            act_users = []
            """)
        let socketGroup = try FileManager.default.attributesOfItem(atPath: daemon.socket)[.groupOwnerAccountName] as? String
        let mode = try FileManager.default.attributesOfItem(atPath: daemon.socket)[.posixPermissions] as? Int
        #expect(socketGroup == "nogroup")
        #expect(mode == 0o660)
        let tillctl = try tillctlForOthers(in: daemon)
        let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        let (statusCode, statusOut, _) = try await daemon.tillctl(["status"], executable: tillctl, prefix: asNobody)
        #expect(statusCode == 0, "a read peer may ask for status")
        #expect(statusOut.contains("tilld 0.1.0"))
        // Every act op is refused with the code forbidden (tillctl prints the code first).
        for command in [["drawer", "open"], ["publish", "sale.voided", #"{"sale":"S1"}"#], ["print", "test"], ["display", "refused"]] {
            let (code, _, error) = try await daemon.tillctl(command, executable: tillctl, prefix: asNobody)
            #expect(code == 1)
            #expect(error.hasPrefix("tillctl: forbidden: ") && error.contains("act_users"), "\(command): \(error)")
        }
        let seq = try await daemon.connect { try await $0.request("status")["seq"]?.intValue ?? -1 }
        #expect(seq == 4, "nothing refused left an event: only the four device.added")
        // The refusal is logged with the peer's uid and pid: a peer that says its own pid.
        let (_, pidOut, _) = try runProcess("/usr/bin/setpriv", Array(asNobody.dropFirst()) + [
            "/usr/bin/python3", "-c",
            "import os,socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(4096); print(os.getpid(), flush=True); s.sendall(b'{\"id\":1,\"op\":\"drawer.open\"}\\n'); s.recv(4096)",
            daemon.socket,
        ])
        let peerPID = pidOut.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Int(peerPID) != nil, "\(pidOut)")
        try await poll("the refusal to be logged") { daemon.log.contains("pid=\(peerPID)") }
        let line = daemon.log.split(separator: "\n").first { $0.contains("pid=\(peerPID)") } ?? ""
        #expect(line.contains("forbidden") && line.contains("uid=65534") && line.contains("op=drawer.open"), "\(line)")
        // Root may do everything.
        let (rootCode, _, rootError) = try await daemon.tillctl(["drawer", "open"])
        #expect(rootCode == 0, "\(rootError)")
    }

    @Test("a non-root peer named in act_users, or in a group of act_groups, may act", .enabled(if: isRoot), arguments: [
        "[access]\nact_users = [\"nobody\"]\n", "[access]\nact_groups = [\"nogroup\"]\nact_users = []\n",
    ])
    func grantedAct(access: String) async throws {
        let daemon = try await DaemonUnderTest(config: "[socket]\ngroup = \"nogroup\"\n" + access)
        let tillctl = try tillctlForOthers(in: daemon)
        let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        let (code, _, error) = try await daemon.tillctl(["drawer", "open"], executable: tillctl, prefix: asNobody)
        #expect(code == 0, "\(error)")
        let (publishCode, _, publishError) = try await daemon.tillctl(["publish", "sale.voided", #"{"sale":"S1"}"#], executable: tillctl, prefix: asNobody)
        #expect(publishCode == 0, "\(publishError)")
    }

    @Test("a peer outside the socket's group cannot connect and is told which group to join", .enabled(if: isRoot))
    func outsider() async throws {
        let daemon = try await DaemonUnderTest(config: "[socket]\ngroup = \"nogroup\"\n")
        let tillctl = try tillctlForOthers(in: daemon)
        // uid 1 (daemon) with gid 1: not in nogroup.
        let (code, _, error) = try await daemon.tillctl(["status"], executable: tillctl, prefix: ["/usr/bin/setpriv", "--reuid=1", "--regid=1", "--clear-groups"])
        #expect(code != 0)
        #expect(error.contains("permission denied") && error.contains("nogroup"), "\(error)")
    }

    @Test("tillctl: watch --json, simulate, publish, devices, doctor, and a clear message when tilld is not running")
    func tillctl() async throws {
        let daemon = try await DaemonUnderTest()
        // --since the current seq: the scan is seen however late the watcher subscribes.
        let now = try await daemon.connect { try await $0.request("status")["seq"]?.intValue ?? 0 }
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: Binaries.tillctl)
        watcher.arguments = ["watch", "scanner.*", "--json", "--count", "1", "--since", String(now), "--socket", daemon.socket]
        let output = Pipe()
        watcher.standardOutput = output
        try watcher.run()
        #expect(try await daemon.tillctl(["simulate", "scan", "LOYALTY-42"]).0 == 0)
        #expect(await waitForExit(watcher), "tillctl watch --count 1 ends after one event")
        let line = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let event = try JSONText.decode(line.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(event["topic"] == "scanner.data" && event["data"]?["text"] == "LOYALTY-42")

        let (publishCode, publishOut, _) = try await daemon.tillctl(["publish", "sale.started", #"{"sale":"S1","till":"T1"}"#])
        #expect(publishCode == 0 && publishOut.contains("seq"))
        let (badCode, _, badError) = try await daemon.tillctl(["publish", "sale.started", #"{"sale":"S1"}"#])
        #expect(badCode != 0 && badError.contains("data.till"), "one-line reason naming the field: \(badError)")
        let (devicesCode, devicesOut, _) = try await daemon.tillctl(["devices"])
        #expect(devicesCode == 0 && devicesOut.contains("sim-printer") && devicesOut.contains("online"))
        let (doctorCode, doctorOut, _) = try await daemon.tillctl(["doctor"])
        #expect(doctorCode == 0 && doctorOut.contains("ok   sim-printer"), "\(doctorOut)")
        let (since, sinceOut, _) = try await daemon.tillctl(["watch", "--since", "0", "--count", "2", "device.*"])
        #expect(since == 0 && sinceOut.split(separator: "\n").count == 2 && sinceOut.contains("#1 device.added [sim-scanner]"))

        await daemon.stop()
        let (downCode, _, downError) = try await daemon.tillctl(["status"])
        #expect(downCode == 1)
        #expect(downError.contains("tilld is not running") && downError.contains(daemon.socket))
    }

    @Test("a socket left in root's group: the advice is to create the group, never to join root's", .enabled(if: isRoot))
    func missingGroup() async throws {
        let daemon = try await DaemonUnderTest(config: "[socket]\ngroup = \"no-such-group-tilld\"\n")
        #expect(daemon.log.contains("groupadd no-such-group-tilld"), "the daemon says how to create it")
        let tillctl = try tillctlForOthers(in: daemon)
        let (code, _, error) = try await daemon.tillctl(["status"], executable: tillctl, prefix: ["/usr/bin/setpriv", "--reuid=1", "--regid=1", "--clear-groups"])
        #expect(code == 1)
        #expect(error.contains("groupadd till") && error.contains("could not give it its own group"), "\(error)")
        #expect(!error.contains("usermod -aG root"), "never advise joining root's group: \(error)")
    }

    @Test("a socket path that is a directory is named as such, by tillctl and by tilld")
    func socketIsDirectory() async throws {
        let directory = NSTemporaryDirectory() + "tilld-dir-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (code, _, error) = try runProcess(Binaries.tillctl, ["status", "--socket", directory])
        #expect(code == 1)
        #expect(error.contains("is a directory") && error.contains("\(directory)/tilld.sock"), "\(error)")
        try "".write(toFile: directory + "/empty.toml", atomically: true, encoding: .utf8)
        let (daemonCode, _, daemonError) = try runProcess(Binaries.tilld, ["--socket", directory, "--state-dir", directory + "/state", "--config", directory + "/empty.toml"])
        #expect(daemonCode == 1)
        #expect(daemonError.contains("is a directory") && daemonError.contains("tilld.sock"), "\(daemonError)")
    }

    @Test("tillctl watch rides out a restart of tilld: it reconnects and resumes with since, showing each event once")
    func watchReconnects() async throws {
        let daemon = try await DaemonUnderTest(demo: false)
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: Binaries.tillctl)
        watcher.arguments = ["watch", "sale.*", "--json", "--count", "3", "--socket", daemon.socket]
        let output = Pipe()
        let errors = Pipe()
        watcher.standardOutput = output
        watcher.standardError = errors
        try watcher.run()
        defer { if watcher.isRunning { kill(watcher.processIdentifier, SIGKILL) } }
        try await poll("the watcher to subscribe") {
            let (_, out, _) = try await daemon.tillctl(["status", "--json"])
            return (try? JSONText.decode(out))?["subscribers"]?.intValue ?? 0 >= 1
        }
        try await daemon.connect { till in _ = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "A"]]) }
        await daemon.stop()
        // Published while the watcher is cut off: it must still see it, from the journal.
        try await daemon.start()
        try await daemon.connect { till in
            _ = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "B"]])
        }
        try await Task.sleep(for: .seconds(1))
        try await daemon.connect { till in
            _ = try await till.request("publish", ["topic": "sale.voided", "data": ["sale": "C"]])
        }
        #expect(await waitForExit(watcher, timeout: .seconds(30)), "watch --count 3 ends after three events")
        let lines = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        let sales = try lines.map { try JSONText.decode(String($0))["data"]?["sale"]?.stringValue ?? "?" }
        #expect(sales == ["A", "B", "C"], "each event once, in order, across the restart")
        let said = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(said.contains("resuming after seq"), "\(said)")
    }

    @Test("the Python example client subscribes and receives a simulated scan")
    func pythonClient() async throws {
        let daemon = try await DaemonUnderTest()
        let script = Binaries.packageRoot.appendingPathComponent("examples/tilld_client.py").path
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", script, "--socket", daemon.socket, "--count", "1", "scanner.*"]
        let output = Pipe()
        python.standardOutput = output
        let errors = Pipe()
        python.standardError = errors
        try python.run()
        // Wait until it has subscribed (it says so on stderr), then scan.
        let said = try readUntil(errors, contains: "subscribed", timeout: .seconds(20))
        #expect(said.contains("subscribed"), "\(said)")
        #expect(try await daemon.tillctl(["simulate", "scan", "4006381333931"]).0 == 0)
        #expect(await waitForExit(python))
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(python.terminationStatus == 0)
        #expect(printed.contains("scanner.data") && printed.contains("4006381333931"), "\(printed)")
    }
}
