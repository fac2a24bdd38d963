import Glibc
import CTillSystem

/// An operating-system error: which call, on what, and errno's text.
public struct SystemError: Error, Sendable, Hashable, CustomStringConvertible {
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

/// Which file a path names right now: device and inode. Two paths (or one path at two
/// moments) name the same file exactly when these agree; a file deleted and created
/// again, or replaced by a rename, gets a new inode.
public struct FileIdentity: Sendable, Hashable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64

    public var description: String { "dev \(device) inode \(inode)" }
}

/// What stands in the way of writing a file, and what to do about it.
public struct WriteProblem: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case immutable, readOnlyFileSystem, permission, full, other
    }

    public var kind: Kind
    /// The file, the reason and the fix, in one sentence.
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

extension FileSystem {
    /// The identity of the file at `path`, or nil if nothing is there.
    /// The corresponding C function is `statx`, asked for the inode only: unlike `stat`, it
    /// leaves the file's timestamps unread, which on kernels with multigrain timestamps keeps
    /// a check after every commit from making every sync write the inode (`till_file_identity`).
    public static func identity(_ path: String) -> FileIdentity? {
        var device: UInt64 = 0
        var inode: UInt64 = 0
        guard till_file_identity(path, &device, &inode) == 0 else { return nil }
        return FileIdentity(device: device, inode: inode)
    }

    /// Whether `path` is a directory. The corresponding C function is `stat`.
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Why writing to `path` would fail, in the words a technician acts on, or nil when
    /// nothing is wrong that can be seen from here (a failing disk shows only in `dmesg`).
    /// Checks the file's write permission (an immutable file refuses even root), a
    /// read-only file system, and free space.
    public static func writeProblem(_ path: String) -> WriteProblem? {
        if access(path, W_OK) != 0 {
            switch Glibc.errno {
            case EPERM: return WriteProblem(.immutable, "\(path) is immutable (lsattr shows 'i'): chattr -i \(path)")
            case EROFS: return WriteProblem(.readOnlyFileSystem, "the file system holding \(path) is mounted read-only: remount it read-write (mount -o remount,rw), after checking dmesg for why it went read-only")
            case EACCES: return WriteProblem(.permission, "\(path) is not writable by tilld's user: check its owner and mode (ls -l)")
            case ENOENT: return nil
            default: return WriteProblem(.other, "\(path) is not writable: \(String(cString: strerror(Glibc.errno)))")
            }
        }
        var space = statvfs()
        let directory = parentDirectory(of: path)
        if statvfs(directory, &space) == 0 {
            let free = UInt64(space.f_bavail) * UInt64(space.f_frsize)
            if free < 64 * 1024 { return WriteProblem(.full, "the file system holding \(path) is full (\(free / 1024) KiB free): free space (df -h \(directory))") }
        }
        return nil
    }

    /// The directory holding `path` ("." for a bare file name).
    public static func parentDirectory(of path: String) -> String {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : directory
    }

    /// Replaces the file at `path` with `contents` so that a crash or power cut leaves either
    /// the old or the new contents, never a mix: write a temporary file, fsync it, rename it
    /// over `path`, fsync the directory. The corresponding C functions are `open`, `write`,
    /// `fsync`, `rename`.
    public static func replaceDurably(_ path: String, contents: String, mode: UInt32 = 0o640) throws {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(mode))
        if descriptor < 0 { throw SystemError(call: "open", subject: temporary, errno: Glibc.errno) }
        var bytes = Array(contents.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if Glibc.errno == EINTR { continue }
                let failure = SystemError(call: "write", subject: temporary, errno: Glibc.errno)
                close(descriptor)
                throw failure
            }
            offset += written
        }
        bytes.removeAll()
        if fsync(descriptor) != 0 {
            let failure = SystemError(call: "fsync", subject: temporary, errno: Glibc.errno)
            close(descriptor)
            throw failure
        }
        close(descriptor)
        if rename(temporary, path) != 0 { throw SystemError(call: "rename", subject: path, errno: Glibc.errno) }
        let directory = parentDirectory(of: path)
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            defer { close(directoryDescriptor) }
            if fsync(directoryDescriptor) != 0 { throw SystemError(call: "fsync", subject: directory, errno: Glibc.errno) }
        }
    }
}

extension FileSystem {
    /// A small text file's contents, or nil if it does not exist or cannot be read.
    public static func contents(_ path: String, limit: Int = 1 << 16) -> String? {
        bytes(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A small file's bytes (a sysfs attribute such as a HID report descriptor), or nil if it
    /// does not exist or cannot be read.
    public static func bytes(_ path: String, limit: Int = 1 << 16) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 { return nil }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var count = 0
        while count < limit {
            let got = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + count, limit - count) }
            if got < 0 { if Glibc.errno == EINTR { continue }; return nil }
            if got == 0 { break }
            count += got
        }
        return Array(bytes[..<count])
    }

    /// Where a symbolic link points (`readlink`), or nil when `path` is not one.
    public static func symbolicLinkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink(path, &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension FileSystem {
    /// Creates an empty file with `mode` unless something is already at `path`; never replaces
    /// what is there. The corresponding C function is `open` with `O_CREAT | O_EXCL`.
    public static func createIfMissing(_ path: String, mode: UInt32) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        if descriptor >= 0 {
            close(descriptor)
            return
        }
        if Glibc.errno != EEXIST { throw SystemError(call: "open", subject: path, errno: Glibc.errno) }
    }
}

extension FileSystem {
    /// Appends zeros to the file at `path` (creating it with `mode` if missing) until it is
    /// `size` bytes long, and syncs them; never changes a byte that is there. Returns how many
    /// bytes were added (0 when it was long enough).
    ///
    /// Why zeros and not `fallocate`: a block allocated but never written is an "unwritten
    /// extent", and the first write to it changes file-system metadata, which the next
    /// `fdatasync` must then commit too. A block written once costs only its data when it is
    /// overwritten. The corresponding C functions are `open`, `fstat`, `pwrite`, `fdatasync`,
    /// and `fsync` of the directory for a new file.
    @discardableResult
    public static func extendWithZeros(_ path: String, to size: Int, mode: UInt32) throws -> Int {
        var created = true
        var descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        if descriptor < 0, Glibc.errno == EEXIST {
            created = false
            descriptor = open(path, O_WRONLY | O_CLOEXEC)
        }
        if descriptor < 0 { throw SystemError(call: "open", subject: path, errno: Glibc.errno) }
        defer { close(descriptor) }
        var status = stat()
        if fstat(descriptor, &status) != 0 { throw SystemError(call: "fstat", subject: path, errno: Glibc.errno) }
        let start = Int(status.st_size)
        guard start < size else { return 0 }
        let zeros = [UInt8](repeating: 0, count: 1 << 16)
        var offset = start
        while offset < size {
            let count = min(zeros.count, size - offset)
            let written = zeros.withUnsafeBytes { pwrite(descriptor, $0.baseAddress!, count, off_t(offset)) }
            if written < 0 {
                if Glibc.errno == EINTR { continue }
                throw SystemError(call: "pwrite", subject: path, errno: Glibc.errno)
            }
            offset += written
        }
        if fdatasync(descriptor) != 0 { throw SystemError(call: "fdatasync", subject: path, errno: Glibc.errno) }
        if created {
            let directory = parentDirectory(of: path)
            let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directoryDescriptor >= 0 {
                defer { close(directoryDescriptor) }
                if fsync(directoryDescriptor) != 0 { throw SystemError(call: "fsync", subject: directory, errno: Glibc.errno) }
            }
        }
        return size - start
    }
}

extension FileSystem {
    /// The file's size in bytes, nil if there is none. The corresponding C function is `stat`.
    public static func size(_ path: String) -> Int? {
        var status = stat()
        return stat(path, &status) == 0 ? Int(status.st_size) : nil
    }

    /// Appends `bytes` at the end of the file (created with `mode` if missing) and syncs them
    /// (and the directory, for a new file) before returning: what returns is on disk. The
    /// corresponding C functions are `open` with `O_APPEND`, `write`, `fdatasync`, `fsync`.
    public static func appendDurably(_ path: String, _ bytes: [UInt8], mode: UInt32) throws {
        var created = true
        var descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        if descriptor < 0, Glibc.errno == EEXIST {
            created = false
            descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        }
        if descriptor < 0 { throw SystemError(call: "open", subject: path, errno: Glibc.errno) }
        defer { close(descriptor) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 {
                if Glibc.errno == EINTR { continue }
                throw SystemError(call: "write", subject: path, errno: Glibc.errno)
            }
            offset += written
        }
        if fdatasync(descriptor) != 0 { throw SystemError(call: "fdatasync", subject: path, errno: Glibc.errno) }
        if created { try syncDirectory(of: path) }
    }

    /// Cuts the file to `size` bytes (what a cut-off append left after it goes) and syncs it.
    /// The corresponding C functions are `truncate` and `fsync`.
    public static func truncate(_ path: String, to size: Int) throws {
        if Glibc.truncate(path, off_t(size)) != 0 { throw SystemError(call: "truncate", subject: path, errno: Glibc.errno) }
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        if descriptor < 0 { throw SystemError(call: "open", subject: path, errno: Glibc.errno) }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 { throw SystemError(call: "fsync", subject: path, errno: Glibc.errno) }
    }

    /// Renames within one directory and syncs the directory, so the new name survives a power
    /// cut. The corresponding C functions are `rename` and `fsync`.
    public static func renameDurably(_ from: String, to: String) throws {
        if rename(from, to) != 0 { throw SystemError(call: "rename", subject: "\(from) -> \(to)", errno: Glibc.errno) }
        try syncDirectory(of: to)
    }

    static func syncDirectory(of path: String) throws {
        let directory = parentDirectory(of: path)
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 { throw SystemError(call: "fsync", subject: directory, errno: Glibc.errno) }
    }
}
