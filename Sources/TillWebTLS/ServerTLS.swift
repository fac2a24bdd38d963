public import Foundation
import Synchronization
import TillSystem
public import NIOSSL

extension LocalAuthority.Names {
    /// What this till is called and where it can be reached: its host name (and `NAME.local`,
    /// mDNS), `localhost`, every address of its interfaces (a browser on the LAN types the
    /// address Odoo's IoT box setting holds), and the names the shop added (`[web] tls_names`).
    public static func ofThisMachine(adding extra: [String] = []) -> Self {
        var dns: [String] = []
        if let name = NetworkAddress.hostName(), name != "localhost" {
            dns.append(name)
            if !name.contains(".") { dns.append(name + ".local") }
        }
        dns.append("localhost")
        for name in extra where !dns.contains(name.lowercased()) { dns.append(name.lowercased()) }
        var addresses: [[UInt8]] = [[127, 0, 0, 1], Array(repeating: 0, count: 15) + [1]]
        for address in NetworkAddress.ofInterfaces() where !addresses.contains(address) { addresses.append(address) }
        return Self(dns: dns, addresses: addresses)
    }

    /// `192.168.1.10`, `::1`: for the log.
    public var addressTexts: [String] {
        addresses.compactMap(NetworkAddress.text)
    }
}

extension LocalAuthority {
    /// The TLS server context for `names`: the server certificate (issued now if needed) and
    /// the authority's, TLS 1.2 and up.
    public func serverContext(for names: Names, now: Date = Date()) throws -> (context: NIOSSLContext, issued: Bool) {
        let (pem, keyPEM, issued) = try serverCertificate(for: names, now: now)
        return (try Self.serverContext(certificate: pem, key: keyPEM), issued)
    }

    static func serverContext(certificate pem: String, key keyPEM: String) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }
}

/// The TLS context new connections get, kept right while till-web runs: `renewIfNeeded` (every
/// few minutes) issues a new server certificate when the till got an address its certificate
/// does not name (a new DHCP lease) or the certificate nears its end, and swaps it in. A
/// connection keeps the context it was accepted with. Without this, a browser that reaches the
/// till by its new address, or any browser a year after the last restart, met a certificate
/// error until till-web was restarted.
public final class ServerTLSRenewal: Sendable {
    public let authority: LocalAuthority
    private let currentNames: @Sendable () -> LocalAuthority.Names
    private let state: Mutex<(context: NIOSSLContext, names: LocalAuthority.Names)>

    /// - Parameters:
    ///   - names: what the till is called and where it is at start (read once by the caller,
    ///     which names the authority after it too).
    ///   - current: the same, read again at each `renewIfNeeded` (`Names.ofThisMachine`).
    public init(authority: LocalAuthority, names: LocalAuthority.Names, current: @escaping @Sendable () -> LocalAuthority.Names, now: Date = Date()) throws {
        self.authority = authority
        self.currentNames = current
        let (context, issued) = try authority.serverContext(for: names, now: now)
        state = Mutex((context, names))
        issuedAtStart = issued
    }

    /// Whether the certificate in use was issued at `init` (else the one on disk still fitted).
    public let issuedAtStart: Bool

    /// The context for a connection accepted now.
    public var context: NIOSSLContext { state.withLock { $0.context } }

    /// The names the certificate in use was checked against.
    public var names: LocalAuthority.Names { state.withLock { $0.names } }

    /// Looks at the till's names and addresses again; when the certificate on disk no longer
    /// covers them, or is near its end, issues one that does and uses it for new connections.
    /// Returns the names of a certificate issued now, nil when the one in use still fits.
    @discardableResult
    public func renewIfNeeded(now: Date = Date()) throws -> LocalAuthority.Names? {
        let names = currentNames()
        let (pem, keyPEM, issued) = try authority.serverCertificate(for: names, now: now)
        // A certificate kept from disk is the one in use; a new one replaces it.
        let context = issued ? try LocalAuthority.serverContext(certificate: pem, key: keyPEM) : nil
        state.withLock { state in
            if let context { state.context = context }
            state.names = names
        }
        return issued ? names : nil
    }
}
