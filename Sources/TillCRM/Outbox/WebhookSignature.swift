public import Foundation
import Crypto

/// Standard Webhooks signing (https://www.standardwebhooks.com): the receiver checks
/// `webhook-signature` = `v1,` + base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")),
/// with the key from the shared `whsec_` secret, and refuses a timestamp too far from its clock
/// (replays). Pure: no I/O.
public struct WebhookSecret: Sendable, Hashable {
    public let key: Data

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// `whsec_` and base64 (the prefix may be left off, as some dashboards show the secret).
    public init(_ text: String) throws {
        let encoded = text.hasPrefix("whsec_") ? String(text.dropFirst(6)) : text
        guard let key = Data(base64Encoded: encoded), !key.isEmpty else {
            throw Invalid(description: "a webhook secret is \"whsec_\" and base64 (e.g. from `openssl rand -base64 32`), not \"\(text.prefix(10))...\"")
        }
        guard key.count >= 16 else {
            throw Invalid(description: "the webhook secret is \(key.count) bytes; use at least 16 (`openssl rand -base64 32` gives 32)")
        }
        self.key = key
    }

    /// A new random secret, in the `whsec_` form.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "whsec_" + Data(bytes).base64EncodedString()
    }
}

public enum WebhookSignature {
    /// The `webhook-signature` header value.
    public static func sign(id: String, timestamp: Int64, body: String, secret: WebhookSecret) -> String {
        let content = Data("\(id).\(timestamp).\(body)".utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: secret.key))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// What a receiver does: any `v1` signature in the (space-separated) header matches, and the
    /// timestamp is within `tolerance` seconds of `now`.
    public static func verify(
        id: String, timestamp: Int64, body: String, header: String, secret: WebhookSecret, now: Int64, tolerance: Int64 = 300
    ) -> Bool {
        guard abs(now - timestamp) <= tolerance else { return false }
        let expected = sign(id: id, timestamp: timestamp, body: body, secret: secret)
        return header.split(separator: " ").contains { candidate in
            // Constant time, so a forger learns nothing from how long a refusal took.
            let a = Array(candidate.utf8), b = Array(expected.utf8)
            guard a.count == b.count else { return false }
            return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
        }
    }
}

/// When to try again: exponential with jitter, so many entries that failed together do not
/// come back together. Pure (the random part is passed in).
public struct Backoff: Sendable, Hashable {
    public var baseMs: Int64
    public var capMs: Int64

    public init(baseMs: Int64, capMs: Int64) {
        self.baseMs = baseMs
        self.capMs = capMs
    }

    /// The delay before try `attempt + 1` after `attempt` failures (1 or more): base × 2^(attempt−1),
    /// at most the cap, scaled by a factor from 0.5 to 1 ("equal jitter": never sooner than half).
    public func delayMs(afterAttempt attempt: Int, random: Double) -> Int64 {
        let exponent = min(max(attempt - 1, 0), 40)
        let full = min(capMs, baseMs.multipliedReportingOverflow(by: Int64(1) << exponent).overflow ? capMs : baseMs << exponent)
        return Int64(Double(full) * (0.5 + 0.5 * min(max(random, 0), 1)))
    }
}
