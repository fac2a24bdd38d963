public import Logging
public import TillCore
import TillClient

/// What the bridge asks of tilld. A protocol, so that the routes can be tested without one.
public protocol TillLink: Sendable {
    /// tilld's `devices` list.
    func devices() async throws -> [JSONValue]
    /// `drawer.open` on the default drawer.
    func openDrawer() async throws
    /// `print` of a receipt document; returns the job id once it is durably spooled.
    func print(_ receipt: JSONValue) async throws -> String
    /// `display` on the default customer display: these lines, or clear it (no lines).
    func display(_ lines: [String]) async throws
    /// `publish` of a POS event; returns its seq once it is durable.
    func publish(_ topic: String, _ data: JSONValue) async throws -> Int64
}

/// The bridge is a client of tilld's socket like any other (tilld's own surface stays a Unix
/// socket): each call is a connection of its own, so a restart of tilld costs one failed call,
/// not a broken bridge.
public struct SocketTillLink: TillLink {
    public let socket: String

    public init(socket: String) {
        self.socket = socket
    }

    public func devices() async throws -> [JSONValue] {
        try await TillConnection.with(socket: socket) { till in
            try await till.request("devices")["devices"]?.arrayValue ?? []
        }
    }

    public func openDrawer() async throws {
        _ = try await TillConnection.with(socket: socket) { till in try await till.request("drawer.open") }
    }

    public func print(_ receipt: JSONValue) async throws -> String {
        try await TillConnection.with(socket: socket) { till in
            try await till.request("print", ["receipt": receipt])["job"]?.stringValue ?? "?"
        }
    }

    public func display(_ lines: [String]) async throws {
        let params: [String: JSONValue] = lines.isEmpty ? ["clear": true] : ["lines": .array(lines.map(JSONValue.string))]
        _ = try await TillConnection.with(socket: socket) { till in try await till.request("display", params) }
    }

    public func publish(_ topic: String, _ data: JSONValue) async throws -> Int64 {
        try await TillConnection.with(socket: socket) { till in
            try await till.request("publish", ["topic": .string(topic), "data": data])["seq"]?.intValue ?? 0
        }
    }
}

/// Scans for the Odoo long-poll (`/hw_proxy/scanner`): a scan waits at most `freshFor` for a
/// caller; a caller waits at most its timeout for a scan; a new caller ends the wait of the one
/// before it (a page reloaded, or a second tab, gets the scans, and the old request returns
/// empty) so one scan is never handed to two callers.
public actor ScanFeed {
    /// How long a scan nobody has asked for yet stays worth handing out.
    public let freshFor: Duration
    private var waiting: [(text: String, at: ContinuousClock.Instant)] = []
    private var caller: (id: Int, continuation: CheckedContinuation<String, Never>)?
    private var nextID = 0

    public init(freshFor: Duration = .seconds(5)) {
        self.freshFor = freshFor
    }

    public func arrived(_ text: String) {
        if let caller {
            self.caller = nil
            caller.continuation.resume(returning: text)
            return
        }
        waiting.append((text, .now))
        if waiting.count > 32 { waiting.removeFirst(waiting.count - 32) }
    }

    /// The next scan, or "" after `timeout` (Odoo's answer for "nothing scanned").
    public func next(timeout: Duration) async -> String {
        let now = ContinuousClock.now
        waiting.removeAll { now - $0.at > freshFor }
        if !waiting.isEmpty { return waiting.removeFirst().text }
        caller?.continuation.resume(returning: "")
        nextID += 1
        let id = nextID
        return await withCheckedContinuation { continuation in
            caller = (id, continuation)
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                await self?.expire(id)
            }
        }
    }

    private func expire(_ id: Int) {
        guard let caller, caller.id == id else { return }
        self.caller = nil
        caller.continuation.resume(returning: "")
    }

    /// Follows tilld's `scanner.data` until cancelled, connecting again a second after tilld
    /// goes away. Scans while the bridge is not connected are not replayed: a long-poll only
    /// ever wanted the scan of the moment.
    public func follow(socket: String, logger: Logger) async {
        await TillFollower.follow(socket: socket, what: "scans", logger: logger, subscribe: { till in
            _ = try await till.request("subscribe", ["topics": ["scanner.data"]])
        }, each: { event in
            if let text = event.data["text"]?.stringValue { await self.arrived(text) }
        })
    }
}

/// A subscription to tilld that lasts: connects, subscribes, hands each event on, and when
/// tilld goes away (a restart, an upgrade) tries again every second, saying so once in the log
/// and again when it is back, until the task is cancelled.
enum TillFollower {
    static func follow(socket: String, what: String, logger: Logger,
                       subscribe: @escaping @Sendable (TillConnection) async throws -> Void,
                       each: @escaping @Sendable (Event) async -> Void) async {
        var told = false
        while !Task.isCancelled {
            do {
                let wasTold = told
                try await TillConnection.with(socket: socket) { till in
                    try await subscribe(till)
                    if wasTold { logger.notice("following tilld's \(what) again") }
                    for try await line in till.events {
                        if case .event(let event) = line { await each(event) }
                    }
                }
                told = false
            } catch {
                if Task.isCancelled { return }
                if !told { logger.warning("cannot follow tilld's \(what); trying again every second", metadata: ["error": "\(error)"]) }
                told = true
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
