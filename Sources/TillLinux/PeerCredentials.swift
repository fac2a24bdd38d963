public import NIOCore
import TillSystem

/// Who is on the other end of a Unix-domain socket, from the kernel (SO_PEERCRED):
/// the process that called connect(), as it was at that moment.
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "uid \(uid) gid \(gid) pid \(pid)" }

    /// Layout of `struct ucred` from <sys/socket.h>: pid_t, uid_t, gid_t.
    struct KernelUcred: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// Reads SO_PEERCRED of an accepted Unix-domain socket channel.
    /// The corresponding C call is `getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ...)`.
    public static func of(_ channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(PeerCredentialsUnavailable())
        }
        let future: EventLoopFuture<KernelUcred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SocketConstants.socketLevel),
            name: SocketOptionName(SocketConstants.peerCredentials)
        )
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }
}

public struct PeerCredentialsUnavailable: Error, CustomStringConvertible {
    public var description: String { "the connection does not carry peer credentials (not a Unix-domain socket?)" }
}
