import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server on loopback for the outbox tests: each request goes to `respond`,
/// which answers with a status and body, or never answers, or drops the connection. It can
/// stop ("the receiver goes away") and start again on the same port.
final class LocalHTTPServer: @unchecked Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: [String: String]
        var body: String

        var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? "") }
        var query: String { uri.contains("?") ? String(uri.split(separator: "?", maxSplits: 1)[1]) : "" }
    }

    enum Answer: Sendable {
        case status(Int, String = "")
        /// Never answers (the client times out).
        case hang
        /// Closes the connection without a word.
        case close
        /// Answers after a while (a slow receiver).
        indirect case after(milliseconds: Int64, Answer)
    }

    private let respond: @Sendable (Request) -> Answer
    private let lock = NIOLock()
    private var channel: (any Channel)?
    /// Open connections, closed by `stop`.
    private final class Connections: @unchecked Sendable {
        let lock = NIOLock()
        var open: [ObjectIdentifier: any Channel] = [:]
        func add(_ channel: any Channel) {
            lock.withLock { open[ObjectIdentifier(channel)] = channel }
            channel.closeFuture.whenComplete { _ in self.lock.withLock { _ = self.open.removeValue(forKey: ObjectIdentifier(channel)) } }
        }
        func all() -> [any Channel] { lock.withLock { Array(open.values) } }
    }
    private let connections = Connections()
    private(set) var port = 0

    init(_ respond: @escaping @Sendable (Request) -> Answer) {
        self.respond = respond
    }

    var url: String { "http://127.0.0.1:\(port)" }

    func start() async throws {
        let respond = self.respond
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [connections] channel in
                connections.add(channel)
                return channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(Handler(respond: respond)) }
            }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: port).get()
        lock.withLock {
            self.channel = channel
            self.port = channel.localAddress?.port ?? 0
        }
    }

    /// Stops listening and drops every open connection: the receiver is gone.
    func stop() async throws {
        let channel = lock.withLock { () -> (any Channel)? in
            defer { self.channel = nil }
            return self.channel
        }
        try await channel?.close()
        for connection in connections.all() { try? await connection.close() }
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let respond: @Sendable (Request) -> Answer
        var head: HTTPRequestHead?
        var body = ""

        init(respond: @escaping @Sendable (Request) -> Answer) { self.respond = respond }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = ""
            case .body(var buffer):
                body += buffer.readString(length: buffer.readableBytes) ?? ""
            case .end:
                guard let head else { return }
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                let request = Request(method: head.method.rawValue, uri: head.uri, headers: headers, body: body)
                answer(respond(request), head: head, context: context)
            }
        }

        func answer(_ answer: Answer, head: HTTPRequestHead, context: ChannelHandlerContext) {
                switch answer {
                case .hang:
                    return
                case .after(let milliseconds, let then):
                    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: .milliseconds(milliseconds)) {
                        let (handler, context) = loopBound.value
                        handler.answer(then, head: head, context: context)
                    }
                case .close:
                    context.close(promise: nil)
                case .status(let code, let text):
                    var responseHeaders = HTTPHeaders()
                    responseHeaders.add(name: "content-type", value: "application/json")
                    responseHeaders.add(name: "content-length", value: String(text.utf8.count))
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: code), headers: responseHeaders))), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                }
        }
    }
}

/// A Standard Webhooks receiver that keeps the ids it has seen (as its docs tell receivers to),
/// checks every signature, and answers as the test scripts it.
final class WebhookReceiver: @unchecked Sendable {
    struct Delivery: Sendable {
        var id: String
        var timestamp: Int64
        var signature: String
        var body: String
        var signatureValid: Bool
        /// Whether the receiver said yes (2xx) to this request.
        var accepted = false
    }

    private let lock = NIOLock()
    private var requests: [Delivery] = []
    private var kept: [String] = []
    private var script: @Sendable (Delivery, Int) -> LocalHTTPServer.Answer = { _, _ in .status(200) }
    let secret: WebhookSecretBox
    private(set) var server: LocalHTTPServer!

    init(secret: String) throws {
        self.secret = try WebhookSecretBox(secret)
        server = LocalHTTPServer { [unowned self] request in self.handle(request) }
    }

    /// `answer(delivery, nth request overall)`; requests answered 2xx are kept once by id.
    func script(_ answer: @escaping @Sendable (Delivery, Int) -> LocalHTTPServer.Answer) {
        lock.withLock { script = answer }
    }

    private func handle(_ request: LocalHTTPServer.Request) -> LocalHTTPServer.Answer {
        let id = request.headers["webhook-id"] ?? ""
        let timestamp = Int64(request.headers["webhook-timestamp"] ?? "") ?? 0
        let signature = request.headers["webhook-signature"] ?? ""
        let valid = secret.verify(id: id, timestamp: timestamp, body: request.body, header: signature)
        var delivery = Delivery(id: id, timestamp: timestamp, signature: signature, body: request.body, signatureValid: valid)
        return lock.withLock {
            let answer = valid ? script(delivery, requests.count + 1) : .status(401, "bad signature")
            if case .status(let code, _) = answer, (200..<300).contains(code) {
                delivery.accepted = true
                if !kept.contains(id) { kept.append(id) }
            }
            requests.append(delivery)
            return answer
        }
    }

    /// Every request, in arrival order.
    var received: [Delivery] { lock.withLock { requests } }
    /// Entry ids accepted, each once, in the order first accepted.
    var accepted: [String] { lock.withLock { kept } }
}

import TillCRM

/// The secret, held for verification on the receiver's side.
struct WebhookSecretBox: Sendable {
    let secret: WebhookSecret
    init(_ text: String) throws { secret = try WebhookSecret(text) }
    func verify(id: String, timestamp: Int64, body: String, header: String) -> Bool {
        WebhookSignature.verify(id: id, timestamp: timestamp, body: body, header: header, secret: secret, now: Int64(Date().timeIntervalSince1970))
    }
}
