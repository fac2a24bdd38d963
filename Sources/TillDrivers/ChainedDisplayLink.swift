import Synchronization
import TillDevices
import TillTransport

/// A customer display chained through a receipt printer, as the display driver's byte stream:
/// each write goes through the printer (`ESC = 2`, the bytes, `ESC = 1`), between jobs. Nothing
/// comes back from a display this way: a read waits out its time and returns nothing.
final class ChainedDisplayLink: ByteStream {
    let endpoint: String
    private let port: any DisplayPort
    private let oneWay: OneWayLink

    init(port: any DisplayPort) {
        self.port = port
        endpoint = "the display port of printer \(port.info.name)"
        oneWay = OneWayLink(endpoint: endpoint)
    }

    /// The link, once the printer named by `via` is known to carry a display and is there.
    static func open(via name: String, directory: DeviceDirectory) throws -> ChainedDisplayLink {
        guard let device = directory.device(named: name) else {
            throw TransportError(.invalidSettings, endpoint: name, "no device named \"\(name)\": via must name the escpos printer the display hangs on")
        }
        guard let port = device as? any DisplayPort else {
            throw TransportError(.invalidSettings, endpoint: name, "\"\(name)\" (\(device.info.driver)) has no display port: via must name an escpos printer")
        }
        guard port.chainsDisplay else {
            throw TransportError(.invalidSettings, endpoint: name, "printer \"\(name)\" does not say a display hangs on it: add display = true to its [[device]] entry")
        }
        let status = port.status
        if status.state == .offline {
            throw TransportError(.unplugged, endpoint: name, "the printer the display hangs on is offline: \(status.reason ?? "")")
        }
        return ChainedDisplayLink(port: port)
    }

    func read(maxCount: Int, timeout: Duration) async throws -> [UInt8] { try await oneWay.read(timeout: timeout) }

    func write(_ bytes: [UInt8], timeout: Duration) async throws {
        try oneWay.checkOpen()
        try await port.passToDisplay(bytes)
    }

    func drain(timeout: Duration) async throws {}
    func cancelWaits() { oneWay.cancelWaits() }
    func close() async { oneWay.close() }
}

/// What a link that carries nothing back shares (a display chained through a printer, the demo's
/// virtual display): a read waits out its time (or a cancellation, or the close) and returns
/// nothing; after `close()` every call throws `.closed`.
final class OneWayLink: Sendable {
    private let endpoint: String
    private let closed = Mutex(false)
    private let wakeup = Wakeup()

    init(endpoint: String) {
        self.endpoint = endpoint
    }

    func read(timeout: Duration) async throws -> [UInt8] {
        try checkOpen()
        await wakeup.wait(until: .now + timeout)
        try checkOpen()
        return []
    }

    func cancelWaits() { wakeup.signal() }

    func close() {
        closed.withLock { $0 = true }
        wakeup.signal()
    }

    func checkOpen() throws {
        if closed.withLock({ $0 }) { throw TransportError(.closed, endpoint: endpoint, "\(endpoint) was closed by tilld") }
    }
}
