import Foundation
public import Logging
public import TillCore
import TillClient

/// The customer-facing screen's state, shared by every screen showing it: it follows tilld's
/// sale events into a `Basket`, hands each change to the screens watching (a WebSocket each),
/// and publishes the customer's own `customer.identified` for the sale on the screen, at most
/// once per sale whatever the page sends (a double tap, a resent form, two tablets).
public actor CustomerScreen {
    private var basket: Basket
    private var watchers: [Int: AsyncStream<String>.Continuation] = [:]
    private var nextWatcher = 0
    /// Sales a `customer.identified` was published for (by this screen or anyone), or is being.
    private var identified: Set<String> = []
    private var expiry: Task<Void, Never>?
    /// The last event applied: a reconnect resumes after it, so no line is counted twice.
    private var lastSeq: Int64 = 0
    private let till: any TillLink
    private let logger: Logger
    /// How many past events to read back when (re)connecting, so a screen opened mid-sale, or
    /// a bridge restarted mid-sale, shows the basket so far.
    public static let replay: Int64 = 1000

    public init(till: any TillLink, lingers: Duration = .seconds(90), logger: Logger) {
        self.till = till
        self.basket = Basket(lingers: lingers)
        self.logger = logger
    }

    /// What a screen shows now.
    public var snapshot: JSONValue { basket.snapshot }

    /// A screen's feed: the current snapshot at once, then one per change. The stream ends
    /// with `unwatch`.
    public func watch() -> (id: Int, snapshots: AsyncStream<String>) {
        nextWatcher += 1
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(8))
        continuation.yield(JSONText.encode(basket.snapshot))
        watchers[nextWatcher] = continuation
        return (nextWatcher, stream)
    }

    public func unwatch(_ id: Int) {
        watchers.removeValue(forKey: id)?.finish()
    }

    public var watching: Int { watchers.count }

    /// One event from tilld (or a test).
    public func apply(_ event: Event) {
        guard event.seq > lastSeq else { return }
        lastSeq = event.seq
        if event.topic == "customer.identified", let sale = event.data["sale"]?.stringValue { identified.insert(sale) }
        var changed = basket.apply(topic: event.topic, data: event.data, time: event.time)
        changed = basket.expire(now: Date()) || changed
        if changed { broadcast() }
        scheduleExpiry()
    }

    /// An order from a POS that sends it whole (Odoo's customer display route): shown until
    /// the next one, or a sale event, replaces it.
    public func show(_ order: Basket.ShownOrder?) {
        if basket.show(order, now: Date()) { broadcast() }
        scheduleExpiry()
    }

    private func broadcast() {
        let text = JSONText.encode(basket.snapshot)
        for continuation in watchers.values { continuation.yield(text) }
    }

    /// A finished sale goes back to the welcome screen when it has lingered long enough.
    private func scheduleExpiry() {
        expiry?.cancel()
        guard let finished = basket.finishedAt else { return }
        let left = max(0, Double(basket.lingers.components.seconds) - Date().timeIntervalSince(finished))
        expiry = Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(Int(left * 1000) + 10))
            guard !Task.isCancelled else { return }
            await self?.expireNow()
        }
    }

    private func expireNow() {
        if basket.expire(now: Date()) { broadcast() }
    }

    public enum Outcome: Sendable, Equatable {
        /// Published as this seq.
        case published(Int64)
        /// This sale already has its customer: nothing published again.
        case already
        /// The sale is not the one on the screen any more (or never was).
        case saleOver
        case refused(Signup.Refusal)
        /// tilld did not take it (message says why); the customer may try again.
        case failed(String)
    }

    /// The form, sent by a screen: checked, then published once for the sale on the screen.
    public func identify(_ body: JSONValue) async -> Outcome {
        let signup: Signup
        do { signup = try Signup(body) } catch { return .refused(error) }
        guard signup.sale == basket.identifiableSale else { return .saleOver }
        // Claimed before the await: a second submit arriving while this one is published
        // (the actor lets it in at the await) finds the sale taken.
        guard identified.insert(signup.sale).inserted else { return .already }
        do {
            let seq = try await till.publish("customer.identified", signup.event)
            logger.info("a customer identified themselves on the screen", metadata: ["sale": "\(signup.sale)", "seq": "\(seq)"])
            return .published(seq)
        } catch {
            identified.remove(signup.sale)
            logger.warning("could not publish the customer's details from the screen", metadata: ["sale": "\(signup.sale)", "error": "\(error)"])
            return .failed("\(error)")
        }
    }

    /// Where a new subscription starts: after the last event applied, and no further back
    /// than `replay` events.
    private func resumePoint(tilldAt seq: Int64) -> Int64 {
        max(lastSeq, seq - Self.replay, 0)
    }

    /// Follows tilld's sale events until cancelled, reconnecting a second after tilld goes
    /// away. Each connection starts with the last `replay` events, so the basket is whole.
    public func follow(socket: String) async {
        await TillFollower.follow(socket: socket, what: "sales (for the customer screen)", logger: logger, subscribe: { till in
            let since = await self.resumePoint(tilldAt: till.hello.seq)
            let topics: JSONValue = ["sale.*", "customer.identified"]
            do {
                _ = try await till.request("subscribe", ["topics": topics, "since": .int(since)])
            } catch {
                // The journal no longer holds that far back (journal_truncated): live only.
                _ = try await till.request("subscribe", ["topics": topics])
            }
        }, each: { event in
            await self.apply(event)
        })
    }
}
