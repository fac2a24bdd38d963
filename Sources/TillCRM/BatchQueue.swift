import Synchronization

/// A hand-off from a producer task to a consumer that takes everything waiting at once.
///
/// `till-crm serve` applies whatever arrived while it was committing the previous batch in
/// one transaction (group commit): one fsync for hundreds of events when tilld replays a
/// backlog or the shop is busy, one per event when they trickle in, so a lone sale is not
/// held back waiting for company.
final class BatchQueue<Element: Sendable>: Sendable {
    private struct State: Sendable {
        var buffer: [Element] = []
        var end: Result<Void, any Error>?
        var consumer: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    private enum Step {
        case batch([Element])
        case end(Result<Void, any Error>)
        case wait
    }

    init() {}

    func push(_ element: Element) {
        let consumer = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.end == nil else { return nil }
            state.buffer.append(element)
            defer { state.consumer = nil }
            return state.consumer
        }
        consumer?.resume()
    }

    /// No more elements: the consumer gets what is buffered, then `error` (or the end).
    func finish(throwing error: (any Error)? = nil) {
        let consumer = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.end == nil { state.end = error.map { .failure($0) } ?? .success(()) }
            defer { state.consumer = nil }
            return state.consumer
        }
        consumer?.resume()
    }

    /// Up to `max` elements, oldest first, waiting for at least one; empty at the end.
    /// Throws what the producer finished with, once everything before it was taken.
    func next(max: Int) async throws -> [Element] {
        while true {
            let step = state.withLock { state -> Step in
                if !state.buffer.isEmpty {
                    let count = Swift.min(max, state.buffer.count)
                    defer { state.buffer.removeFirst(count) }
                    return .batch(Array(state.buffer.prefix(count)))
                }
                if let end = state.end { return .end(end) }
                return .wait
            }
            switch step {
            case .batch(let elements):
                return elements
            case .end(let result):
                try result.get()
                return []
            case .wait:
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let ready = state.withLock { state -> Bool in
                            if !state.buffer.isEmpty || state.end != nil { return true }
                            state.consumer = continuation
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                } onCancel: {
                    finish(throwing: CancellationError())
                }
            }
        }
    }
}
