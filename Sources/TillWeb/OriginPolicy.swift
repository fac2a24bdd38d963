public import NIOHTTP1
import TillSystem
import TillWebPairing

/// Which web pages may use the bridge, and the CORS answers that let them. A browser sends
/// `Origin` with every cross-origin request; a page whose origin is not listed is refused
/// (and logged by the server), never served. A request without `Origin` is not from a
/// cross-origin page (curl, a test, the bridge's own pages) and is let through: the bridge
/// listens on loopback unless told otherwise.
public struct OriginPolicy: Sendable {
    /// Origins as browsers send them: scheme, host and port, no path (`https://shop.example`).
    public var allowed: Set<String>

    public init(allowed: some Sequence<String>) {
        self.allowed = Set(allowed.map(Self.normalized))
    }

    /// `https://Shop.Example:443/` → `https://shop.example`: what a browser would send (one
    /// rule for the allowlist and for pairing).
    public static func normalized(_ origin: String) -> String {
        PairingDirectory.normalized(origin)
    }

    public enum Verdict: Equatable, Sendable {
        /// No `Origin`: not a cross-origin page.
        case noOrigin
        case allowed(String)
        case refused(String)
    }

    /// `ownPages`: the route serves the bridge's own pages (the customer screen), so a page
    /// the bridge served itself (`isOwnPage`) is let through as not cross-origin.
    public func judge(_ headers: HTTPHeaders, ownPages: Bool = false) -> Verdict {
        guard let origin = headers.first(name: "origin") else { return .noOrigin }
        let normalized = Self.normalized(origin)
        // "null" is what a sandboxed frame or a file:// page sends: never a shop's page.
        if normalized != "null" && allowed.contains(normalized) { return .allowed(origin) }
        return ownPages && Self.isOwnPage(headers) ? .noOrigin : .refused(origin)
    }

    /// The headers every answer to an allowed origin carries.
    public static func corsHeaders(for origin: String) -> [(String, String)] {
        [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    }

    /// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`) from an
    /// allowed origin: the methods the bridge serves, the headers the page asked to send, and
    /// Chrome's Private/Local Network Access permission when the page asks for it (a public
    /// site reaching a loopback or LAN address).
    public static func preflightHeaders(for origin: String, request headers: HTTPHeaders) -> [(String, String)] {
        var answer = corsHeaders(for: origin) + [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            ("Access-Control-Max-Age", "600"),
        ]
        if let asked = headers.first(name: "access-control-request-headers"), !asked.isEmpty {
            answer.append(("Access-Control-Allow-Headers", asked))
        }
        if headers.first(name: "access-control-request-private-network")?.lowercased() == "true"
            || headers.first(name: "access-control-request-local-network")?.lowercased() == "true" {
            answer.append(("Access-Control-Allow-Private-Network", "true"))
            answer.append(("Access-Control-Allow-Local-Network", "true"))
        }
        return answer
    }
}

extension OriginPolicy {
    /// Whether the request comes from a page the bridge served itself (the customer screen):
    /// its `Origin` names the very host and port the request was sent to (`Host`). Only for an
    /// address, or `localhost`: a page on a DNS name could be a rebinding attack (a public
    /// site whose name was pointed at the till's address, which the browser would call the
    /// same origin). A name the shop uses for the till (`http://till.local:8069`) goes in
    /// `[web] origins` instead.
    public static func isOwnPage(_ headers: HTTPHeaders) -> Bool {
        guard let origin = headers.first(name: "origin"), let host = headers.first(name: "host")?.lowercased() else { return false }
        let normalized = normalized(origin)
        let authority: Substring
        if normalized.hasPrefix("http://") {
            authority = normalized.dropFirst("http://".count)
        } else if normalized.hasPrefix("https://") {
            authority = normalized.dropFirst("https://".count)
        } else {
            return false
        }
        // A default port is left out of Origin, and may or may not be in Host.
        let defaultPort = normalized.hasPrefix("https://") ? ":443" : ":80"
        let sentTo = host.hasSuffix(defaultPort) ? String(host.dropLast(defaultPort.count)) : host
        guard authority == sentTo else { return false }
        return isAddressOrLocalhost(hostPart(of: sentTo))
    }

    /// `192.168.1.10:8069` → `192.168.1.10`; `[::1]:8069` → `::1`.
    static func hostPart(of authority: String) -> String {
        if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<end])
        }
        return String(authority.split(separator: ":", maxSplits: 1).first ?? "")
    }

    static func isAddressOrLocalhost(_ host: String) -> Bool {
        host == "localhost" || NetworkAddress.bytes(host) != nil
    }
}
