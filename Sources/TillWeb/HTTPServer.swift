public import Logging
public import NIOCore
public import NIOHTTP1
import NIOPosix

/// A request as the bridge's routes see it: the whole body read (up to `HTTPServer.maxBody`).
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The path without the query.
    public var path: String
    public var query: String?
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.method = method
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts.first ?? "/")
        query = parts.count > 1 ? String(parts[1]) : nil
        self.headers = headers
        self.body = body
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

/// HTTP/1.1 on NIO, one task per connection, keep-alive, requests answered in order. A body
/// over `maxBody` is answered 413 and the connection closed (a receipt picture is a few
/// hundred kilobytes; nothing the bridge takes is larger).
public struct HTTPServer: Sendable {
    public static let maxBody = 16 << 20
    let responder: any HTTPResponder
    let logger: Logger

    public init(responder: any HTTPResponder, logger: Logger) {
        self.responder = responder
        self.logger = logger
    }

    /// Binds and returns the listening channel (its local address says the port when 0 was asked).
    public func bind(host: String, port: Int) async throws -> NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never> {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Serves connections on `listener` until the task is cancelled.
    public func serve(_ listener: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await listener.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask { await self.handle(connection) }
                }
            }
        }
    }

    private func handle(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
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
                        guard let request = head else { continue }
                        head = nil
                        let response = tooLarge
                            ? HTTPResponse.text(.payloadTooLarge, "the body is over \(Self.maxBody >> 20) MiB\n")
                            : await responder.respond(to: HTTPRequest(method: request.method, uri: request.uri, headers: request.headers, body: body))
                        let keepAlive = request.isKeepAlive && !tooLarge
                        var headers = HTTPHeaders(response.headers)
                        headers.replaceOrAdd(name: "Content-Length", value: "\(response.body.readableBytes)")
                        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
                        try await outbound.write(.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers)))
                        if response.body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(response.body))) }
                        try await outbound.write(.end(nil))
                        if !keepAlive { return }
                    }
                }
            }
        } catch {
            logger.debug("an HTTP connection ended with an error", metadata: ["error": "\(error)"])
        }
    }
}
