public import NIOCore
public import NIOHTTP1
public import NIOWebSocket

/// `GET /screen/ws`: the customer screen's live basket, one JSON snapshot per message (what
/// `Basket.snapshot` says), the current one first. The screen sends nothing but pings and its
/// close. Open to the bridge's own page (see `OriginPolicy.isOwnPage`) and to allowed origins:
/// it carries only what the customer in front of the screen sees anyway.
public struct ScreenFeed: WebSocketService {
    public let screen: CustomerScreen
    public let origins: OriginPolicy

    public init(screen: CustomerScreen, origins: OriginPolicy) {
        self.screen = screen
        self.origins = origins
    }

    public func accepts(_ head: HTTPRequestHead) -> Bool {
        guard HTTPRequest(method: head.method, uri: head.uri).path == "/screen/ws" else { return false }
        if case .refused = origins.judge(head.headers, ownPages: true) { return false }
        return true
    }

    public func serve(_ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, head: HTTPRequestHead) async {
        let (id, snapshots) = await screen.watch()
        defer { Task { await screen.unwatch(id) } }
        try? await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await text in snapshots {
                        try await outbound.write(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)))
                    }
                }
                group.addTask {
                    for try await frame in inbound {
                        switch frame.opcode {
                        case .ping:
                            try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData))
                        case .connectionClose:
                            var data = frame.unmaskedData
                            try await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, data: data.readSlice(length: 2) ?? ByteBuffer()))
                            return
                        default:
                            break
                        }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }
}

/// Several WebSocket services behind one server, each taking its own paths.
public struct WebSocketRoutes: WebSocketService {
    public let services: [any WebSocketService]

    public init(_ services: [any WebSocketService]) {
        self.services = services
    }

    public func accepts(_ head: HTTPRequestHead) -> Bool {
        services.contains { $0.accepts(head) }
    }

    public func serve(_ channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, head: HTTPRequestHead) async {
        await services.first { $0.accepts(head) }?.serve(channel, head: head)
    }
}
