public import Foundation
import TillSystem

/// Pairing a web page with the till: a technician runs `tillctl web pair ORIGIN`, which shows
/// a code; the page (from that origin) sends the code to till-web once and gets a token it
/// keeps; the token opens the WebSocket. The code is one file in `codes/` named by the code:
/// tillctl writes it, till-web takes it by deleting it, so a code is used at most once even
/// with two pages racing, and the two programs never rewrite the same file. Tokens are kept by
/// till-web alone, in `tokens.json` (0600).
public struct PairingDirectory: Sendable {
    /// Where till-web keeps them unless told otherwise (`StateDirectory=till-web` in its unit).
    public static let defaultPath = "/var/lib/till-web"
    public let path: String
    /// How long a code shown by tillctl may be used.
    public static let codeLifetime: TimeInterval = 600

    public init(path: String) {
        self.path = path
    }

    var codes: String { path + "/codes" }
    var revocations: String { path + "/revoked" }
    var tokensFile: String { path + "/tokens.json" }

    public struct Problem: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// A new code for `origin` (six digits), valid for `codeLifetime`.
    public func issueCode(for origin: String, now: Date = Date()) throws -> String {
        try FileManager.default.createDirectory(atPath: codes, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for _ in 0..<20 {
            let code = String(format: "%06d", Int.random(in: 0...999_999))
            let file = codes + "/" + code
            guard !FileManager.default.fileExists(atPath: file) else { continue }
            let entry = ["origin": origin, "expires": String(now.timeIntervalSince1970 + Self.codeLifetime)]
            let data = try JSONSerialization.data(withJSONObject: entry)
            guard FileManager.default.createFile(atPath: file, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw Problem(description: "cannot write \(file): run as root (sudo), or as till-web's user")
            }
            return code
        }
        throw Problem(description: "no free pairing code: too many are pending in \(codes); remove the old ones")
    }

    /// Takes `code` if it was issued for `origin` and has not expired: it is deleted either way
    /// once looked at, so a code guessed wrong by a page is not left to be guessed again.
    public func take(code: String, origin: String, now: Date = Date()) -> Bool {
        guard code.count == 6, code.allSatisfy(\.isASCII), code.allSatisfy(\.isNumber) else { return false }
        let file = codes + "/" + code
        guard let data = FileManager.default.contents(atPath: file) else { return false }
        // Whoever deletes it first has it (unlink succeeds once).
        guard (try? FileManager.default.removeItem(atPath: file)) != nil else { return false }
        guard let entry = try? JSONSerialization.jsonObject(with: data) as? [String: String],
              let issued = entry["origin"], let expires = entry["expires"].flatMap(Double.init) else { return false }
        return Self.sameOrigin(issued, origin) && now.timeIntervalSince1970 < expires
    }

    /// Revokes every token given to pages of `origin` until now (`tillctl web unpair`): a file
    /// in `revoked/` named by the origin, whose time till-web compares with each token's. The
    /// page can be paired again later; a WebSocket already open stays open until it closes.
    public func revoke(origin: String, now: Date = Date()) throws {
        try FileManager.default.createDirectory(atPath: revocations, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileSystem.replaceDurably(revocationFile(origin), contents: String(now.timeIntervalSince1970), mode: 0o600)
    }

    /// When `origin`'s tokens were last revoked, if ever.
    public func revokedAt(origin: String) -> Date? {
        guard let data = FileManager.default.contents(atPath: revocationFile(origin)),
              let seconds = Double(String(decoding: data, as: UTF8.self)) else { return nil }
        return Date(timeIntervalSince1970: seconds)
    }

    private func revocationFile(_ origin: String) -> String {
        revocations + "/" + Self.normalized(origin).utf8.map { String(format: "%02x", $0) }.joined()
    }

    public struct Token: Codable, Sendable, Equatable {
        public var origin: String
        public var token: String
        public var created: Date

        public init(origin: String, token: String, created: Date) {
            self.origin = origin
            self.token = token
            self.created = created
        }
    }

    public func tokens() -> [Token] {
        guard let data = FileManager.default.contents(atPath: tokensFile) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return (try? decoder.decode([Token].self, from: data)) ?? []
    }

    /// Writes the tokens, replacing the file whole and durably (a token handed to a page is
    /// still there after a power cut).
    public func save(_ tokens: [Token]) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        try FileSystem.replaceDurably(tokensFile, contents: String(decoding: try encoder.encode(tokens), as: UTF8.self), mode: 0o600)
    }

    /// A new random token (32 bytes, hex).
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Origins as browsers send them: lower case, no trailing slash, no default port.
    public static func normalized(_ origin: String) -> String {
        var text = origin.trimmingCharacters(in: .whitespaces).lowercased()
        while text.hasSuffix("/") { text.removeLast() }
        if text.hasPrefix("https://"), text.hasSuffix(":443") { text.removeLast(4) }
        if text.hasPrefix("http://"), text.hasSuffix(":80") { text.removeLast(3) }
        return text
    }

    static func sameOrigin(_ a: String, _ b: String) -> Bool { normalized(a) == normalized(b) }
}
