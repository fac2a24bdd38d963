public import Foundation
import Synchronization
public import TillCore
public import TillDevices

/// `sim-drawer`: a cash drawer (wired to sim-printer's drawer port: a receipt's kick opens it)
/// that opens on `drawer.open` and closes by itself after
/// `close_after` seconds (as if the cashier pushed it shut), or on
/// `simulate {"state":"closed"}`. With auto-close off it reports `drawer.left_open`.
public final class SimDrawer: CashDrawer, SimulatedDevice {
    public let info: DeviceInfo
    public var status: DeviceStatus { .online }

    private struct Drawer {
        var openedAt: Date? = nil
        var episode = 0
        var closeAfter: Double? = 3
        var leftOpenAfter: Double = 30
    }
    private let drawer = Mutex(Drawer())
    private let openings: AsyncStream<Int>
    private let opened: AsyncStream<Int>.Continuation
    private let kicks: AsyncStream<Void>
    private let kick: AsyncStream<Void>.Continuation

    public init(name: String = "sim-drawer") {
        info = DeviceInfo(name: name, role: .drawer, driver: "sim", transport: "sim", model: "Simulated cash drawer", identity: "demo:\(name)")
        (openings, opened) = AsyncStream.makeStream(of: Int.self)
        (kicks, kick) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The printer it hangs on sent a kick (ESC p) to its drawer port.
    func kicked() {
        kick.yield()
    }

    public var isOpen: Bool? { drawer.withLock { $0.openedAt != nil } }
    public var openSince: Date? { drawer.withLock { $0.openedAt } }

    public func open(events: any EventSink) async throws {
        let episode = drawer.withLock { d -> Int? in
            guard d.openedAt == nil else { return nil }
            d.openedAt = Date()
            d.episode += 1
            return d.episode
        }
        guard let episode else { return }  // already open: a real drawer just gets another pulse
        await events.emit(.drawerOpened, device: info.name)
        opened.yield(episode)
    }

    public func simulate(_ data: JSONValue, events: any EventSink) async throws {
        let fields = try FieldReader(data, path: "data")
        if fields.has("close_after") {
            let seconds = try fields.optionalInt("close_after", range: 0...86400)
            drawer.withLock { $0.closeAfter = seconds.map(Double.init) }
        }
        if let seconds = try fields.optionalInt("left_open_after", range: 1...86400) {
            drawer.withLock { $0.leftOpenAfter = Double(seconds) }
        }
        switch try fields.optionalString("state") {
        case "open"?: try await open(events: events)
        case "closed"?: await close(episode: nil, events: events)
        case nil: break
        case let other?: throw WireError.badRequest(field: "data.state", "\"\(other)\" is not open or closed")
        }
    }

    public func run(events: any EventSink) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                for await _ in self.kicks { try await self.open(events: events) }
            }
            group.addTask { try await self.closeInTime(events: events) }
        }
    }

    private func closeInTime(events: any EventSink) async throws {
        for await episode in openings {
            let (closeAfter, leftOpenAfter) = drawer.withLock { ($0.closeAfter, $0.leftOpenAfter) }
            if let closeAfter {
                try await Task.sleep(for: .seconds(closeAfter))
                await close(episode: episode, events: events)
            } else {
                try await Task.sleep(for: .seconds(leftOpenAfter))
                let openFor = drawer.withLock { d -> Double? in
                    guard d.episode == episode, let at = d.openedAt else { return nil }
                    return Date().timeIntervalSince(at)
                }
                if let openFor {
                    await events.emit(.drawerLeftOpen(openSeconds: openFor), device: info.name)
                }
            }
        }
    }

    /// Closes the drawer if it is open (and, when `episode` is given, still the same opening).
    private func close(episode: Int?, events: any EventSink) async {
        let openFor = drawer.withLock { d -> Double? in
            guard let at = d.openedAt, episode == nil || episode == d.episode else { return nil }
            d.openedAt = nil
            return Date().timeIntervalSince(at)
        }
        if let openFor {
            await events.emit(.drawerClosed(openSeconds: openFor), device: info.name)
        }
    }
}
