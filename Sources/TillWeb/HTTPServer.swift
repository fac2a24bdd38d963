public import Logging
public import NIOCore
public import NIOHTTP1
import NIOPosix
public import NIOSSL
import Synchronization
public import NIOWebSocket
import TillCore

/// A request as the bridge's routes see it: the whole body read (up to `HTTPServer.maxBody`).
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The path without the query.
    public var path: String
    public var query: String?
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    /// The client's IP address (Odoo 16/17's customer display belongs to one cashier's machine).
    public var peer: String?

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer(), peer: String? = nil) {
        self.method = method
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts.first ?? "/")
        query = parts.count > 1 ? String(parts[1]) : nil
        self.headers = headers
        self.body = body
        self.peer = peer
    }
}

public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: [(String, String)]
    public var body: ByteBuffer

    public init(_ status: HTTPResponseStatus, headers: [(String, String)] = [], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func text(_ status: HTTPResponseStatus, _ text: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status, headers: [("Content-Type", "text/plain; charset=utf-8")] + headers, body: ByteBuffer(string: text))
    }

    public static func json(_ text: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(.ok, headers: [("Content-Type", "application/json")] + headers, body: ByteBuffer(string: text))
    }
}

public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest) async -> HTTPResponse
}

/// What serves WebSockets: which upgrade requests it takes (checked on the event loop, so it
/// must not block), and the conversation once upgraded. A request it does not take is answered
/// as plain HTTP by the responder (which says why: no token, wrong origin).
public protocol WebSocketService: Sendable {
    func accepts(_ head: HTTPRequestHead) -> Bool
    func serve(_ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, head: HTTPRequestHead) async
}

/// HTTP/1.1 on NIO, one task per connection, keep-alive, requests answered in order, and the
/// upgrade to a WebSocket where `webSocket` takes it. A body over `maxBody` is answered 413 and
/// the connection closed (a receipt picture is a few hundred kilobytes; nothing the bridge
/// takes is larger).
public struct HTTPServer: Sendable {
    public static let maxBody = 16 << 20
    let responder: any HTTPResponder
    let webSocket: (any WebSocketService)?
    /// The machines that may connect at all (`[web] clients`); others get 403 on every request.
    let clients: ClientPolicy
    let logger: Logger
    private let refusedUpgrades = RefusedUpgrades()
    /// A machine that keeps retrying must not fill the log: a few warnings a minute, and the
    /// next one says how many were left out.
    private let refusedLog = LogRateLimiter(burst: 5, per: .seconds(60))

    public init(responder: any HTTPResponder, webSocket: (any WebSocketService)? = nil, clients: ClientPolicy = ClientPolicy.everyone, logger: Logger) {
        self.responder = responder
        self.webSocket = webSocket
        self.clients = clients
        self.logger = logger
    }

    public enum Connection: Sendable {
        case http(NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>)
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, HTTPRequestHead)
    }
    public typealias Listener = NIOAsyncChannel<EventLoopFuture<Connection>, Never>

    /// Binds and returns the listening channel (its local address says the port when 0 was
    /// asked). With `tls`, every connection speaks TLS first (HTTPS, WSS).
    public func bind(host: String, port: Int, tls: NIOSSLContext? = nil) async throws -> Listener {
        let provider: (@Sendable () -> NIOSSLContext)? = if let tls { { tls } } else { nil }
        return try await bind(host: host, port: port, tlsContext: provider)
    }

    /// As `bind(host:port:tls:)`, with the TLS context asked for at each connection: a renewed
    /// server certificate (`ServerTLSRenewal`) is used from the next connection on.
    public func bind(host: String, port: Int, tlsContext: (@Sendable () -> NIOSSLContext)?) async throws -> Listener {
        let tls = tlsContext
        let webSocket = self.webSocket
        let refused = refusedUpgrades
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls())) }
                    let upgrader = NIOTypedWebSocketServerUpgrader<Connection>(
                        maxFrameSize: Self.maxBody,
                        shouldUpgrade: { channel, head in
                            if webSocket?.accepts(head) == true { return channel.eventLoop.makeSucceededFuture(HTTPHeaders()) }
                            refused.keep(head, for: channel)
                            return channel.eventLoop.makeSucceededFuture(nil)
                        },
                        upgradePipelineHandler: { channel, head in
                            channel.eventLoop.makeCompletedFuture {
                                // A message split into fragments arrives whole.
                                try channel.pipeline.syncOperations.addHandler(
                                    NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 4096, maxAccumulatedFrameSize: Self.maxBody))
                                return Connection.webSocket(try NIOAsyncChannel(wrappingChannelSynchronously: channel), head)
                            }
                        })
                    let configuration = NIOTypedHTTPServerUpgradeConfiguration(upgraders: [upgrader]) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            return Connection.http(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                        }
                    }
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                        configuration: .init(upgradeConfiguration: configuration))
                }
            }
    }

    /// Serves connections on `listener` until the task is cancelled.
    public func serve(_ listener: Listener) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await listener.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask {
                        do {
                            switch try await connection.get() {
                            case .http(let channel):
                                await self.handle(channel, admitted: self.admits(channel.channel))
                            case .webSocket(let channel, let head):
                                if self.admits(channel.channel) {
                                    await self.webSocket?.serve(channel, head: head)
                                } else {
                                    try? await channel.channel.close()
                                }
                            }
                        } catch {
                            self.logger.debug("a connection failed before its first request", metadata: ["error": "\(error)"])
                        }
                    }
                }
            }
        }
    }

    private func admits(_ channel: any Channel) -> Bool {
        let peer = channel.remoteAddress?.ipAddress
        if clients.admits(peer) { return true }
        if let suppressed = refusedLog.admit() {
            var metadata: Logger.Metadata = [
                "peer": "\(peer ?? "?")", "fix": "add its address (or its network, e.g. 192.168.1.0/24) to [web] clients if it is one of the shop's",
            ]
            if suppressed > 0 { metadata["suppressed_before"] = "\(suppressed)" }
            logger.warning("refused a connection from a machine not in [web] clients", metadata: metadata)
        }
        return false
    }

    private func handle(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, admitted: Bool = true) async {
        defer { _ = refusedUpgrades.take(connection.channel) }  // a client gone before the end
        let peer = connection.channel.remoteAddress?.ipAddress
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                var tooLarge = false
                for try await part in inbound {
                    switch part {
                    case .head(let received):
                        head = received
                        body.clear()
                        tooLarge = false
                    case .body(var chunk):
                        if body.readableBytes + chunk.readableBytes > Self.maxBody { tooLarge = true } else { body.writeBuffer(&chunk) }
                    case .end:
                        // An upgrade the WebSocket service did not take reaches here as its end
                        // alone (NIO's typed upgrade handler keeps the head): it was kept aside
                        // when refused, and is answered (why: no token, wrong origin), then closed.
                        if head == nil, let refused = refusedUpgrades.take(connection.channel) {
                            try await write(await responder.respond(to: HTTPRequest(method: refused.method, uri: refused.uri, headers: refused.headers, peer: peer)),
                                            to: refused, keepAlive: false, outbound)
                            return
                        }
                        guard let request = head else { continue }
                        head = nil
                        let response = !admitted
                            ? HTTPResponse.text(.forbidden, "this machine (\(peer ?? "?")) may not use the till: add its address to [web] clients in till-web's config\n")
                            : tooLarge
                            ? HTTPResponse.text(.payloadTooLarge, "the body is over \(Self.maxBody >> 20) MiB\n")
                            : await responder.respond(to: HTTPRequest(method: request.method, uri: request.uri, headers: request.headers, body: body, peer: peer))
                        let keepAlive = request.isKeepAlive && !tooLarge && admitted
                        try await write(response, to: request, keepAlive: keepAlive, outbound)
                        if !keepAlive { return }
                    }
                }
            }
        } catch {
            logger.debug("an HTTP connection ended with an error", metadata: ["error": "\(error)"])
        }
    }

    private func write(_ response: HTTPResponse, to request: HTTPRequestHead, keepAlive: Bool,
                       _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        var headers = HTTPHeaders(response.headers)
        headers.replaceOrAdd(name: "Content-Length", value: "\(response.body.readableBytes)")
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        try await outbound.write(.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers)))
        if response.body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(response.body))) }
        try await outbound.write(.end(nil))
    }
}

/// Upgrade requests the WebSocket service refused, by connection, until answered.
final class RefusedUpgrades: Sendable {
    private let heads = Mutex<[ObjectIdentifier: HTTPRequestHead]>([:])

    func keep(_ head: HTTPRequestHead, for channel: any Channel) {
        heads.withLock { $0[ObjectIdentifier(channel)] = head }
    }

    func take(_ channel: any Channel) -> HTTPRequestHead? {
        heads.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}
