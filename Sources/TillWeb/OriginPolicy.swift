public import NIOHTTP1
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

    public func judge(_ headers: HTTPHeaders) -> Verdict {
        guard let origin = headers.first(name: "origin") else { return .noOrigin }
        let normalized = Self.normalized(origin)
        // "null" is what a sandboxed frame or a file:// page sends: never a shop's page.
        return normalized != "null" && allowed.contains(normalized) ? .allowed(origin) : .refused(origin)
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
