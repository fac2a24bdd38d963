import Foundation
import Glibc
import Synchronization
import Testing
import TillSystem
import TillTransport

/// A loopback listener standing in for a network printer's port 9100.
final class Listener: @unchecked Sendable {
    let port: Int
    private let descriptor: Int32

    init(port: Int = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 4) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SystemError(call: "bind", subject: "127.0.0.1:\(port)", errno: code)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { _ = $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        descriptor = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Accepts one connection and returns its descriptor, or -1 when none came within
    /// `timeout` seconds. It waits on a thread of its own, never on the cooperative pool: a
    /// blocking accept there held one of this machine's two pool threads, and with another
    /// test's blocking wait on the other, the whole suite stalled for 20 minutes (gdb).
    func accept(timeout: Double = 20) async -> Int32 {
        let descriptor = self.descriptor
        return await withCheckedContinuation { continuation in
            Thread {
                var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                let answer = poll(&ready, 1, Int32(timeout * 1000)) == 1 ? Glibc.accept(descriptor, nil, nil) : -1
                continuation.resume(returning: answer)
            }.start()
        }
    }

    func close() { Glibc.close(descriptor) }

    /// A port nothing listens on: bound, then closed.
    static func unusedPort() throws -> Int {
        let listener = try Listener()
        listener.close()
        return listener.port
    }
}

@Suite("TCP transport on loopback", .timeLimit(.minutes(1)))
struct TCPTests {
    @Test("a port that refuses: refused, with what to check")
    func refused() async throws {
        let port = try Listener.unusedPort()
        do {
            _ = try await TCPConnection.open(host: "127.0.0.1", port: port)
            Issue.record("connected to a closed port")
        } catch let error as TransportError {
            #expect(error.kind == .refused && error.message.contains("9100"), "\(error)")
        }
    }

    @Test("bytes both ways; the printer closing the connection is closed, not a hang")
    func roundTripAndDrop() async throws {
        let listener = try Listener()
        defer { listener.close() }
        let accepted = Task { await listener.accept() }
        let stream = try await TCPConnection.open(host: "127.0.0.1", port: listener.port)
        let peer = await accepted.value
        try await stream.write(Array("\u{1B}@receipt".utf8), timeout: .seconds(2))
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = Glibc.read(peer, &buffer, 64)
        #expect(Array(buffer.prefix(max(0, count))) == Array("\u{1B}@receipt".utf8))
        let status: [UInt8] = [0x12, 0x34]  // a status answer
        #expect(status.withUnsafeBytes { Glibc.write(peer, $0.baseAddress, 2) } == 2)
        let got = try await stream.read(maxCount: 8, timeout: .seconds(2))
        #expect(got == status, "\(got)")
        Glibc.close(peer)
        await #expect { _ = try await stream.read(maxCount: 8, timeout: .seconds(2)) } throws: { ($0 as? TransportError)?.kind == .closed }
        await stream.close()
    }

    @Test("a printer that comes up late and drops the connection: reconnected with back-off, each failure reported")
    func reconnects() async throws {
        let port = try Listener.unusedPort()
        let changes = Mutex<[String]>([])
        let connection = Reconnecting(backoff: Backoff(initial: .milliseconds(50), maximum: .milliseconds(200), jitter: 0)) {
            try await TCPConnection.open(host: "127.0.0.1", port: port)
        } onChange: { change in
            changes.withLock { list in
                switch change {
                case .connected: list.append("connected")
                case .failed(let error, _): list.append(error.kind.rawValue)
                }
            }
        }
        // The printer is switched on 300 ms later.
        let late = Task.detached { () -> (Listener, Int32) in
            try await Task.sleep(for: .milliseconds(300))
            let listener = try Listener(port: port)
            return (listener, await listener.accept())
        }
        let first = try await connection.stream()
        let (listener, peer) = try await late.value
        defer { listener.close() }
        let seen = changes.withLock { $0 }
        #expect(seen.first == "refused" && seen.last == "connected", "\(seen)")
        // The printer drops the connection; the driver notices and asks again.
        Glibc.close(peer)
        await #expect(throws: TransportError.self) { _ = try await first.read(maxCount: 8, timeout: .seconds(2)) }
        await connection.lost(first)
        let accepted = Task { await listener.accept() }
        let second = try await connection.stream()
        #expect(second !== first)
        try await second.write([0x1B, 0x40], timeout: .seconds(2))
        Glibc.close(await accepted.value)
        await connection.close()
    }
}
