import NIOCore
import Synchronization
import TillCore
import TillLinux

/// One client connection: who it is, what it is subscribed to, and its outbox.
public final class Session: Sendable {
    public let id: UInt64
    public let peer: PeerIdentity
    public let outbox: Outbox
    private let subscription = Mutex<(generation: UInt64, active: Bool)>((0, false))

    public init(id: UInt64, peer: PeerIdentity, outbox: Outbox) {
        self.id = id
        self.peer = peer
        self.outbox = outbox
    }

    /// Starts a new subscription generation (`active` false for unsubscribe); older
    /// replays see they are no longer wanted.
    public func nextGeneration(active: Bool) -> UInt64 {
        subscription.withLock { value in
            value = (value.generation + 1, active)
            return value.generation
        }
    }

    public func isCurrent(_ value: UInt64) -> Bool {
        subscription.withLock { $0.generation == value && $0.active }
    }

    public var isSubscribed: Bool { subscription.withLock { $0.active } }

    public func send(_ line: String) {
        var buffer = ByteBuffer(string: line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        outbox.enqueue(.line(buffer))
    }
}
