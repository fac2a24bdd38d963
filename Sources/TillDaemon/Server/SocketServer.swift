import Foundation
import Logging
import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization
import TillCore
import TillLinux
import TillSystem
import TillNIO

/// The Unix-domain socket of protocol 1: accepts clients, checks who they are, reads
/// their requests and writes replies and events. Each connection runs as two child
/// tasks (reader and writer) of this service, so shutdown is structured.
public final class SocketServer: Service, Sendable {
    public enum Listen: Sendable {
        /// Bind this path (removing a stale socket file), then set mode 0660 and the group.
        case path(String, group: String?)
        /// A listening socket passed by systemd (tilld.socket).
        case inherited(fd: Int32, path: String)
    }

    private let listen: Listen
    private let context: DaemonContext
    private let handler: RequestHandler
    private let group: MultiThreadedEventLoopGroup
    private let onReady: @Sendable () -> Void
    private let sessions = Mutex<[UInt64: Session]>([:])
    private let nextID = Atomic<UInt64>(0)

    public init(listen: Listen, context: DaemonContext, eventLoopGroup: MultiThreadedEventLoopGroup, onReady: @escaping @Sendable () -> Void) {
        self.listen = listen
        self.context = context
        self.handler = RequestHandler(context: context)
        self.group = eventLoopGroup
        self.onReady = onReady
    }

    private typealias Connection = (channel: NIOAsyncChannel<InboundFrame, ByteBuffer>, peer: PeerCredentials?)

    public func run() async throws {
        let maxLine = context.config.config.maxLineBytes
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Connection> = { channel in
            PeerCredentials.of(channel)
                .map { Optional($0) }
                .recover { _ in nil }
                .flatMapThrowing { peer in
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: maxLine)))
                    return (try NIOAsyncChannel<InboundFrame, ByteBuffer>(wrappingChannelSynchronously: channel), peer)
                }
        }
        let server: NIOAsyncChannel<Connection, Never>
        let path: String
        switch listen {
        case .path(let socketPath, let groupName):
            path = socketPath
            try FileSystem.makeDirectory((socketPath as NSString).deletingLastPathComponent, mode: 0o755)
            // Bind with a tight umask so the socket is never, even briefly, open to others.
            let previous = FileSystem.setUmask(0o177)
            defer { FileSystem.setUmask(previous) }
            server = try await bootstrap.bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
            try secure(socketPath, group: groupName)
        case .inherited(let fd, let socketPath):
            path = socketPath
            server = try await bootstrap.bind(NIOBSDSocket.Handle(fd), cleanupExistingSocketFile: false, childChannelInitializer: initializer)
        }
        context.logger.info("listening", metadata: ["socket": "\(path)"])
        onReady()

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { tasks in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        tasks.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            // Stop accepting; let every connection flush what it has queued, then close.
            server.channel.close(promise: nil)
            for session in self.sessions.withLock({ Array($0.values) }) { session.outbox.finish() }
        }
        if case .path(let socketPath, _) = listen { try? FileManager.default.removeItem(atPath: socketPath) }
    }

    private func secure(_ path: String, group: String?) throws {
        try FileSystem.setMode(path, 0o660)
        guard let group else { return }
        guard let gid = UserDirectory.groupID(name: group) else {
            context.logger.warning("socket group does not exist; only root and tilld's own user can connect", metadata: ["group": "\(group)", "fix": "groupadd \(group), or set [socket] group"])
            return
        }
        do {
            try FileSystem.setGroup(path, gid: gid)
        } catch {
            context.logger.warning("cannot give the socket its group", metadata: ["group": "\(group)", "error": "\(error)"])
        }
    }

    private func serve(_ connection: Connection) async {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        let channel = connection.channel.channel
        let config = context.config.config
        guard let credentials = connection.peer else {
            context.logger.warning("connection without peer credentials refused")
            try? await connection.channel.channel.close()
            return
        }
        let peer = PeerIdentity.resolve(credentials)
        let grace = config.lagGraceSeconds
        let outbox = Outbox(limitBytes: config.queueBytes) {
            // A lagged client gets a grace period to read the notice, then is cut off.
            channel.eventLoop.scheduleTask(in: .milliseconds(Int64(grace * 1000))) { channel.close(promise: nil) }
        }
        let session = Session(id: id, peer: peer, outbox: outbox)
        let tooMany = sessions.withLock { sessions -> Bool in
            guard sessions.count < config.maxClients else { return true }
            sessions[id] = session
            return false
        }
        if tooMany {
            context.logger.warning("too many clients; connection refused", metadata: ["peer": "\(peer)", "max_clients": "\(config.maxClients)"])
            var line = ByteBuffer(string: ServerMessage.error(id: .null, WireError(.busy, "tilld already serves \(config.maxClients) clients ([socket] max_clients)")))
            line.writeInteger(UInt8(ascii: "\n"))
            try? await channel.writeAndFlush(line)
            try? await channel.close()
            return
        }
        context.logger.debug("client connected", metadata: ["connection": "\(id)", "peer": "\(peer)"])
        defer {
            context.bus.unsubscribe(id: id)
            sessions.withLock { _ = $0.removeValue(forKey: id) }
            context.logger.debug("client disconnected", metadata: ["connection": "\(id)"])
        }
        session.send(ServerMessage.hello(server: "tilld/\(context.version)", seq: context.bus.lastSeq))
        do {
            try await connection.channel.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Bool.self) { tasks in
                    tasks.addTask { try await self.write(session, outbound); return true }
                    tasks.addTask { try await self.read(session, inbound); return false }
                    // The writer ends the connection (lagged, shutdown, peer gone, nothing left
                    // to send); the reader ending alone only means the client stopped sending.
                    while let writerDone = try await tasks.next(), !writerDone {}
                    tasks.cancelAll()
                }
            }
        } catch {
            context.logger.debug("connection ended", metadata: ["connection": "\(id)", "reason": "\(error)"])
        }
    }

    private func read(_ session: Session, _ inbound: NIOAsyncChannelInboundStream<InboundFrame>) async throws {
        // A client that stops sending but is subscribed keeps receiving (`... | nc -U`);
        // one that is not subscribed is done once its replies are written.
        defer { if !session.isSubscribed { session.outbox.finish() } }
        for try await frame in inbound {
            switch frame {
            case .line(let line):
                if line.readableBytes == 0 { continue }  // blank lines are keep-alives
                await handler.handle(line: line.readableBytesView, session: session)
                await session.outbox.waitForSpace()
            case .tooLong(let limit):
                context.logger.notice("line over the limit; closing", metadata: ["peer": "\(session.peer)", "limit": "\(limit)"])
                session.send(ServerMessage.error(id: .null, WireError(.tooLarge, "line longer than \(limit) bytes; the connection is closed")))
                session.outbox.finish()
                return
            }
        }
    }

    private func write(_ session: Session, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        defer { session.outbox.finish() }
        while true {
            let items = await session.outbox.next()
            if items.isEmpty { return }
            var lines: [ByteBuffer] = []
            lines.reserveCapacity(items.count)
            for item in items {
                switch item {
                case .line(let buffer), .event(_, let buffer):
                    lines.append(buffer)
                case .replay(let subscription):
                    try await outbound.write(contentsOf: lines)
                    lines.removeAll()
                    try await replay(subscription, session, outbound)
                case .deferred(let reply):
                    lines.append(await reply.line())
                case .lagged(let lastSent):
                    lines.append(ByteBuffer(string: ServerMessage.lagged(lastSent: lastSent) + "\n"))
                    try await outbound.write(contentsOf: lines)
                    return
                }
            }
            if !lines.isEmpty { try await outbound.write(contentsOf: lines) }
        }
    }

    /// Sends journaled events after `since` page by page, at the pace the client reads,
    /// then joins the live stream at exactly the next seq.
    private func replay(_ subscription: Subscription, _ session: Session, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        var cursor = subscription.since
        let pageSize = 512
        while session.isCurrent(subscription.generation) {
            // Everything up to `head` was committed before the page is read, so a short page
            // covers it all: seq may skip ahead (after an unclean stop), and the cursor must
            // still reach the bus's lastSeq to go live.
            let head = context.bus.lastSeq
            let page = try await context.journal.events(after: cursor, limit: pageSize)
            var lines = session.outbox.takeLeadingLines()
            for stored in page where subscription.filter.matches(stored.topic) {
                lines.append(ByteBuffer(string: stored.wireLine + "\n"))
            }
            guard session.isCurrent(subscription.generation) else { return }
            if !lines.isEmpty { try await outbound.write(contentsOf: lines) }
            if let last = page.last {
                cursor = last.seq
                session.outbox.noteHanded(seq: cursor)
            }
            if page.count < pageSize {
                cursor = max(cursor, head)
                let done = context.bus.goLiveIfCaughtUp(id: session.id, outbox: session.outbox, filter: subscription.filter, cursor: cursor) {
                    session.isCurrent(subscription.generation)
                }
                if done { return }
            }
        }
    }
}
