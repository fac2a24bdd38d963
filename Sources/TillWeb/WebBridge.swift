public import Logging
public import NIOSSL
import TillWebPairing
public import TillWebTLS

/// till-web put together from its settings: the Odoo routes, pairing and the page WebSocket,
/// the customer screen, HTTPS from the local certificate authority when asked, and the two
/// followers of tilld's socket (scans for the long-poll, sales for the screen). The program
/// and the end-to-end tests run this same assembly.
public struct WebBridge: Sendable {
    public let settings: WebConfig
    public let server: HTTPServer
    public let scans: ScanFeed
    public let screen: CustomerScreen?
    /// HTTPS: the authority, the names its server certificate covers, and whether it was
    /// issued at this start.
    public let tls: TLS?
    let logger: Logger

    public struct TLS: Sendable {
        public let authority: LocalAuthority
        public let names: LocalAuthority.Names
        public let context: NIOSSLContext
        public let issued: Bool
    }

    public struct Listeners: Sendable {
        public let http: HTTPServer.Listener
        public let https: HTTPServer.Listener?
    }

    public init(settings: WebConfig, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        if settings.tlsListen != nil {
            let names = LocalAuthority.Names.ofThisMachine(adding: settings.tlsNames)
            let authority = try LocalAuthority.loadOrCreate(directory: settings.stateDirectory + "/tls", label: names.dns.first ?? "till")
            let (context, issued) = try authority.serverContext(for: names)
            tls = TLS(authority: authority, names: names, context: context, issued: issued)
        } else {
            tls = nil
        }
        let till = SocketTillLink(socket: settings.socket)
        scans = ScanFeed()
        let odoo = OdooProxy(till: till, scans: scans, retries: RetryWindow(window: .seconds(settings.printRetrySeconds)), logger: logger)
        let origins = OriginPolicy(allowed: settings.origins)
        let pairing = PairedTokens(directory: PairingDirectory(path: settings.stateDirectory))
        screen = settings.customerScreen ? CustomerScreen(till: till, logger: logger) : nil
        var webSockets: [any WebSocketService] = [WebSocketRelay(socket: settings.socket, origins: origins, tokens: pairing, logger: logger)]
        if let screen { webSockets.append(ScreenFeed(screen: screen, origins: origins)) }
        let authorityPEM = try tls.map { try $0.authority.certificatePEM() }
        server = HTTPServer(
            responder: Bridge(origins: origins, odoo: odoo, pairing: pairing, screen: screen, authorityCertificate: authorityPEM, logger: logger),
            webSocket: WebSocketRoutes(webSockets), clients: try ClientPolicy(settings.clients), logger: logger)
    }

    public func bind() async throws -> Listeners {
        let http = try await server.bind(host: settings.host, port: settings.port)
        guard let tls, let address = settings.tlsListen else { return Listeners(http: http, https: nil) }
        return Listeners(http: http, https: try await server.bind(host: address.host, port: address.port, tls: tls.context))
    }

    /// Serves the listeners and follows tilld until cancelled.
    public func run(_ listeners: Listeners) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await scans.follow(socket: settings.socket, logger: logger) }
            if let screen { group.addTask { await screen.follow(socket: settings.socket) } }
            group.addTask { try await server.serve(listeners.http) }
            if let https = listeners.https { group.addTask { try await server.serve(https) } }
        }
    }
}
