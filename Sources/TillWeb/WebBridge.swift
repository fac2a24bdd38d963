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
        /// The server certificate in use, checked again every `recheckInterval`.
        public let renewal: ServerTLSRenewal
        public var authority: LocalAuthority { renewal.authority }
        public var names: LocalAuthority.Names { renewal.names }
        public var context: NIOSSLContext { renewal.context }
        public var issued: Bool { renewal.issuedAtStart }
    }

    /// How often a running till-web looks at the till's names and addresses again (a new DHCP
    /// lease) and at its certificate's end date.
    public static let recheckInterval: Duration = .seconds(600)

    public struct Listeners: Sendable {
        public let http: HTTPServer.Listener
        public let https: HTTPServer.Listener?
    }

    public init(settings: WebConfig, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        if settings.tlsListen != nil {
            let extra = settings.tlsNames
            let names = LocalAuthority.Names.ofThisMachine(adding: extra)
            let authority = try LocalAuthority.loadOrCreate(directory: settings.stateDirectory + "/tls", label: names.dns.first ?? "till")
            tls = TLS(renewal: try ServerTLSRenewal(authority: authority, names: names, current: { LocalAuthority.Names.ofThisMachine(adding: extra) }))
        } else {
            tls = nil
        }
        let till = SocketTillLink(socket: settings.socket)
        scans = ScanFeed()
        screen = settings.customerScreen ? CustomerScreen(till: till, logger: logger) : nil
        let odoo = OdooProxy(till: till, scans: scans, retries: RetryWindow(window: .seconds(settings.printRetrySeconds)), screen: screen, logger: logger)
        let origins = OriginPolicy(allowed: settings.origins)
        let pairing = PairedTokens(directory: PairingDirectory(path: settings.stateDirectory))
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
        let renewal = tls.renewal
        return Listeners(http: http, https: try await server.bind(host: address.host, port: address.port, tlsContext: { renewal.context }))
    }

    /// Serves the listeners and follows tilld until cancelled.
    public func run(_ listeners: Listeners) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await scans.follow(socket: settings.socket, logger: logger) }
            if let screen { group.addTask { await screen.follow(socket: settings.socket) } }
            group.addTask { try await server.serve(listeners.http) }
            if let https = listeners.https { group.addTask { try await server.serve(https) } }
            if let renewal = tls?.renewal { group.addTask { await keepCertificate(renewal) } }
        }
    }

    /// Checks the server certificate every `recheckInterval` until cancelled, and says so when
    /// it was issued again. A failure (a full disk) keeps the certificate in use and is retried.
    private func keepCertificate(_ renewal: ServerTLSRenewal) async {
        while (try? await Task.sleep(for: Self.recheckInterval)) != nil {
            do {
                if let names = try renewal.renewIfNeeded() {
                    logger.notice("issued a new server certificate: the till's names or addresses changed, or the old one was near its end", metadata: [
                        "names": "\(names.dns + names.addressTexts)", "authority": "\(renewal.authority.certificatePath)",
                    ])
                }
            } catch {
                logger.warning("could not issue a new server certificate; the one in use stays, retrying later", metadata: [
                    "error": "\(error)", "directory": "\(settings.stateDirectory)/tls",
                ])
            }
        }
    }
}
