import CTillSystem
import Glibc

/// An open file descriptor, typed so it cannot be mixed up with a count or a length. Whoever
/// opened it closes it, once (`close()`).
public struct FileDescriptor: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public var description: String { "fd \(rawValue)" }
}

extension SystemError {
    /// The call is not one this kind of descriptor answers (ENOTTY): a fake or a non-terminal.
    public static func notSupported(_ call: String, _ subject: String) -> SystemError { SystemError(call: call, subject: subject, errno: ENOTTY) }
    /// The call was interrupted by a signal (retried by `retryingInterrupts`, never seen above it).
    public var isInterrupted: Bool { errno == EINTR }
    /// Non-blocking descriptor with nothing to read or no room to write.
    public var isWouldBlock: Bool { errno == EAGAIN || errno == EWOULDBLOCK }
    /// The device went away under an open descriptor (unplugged): ENODEV, ENXIO, EIO, or a hang-up.
    public var isDeviceGone: Bool { errno == ENODEV || errno == ENXIO || errno == EIO || errno == EPIPE || errno == ECONNRESET }
    /// The errno's symbolic name (`ENOENT`), for messages and tests.
    public var name: String {
        switch errno {
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case EINTR: "EINTR"
        case EIO: "EIO"
        case ENXIO: "ENXIO"
        case EBADF: "EBADF"
        case EAGAIN: "EAGAIN"
        case EACCES: "EACCES"
        case EBUSY: "EBUSY"
        case EEXIST: "EEXIST"
        case ENODEV: "ENODEV"
        case ENOTDIR: "ENOTDIR"
        case EISDIR: "EISDIR"
        case EINVAL: "EINVAL"
        case ENOTTY: "ENOTTY"
        case ENOSPC: "ENOSPC"
        case EROFS: "EROFS"
        case EPIPE: "EPIPE"
        case ETIMEDOUT: "ETIMEDOUT"
        case ECONNREFUSED: "ECONNREFUSED"
        case ECONNRESET: "ECONNRESET"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case ENETUNREACH: "ENETUNREACH"
        case EINPROGRESS: "EINPROGRESS"
        default: "errno \(errno)"
        }
    }
}

/// Runs a system call again while it fails with EINTR, the one place that is done; any other
/// failure (-1) becomes a `SystemError` naming the call and what it was called on.
@discardableResult
public func retryingInterrupts<T: FixedWidthInteger>(_ call: String, _ subject: @autoclosure () -> String, _ body: () -> T) throws -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw SystemError(call: call, subject: subject(), errno: code)
    }
}

/// What `poll` waits for.
public struct Readiness: OptionSet, Sendable, Hashable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = Readiness(rawValue: Int16(POLLIN))
    public static let writable = Readiness(rawValue: Int16(POLLOUT))
}

extension FileDescriptor {
    public struct OpenOptions: OptionSet, Sendable, Hashable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let nonBlocking = OpenOptions(rawValue: O_NONBLOCK)
        /// Opening a terminal must not make it tilld's controlling terminal.
        public static let noControllingTerminal = OpenOptions(rawValue: O_NOCTTY)
        public static let create = OpenOptions(rawValue: O_CREAT)
        public static let exclusiveCreate = OpenOptions(rawValue: O_EXCL)
        public static let append = OpenOptions(rawValue: O_APPEND)
    }

    public enum Access: Sendable { case readOnly, writeOnly, readWrite }

    /// Opens `path` (always close-on-exec: a child process never inherits a device).
    public static func open(_ path: String, _ access: Access, options: OpenOptions = [], mode: UInt32 = 0o600) throws -> FileDescriptor {
        let accessFlag: Int32 = switch access {
        case .readOnly: O_RDONLY
        case .writeOnly: O_WRONLY
        case .readWrite: O_RDWR
        }
        let raw = try retryingInterrupts("open", path) { Glibc.open(path, accessFlag | options.rawValue | O_CLOEXEC, mode_t(mode)) }
        return FileDescriptor(rawValue: raw)
    }

    /// Closes the descriptor. EINTR is not retried: on Linux the descriptor is closed anyway,
    /// and closing it again could close one another thread just opened.
    public func close() throws {
        if Glibc.close(rawValue) == -1, Glibc.errno != EINTR {
            throw SystemError(call: "close", subject: description, errno: Glibc.errno)
        }
    }

    /// Reads what is there, up to `maxCount` bytes: [] at end of file. On a non-blocking
    /// descriptor with nothing to read it throws the EAGAIN error (`isWouldBlock`).
    public func read(upTo maxCount: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: maxCount)
        let count = try bytes.withUnsafeMutableBytes { buffer in
            try retryingInterrupts("read", description) { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
        }
        bytes.removeLast(maxCount - count)
        return bytes
    }

    /// Writes what the kernel takes now; returns how many bytes (possibly fewer than given).
    public func write(_ bytes: ArraySlice<UInt8>) throws -> Int {
        try bytes.withUnsafeBytes { buffer in
            try retryingInterrupts("write", description) { Glibc.write(rawValue, buffer.baseAddress, buffer.count) }
        }
    }

    /// Waits until the descriptor is ready for `events` or `timeout` passes (nil: no limit).
    /// Returns the readiness seen; an error or hang-up counts as ready for everything asked,
    /// so the read or write that follows reports what happened.
    public func poll(for events: Readiness, timeout: Duration?) throws -> Readiness {
        var entry = pollfd(fd: rawValue, events: events.rawValue, revents: 0)
        let milliseconds: Int32 = timeout.map { duration in
            let (seconds, attoseconds) = duration.components
            return Int32(clamping: max(0, seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000))
        } ?? -1
        let count = try retryingInterrupts("poll", description) { Glibc.poll(&entry, 1, milliseconds) }
        if count == 0 { return [] }
        if entry.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return events }
        return Readiness(rawValue: entry.revents & events.rawValue)
    }

    public func setNonBlocking(_ on: Bool) throws {
        let flags = try retryingInterrupts("fcntl(F_GETFL)", description) { fcntl(rawValue, F_GETFL) }
        let wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags {
            try retryingInterrupts("fcntl(F_SETFL)", description) { fcntl(rawValue, F_SETFL, wanted) }
        }
    }

    /// An ioctl that takes no argument (TIOCEXCL, ...). `name` is the request's name, for errors.
    public func ioctl(_ request: UInt, name: String) throws {
        try retryingInterrupts("ioctl(\(name))", description) { till_ioctl_none(rawValue, request) }
    }

    /// An ioctl that reads or writes one int (TIOCMGET, TIOCOUTQ, ...).
    public func ioctl(_ request: UInt, name: String, value: inout Int32) throws {
        try retryingInterrupts("ioctl(\(name))", description) { till_ioctl_int_pointer(rawValue, request, &value) }
    }
}

extension FileDescriptor {
    /// A new eventfd (non-blocking, close-on-exec): a descriptor another thread can make
    /// readable to wake a `poll` that watches it.
    public static func makeEventFD() throws -> FileDescriptor {
        FileDescriptor(rawValue: try retryingInterrupts("eventfd", "a wake-up descriptor") { till_eventfd() })
    }

    /// Makes an eventfd readable (and keeps it so: it is never drained here).
    public func signalEventFD() {
        var one: UInt64 = 1
        _ = Glibc.write(rawValue, &one, MemoryLayout<UInt64>.size)
    }

    /// Like `poll(for:timeout:)`, but also returns (with `woken` true and no readiness) as soon
    /// as `wake` is readable: how a thread blocked waiting for a device is told to stop.
    public func poll(for events: Readiness, timeout: Duration?, wake: FileDescriptor) throws -> (ready: Readiness, woken: Bool) {
        var entries = [pollfd(fd: rawValue, events: events.rawValue, revents: 0), pollfd(fd: wake.rawValue, events: Int16(POLLIN), revents: 0)]
        let milliseconds: Int32 = timeout.map { duration in
            let (seconds, attoseconds) = duration.components
            return Int32(clamping: max(0, seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000))
        } ?? -1
        let count = try retryingInterrupts("poll", description) { Glibc.poll(&entries, 2, milliseconds) }
        if count == 0 { return ([], false) }
        if entries[1].revents != 0 { return ([], true) }
        if entries[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return (events, false) }
        return (Readiness(rawValue: entries[0].revents & events.rawValue), false)
    }
}
