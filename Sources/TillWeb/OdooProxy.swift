import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import TillCore

/// The routes an Odoo POS (16, 17, 18) calls on an "IoT box" set by IP address, the community
/// `hw_proxy` ones, answered from tilld. What each route takes and gives was read from Odoo's
/// `point_of_sale` front end (`hardware_proxy_service.js`, `hw_printer.js`, `base_printer.js`)
/// and the IoT box's `hw_drivers` controllers:
/// - `GET /hw_proxy/hello` → `ping` (plain text): is there a box at this address;
/// - `POST /hw_proxy/handshake` (JSON-RPC) → `true`;
/// - `POST /hw_proxy/status_json` (JSON-RPC, every 5 s) → `{"printer": {"status":
///   "connected"|"disconnected", "messages": ""}, "scanner": {...}}` from tilld's devices;
/// - `POST /hw_proxy/default_printer_action` (JSON-RPC, `params.data`) with `action`
///   `print_receipt` (`receipt`: a base64 JPEG of the rendered receipt) or `cashbox` → `true`
///   once tilld has the job durably spooled (or has kicked the drawer), `false` when it could
///   not (the POS then says the printer is not reachable);
/// - `POST /hw_proxy/scanner` (JSON-RPC long-poll, about 50 s) → the next scan, or `""`.
public struct OdooProxy: Sendable {
    let till: any TillLink
    let scans: ScanFeed
    let retries: RetryWindow
    let logger: Logger
    /// Odoo's customer display: the last order data (18), the machine in control (16/17).
    private struct DisplayState {
        var data: JSONValue?
        var owner: String?
    }
    private final class Shared<State: Sendable>: Sendable {
        private let mutex: Mutex<State>
        init(_ state: State) { mutex = Mutex(state) }
        func withLock<T: Sendable>(_ body: (inout State) -> T) -> T { mutex.withLock { body(&$0) } }
    }
    private let display = Shared(DisplayState())
    /// How long the scanner long-poll holds a request (Odoo's client gives up after about a minute).
    var scannerWait: Duration
    /// The customer screen (`/screen`), shown Odoo's order as the pole display is; nil: off.
    let screen: CustomerScreen?

    public init(till: any TillLink, scans: ScanFeed, retries: RetryWindow = RetryWindow(), scannerWait: Duration = .seconds(50),
                screen: CustomerScreen? = nil, logger: Logger) {
        self.till = till
        self.scans = scans
        self.retries = retries
        self.scannerWait = scannerWait
        self.screen = screen
        self.logger = logger
    }

    /// nil when `path` is not one of these routes.
    public func handle(_ request: HTTPRequest) async -> HTTPResponse? {
        switch request.path {
        case "/hw_proxy/hello":
            return .text(.ok, "ping")
        case "/hw_proxy/handshake":
            return await reply(to: request) { _ in .bool(true) }
        case "/hw_proxy/status_json":
            return await reply(to: request) { _ in await status() }
        case "/hw_proxy/default_printer_action":
            return await reply(to: request) { params in await printerAction(params["data"] ?? params) }
        case "/hw_proxy/scanner":
            return await reply(to: request) { _ in .string(await scans.next(timeout: scannerWait)) }
        case "/hw_proxy/customer_facing_display":
            return await reply(to: request) { params in await customerDisplay(params, peer: request.peer) }
        case "/hw_proxy/take_control":
            return await reply(to: request) { params in
                display.withLock { $0.owner = request.peer }
                if let html = params["html"]?.stringValue { _ = await show(html: html) }
                return ["status": "success", "message": "You now have access to the display"]
            }
        case "/hw_proxy/test_ownership":
            return await reply(to: request) { _ in
                ["status": display.withLock { $0.owner != nil && $0.owner == request.peer } ? "OWNER" : "NOWNER"]
            }
        default:
            return nil
        }
    }

    /// Odoo's `printer` and `scanner` drivers from tilld's devices: connected when one of that
    /// role is online.
    func status() async -> JSONValue {
        let devices: [JSONValue]
        do {
            devices = try await till.devices()
        } catch {
            logger.warning("status_json: tilld did not answer", metadata: ["error": "\(error)"])
            return ["printer": ["status": "disconnected", "messages": "tilld is not reachable"]]
        }
        var drivers: [String: JSONValue] = [:]
        for (role, driver) in [("printer", "printer"), ("scanner", "scanner")] {
            let ofRole = devices.filter { $0["role"]?.stringValue == role }
            guard !ofRole.isEmpty else { continue }
            let online = ofRole.contains { $0["state"]?.stringValue == "online" }
            let reasons = ofRole.compactMap { device -> String? in
                guard device["state"]?.stringValue != "online" else { return nil }
                return "\(device["name"]?.stringValue ?? "?"): \(device["state"]?.stringValue ?? "?")"
            }
            drivers[driver] = ["status": online ? "connected" : "disconnected", "messages": .string(reasons.joined(separator: "; "))]
        }
        return .object(drivers)
    }

    /// The customer display: Odoo 18 sends `action` (`set` with the order's data, `get` from
    /// the display page, `open`, `close`); Odoo 16/17 send `html`, accepted from the machine
    /// that took control (`take_control`), as their IoT box did.
    func customerDisplay(_ params: JSONValue, peer: String?) async -> JSONValue {
        switch params["action"]?.stringValue {
        case "set":
            let data = params["data"] ?? .object([:])
            display.withLock { $0.data = data }
            await screen?.show(CustomerDisplay.shownOrder(odoo: data))
            return await show(CustomerDisplay.lines(odoo: data))
        case "get":
            return ["status": "success", "data": display.withLock { $0.data } ?? .object([:])]
        case "open", "open_kiosk":
            return ["status": "opened"]
        case "close":
            display.withLock { $0.data = nil }
            await screen?.show(nil)
            _ = await show([])
            return ["status": "closed"]
        case let action?:
            logger.warning("customer_facing_display: an action tilld does not do", metadata: ["action": "\(action)"])
            return ["status": "failed", "message": .string("unknown action \(action)")]
        case nil:
            guard let html = params["html"]?.stringValue else { return ["status": "failed", "message": "no html"] }
            let owned = display.withLock { state -> Bool in
                if state.owner == nil { state.owner = peer }
                return state.owner == peer
            }
            guard owned else { return ["status": "failed", "message": "Somebody else is using the display"] }
            return await show(html: html)
        }
    }

    /// Odoo 16/17's page: the order read out of it, on the glass and the customer screen. A
    /// page that is not an order (the welcome) changes neither.
    private func show(html: String) async -> JSONValue {
        guard let order = OdooDisplayHTML.order(html) else {
            guard let lines = CustomerDisplay.totalLines(html: html) else { return ["status": "updated"] }
            return await show(lines)
        }
        await screen?.show(CustomerDisplay.shownOrder(odoo: order))
        return await show(CustomerDisplay.lines(odoo: order))
    }

    private func show(_ lines: [String]) async -> JSONValue {
        do {
            try await till.display(lines)
            return ["status": "updated"]
        } catch {
            logger.warning("the customer display did not take the update", metadata: ["error": "\(error)"])
            return ["status": "failed", "message": .string("\(error)")]
        }
    }

    func printerAction(_ data: JSONValue) async -> JSONValue {
        switch data["action"]?.stringValue {
        case "print_receipt":
            guard let picture = data["receipt"]?.stringValue else {
                logger.warning("print_receipt without a receipt picture")
                return .bool(false)
            }
            return .bool(await printReceipt(picture))
        case "cashbox":
            do {
                try await till.openDrawer()
                return .bool(true)
            } catch {
                logger.error("cashbox: the drawer did not open", metadata: ["error": "\(error)"])
                return .bool(false)
            }
        default:
            logger.warning("default_printer_action: an action tilld does not do", metadata: ["action": "\(data["action"]?.stringValue ?? "none")"])
            return .bool(false)
        }
    }

    /// Prints once. The same picture again within the retry window is the POS (or the cashier)
    /// retrying a request whose answer was lost: it gets the first one's answer, and nothing
    /// is printed twice (Odoo's IoT box stand-ins printed every retry).
    func printReceipt(_ picture: String) async -> Bool {
        let (claim, earlier) = retries.claim(picture)
        if let earlier {
            logger.notice("the same receipt again within the retry window: answered as before, not printed twice", metadata: ["job": "\(earlier)"])
            return true
        }
        do {
            let document = try ReceiptPicture.document(jpegBase64: picture)
            let job = try await till.print(document)
            retries.settle(claim, job: job)
            logger.info("receipt spooled", metadata: ["job": "\(job)"])
            return true
        } catch {
            retries.release(claim)
            logger.error("print_receipt failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    // MARK: JSON-RPC

    /// The call's params: Odoo's `rpc()` wraps them (`{"jsonrpc":"2.0","method":"call",
    /// "params":{...},"id":N}`); some callers send the params bare.
    static func params(of body: JSONValue) -> JSONValue {
        if case .object(let object) = body, let params = object["params"] { return params }
        return body
    }

    /// Answers a JSON-RPC call with `result` of its params, in the envelope, with its id.
    private func reply(to request: HTTPRequest, _ result: (JSONValue) async -> JSONValue) async -> HTTPResponse {
        switch Self.call(request) {
        case .success(let (id, params)): return Self.envelope(id: id, result: await result(params))
        case .failure(let error): return error.response
        }
    }

    private static func call(_ request: HTTPRequest) -> Result<(JSONValue, JSONValue), HTTPResponseError> {
        guard request.method == .POST else {
            return .failure(HTTPResponseError(response: .text(.methodNotAllowed, "\(request.path) takes a JSON-RPC POST\n", headers: [("Allow", "POST, OPTIONS")])))
        }
        if request.body.readableBytes == 0 { return .success((.null, .object([:]))) }
        do {
            let body = try JSONText.decode(request.body.readableBytesView)
            return .success((body["id"] ?? .null, params(of: body)))
        } catch {
            return .failure(HTTPResponseError(response: .text(.badRequest, "the body is not JSON: \(error)\n")))
        }
    }

    static func envelope(id: JSONValue, result: JSONValue) -> HTTPResponse {
        .json(JSONText.encode(["jsonrpc": "2.0", "id": id, "result": result]))
    }
}

struct HTTPResponseError: Error {
    let response: HTTPResponse
}

/// The retry window of `print_receipt`: a picture printed (or being printed) is remembered for
/// `window`, keyed by its bytes.
public final class RetryWindow: Sendable {
    public let window: Duration
    private struct Entry {
        var job: String?
        var at: ContinuousClock.Instant
    }
    private let entries = Mutex<[String: Entry]>([:])

    public init(window: Duration = .seconds(60)) {
        self.window = window
    }

    /// Claims `picture` for printing, or returns the job of the same picture within the window
    /// (or "in progress" while that one is still being spooled).
    func claim(_ picture: String) -> (String, String?) {
        let key = Self.key(picture)
        return entries.withLock { entries in
            let now = ContinuousClock.now
            entries = entries.filter { now - $0.value.at < window }
            if let earlier = entries[key] { return (key, earlier.job ?? "in progress") }
            entries[key] = Entry(job: nil, at: now)
            return (key, nil)
        }
    }

    func settle(_ key: String, job: String) {
        entries.withLock { $0[key]?.job = job }
    }

    /// The print failed: a retry is a new attempt.
    func release(_ key: String) {
        entries.withLock { _ = $0.removeValue(forKey: key) }
    }

    /// The picture's length and an FNV-1a hash of it: collisions between two different
    /// receipts of the same length within a minute are not a practical worry.
    static func key(_ picture: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in picture.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return "\(picture.utf8.count):\(String(hash, radix: 16))"
    }
}
