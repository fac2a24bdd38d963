import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// What the HTTP targets (webhooks, Twenty) share: one exchange with its answer or the reason
/// there was none, how an answer counts, and entries delivered concurrently.
enum HTTPDelivery {
    enum Answer {
        case answered(status: Int, body: String)
        /// No answer: the reason in words that say what to check.
        case unreachable(String)
    }

    /// Sends the request and reads at most `limit` bytes of the answer.
    static func send(_ request: HTTPClientRequest, on client: HTTPClient, timeoutSeconds: Double, url: String, limit: Int) async -> Answer {
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeoutSeconds * 1000)))
            let body = (try? await response.body.collect(upTo: limit)).map { String(buffer: $0) } ?? ""
            return .answered(status: Int(response.status.code), body: body)
        } catch {
            return .unreachable(describe(error, url: url, timeout: timeoutSeconds))
        }
    }

    /// 2xx delivers; "not now" answers pause the target; any other answer is a refusal.
    static func outcome(status: Int, body: String) -> DeliveryOutcome {
        switch status {
        case 200..<300: return .delivered
        case 408, 425, 429, 502, 503, 504: return .unreachable("HTTP \(status)" + excerpt(body))
        default: return .refused("HTTP \(status)" + excerpt(body))
        }
    }

    static func excerpt(_ body: String) -> String {
        let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "" : ": " + String(text.prefix(200))
    }

    /// Each entry delivered by `deliver` at once (the caller hands one entry per customer);
    /// the outcomes in the entries' order.
    static func concurrently(_ entries: [OutboxEntry], _ deliver: @escaping @Sendable (OutboxEntry) async -> DeliveryOutcome) async -> [DeliveryOutcome] {
        await withTaskGroup(of: (Int, DeliveryOutcome).self) { group in
            for (index, entry) in entries.enumerated() {
                group.addTask { (index, await deliver(entry)) }
            }
            var outcomes = Array(repeating: DeliveryOutcome.unreachable("not tried"), count: entries.count)
            for await (index, outcome) in group { outcomes[index] = outcome }
            return outcomes
        }
    }

    private static func closedBeforeAnswering(_ url: String) -> String {
        "\(url) closed the connection before answering (is the receiver up and reachable?)"
    }

    /// Transport errors in words that say what to check.
    static func describe(_ error: any Error, url: String, timeout: Double) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout:
                return "no answer from \(url) within \(timeout) s (is the receiver up and reachable?)"
            case .remoteConnectionClosed:
                return closedBeforeAnswering(url)
            default:
                return "\(url): \(error)"
            }
        }
        if let error = error as? ChannelError, error == .ioOnClosedChannel || error == .alreadyClosed || error == .eof {
            // A pooled connection the receiver closed (it stopped, or restarted) before answering.
            return closedBeforeAnswering(url)
        }
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") {
            return "\(url) refused the connection (is the receiver running, on this port?)"
        }
        return "\(url): \(text)"
    }
}
