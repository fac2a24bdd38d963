public import Foundation
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
    public func serverContext(for names: Names) throws -> (context: NIOSSLContext, issued: Bool) {
        let (pem, keyPEM, issued) = try serverCertificate(for: names)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        return (try NIOSSLContext(configuration: configuration), issued)
    }
}
