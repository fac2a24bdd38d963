import Glibc

/// IP addresses as bytes, and the host's own names and addresses: the system calls
/// (`inet_pton`, `inet_ntop`, `getifaddrs`, `gethostname`) behind till-web's certificate names,
/// its own-page rule and its client list.
public enum NetworkAddress {
    /// "192.168.1.10" → 4 bytes, "::1" → 16 bytes; nil when it is not an address.
    public static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// 4 or 16 bytes → "192.168.1.10", "fd00::2".
    public static func text(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let done = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return done == nil ? nil : cString(text)
    }

    /// The addresses of this machine's interfaces (loopback included, IPv6 link-local left out:
    /// a URL cannot use one without a zone).
    public static func ofInterfaces() -> [[UInt8]] {
        var found: [[UInt8]] = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return found }
        defer { freeifaddrs(list) }
        var next = list
        while let entry = next {
            defer { next = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr else { continue }
            let bytes: [UInt8]
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                bytes = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                }
            case AF_INET6:
                bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                }
                if bytes[0] == 0xFE, bytes[1] & 0xC0 == 0x80 { continue }
            default:
                continue
            }
            if !found.contains(bytes) { found.append(bytes) }
        }
        return found
    }

    /// This machine's host name, lower case; nil when it has none.
    public static func hostName() -> String? {
        var host = [CChar](repeating: 0, count: 256)
        guard gethostname(&host, host.count) == 0 else { return nil }
        let name = cString(host).lowercased()
        return name.isEmpty ? nil : name
    }
}

/// The text of a C string in a buffer, up to its terminating zero (or the whole buffer).
private func cString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
