import Synchronization
public import TillCore
public import TillDevices
public import TillDisplay
public import TillTransport

/// `epson-display` and `cd5220-display`: a 2×20 (or 4×20) pole display on a serial line. Each
/// update rewrites every row in full through the command set's encoder; the display is opened
/// (and set up: brightness, character table, cursor off) before it is announced, and opened
/// again, with back-off, when it went away: an update meanwhile is refused with the reason.
public final class PoleDisplay: CustomerDisplay {
    public let info: DeviceInfo
    public let encoder: DisplayEncoder
    private let open: @Sendable () async throws -> any ByteStream
    private let link = Mutex<(any ByteStream)?>(nil)
    private let state = StatusCell(DeviceStatus(.offline, reason: "not opened yet"))
    private let lost = Wakeup()

    public init(info: DeviceInfo, encoder: DisplayEncoder, open: @escaping @Sendable () async throws -> any ByteStream) {
        self.info = info
        self.encoder = encoder
        self.open = open
    }

    public var status: DeviceStatus { state.current }

    public func prepare() async {
        do {
            link.withLock { $0 = nil }
            let stream = try await connect()
            link.withLock { $0 = stream }
            state.setQuietly(.online)
        } catch {
            state.setQuietly(DeviceStatus(failure: error))
        }
    }

    /// Opens the line and sets the display up.
    private func connect() async throws -> any ByteStream {
        let stream = try await open()
        do {
            try await stream.write(encoder.setup, timeout: .seconds(2))
        } catch {
            await stream.close()
            throw error
        }
        return stream
    }

    /// Keeps the display open: when it went away, opens it again with back-off.
    public func run(events: any EventSink) async throws {
        var backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(30))
        while !Task.isCancelled {
            if link.withLock({ $0 }) != nil {
                await lost.wait(until: .now + .seconds(86_400))
                try Task.checkCancellation()
                continue
            }
            do {
                let stream = try await connect()
                link.withLock { $0 = stream }
                backoff.reset()
                await state.set(.online, device: info.name, events)
            } catch {
                await state.set(DeviceStatus(failure: error), device: info.name, events)
                try await Task.sleep(for: backoff.next())
            }
        }
    }

    public func show(_ content: DisplayContent, events: any EventSink) async throws {
        let lines: [String]
        let bytes: [UInt8]
        switch content {
        case .clear:
            lines = []
            bytes = encoder.clear
        case .lines(let given):
            guard given.count <= encoder.profile.rows else {
                throw DeviceError(device: info.name, .invalidRequest, "shows \(encoder.profile.rows) lines of \(encoder.profile.columns) characters; got \(given.count) lines")
            }
            lines = given.map { String($0.prefix(encoder.profile.columns)) }
            bytes = encoder.show(given)
        }
        guard let stream = link.withLock({ $0 }) else {
            throw DeviceError(device: info.name, .notReady, "\(status.reason ?? "not open"); the display is opened again when it is back")
        }
        do {
            try await stream.write(bytes, timeout: .seconds(2))
        } catch let error as TransportError {
            link.withLock { current in if current === stream { current = nil } }
            await stream.close()
            await state.set(DeviceStatus(failure: error), device: info.name, events)
            lost.signal()
            throw DeviceError(device: info.name, .notReady, "\(error.message); not shown")
        }
        await events.emit(.displayUpdated(lines: lines), device: info.name)
    }
}
