import Dispatch
import Synchronization
public import TillSystem

/// A `ByteStream` over a non-blocking descriptor (a serial line, `/dev/usb/lp0`, a TCP socket).
///
/// The calls that wait (poll with a timeout, a write the device is slow to take) run on two
/// serial dispatch queues of the stream's own, one for reading and one for writing, so a
/// printer's status can be read while a job is written, and no task of the two-core
/// cooperative pool ever blocks in the kernel. Every wait has a timeout, so nothing hangs on a
/// device that stopped answering.
public final class DescriptorStream<IO: RawIO>: ByteStream {
    public var endpoint: String { io.endpoint }
    public var devicePath: String? { io.endpoint.hasPrefix("/dev/") ? io.endpoint : nil }
    private let io: IO
    private let reading: DispatchQueue
    private let writing: DispatchQueue
    private let state = Mutex<(closed: Bool, descriptorClosed: Bool)>((false, false))

    public init(_ io: IO) {
        self.io = io
        reading = DispatchQueue(label: "tilld.transport.read \(io.endpoint)")
        writing = DispatchQueue(label: "tilld.transport.write \(io.endpoint)")
    }

    deinit {
        if !state.withLock({ $0.descriptorClosed }) { try? io.close() }
    }

    public func read(maxCount: Int, timeout: Duration) async throws -> [UInt8] {
        try await run(on: reading) { try self.readNow(maxCount: maxCount, timeout: timeout) }
    }

    public func readBlocking(maxCount: Int, timeout: Duration) throws -> [UInt8]? {
        // `sync` runs the read on the calling thread, still in turn with `close` (which waits
        // for the reading queue before it closes the descriptor).
        try reading.sync { try readNow(maxCount: maxCount, timeout: timeout) }
    }

    private func readNow(maxCount: Int, timeout: Duration) throws -> [UInt8] {
        try checkOpen()
        do {
            guard try io.poll(for: .readable, timeout: timeout).contains(.readable) else { return [] }
            let bytes = try io.read(upTo: maxCount)
            if bytes.isEmpty {
                throw io.endOfFile == .unplugged
                    ? TransportError(.unplugged, endpoint: io.endpoint, "\(io.endpoint) hung up: unplugged or switched off; tilld picks it up again when it is back")
                    : TransportError(.closed, endpoint: io.endpoint, "\(io.endpoint) closed the connection; tilld reconnects when it can")
            }
            return bytes
        } catch let error as SystemError {
            if error.isWouldBlock { return [] }  // readiness said yes, another reader was first
            throw TransportError.from(error, endpoint: io.endpoint, opening: false)
        }
    }

    public func write(_ bytes: [UInt8], timeout: Duration) async throws {
        try await run(on: writing) { [io] in
            try self.checkOpen()
            let deadline = ContinuousClock.now + timeout
            var offset = 0
            while offset < bytes.count {
                do {
                    offset += try io.write(bytes[offset...])
                } catch let error as SystemError where error.isWouldBlock {
                    let left = deadline - ContinuousClock.now
                    guard left > .zero, try io.poll(for: .writable, timeout: left).contains(.writable) else {
                        var error = TransportError(.timedOut, endpoint: io.endpoint, "\(io.endpoint) took \(offset) of \(bytes.count) bytes, then nothing for \(timeout): offline, out of paper, or a flow_control setting the device does not use")
                        error.bytesWritten = offset
                        throw error
                    }
                } catch let error as SystemError {
                    var failure = TransportError.from(error, endpoint: io.endpoint, opening: false)
                    failure.bytesWritten = offset
                    throw failure
                }
            }
        }
    }

    public func drain(timeout: Duration) async throws {
        try await run(on: writing) { [io] in
            try self.checkOpen()
            let deadline = ContinuousClock.now + timeout
            do {
                // Polled rather than tcdrain(): tcdrain waits without a limit, and a line held by
                // hardware flow control would hang it forever.
                while let queued = try io.outputQueued(), queued > 0 {
                    guard ContinuousClock.now < deadline else {
                        throw TransportError(.timedOut, endpoint: io.endpoint, "\(queued) bytes still wait to be sent on \(io.endpoint) after \(timeout): the device is not taking them (flow control held? switched off?)")
                    }
                    ThreadSleep.sleep(.milliseconds(5))  // on the stream's own queue, never a task's thread
                }
            } catch let error as SystemError {
                throw TransportError.from(error, endpoint: io.endpoint, opening: false)
            }
        }
    }

    public func cancelWaits() {
        io.interruptWaits()
    }

    // MARK: modem lines (ModemControl)

    public func modemLines() async throws -> ModemLines {
        // On the writing queue: never at the same time as the descriptor is closed.
        try await run(on: writing) { [io] in
            try self.checkOpen()
            do {
                return try io.modemLines()
            } catch let error as SystemError {
                throw Self.modemError(error, endpoint: io.endpoint)
            }
        }
    }

    public func setModemLines(_ lines: ModemLines, on: Bool) async throws {
        try await run(on: writing) { [io] in
            try self.checkOpen()
            do {
                try io.setModemLines(lines, on: on)
            } catch let error as SystemError {
                throw Self.modemError(error, endpoint: io.endpoint)
            }
        }
    }

    static func modemError(_ error: SystemError, endpoint: String) -> TransportError {
        if error.name == "ENOTTY" || error.name == "EINVAL" {
            return TransportError(.invalidSettings, endpoint: endpoint, "\(endpoint) has no modem lines (\(error.call): \(error.name)): a pseudo-terminal, or an adapter that does not wire them; use a port with DTR/RTS and CTS/DSR/DCD, or open the drawer by open_sequence with state_line = \"none\"", cause: error)
        }
        return TransportError.from(error, endpoint: endpoint, opening: false)
    }

    public func close() async {
        let first = state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        guard first else { return }
        io.interruptWaits()
        // After what is running on both queues: closing a descriptor another thread is polling
        // could close the next one opened under the same number.
        _ = try? await run(on: reading) {}
        _ = try? await run(on: writing) {}
        state.withLock { $0.descriptorClosed = true }
        try? io.close()
    }

    private func checkOpen() throws {
        if state.withLock({ $0.closed }) {
            throw TransportError(.closed, endpoint: io.endpoint, "\(io.endpoint) was closed by tilld")
        }
    }

    /// Runs a blocking body on one of the stream's queues and suspends the task meanwhile.
    private func run<T: Sendable>(on queue: DispatchQueue, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}
