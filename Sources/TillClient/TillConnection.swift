import Foundation
import NIOCore
import NIOPosix
import Synchronization
public import TillCore
import TillNIO

/// Why a connection to tilld failed, said so the user knows what to do.
public struct ConnectError: Error, Sendable, CustomStringConvertible {
    public var socket: String
    public var description: String
}

/// The connection closed while a request was waiting for its reply.
public struct ConnectionClosed: Error, Sendable, CustomStringConvertible {
    public var description: String { "tilld closed the connection" }
}

/// A client connection to tilld's socket (protocol 1). Replies are matched to requests
/// by id; events and lag notices arrive on `events`. Use through `TillConnection.with`.
public final class TillConnection: Sendable {
    public struct Hello: Sendable {
        public var protocolVersion: Int
        public var server: String
        public var seq: Int64
        /// Which stream of seqs the till issues (nil from a tilld before it said so).
        public var stream: String?
    }

    /// The server's greeting (set before the body of `with` runs).
    public var hello: Hello { greeting.withLock { $0! } }
    private let greeting = Mutex<Hello?>(nil)
    public let socketPath: String
    /// Events and `lagged` notices, in the order the server sent them, one at a time.
    /// A subscriber must keep taking them: when `maxBufferedEvents` are waiting, the
    /// connection stops reading, and a reply behind them waits too. Send requests that must
    /// not wait on a connection of their own.
    public var events: EventLines { EventLines(queue: lines) }

    /// Up to `max` events and `lagged` notices, everything already waiting, for consumers that
    /// apply them in batches; empty when the connection has ended.
    public func nextEvents(max: Int) async throws -> [ServerLine] {
        try await lines.next(max: max)
    }

    public struct EventLines: AsyncSequence, Sendable {
        public typealias Element = ServerLine
        let queue: BatchQueue<ServerLine>

        public struct AsyncIterator: AsyncIteratorProtocol {
            let queue: BatchQueue<ServerLine>
            public mutating func next() async throws -> ServerLine? {
                try await queue.next(max: 1).first
            }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: queue) }
    }

    /// How many event lines may wait for the consumer before the socket is left unread.
    public static let maxBufferedEvents = 1024
    private let lines = BatchQueue<ServerLine>(capacity: TillConnection.maxBufferedEvents)

    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private enum Slot {
        case pending
        case waiting(CheckedContinuation<JSONValue, any Error>)
        case arrived(Result<JSONValue, any Error>)
    }
    private let waiting = Mutex<[String: Slot]>([:])
    private let nextID = Atomic<Int>(0)
    private let closed = Mutex(false)

    private init(socketPath: String, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.socketPath = socketPath
        self.outbound = outbound
    }

    /// Connects, waits for the greeting, runs `body`, then closes.
    public static func with<Result: Sendable>(
        socket path: String,
        maxLineBytes: Int = 64 << 20,
        _ body: @Sendable (TillConnection) async throws -> Result
    ) async throws -> Result {
        let channel: NIOAsyncChannel<InboundFrame, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: maxLineBytes)))
                        return try NIOAsyncChannel<InboundFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw Self.explain(error, path: path)
        }
        return try await channel.executeThenClose { inbound, outbound in
            let connection = TillConnection(socketPath: path, outbound: outbound)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                let (greeting, greeted) = AsyncThrowingStream.makeStream(of: Hello.self)
                group.addTask { await connection.readLoop(inbound, greeted: greeted) }
                defer { group.cancelAll() }
                var greetings = greeting.makeAsyncIterator()
                guard let hello = try await greetings.next() else { throw ConnectionClosed() }
                connection.greeting.withLock { $0 = hello }
                return try await body(connection)
            }
        }
    }

    private func readLoop(_ inbound: NIOAsyncChannelInboundStream<InboundFrame>, greeted: AsyncThrowingStream<Hello, any Error>.Continuation) async {
        var failure: (any Error)? = nil
        var first = true
        do {
            for try await frame in inbound {
                guard case .line(let line) = frame else { throw ConnectError(socket: socketPath, description: "a server line was over the client's limit") }
                let parsed = try ServerLine(line: line.readableBytesView)
                if first {
                    first = false
                    guard case .hello(let version, let server, let seq, let stream) = parsed else {
                        throw ConnectError(socket: socketPath, description: "\(socketPath) did not greet with a protocol 1 hello; is this tilld's socket?")
                    }
                    greeted.yield(Hello(protocolVersion: version, server: server, seq: seq, stream: stream))
                    greeted.finish()
                    continue
                }
                switch parsed {
                case .reply(let reply):
                    let key = JSONText.encode(reply.id)
                    let result = reply.result.mapError { $0 as any Error }
                    let waiter = waiting.withLock { waiting -> CheckedContinuation<JSONValue, any Error>? in
                        switch waiting[key] {
                        case .waiting(let continuation)?:
                            waiting[key] = nil
                            return continuation
                        case .pending?:
                            waiting[key] = .arrived(result)
                            return nil
                        default:
                            return nil  // a reply nobody asked for (id null for a bad line): ignore
                        }
                    }
                    waiter?.resume(with: result)
                case .event, .lagged:
                    // Waits while the consumer is `maxBufferedEvents` behind: the socket is
                    // then left unread, which is what paces tilld's replay to this client.
                    await lines.push(parsed)
                case .hello:
                    break
                }
            }
        } catch {
            failure = error
        }
        closed.withLock { $0 = true }
        let slots = waiting.withLock { waiting in
            defer { waiting.removeAll() }
            return Array(waiting.values)
        }
        for case .waiting(let waiter) in slots { waiter.resume(throwing: failure ?? ConnectionClosed()) }
        lines.finish(throwing: failure)
        greeted.finish(throwing: failure ?? ConnectionClosed())
    }

    /// Sends a request and waits for its reply; a failed reply throws its `WireError`.
    @discardableResult
    public func request(_ op: String, _ params: [String: JSONValue] = [:]) async throws -> JSONValue {
        try await reply(to: try await send(op, params))
    }

    /// Sends requests back to back, then waits for their replies: tilld reads them as a
    /// pipeline (publishes are committed together). Replies come back in request order.
    public func pipeline(_ requests: [(op: String, params: [String: JSONValue])]) async -> [Result<JSONValue, any Error>] {
        var sent: [Result<String, any Error>] = []
        for (op, params) in requests {
            do { sent.append(.success(try await send(op, params))) } catch { sent.append(.failure(error)) }
        }
        var replies: [Result<JSONValue, any Error>] = []
        for key in sent {
            do { replies.append(.success(try await reply(to: try key.get()))) } catch { replies.append(.failure(error)) }
        }
        return replies
    }

    /// Writes one request; returns the key its reply will be filed under.
    private func send(_ op: String, _ params: [String: JSONValue]) async throws -> String {
        let id = JSONValue.int(Int64(nextID.wrappingAdd(1, ordering: .relaxed).newValue))
        let key = JSONText.encode(id)
        // Register before writing: the reply may arrive before we start waiting.
        let isClosed = closed.withLock { closed in
            if !closed { waiting.withLock { $0[key] = .pending } }
            return closed
        }
        if isClosed { throw ConnectionClosed() }
        var buffer = ByteBuffer(string: RequestEncoder.line(id: id, op: op, params: params))
        buffer.writeInteger(UInt8(ascii: "\n"))
        do {
            try await outbound.write(buffer)
        } catch {
            waiting.withLock { _ = $0.removeValue(forKey: key) }
            throw error
        }
        return key
    }

    private func reply(to key: String) async throws -> JSONValue {
        try await withCheckedThrowingContinuation { continuation in
            let arrived = waiting.withLock { waiting -> Result<JSONValue, any Error>? in
                if case .arrived(let result)? = waiting[key] {
                    waiting[key] = nil
                    return result
                }
                waiting[key] = .waiting(continuation)
                return nil
            }
            if let arrived { continuation.resume(with: arrived) }
        }
    }

    static func explain(_ error: any Error, path: String) -> ConnectError {
        let errno = (error as? IOError)?.errnoCode
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return ConnectError(socket: path, description: "\(path) is a directory, not tilld's socket: pass the socket file itself (for example \(path.hasSuffix("/") ? path : path + "/")tilld.sock) with --socket or TILLD_SOCKET")
        }
        switch errno {
        case 2?:
            return ConnectError(socket: path, description: "tilld is not running: no socket at \(path) (start it: systemctl start tilld, or tilld --demo; or pass --socket / set TILLD_SOCKET)")
        case 111?:
            return ConnectError(socket: path, description: "tilld is not running: \(path) exists but nobody listens (stale socket; start tilld)")
        case 13?:
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let groupID = (attributes?[.groupOwnerAccountID] as? NSNumber)?.intValue
            let group = attributes?[.groupOwnerAccountName] as? String
            // A socket left in root's group (or the daemon user's own) means tilld could not give
            // it its group: joining that group would hand out far more than the socket.
            guard let group, groupID != 0, group != "root", group != "tilld" else {
                return ConnectError(socket: path, description: "permission denied on \(path): the socket is in group '\(group ?? "?")', so tilld could not give it its own group. Create the group and restart tilld (sudo groupadd till; sudo systemctl restart tilld), then join it (sudo usermod -aG till $USER, and log in again). The group is [socket] group in /etc/tilld/tilld.toml")
            }
            return ConnectError(socket: path, description: "permission denied on \(path): join the group '\(group)' (sudo usermod -aG \(group) $USER, then log in again)")
        default:
            return ConnectError(socket: path, description: "cannot connect to \(path): \(error)")
        }
    }
}
