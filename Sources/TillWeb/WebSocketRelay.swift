public import Logging
public import NIOCore
public import NIOHTTP1
import NIOPosix
public import NIOWebSocket
import TillCore
import TillNIO

/// `GET /ws?token=...`: the socket protocol over a WebSocket, one message per frame. Each
/// WebSocket is a connection of its own to tilld's socket, and what goes through is the
/// protocol's lines unchanged (subscribe with `since`, ops, replies, events): tilld checks the
/// ops against till-web's own rights, as for any client. Only a page from an allowed origin,
/// with a token it was given by pairing (`tillctl web pair ORIGIN`), gets the upgrade.
public struct WebSocketRelay: WebSocketService {
    public let socket: String
    public let origins: OriginPolicy
    public let tokens: PairedTokens
    let logger: Logger
    /// The longest line either side may send (tilld's own limit for a print's picture is below it).
    public static let maxLine = 16 << 20

    public init(socket: String, origins: OriginPolicy, tokens: PairedTokens, logger: Logger) {
        self.socket = socket
        self.origins = origins
        self.tokens = tokens
        self.logger = logger
    }

    public func accepts(_ head: HTTPRequestHead) -> Bool {
        let request = HTTPRequest(method: head.method, uri: head.uri, headers: head.headers)
        guard request.path == "/ws", case .allowed(let origin) = origins.judge(head.headers),
              let token = Self.token(in: request.query) else { return false }
        return tokens.valid(token, origin: origin)
    }

    static func token(in query: String?) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == "token" { return String(parts[1]) }
        }
        return nil
    }

    public func serve(_ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, head: HTTPRequestHead) async {
        let origin = head.headers.first(name: "origin") ?? "?"
        do {
            let till = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: socket) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: Self.maxLine)))
                        return try NIOAsyncChannel<InboundFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            logger.info("a page is connected over a WebSocket", metadata: ["origin": "\(origin)"])
            try await channel.executeThenClose { browserIn, browserOut in
                try await till.executeThenClose { tillIn, tillOut in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            // The page to tilld: each text message is one request line.
                            for try await frame in browserIn {
                                switch frame.opcode {
                                case .text, .binary:
                                    var line = frame.unmaskedData
                                    if line.readableBytesView.last != UInt8(ascii: "\n") { line.writeString("\n") }
                                    try await tillOut.write(line)
                                case .ping:
                                    try await browserOut.write(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
                                case .connectionClose:
                                    var data = frame.unmaskedData
                                    let code = data.readSlice(length: 2) ?? ByteBuffer()
                                    try await browserOut.write(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))
                                    return
                                default:
                                    break
                                }
                            }
                        }
                        group.addTask {
                            // tilld to the page: each line is one text message.
                            for try await frame in tillIn {
                                switch frame {
                                case .line(let line):
                                    try await browserOut.write(WebSocketFrame(fin: true, opcode: .text, data: line))
                                case .tooLong(let limit):
                                    logger.warning("a line from tilld over the relay's limit; closing the page's WebSocket", metadata: ["limit": "\(limit)"])
                                    return
                                }
                            }
                            // tilld closed (a restart): the page reconnects with `since`, as any client.
                            var reason = ByteBuffer()
                            reason.write(webSocketErrorCode: .goingAway)
                            reason.writeString("tilld closed the connection; reconnect and subscribe with since")
                            try? await browserOut.write(WebSocketFrame(fin: true, opcode: .connectionClose, data: reason))
                        }
                        try await group.next()
                        group.cancelAll()
                    }
                }
            }
        } catch {
            logger.notice("a page's WebSocket ended", metadata: ["origin": "\(origin)", "error": "\(error)"])
        }
    }
}
