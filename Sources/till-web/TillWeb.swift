import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import TillWeb
import TillWebPairing
import TillWebTLS

/// The browser bridge: an HTTP server on loopback (or the LAN) for web POS software that cannot
/// open tilld's Unix socket. A client of tilld's socket like any other, running as its own user
/// with the `act` right it needs (docs/web.md).
@main
struct TillWebCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "till-web",
        abstract: "Lets browser POS software (Odoo POS and others) use tilld's devices over HTTP.")

    @Option(help: "Config file ([web] listen, socket, origins).")
    var config: String?
    @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:8069, Odoo's IoT box port).")
    var listen: String?
    @Option(help: "tilld's socket.")
    var socket: String?
    @Option(name: .customLong("origin"), help: "A page origin allowed to use the till (repeatable), e.g. https://shop.odoo.com.")
    var origins: [String] = []
    @Option(name: .customLong("client"), help: "A machine (address) or network (192.168.1.0/24) that may connect (repeatable; loopback always may). None: any that reaches the port.")
    var clients: [String] = []
    @Option(help: "Serve HTTPS as well on HOST:PORT (e.g. 0.0.0.0:443), with certificates from till-web's own authority.")
    var tlsListen: String?
    @Option(help: "Where pairing codes and the pages' tokens are kept (default /var/lib/till-web).")
    var stateDir: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        var settings: WebConfig
        do {
            settings = try config.map(WebConfig.load(path:)) ?? WebConfig()
            if let listen { try settings.setListen(listen) }
            if let tlsListen { try settings.setTLSListen(tlsListen) }
        } catch let error as WebConfig.Invalid {
            throw ValidationError(error.description)
        }
        if let socket { settings.socket = socket }
        if let stateDir { settings.stateDirectory = stateDir }
        settings.origins += origins
        settings.clients += clients
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "till-web")
        let loopback = ["127.0.0.1", "::1", "localhost"]
        if settings.clients.isEmpty, !loopback.contains(settings.host) || settings.tlsListen.map({ !loopback.contains($0.host) }) == true {
            logger.warning("listening beyond this machine with no [web] clients: any machine that reaches the port can print and open the drawer (Odoo's IoT routes carry no token); list the POS machines' addresses in [web] clients")
        }
        if settings.origins.isEmpty {
            logger.warning("no origins are allowed: a web POS page from another site is refused (this bridge's own customer screen still works); add the POS's origin to [web] origins (or --origin)")
        }
        let bridge: WebBridge
        do {
            bridge = try WebBridge(settings: settings, logger: logger)
        } catch {
            throw ValidationError(error is ClientPolicy.Invalid ? "--client: \(error)" : "HTTPS cannot be set up: \(error)")
        }
        if let tls = bridge.tls {
            logger.notice(tls.issued ? "issued a server certificate from the local authority" : "using the server certificate from the local authority",
                          metadata: ["names": "\(tls.names.dns + tls.names.addressTexts)", "authority": "\(tls.authority.certificatePath)",
                                     "trust": "run `tillctl web trust` for how to trust the authority in each browser"])
        }
        let listener: Awaited
        do {
            listener = Awaited(try await bridge.bind())
        } catch {
            let where_ = settings.tlsListen.map { "\(settings.host):\(settings.port) or \($0.host):\($0.port)" } ?? "\(settings.host):\(settings.port)"
            throw ValidationError("cannot listen on \(where_): \(error); is another program (an IoT box service?) using the port? (a port under 1024 needs CAP_NET_BIND_SERVICE, which till-web.service gives)")
        }
        let address = listener.channel.http.channel.localAddress.map { "\($0)" } ?? "?"
        let secure = listener.channel.https?.channel.localAddress.map { "\($0)" } ?? "off"
        logger.notice("listening", metadata: ["address": "\(address)", "https": "\(secure)", "tilld": "\(settings.socket)", "origins": "\(settings.origins)"])
        if settings.customerScreen {
            logger.notice("the customer screen is at /screen: open http://THIS-TILL:\(settings.port)/screen on the customer's display")
        }
        try await bridge.run(listener.channel)
    }
}

/// The bound listener, handed to the serving task.
struct Awaited: @unchecked Sendable {
    let channel: WebBridge.Listeners
    init(_ channel: WebBridge.Listeners) { self.channel = channel }
}
