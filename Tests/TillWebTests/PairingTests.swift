import Foundation
import Testing
@testable import TillWeb
import TillWebPairing

@Suite("Pairing a web page: one-time codes, tokens per origin")
struct PairingTests {
    static func directory() -> PairingDirectory {
        PairingDirectory(path: NSTemporaryDirectory() + "till-web-pairing-" + UUID().uuidString)
    }

    @Test("a code is taken once, only by its origin; the token it gives is good for that origin only, and survives a restart")
    func exchange() throws {
        let directory = Self.directory()
        let tokens = PairedTokens(directory: directory)
        let code = try directory.issueCode(for: "https://POS.example.com/")
        #expect(code.count == 6 && code.allSatisfy(\.isNumber))
        #expect(try tokens.exchange(code: code, origin: "https://evil.example") == nil, "another origin")
        #expect(try tokens.exchange(code: code, origin: "https://pos.example.com") == nil, "a code looked at by a wrong origin is gone")

        let second = try directory.issueCode(for: "https://pos.example.com")
        let token = try #require(try tokens.exchange(code: second, origin: "https://pos.example.com:443"))
        #expect(try tokens.exchange(code: second, origin: "https://pos.example.com") == nil, "used once")
        #expect(tokens.valid(token, origin: "https://pos.example.com"))
        #expect(!tokens.valid(token, origin: "https://other.example"))
        #expect(!tokens.valid(String(token.dropLast()) + "0", origin: "https://pos.example.com") || token.hasSuffix("0"))
        #expect(PairedTokens(directory: directory).valid(token, origin: "https://pos.example.com"), "kept across a restart")
        let mode = try FileManager.default.attributesOfItem(atPath: directory.path + "/tokens.json")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("unpair revokes the origin's tokens, another origin's stay good, and pairing again works")
    func revoke() throws {
        let directory = Self.directory()
        let tokens = PairedTokens(directory: directory)
        let first = try #require(try tokens.exchange(code: try directory.issueCode(for: "https://pos.example.com"), origin: "https://pos.example.com"))
        let other = try #require(try tokens.exchange(code: try directory.issueCode(for: "https://other.example"), origin: "https://other.example"))
        try directory.revoke(origin: "https://POS.example.com/")
        #expect(!tokens.valid(first, origin: "https://pos.example.com"))
        #expect(!PairedTokens(directory: directory).valid(first, origin: "https://pos.example.com"), "revoked across a restart too")
        #expect(tokens.valid(other, origin: "https://other.example"))
        let again = try #require(try tokens.exchange(code: try directory.issueCode(for: "https://pos.example.com"), origin: "https://pos.example.com"))
        #expect(tokens.valid(again, origin: "https://pos.example.com"), "a page paired after the revocation is good")
    }

    @Test("an expired code, and codes that are not six digits (a path, say), are refused")
    func refused() throws {
        let directory = Self.directory()
        let code = try directory.issueCode(for: "https://pos.example.com", now: Date(timeIntervalSinceNow: -700))
        #expect(!directory.take(code: code, origin: "https://pos.example.com"))
        for bad in ["../tokens.json", "12345", "1234567", "abcdef", ""] {
            #expect(!directory.take(code: bad, origin: "https://pos.example.com"))
        }
    }
}
