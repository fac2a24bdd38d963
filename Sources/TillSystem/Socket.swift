import CTillSystem
import Glibc

extension FileDescriptor {
    /// Connects a non-blocking TCP socket to `host:port`, trying each address the name resolves
    /// to, each within `timeout`; with TCP keepalive (a printer switched off mid-connection is
    /// noticed in about 25 s, not hours) and no Nagle delay (a drawer kick goes out at once).
    /// Name resolution blocks: call it off the cooperative threads (a transport's own queue).
    public static func connectTCP(host: String, port: Int, timeout: Duration) throws -> FileDescriptor {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let subject = "\(host):\(port)"
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            // EHOSTUNREACH stands for "cannot resolve"; the message carries getaddrinfo's own text.
            throw SystemError(call: "getaddrinfo", subject: "\(subject) (\(String(cString: gai_strerror(resolved))))", errno: EHOSTUNREACH)
        }
        defer { freeaddrinfo(list) }
        var lastError = SystemError(call: "connect", subject: subject, errno: EHOSTUNREACH)
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let address = entry {
            entry = address.pointee.ai_next
            let raw = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if raw < 0 {
                lastError = SystemError(call: "socket", subject: subject, errno: Glibc.errno)
                continue
            }
            let descriptor = FileDescriptor(rawValue: raw)
            do {
                if Glibc.connect(raw, address.pointee.ai_addr, address.pointee.ai_addrlen) != 0 {
                    let code = Glibc.errno
                    guard code == EINPROGRESS || code == EINTR else { throw SystemError(call: "connect", subject: subject, errno: code) }
                    guard try descriptor.poll(for: .writable, timeout: timeout).contains(.writable) else {
                        throw SystemError(call: "connect", subject: subject, errno: ETIMEDOUT)
                    }
                    var failure: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    try retryingInterrupts("getsockopt(SO_ERROR)", subject) { getsockopt(raw, SOL_SOCKET, SO_ERROR, &failure, &length) }
                    if failure != 0 { throw SystemError(call: "connect", subject: subject, errno: failure) }
                }
                try descriptor.setOption(SOL_SOCKET, SO_KEEPALIVE, 1, subject)
                try descriptor.setOption(Int32(IPPROTO_TCP), TCP_KEEPIDLE, 10, subject)
                try descriptor.setOption(Int32(IPPROTO_TCP), TCP_KEEPINTVL, 5, subject)
                try descriptor.setOption(Int32(IPPROTO_TCP), TCP_KEEPCNT, 3, subject)
                try descriptor.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1, subject)
                return descriptor
            } catch let error as SystemError {
                try? descriptor.close()
                lastError = error
            }
        }
        throw lastError
    }

    private func setOption(_ level: Int32, _ name: Int32, _ value: Int32, _ subject: String) throws {
        var value = value
        try retryingInterrupts("setsockopt", subject) { setsockopt(rawValue, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
    }
}

/// Socket constants for modules that must not import Glibc (the seam's rule): the peer
/// credentials option of a Unix-domain socket, and the stream socket type.
public enum SocketConstants {
    public static let socketLevel = Int32(SOL_SOCKET)
    public static let peerCredentials = Int32(SO_PEERCRED)
    public static let streamType = Int32(SOCK_STREAM.rawValue)
}

extension SystemError {
    /// The error a non-blocking call gives when it would have to wait (EAGAIN).
    /// EAGAIN's value, for C libraries that return negative errno (libevdev).
    public static let wouldBlockCode: Int32 = EAGAIN

    public static func wouldBlock(call: String, subject: String) -> SystemError {
        SystemError(call: call, subject: subject, errno: EAGAIN)
    }
}

/// The calling thread's name as `ps -L` and /proc/PID/task/TID/comm show it (15 bytes at most).
public enum ThreadName {
    public static func set(_ name: String) {
        _ = till_set_thread_name(String(name.utf8.prefix(15))!)
    }
}

/// Whether the calling thread may block in the kernel (a sync, a poll): true only on a thread
/// that says so of itself (a `DedicatedThread`), never on the cooperative pool or an event
/// loop, where one blocked thread of two stalls everything else.
public enum ThreadMayBlock {
    public static var current: Bool { till_thread_may_block() != 0 }
    public static func declare() { till_set_thread_may_block(1) }
}

/// Sleeping a thread that is not a task's (a transport's own queue).
public enum ThreadSleep {
    public static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1, Glibc.errno == EINTR { request = remaining }
    }
}
