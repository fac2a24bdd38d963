import Synchronization

/// A bounded hand-off from one producer task to one consumer that takes everything waiting
/// at once.
///
/// `TillConnection` puts the server's event lines here. Bounded, because a consumer slower
/// than tilld must slow the reading of the socket, not grow the heap: with the socket unread,
/// tilld paces a replay to the client, or lags a live stream (`lagged`), and the client
/// resumes with `since`. till-crm takes whole batches and applies each in one transaction.
public final class BatchQueue<Element: Sendable>: Sendable {
    private struct State: Sendable {
        var buffer: [Element] = []
        var end: Result<Void, any Error>?
        var consumer: CheckedContinuation<Void, Never>?
        var producer: CheckedContinuation<Void, Never>?
    }

    private enum Step {
        case batch([Element])
        case end(Result<Void, any Error>)
        case wait
    }

    private let state = Mutex(State())
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0, "a queue must hold at least one element")
        self.capacity = capacity
    }

    /// Adds an element, waiting while the queue is full. Returns at once, dropping the element,
    /// once the queue has ended (the consumer is gone) or the producer's task is cancelled.
    public func push(_ element: Element) async {
        while true {
            let (accepted, consumer) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
                if state.end != nil { return (true, nil) }
                guard state.buffer.count < capacity else { return (false, nil) }
                state.buffer.append(element)
                defer { state.consumer = nil }
                return (true, state.consumer)
            }
            consumer?.resume()
            if accepted || Task.isCancelled { return }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state -> Bool in
                        // Checked under the lock that `onCancel` takes: a cancellation before this
                        // point is seen here, one after it finds the continuation stored.
                        if state.buffer.count < capacity || state.end != nil || Task.isCancelled { return true }
                        state.producer = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            } onCancel: {
                let producer = state.withLock { state in
                    defer { state.producer = nil }
                    return state.producer
                }
                producer?.resume()
            }
        }
    }

    /// No more elements: the consumer gets what is buffered, then `error` (or the end). A
    /// producer waiting for room is released.
    public func finish(throwing error: (any Error)? = nil) {
        let (consumer, producer) = state.withLock { state in
            if state.end == nil { state.end = error.map { .failure($0) } ?? .success(()) }
            defer {
                state.consumer = nil
                state.producer = nil
            }
            return (state.consumer, state.producer)
        }
        consumer?.resume()
        producer?.resume()
    }

    /// Up to `max` elements, oldest first, waiting for at least one; empty at the end.
    /// Throws what the producer finished with, once everything before it was taken.
    public func next(max: Int) async throws -> [Element] {
        while true {
            let (step, producer) = state.withLock { state -> (Step, CheckedContinuation<Void, Never>?) in
                if !state.buffer.isEmpty {
                    let count = Swift.min(max, state.buffer.count)
                    let batch = Array(state.buffer.prefix(count))
                    state.buffer.removeFirst(count)
                    defer { state.producer = nil }
                    return (.batch(batch), state.producer)
                }
                if let end = state.end { return (.end(end), nil) }
                return (.wait, nil)
            }
            producer?.resume()
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
