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
    /// The customer-facing screen (`/screen`); nil: not served.
    public let screen: CustomerScreen?
    /// The local authority's certificate (PEM) when HTTPS is on: `GET /tls/ca.pem` hands it out
    /// for browsers to trust (compare its fingerprint with `tillctl web trust`).
    public let authorityCertificate: String?
    let logger: Logger

    public init(origins: OriginPolicy, odoo: OdooProxy, pairing: PairedTokens? = nil, screen: CustomerScreen? = nil,
                authorityCertificate: String? = nil, logger: Logger) {
        self.origins = origins
        self.odoo = odoo
        self.pairing = pairing
        self.screen = screen
        self.authorityCertificate = authorityCertificate
        self.logger = logger
    }

    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        let cors: [(String, String)]
        // The screen's own page calling back is the same origin: no CORS.
        switch origins.judge(request.headers, ownPages: request.path == "/screen" || request.path.hasPrefix("/screen/")) {
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
        case "/screen", "/screen/": return screenPage(request)
        case "/screen/identify": return await identify(request)
        case "/tls/ca.pem":
            guard let authorityCertificate else { return .text(.notFound, "HTTPS is off: set [web] tls_listen in till-web's config\n") }
            return HTTPResponse(.ok, headers: [("Content-Type", "application/x-pem-file"), ("Content-Disposition", "attachment; filename=\"tilld-local-ca.pem\"")],
                                body: ByteBuffer(string: authorityCertificate))
        case "/ws":
            // Here only when the upgrade was not taken: say why.
            return .text(.unauthorized, "this page is not paired with the till: run `tillctl web pair ORIGIN` on the till, send the code it shows to POST /pair from the page, and open /ws?token=TOKEN with the token you get\n")
        default: break
        }
        if request.method == .OPTIONS { return HTTPResponse(.noContent, headers: [("Allow", "GET, POST, OPTIONS")]) }
        return .text(.notFound, "no such route: \(request.path)\n")
    }

    /// `GET /screen`: the customer-facing page. It is all inline, so the policy allows inline
    /// script and style and nothing from elsewhere; it may not be framed (a page framing the
    /// form could trick a customer into typing into it).
    private func screenPage(_ request: HTTPRequest) -> HTTPResponse {
        guard screen != nil else { return .text(.notFound, "the customer screen is off in till-web's config ([web] customer_screen)\n") }
        guard request.method == .GET || request.method == .HEAD else { return .text(.methodNotAllowed, "GET /screen\n", headers: [("Allow", "GET")]) }
        return HTTPResponse(.ok, headers: [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; form-action 'none'"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
        ], body: ByteBuffer(string: ScreenPage.html))
    }

    /// `POST /screen/identify` from the screen's form: the customer's own email (and, if they
    /// gave them, phone and consents) for the sale on the screen, published once.
    private func identify(_ request: HTTPRequest) async -> HTTPResponse {
        guard let screen else { return .text(.notFound, "the customer screen is off in till-web's config ([web] customer_screen)\n") }
        guard request.method == .POST else { return .text(.methodNotAllowed, "POST the form\n", headers: [("Allow", "POST")]) }
        func answer(_ status: HTTPResponseStatus, _ fields: [String: JSONValue]) -> HTTPResponse {
            var response = HTTPResponse.json(JSONText.encode(.object(fields)))
            response.status = status
            return response
        }
        guard let body = try? JSONText.decode(request.body.readableBytesView) else {
            return answer(.badRequest, ["ok": false, "message": "the form could not be read; reload the page"])
        }
        switch await screen.identify(body) {
        case .published, .already:
            return answer(.ok, ["ok": true])
        case .saleOver:
            return answer(.conflict, ["ok": false, "message": "this sale is finished; please ask at the till"])
        case .refused(let refusal):
            return answer(.badRequest, ["ok": false, "field": .string(refusal.field), "message": .string(refusal.description)])
        case .failed:
            return answer(.serviceUnavailable, ["ok": false, "message": "the till could not save your details just now; please try again"])
        }
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
