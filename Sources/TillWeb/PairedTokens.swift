public import Foundation
import Synchronization
public import TillWebPairing

/// The tokens pages were given, in memory (the WebSocket check runs on the event loop and must
/// not read files) and in the pairing directory (they survive a restart).
public final class PairedTokens: Sendable {
    public let directory: PairingDirectory
    private let tokens: Mutex<[PairingDirectory.Token]>

    public init(directory: PairingDirectory) {
        self.directory = directory
        tokens = Mutex(directory.tokens())
    }

    /// Exchanges a code shown by `tillctl web pair` for a new token, once.
    public func exchange(code: String, origin: String) throws -> String? {
        guard directory.take(code: code, origin: origin) else { return nil }
        let token = PairingDirectory.Token(origin: PairingDirectory.normalized(origin), token: PairingDirectory.newToken(), created: Date())
        let all = tokens.withLock { tokens -> [PairingDirectory.Token] in
            tokens.append(token)
            return tokens
        }
        try directory.save(all)
        return token.token
    }

    /// Whether `token` was given to a page of `origin` and not revoked since (`tillctl web
    /// unpair`). Compared in constant time (a wrong guess takes as long whatever its first
    /// characters).
    public func valid(_ token: String, origin: String) -> Bool {
        let origin = PairingDirectory.normalized(origin)
        let offered = Array(token.utf8)
        let given = tokens.withLock { tokens in
            tokens.first { known in
                let bytes = Array(known.token.utf8)
                guard known.origin == origin, bytes.count == offered.count else { return false }
                return zip(bytes, offered).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
            }
        }
        guard let given else { return false }
        if let revoked = directory.revokedAt(origin: origin), given.created <= revoked { return false }
        return true
    }
}
