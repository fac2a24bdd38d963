import Foundation
import Glibc
import Testing
import TillClient
import TillCore

/// A datagram socket standing in for systemd's NOTIFY_SOCKET.
final class NotifyListener: @unchecked Sendable {
    let path: String
    let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if bound != 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// Messages received until one contains `text` (or the timeout).
    func wait(for text: String, timeout: Duration = .seconds(15)) -> [String] {
        var messages: [String] = []
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { continue }
            let message = String(decoding: buffer[..<count], as: UTF8.self)
            messages.append(message)
            if message.contains(text) { return messages }
        }
        return messages
    }

    deinit {
        close(fd)
        unlink(path)
    }
}

/// Starts a program with posix_spawn, output discarded; the caller reaps it.
func spawn(_ arguments: [String]) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var pid: pid_t = 0
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let result = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
    guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
    return pid
}

@Suite("systemd integration", .timeLimit(.minutes(2)))
struct SystemdTests {
    @Test("sd_notify: READY=1 once listening, WATCHDOG=1 pings, STOPPING=1 on SIGTERM")
    func notify() async throws {
        let directory = NSTemporaryDirectory() + "tilld-sd-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let listener = try NotifyListener(path: directory + "/notify")
        try "".write(toFile: directory + "/empty.toml", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.tilld)
        process.arguments = ["--demo", "--socket", directory + "/s.sock", "--state-dir", directory + "/state", "--config", directory + "/empty.toml"]
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = listener.path
        environment["WATCHDOG_USEC"] = "400000"
        process.environment = environment
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let startup = listener.wait(for: "READY=1")
        #expect(startup.contains { $0.contains("READY=1") }, "\(startup)")
        #expect(FileManager.default.fileExists(atPath: directory + "/s.sock"), "READY only after the socket is listening")
        let pings = listener.wait(for: "WATCHDOG=1", timeout: .seconds(5))
        #expect(pings.contains("WATCHDOG=1"))
        kill(process.processIdentifier, SIGTERM)
        let stopping = listener.wait(for: "STOPPING=1")
        #expect(stopping.contains("STOPPING=1"))
        #expect(await waitForExit(process, timeout: .seconds(30)))
        #expect(process.terminationStatus == 0)
    }

    @Test("socket activation: tilld takes the listening socket passed in LISTEN_FDS")
    func socketActivation() async throws {
        let directory = NSTemporaryDirectory() + "tilld-sa-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "".write(toFile: directory + "/empty.toml", atomically: true, encoding: .utf8)
        let socketPath = directory + "/activated.sock"
        // Not Foundation's Process: it notices a child's exit by an inherited descriptor closing,
        // and systemd-socket-activate closes every descriptor it does not pass on.
        let pid = try spawn([
            "/usr/bin/systemd-socket-activate", "-l", socketPath, Binaries.tilld, "--demo", "--socket", directory + "/not-used.sock",
            "--state-dir", directory + "/state", "--config", directory + "/empty.toml",
        ])
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        // The first connection starts tilld; it must answer on the passed socket.
        var hello: JSONValue? = nil
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if FileManager.default.fileExists(atPath: socketPath), let client = try? RawClient(path: socketPath),
                let line = try? client.readJSON(timeout: .seconds(10))
            {
                hello = line
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(hello?["type"] == "hello")
        #expect(!FileManager.default.fileExists(atPath: directory + "/not-used.sock"), "no socket of its own when one is passed")
    }
}
