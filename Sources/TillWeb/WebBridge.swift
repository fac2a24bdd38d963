public import Logging
import TillWebPairing

/// till-web put together from its settings: the Odoo routes, pairing and the page WebSocket,
/// the customer screen, and the two followers of tilld's socket (scans for the long-poll,
/// sales for the screen). The program and the end-to-end tests run this same assembly.
public struct WebBridge: Sendable {
    public let settings: WebConfig
    public let server: HTTPServer
    public let scans: ScanFeed
    public let screen: CustomerScreen?
    let logger: Logger

    public init(settings: WebConfig, logger: Logger) {
        self.settings = settings
        self.logger = logger
        let till = SocketTillLink(socket: settings.socket)
        scans = ScanFeed()
        let odoo = OdooProxy(till: till, scans: scans, retries: RetryWindow(window: .seconds(settings.printRetrySeconds)), logger: logger)
        let origins = OriginPolicy(allowed: settings.origins)
        let pairing = PairedTokens(directory: PairingDirectory(path: settings.stateDirectory))
        screen = settings.customerScreen ? CustomerScreen(till: till, logger: logger) : nil
        var webSockets: [any WebSocketService] = [WebSocketRelay(socket: settings.socket, origins: origins, tokens: pairing, logger: logger)]
        if let screen { webSockets.append(ScreenFeed(screen: screen, origins: origins)) }
        server = HTTPServer(
            responder: Bridge(origins: origins, odoo: odoo, pairing: pairing, screen: screen, logger: logger),
            webSocket: WebSocketRoutes(webSockets), logger: logger)
    }

    public func bind() async throws -> HTTPServer.Listener {
        try await server.bind(host: settings.host, port: settings.port)
    }

    /// Serves `listener` and follows tilld until cancelled.
    public func run(_ listener: HTTPServer.Listener) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await scans.follow(socket: settings.socket, logger: logger) }
            if let screen { group.addTask { await screen.follow(socket: settings.socket) } }
            group.addTask { try await server.serve(listener) }
        }
    }
}
