import Dispatch
import Synchronization
import TillSystem

/// A network printer's raw port (TCP 9100, "JetDirect"/"AppSocket").
public enum TCPConnection {
    public static func open(host: String, port: Int, timeout: Duration = .seconds(3)) async throws -> DescriptorStream<DescriptorIO> {
        let endpoint = "\(host):\(port)"
        guard (1...65535).contains(port) else { throw TransportError(.invalidSettings, endpoint: endpoint, "port must be 1 to 65535, not \(port)") }
        // Resolving and connecting block: on a queue, never on a task's thread.
        let descriptor: FileDescriptor = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    do {
                        return try FileDescriptor.connectTCP(host: host, port: port, timeout: timeout)
                    } catch let error as SystemError {
                        throw TransportError.from(error, endpoint: endpoint, opening: true)
                    }
                })
            }
        }
        do {
            return DescriptorStream(try DescriptorIO(descriptor: descriptor, endpoint: endpoint, isTerminal: false))
        } catch {
            try? descriptor.close()
            throw error
        }
    }
}

/// Delays between attempts to reach a device that went away: doubling from `initial` up to
/// `maximum`, each with up to ±`jitter` of itself so tills on one network do not retry in step.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    public var jitter: Double
    private var attempt = 0

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30), jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The next delay; `random` in 0..<1 (injected by tests).
    public mutating func next(random: Double = Double.random(in: 0..<1)) -> Duration {
        let base = min(maximum, initial * Double(1 << min(attempt, 20)))
        attempt += 1
        return base * (1 + jitter * (2 * random - 1))
    }

    public mutating func reset() { attempt = 0 }
}

/// A connection that comes back: `stream()` returns the open stream, or opens one, waiting
/// with back-off between failed attempts (cancellable); a driver that sees a transient failure
/// calls `lost(_:)`, and the next `stream()` reconnects. Each attempt's outcome is reported
/// (`onChange`) so the device's state says "offline: connection refused, retrying in 4 s".
public final class Reconnecting: Sendable {
    public enum Change: Sendable {
        case connected(endpoint: String)
        case failed(TransportError, retryIn: Duration)
    }

    private let connect: @Sendable () async throws -> any ByteStream
    private let onChange: @Sendable (Change) -> Void
    private let state: Mutex<(current: (any ByteStream)?, backoff: Backoff)>

    public init(backoff: Backoff = Backoff(), connect: @escaping @Sendable () async throws -> any ByteStream, onChange: @escaping @Sendable (Change) -> Void = { _ in }) {
        self.connect = connect
        self.onChange = onChange
        state = Mutex((nil, backoff))
    }

    public func stream() async throws -> any ByteStream {
        while true {
            if let current = state.withLock({ $0.current }) { return current }
            do {
                let opened = try await connect()
                state.withLock { state in
                    state.current = opened
                    state.backoff.reset()
                }
                onChange(.connected(endpoint: opened.endpoint))
                return opened
            } catch let error as TransportError where error.isTransient {
                let delay = state.withLock { $0.backoff.next() }
                onChange(.failed(error, retryIn: delay))
                try await Task.sleep(for: delay)
            }
        }
    }

    /// The stream failed: close it; the next `stream()` opens a new one.
    public func lost(_ stream: any ByteStream) async {
        let dropped = state.withLock { state -> (any ByteStream)? in
            guard let current = state.current, current === stream else { return nil }
            state.current = nil
            return current
        }
        await dropped?.close()
    }

    public func close() async {
        let current = state.withLock { state -> (any ByteStream)? in
            defer { state.current = nil }
            return state.current
        }
        await current?.close()
    }
}
