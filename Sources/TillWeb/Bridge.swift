public import Logging
import NIOCore
import NIOHTTP1
import TillCore

/// The bridge's HTTP surface: the origin check and CORS in front of every route, then the
/// routes. A page from an origin not on the list is refused with 403 and logged (rate-limited
/// by the log's own level: a refused origin is worth a warning each time it tries).
public struct Bridge: HTTPResponder {
    public let origins: OriginPolicy
    public let odoo: OdooProxy
    /// Pairing (`POST /pair`) and the WebSocket's tokens; nil: no WebSocket.
    public let pairing: PairedTokens?
    let logger: Logger

    public init(origins: OriginPolicy, odoo: OdooProxy, pairing: PairedTokens? = nil, logger: Logger) {
        self.origins = origins
        self.odoo = odoo
        self.pairing = pairing
        self.logger = logger
    }

    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        let cors: [(String, String)]
        switch origins.judge(request.headers) {
        case .refused(let origin):
            logger.warning("refused a request from a page whose origin is not allowed", metadata: [
                "origin": "\(origin)", "path": "\(request.path)",
                "fix": "add it to [web] origins in the bridge's config if it is the shop's POS",
            ])
            return .text(.forbidden, "origin \(origin) is not allowed to use this till; add it to [web] origins in till-web's config\n")
        case .allowed(let origin):
            if request.method == .OPTIONS, request.headers.first(name: "access-control-request-method") != nil {
                return HTTPResponse(.noContent, headers: OriginPolicy.preflightHeaders(for: origin, request: request.headers))
            }
            cors = OriginPolicy.corsHeaders(for: origin)
        case .noOrigin:
            cors = []
        }
        var response = await route(request)
        response.headers += cors
        return response
    }

    private func route(_ request: HTTPRequest) async -> HTTPResponse {
        if let answer = await odoo.handle(request) { return answer }
        switch request.path {
        case "/pair": return pair(request)
        case "/ws":
            // Here only when the upgrade was not taken: say why.
            return .text(.unauthorized, "this page is not paired with the till: run `tillctl web pair ORIGIN` on the till, send the code it shows to POST /pair from the page, and open /ws?token=TOKEN with the token you get\n")
        default: break
        }
        if request.method == .OPTIONS { return HTTPResponse(.noContent, headers: [("Allow", "GET, POST, OPTIONS")]) }
        return .text(.notFound, "no such route: \(request.path)\n")
    }

    /// `POST /pair` `{"code": "123456"}` from the page: a code `tillctl web pair ORIGIN` showed,
    /// for this page's origin, used once, within ten minutes → `{"token": "..."}`.
    private func pair(_ request: HTTPRequest) -> HTTPResponse {
        guard let pairing else { return .text(.notFound, "pairing is off: till-web runs without a state directory\n") }
        guard request.method == .POST else { return .text(.methodNotAllowed, "POST {\"code\": \"...\"} to pair\n", headers: [("Allow", "POST, OPTIONS")]) }
        guard case .allowed(let origin) = origins.judge(request.headers) else {
            return .text(.badRequest, "pairing is for a web page of an allowed origin: the request must carry Origin\n")
        }
        guard let body = try? JSONText.decode(request.body.readableBytesView), let code = body["code"]?.stringValue else {
            return .text(.badRequest, "send {\"code\": \"123456\"}, the code `tillctl web pair \(origin)` showed\n")
        }
        do {
            guard let token = try pairing.exchange(code: code, origin: origin) else {
                logger.warning("a pairing code was refused", metadata: ["origin": "\(origin)"])
                return HTTPResponse(.forbidden, headers: [("Content-Type", "application/json")], body: ByteBuffer(string: JSONText.encode([
                    "error": "the code is wrong, used, expired, or was shown for another origin; run `tillctl web pair \(origin)` again",
                ])))
            }
            logger.notice("a page was paired", metadata: ["origin": "\(origin)"])
            return .json(JSONText.encode(["token": .string(token)]))
        } catch {
            logger.error("pairing could not keep the token", metadata: ["error": "\(error)"])
            return .text(.internalServerError, "the token could not be kept (\(error)); check till-web's state directory\n")
        }
    }
}
