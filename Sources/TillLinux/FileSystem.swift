import Glibc

/// An operating-system error: which call, on what, and errno's text.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var subject: String
    public var errno: Int32

    public init(call: String, subject: String, errno: Int32) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    public var description: String { "\(call)(\(subject)) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The few file operations Foundation does not offer with the control we need.
public enum FileSystem {
    /// The corresponding C function is `chmod`.
    public static func setMode(_ path: String, _ mode: UInt32) throws {
        if chmod(path, mode_t(mode)) != 0 { throw SystemError(call: "chmod", subject: path, errno: Glibc.errno) }
    }

    /// Changes the group only (owner stays). The corresponding C function is `chown`.
    public static func setGroup(_ path: String, gid: UInt32) throws {
        if chown(path, uid_t.max, gid) != 0 { throw SystemError(call: "chown", subject: path, errno: Glibc.errno) }
    }

    /// Sets the process file-creation mask and returns the previous one.
    /// The corresponding C function is `umask`.
    @discardableResult
    public static func setUmask(_ mask: UInt32) -> UInt32 {
        UInt32(umask(mode_t(mask)))
    }

    /// Creates a directory (and parents) with the given mode if it is missing.
    public static func makeDirectory(_ path: String, mode: UInt32) throws {
        var built = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            built += "/" + component
            if mkdir(built, mode_t(mode)) != 0 && Glibc.errno != EEXIST {
                throw SystemError(call: "mkdir", subject: built, errno: Glibc.errno)
            }
        }
    }
}

extension FileSystem {
    /// Runs `body` holding an exclusive `flock` on `path` (created with `mode` if missing), so
    /// cooperating processes do it one at a time. The lock goes with the descriptor, also if
    /// the process dies holding it.
    public static func withExclusiveLock<T>(_ path: String, mode: UInt32 = 0o600, _ body: () throws -> T) throws -> T {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, mode_t(mode))
        if descriptor < 0 { throw SystemError(call: "open", subject: path, errno: Glibc.errno) }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            if Glibc.errno != EINTR { throw SystemError(call: "flock", subject: path, errno: Glibc.errno) }
        }
        return try body()
    }
}
