import Foundation
import Glibc
import Synchronization
import Testing
import TillClient
import TillCore

/// Where the built executables are: beside the test bundle (swift build puts them together).
enum Binaries {
    static let directory: URL = {
        if let dir = ProcessInfo.processInfo.environment["TILLD_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("tilld").path) { return url }
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.appendingPathComponent(".build/debug")
    }()

    static var tilld: String { directory.appendingPathComponent("tilld").path }
    static var tillctl: String { directory.appendingPathComponent("tillctl").path }
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// tilld closed the connection (or exited) before what a test waited for came: said as such,
/// not handed back as if it had come.
struct ConnectionEnded: Error, CustomStringConvertible {
    var received: Int
    var description: String { "the connection to tilld ended after \(received) events, before what was waited for" }
}

/// A child's exit, as Foundation reports it through `terminationHandler` (set here, before
/// `run()`). Waits are bounded, and `Process.waitUntilExit()` is not used for children that
/// live long: it spins the calling thread's run loop until Foundation marks the child done, and
/// under `.ci/under-load.sh` one was found (gdb) parked for 20 minutes on a cooperative-pool
/// thread after a SIGKILL, which, with a blocking wait on the pool's other thread, stalled the
/// whole suite.
final class ChildExit: Sendable {
    private let signal = DispatchSemaphore(value: 0)
    private let exited = Mutex(false)

    init(_ process: Process) {
        process.terminationHandler = { [self] _ in
            exited.withLock { $0 = true }
            signal.signal()
        }
    }

    var hasExited: Bool { exited.withLock { $0 } }

    /// Waits at most `seconds`; whether the child has exited.
    @discardableResult
    func wait(seconds: Double) -> Bool {
        if hasExited { return true }
        guard signal.wait(timeout: .now() + seconds) == .success else { return hasExited }
        signal.signal()  // for the next waiter
        return true
    }
}

/// A real `tilld` process on a temporary socket and state directory.
final class DaemonUnderTest: @unchecked Sendable {
    let directory: String
    let socket: String
    let stateDirectory: String
    let configPath: String?
    let logPath: String
    private(set) var process: Process
    private(set) var exit: ChildExit

    /// `wrapper`: a command tilld runs under (strace), its arguments ending before tilld's path.
    init(config: String? = nil, demo: Bool = true, wrapper: [String] = []) async throws {
        self.wrapper = wrapper
        directory = NSTemporaryDirectory() + "tilld-it-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        socket = directory + "/tilld.sock"
        stateDirectory = directory + "/state"
        logPath = directory + "/tilld.log"
        if let config {
            configPath = directory + "/tilld.toml"
            try config.write(toFile: configPath!, atomically: true, encoding: .utf8)
        } else {
            configPath = nil
        }
        self.demo = demo
        process = Process()
        exit = ChildExit(process)
        try await start()
    }

    private let demo: Bool
    private let wrapper: [String]

    var arguments: [String] {
        var arguments = ["--socket", socket, "--state-dir", stateDirectory, "--log-level", "debug"]
        if demo { arguments.append("--demo") }
        // Without --config the default /etc/tilld/tilld.toml would be read; point at an empty file instead.
        arguments += ["--config", configPath ?? (directory + "/empty.toml")]
        return arguments
    }

    func start() async throws {
        if configPath == nil, !FileManager.default.fileExists(atPath: directory + "/empty.toml") {
            try "".write(toFile: directory + "/empty.toml", atomically: true, encoding: .utf8)
        }
        let process = Process()
        if let tool = wrapper.first {
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = Array(wrapper.dropFirst()) + [Binaries.tilld] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: Binaries.tilld)
            process.arguments = arguments
        }
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardError = log
        process.standardOutput = log
        var environment = ProcessInfo.processInfo.environment
        environment["LISTEN_FDS"] = nil
        environment["NOTIFY_SOCKET"] = nil
        process.environment = environment
        let exit = ChildExit(process)
        try process.run()
        self.process = process
        self.exit = exit
        try await waitUntilReady()
    }

    func waitUntilReady(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if exit.hasExited { throw TimedOut(what: "tilld to start (it exited; log: \(log.suffix(2000)))") }
            // The probe blocks (a connect, a read of up to 2 s), so it runs off the cooperative
            // pool: dozens of tests start a tilld at once, and probes holding both of this
            // machine's pool threads stalled every other test for 20 s.
            let socket = self.socket
            let greeted = (try? await offThePool { () -> Bool in
                guard let client = try? RawClient(path: socket) else { return false }
                defer { client.close() }
                return (try? client.readLine(timeout: .seconds(2))) != nil
            }) ?? false
            if greeted { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimedOut(what: "tilld's socket \(socket)")
    }

    /// tilld's pid: the process started, or under a wrapper, that process's child.
    var pid: Int32 {
        let started = process.processIdentifier
        guard !wrapper.isEmpty else { return started }
        let children = (try? String(contentsOfFile: "/proc/\(started)/task/\(started)/children", encoding: .utf8)) ?? ""
        return children.split(separator: " ").first.flatMap { Int32($0) } ?? started
    }

    func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// SIGKILL: no chance to flush or clean up.
    func crash() {
        kill(pid, SIGKILL)
        exit.wait(seconds: 10)
    }

    /// SIGTERM and wait (at most 30 s, then SIGKILL and -1); returns the exit status. The
    /// wait is off the cooperative pool (it polls with usleep).
    @discardableResult
    func stop() async -> Int32 {
        (try? await offThePool { self.stopBlocking() }) ?? -1
    }

    private func stopBlocking() -> Int32 {
        guard !exit.hasExited else { return process.terminationStatus }
        kill(pid, SIGTERM)
        if !exit.wait(seconds: 30) {
            kill(pid, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
            exit.wait(seconds: 10)
            return -1
        }
        return process.terminationStatus
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        if !exit.hasExited {
            // tilld itself first: under a wrapper, killing the wrapper alone would orphan it.
            kill(pid, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
            exit.wait(seconds: 10)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    func connect<R: Sendable>(_ body: @Sendable (TillConnection) async throws -> R) async throws -> R {
        try await TillConnection.with(socket: socket, body)
    }

    /// Runs tillctl and returns (status, stdout, stderr), waiting off the cooperative pool.
    func tillctl(_ arguments: [String], executable: String = Binaries.tillctl, prefix: [String] = []) async throws -> (Int32, String, String) {
        try await offThePool { try self.tillctlBlocking(arguments, executable: executable, prefix: prefix) }
    }

    /// tillctl, waiting on this thread (for code already off the pool).
    func tillctlBlocking(_ arguments: [String], executable: String = Binaries.tillctl, prefix: [String] = []) throws -> (Int32, String, String) {
        try runProcess(prefix.isEmpty ? executable : prefix[0], (prefix.isEmpty ? [] : Array(prefix.dropFirst()) + [executable]) + arguments + ["--socket", socket])
    }
}

/// Waits for a child without blocking a concurrency thread; kills it after `timeout`.
func waitForExit(_ process: Process, timeout: Duration = .seconds(60)) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now > deadline {
            kill(process.processIdentifier, SIGKILL)
            return false
        }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return true
}

/// Runs a program to completion (killed after 60 s, so a hung client fails the test instead of hanging it).
/// Runs blocking work (a child process, a blocking socket) on a thread of its own, not on one of
/// the cooperative pool's two: a test that blocks a pool thread for seconds starves every other
/// test running beside it on a loaded machine.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    process.arguments = ["-s", "KILL", "60", executable] + arguments
    if let environment { process.environment = environment }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let exit = ChildExit(process)
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let error = err.fileHandleForReading.readDataToEndOfFile()
    // `timeout` kills the program at 60 s, so this wait is a backstop, never the limit.
    if !exit.wait(seconds: 90) { kill(process.processIdentifier, SIGKILL); exit.wait(seconds: 10) }
    return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
}

/// A bare blocking socket client: for malformed input and for playing a stalled subscriber,
/// which the well-behaved TillConnection cannot do.
final class RawClient: @unchecked Sendable {
    private(set) var fd: Int32
    private var buffer: [UInt8] = []

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result != 0 {
            let code = errno
            close()
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }

    /// Sets the kernel receive buffer small, so a stalled reader backs up into the daemon quickly.
    func shrinkReceiveBuffer(to bytes: Int32) {
        var size = bytes
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            offset += written
        }
    }

    /// The next line, or nil at end of stream.
    func readLine(timeout: Duration = .seconds(10)) throws -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            guard ContinuousClock.now < deadline else { throw TimedOut(what: "a line from tilld") }
            if !waitReadable(fd, until: deadline) { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { return nil }
            buffer.append(contentsOf: chunk[..<count])
        }
    }

    func readJSON(timeout: Duration = .seconds(10)) throws -> JSONValue? {
        guard let line = try readLine(timeout: timeout) else { return nil }
        return try JSONText.decode(line)
    }

    /// Sends one request line (a JSON object, without its newline) and returns its reply.
    func request(_ line: String) throws -> JSONValue {
        try send(line + "\n")
        return try reply()
    }

    /// Reads lines until one is a reply (skipping events), and returns it.
    func reply(timeout: Duration = .seconds(10)) throws -> JSONValue {
        while let value = try readJSON(timeout: timeout) {
            if value["type"] == "reply" { return value }
        }
        throw TimedOut(what: "a reply (connection closed)")
    }

    /// Half-closes: no more requests, replies and events still arrive. The corresponding C function is `shutdown`.
    func shutdownWrite() {
        Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes once. (A second close could hit a descriptor number the process has reused
    /// since, such as one of NIO's sockets or a Process pipe.)
    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}

extension TillConnection {
    /// Collects events until `predicate` says stop (or the timeout).
    func collect(timeout: Duration = .seconds(20), until predicate: @escaping @Sendable ([Event]) -> Bool) async throws -> [Event] {
        try await withThrowingTaskGroup(of: [Event]?.self) { group in
            group.addTask {
                var events: [Event] = []
                for try await line in self.events {
                    if case .event(let event) = line { events.append(event) }
                    if predicate(events) { return events }
                }
                throw ConnectionEnded(received: events.count)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let result = try await group.next(), let events = result else { throw TimedOut(what: "events") }
            return events
        }
    }
}

/// Reads a pipe until its text contains `needle`, the pipe closes, or `timeout` passes (then it
/// throws): a child that never says what it should fails the test instead of hanging it.
func readUntil(_ pipe: Pipe, contains needle: String, timeout: Duration) throws -> String {
    let fd = pipe.fileHandleForReading.fileDescriptor
    let deadline = ContinuousClock.now + timeout
    var text = ""
    while !text.contains(needle) {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: "\"\(needle)\" from a child (it said: \(text))") }
        if !waitReadable(fd, until: deadline) { continue }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &chunk, chunk.count)
        if count <= 0 { break }
        text += String(decoding: chunk[..<count], as: UTF8.self)
    }
    return text
}

/// Waits until `fd` has something to read (or its end), at most until `deadline`.
/// The corresponding C function is `poll`.
func waitReadable(_ fd: Int32, until deadline: ContinuousClock.Instant) -> Bool {
    let remaining = deadline - ContinuousClock.now
    guard remaining > .zero else { return false }
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let ms = Int32(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)
    return poll(&descriptor, 1, max(1, ms)) > 0
}
