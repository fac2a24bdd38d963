public import Logging
public import ServiceLifecycle
import TillClient
import TillCore

/// `till-crm serve`: follows tilld's journal from its stored cursor, applies each event
/// exactly once, greets identified customers on the socket, and reconnects with backoff
/// when tilld is away (restart, crash, not yet started).
public struct CRMService: Service {
    public static let topics = ["sale.*", "refund.*", "service.*", "customer.identified", "scanner.data"]

    let socket: String
    let database: CRMDatabase
    let processor: TillEventProcessor
    let logger: Logger

    public init(socket: String, database: CRMDatabase, processor: TillEventProcessor, logger: Logger) {
        self.socket = socket
        self.database = database
        self.processor = processor
        self.logger = logger
    }

    public func run() async throws {
        var delay = Duration.milliseconds(250)
        // Graceful shutdown does not cancel this task by itself: check it on every turn, and
        // let it cut both the connection and the back-off sleep short.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await follow() }
                delay = .milliseconds(250)
            } catch is CancellationError {
                return
            } catch {
                if Task.isShuttingDownGracefully { return }
                logger.warning("tilld is not reachable; retrying", metadata: ["socket": "\(socket)", "reason": "\(error)", "retry_in": "\(delay)"])
            }
            do {
                try await cancelWhenGracefulShutdown { [delay] in try await Task.sleep(for: delay) }
            } catch {
                return
            }
            delay = min(delay * 2, .seconds(30))
        }
    }

    /// One connection: subscribe from the cursor, apply until it ends (lag, restart, error).
    private func follow() async throws {
        try await TillConnection.with(socket: socket) { till in
            var since = try await database.cursor()
            do {
                try await till.request("subscribe", ["topics": .array(Self.topics.map(JSONValue.string)), "since": .int(since)])
            } catch let error as WireError where error.code == .journalTruncated {
                let oldest = error.details?["oldest"]?.intValue ?? since
                logger.error("events were pruned from tilld's journal before till-crm saw them; continuing from the oldest held", metadata: ["cursor": "\(since)", "oldest": "\(oldest)"])
                since = oldest - 1
                try await till.request("subscribe", ["topics": .array(Self.topics.map(JSONValue.string)), "since": .int(since)])
            }
            logger.info("following tilld", metadata: ["socket": "\(socket)", "since": "\(since)", "server": "\(till.hello.server)"])
            for try await line in till.events {
                switch line {
                case .event(let event):
                    for outcome in try await apply(event) {
                        switch outcome {
                        case .recognized(let greeting):
                            try await till.request("publish", ["topic": "customer.recognized", "data": greeting.data])
                        case .skipped(let reason):
                            logger.warning("event skipped", metadata: ["seq": "\(event.seq)", "topic": "\(event.topic)", "reason": "\(reason)"])
                        case .note(let text):
                            logger.info("\(text)", metadata: ["seq": "\(event.seq)"])
                        }
                    }
                case .lagged(let seq):
                    logger.notice("fell behind tilld; resubscribing", metadata: ["seq": "\(seq)"])
                    return
                default:
                    break
                }
            }
        }
    }

    private func apply(_ event: Event) async throws -> [ProcessingOutcome] {
        let processor = self.processor
        let box = OutcomeCollector()
        let applied = try await database.apply(seq: event.seq) { db in box.outcomes = try processor.process(event, in: db) }
        return applied ? box.outcomes : []
    }
}

/// Carries outcomes out of the write closure (which runs on GRDB's writer queue, once).
final class OutcomeCollector: @unchecked Sendable {
    var outcomes: [ProcessingOutcome] = []
}
