public import Foundation
import Glibc
public import NIOSSL

extension LocalAuthority.Names {
    /// What this till is called and where it can be reached: its host name (and `NAME.local`,
    /// mDNS), `localhost`, every address of its interfaces (a browser on the LAN types the
    /// address Odoo's IoT box setting holds), and the names the shop added (`[web] tls_names`).
    public static func ofThisMachine(adding extra: [String] = []) -> Self {
        var dns: [String] = []
        var host = [CChar](repeating: 0, count: 256)
        if gethostname(&host, host.count) == 0 {
            let name = String(cString: host).lowercased()
            if !name.isEmpty, name != "localhost" {
                dns.append(name)
                if !name.contains(".") { dns.append(name + ".local") }
            }
        }
        dns.append("localhost")
        for name in extra where !dns.contains(name.lowercased()) { dns.append(name.lowercased()) }

        var addresses: [[UInt8]] = [[127, 0, 0, 1], Array(repeating: 0, count: 15) + [1]]
        var list: UnsafeMutablePointer<ifaddrs>?
        if getifaddrs(&list) == 0 {
            defer { freeifaddrs(list) }
            var next = list
            while let entry = next {
                defer { next = entry.pointee.ifa_next }
                guard let address = entry.pointee.ifa_addr else { continue }
                var bytes: [UInt8]
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    bytes = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                    }
                case AF_INET6:
                    bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    }
                    // fe80::/10 needs a zone id in a URL; no browser page uses one.
                    if bytes[0] == 0xFE, bytes[1] & 0xC0 == 0x80 { continue }
                default:
                    continue
                }
                if !addresses.contains(bytes) { addresses.append(bytes) }
            }
        }
        return Self(dns: dns, addresses: addresses)
    }

    /// `192.168.1.10`, `::1`: for the log and `tillctl web trust`.
    public var addressTexts: [String] {
        addresses.map { bytes in
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let family = bytes.count == 4 ? AF_INET : AF_INET6
            _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
            return String(cString: text)
        }
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
