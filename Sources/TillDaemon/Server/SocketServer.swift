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
/// their requests and writes replies and events. Each connection is a `ConnectionHandler`
/// on its event loop plus a child task of this service for what may wait (requests other
/// than publish, journal replays), so shutdown is structured.
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
    private let startAfter: @Sendable () async -> Void
    private let sessions = Mutex<[UInt64: Session]>([:])
    private let nextID = Atomic<UInt64>(0)

    /// - Parameter startAfter: awaited before the socket is bound (the devices' announcement).
    public init(
        listen: Listen, context: DaemonContext, eventLoopGroup: MultiThreadedEventLoopGroup,
        startAfter: @escaping @Sendable () async -> Void = {}, onReady: @escaping @Sendable () -> Void
    ) {
        self.startAfter = startAfter
        self.listen = listen
        self.context = context
        self.handler = RequestHandler(context: context)
        self.group = eventLoopGroup
        self.onReady = onReady
    }

    /// A connection as its initializer (on the event loop) leaves it: the handler already reads
    /// and answers; the task serving it runs what may wait.
    private struct Connection: Sendable {
        var channel: any Channel
        var session: Session
        var handler: NIOLoopBound<ConnectionHandler>
        var requests: AsyncStream<Request>
        var replays: AsyncStream<Subscription>
    }

    public func run() async throws {
        await startAfter()
        let maxLine = context.config.config.maxLineBytes
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Connection?> = { channel in
            PeerCredentials.of(channel)
                .map { Optional($0) }
                .recover { _ in nil }
                .flatMapThrowing { credentials in try self.accept(channel, credentials: credentials, maxLine: maxLine) }
        }
        let server: NIOAsyncChannel<Connection?, Never>
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
                        guard let connection else { continue }
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

    /// Sets a new connection up on its event loop, before it reads anything: who it is, the
    /// client limit, the greeting, and the handler that reads requests and writes the outbox.
    /// nil when the connection is refused.
    private func accept(_ channel: any Channel, credentials: PeerCredentials?, maxLine: Int) throws -> Connection? {
        let config = context.config.config
        guard let credentials else {
            context.logger.warning("connection without peer credentials refused")
            channel.close(promise: nil)
            return nil
        }
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
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
            channel.writeAndFlush(line).whenComplete { _ in channel.close(promise: nil) }
            return nil
        }
        context.logger.debug("client connected", metadata: ["connection": "\(id)", "peer": "\(peer)"])
        session.send(ServerMessage.hello(server: "tilld/\(context.version)", seq: context.bus.lastSeq, stream: context.stream))
        let (requests, toTask) = AsyncStream.makeStream(of: Request.self)
        let (replays, toReplay) = AsyncStream.makeStream(of: Subscription.self)
        let handler = ConnectionHandler(session: session, requests: handler, logger: context.logger, toTask: toTask, toReplay: toReplay)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: maxLine)))
        try channel.pipeline.syncOperations.addHandler(handler)
        return Connection(
            channel: channel, session: session, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
            requests: requests, replays: replays)
    }

    /// Runs what a connection's requests and replays wait for, until the connection closes.
    private func serve(_ connection: Connection) async {
        let session = connection.session
        let channel = connection.channel
        let handler = connection.handler
        defer {
            context.bus.unsubscribe(id: session.id)
            sessions.withLock { _ = $0.removeValue(forKey: session.id) }
            context.logger.debug("client disconnected", metadata: ["connection": "\(session.id)"])
        }
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await request in connection.requests {
                    await self.handler.handle(request, session: session)
                    channel.eventLoop.execute { handler.value.requestDone() }
                }
            }
            tasks.addTask {
                for await subscription in connection.replays {
                    do {
                        try await self.replay(subscription, session, channel)
                    } catch {
                        self.context.logger.debug("replay ended", metadata: ["connection": "\(session.id)", "reason": "\(error)"])
                        channel.close(promise: nil)
                    }
                    channel.eventLoop.execute { handler.value.replayDone() }
                }
            }
            try? await channel.closeFuture.get()
            // The handler finished both streams when the channel went inactive; a request
            // still waiting (a print on a busy printer) has no one to answer.
            tasks.cancelAll()
        }
    }

    /// Sends journaled events after `since` page by page, at the pace the client reads,
    /// then joins the live stream at exactly the next seq.
    private func replay(_ subscription: Subscription, _ session: Session, _ channel: any Channel) async throws {
        var cursor = subscription.since
        let pageSize = 512
        while session.isCurrent(subscription.generation) {
            // Everything up to `head` was committed before the page is read, so a short page
            // covers it all: seq may skip ahead (after an unclean stop), and the cursor must
            // still reach the bus's lastSeq to go live.
            let head = context.bus.lastSeq
            let page = try await context.journal.events(after: cursor, limit: pageSize)
            var lines = ByteBuffer()
            for var reply in session.outbox.takeLeadingLines() { lines.writeBuffer(&reply) }
            for stored in page where subscription.filter.matches(stored.topic) {
                lines.writeString(stored.wireLine)
                lines.writeInteger(UInt8(ascii: "\n"))
            }
            guard session.isCurrent(subscription.generation) else { return }
            // Awaited: the next page is read once the socket has taken this one.
            if lines.readableBytes > 0 { try await channel.writeAndFlush(lines) }
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
