public import Logging
import NIOCore
import NIOHTTP1

/// The bridge's HTTP surface: the origin check and CORS in front of every route, then the
/// routes. A page from an origin not on the list is refused with 403 and logged (rate-limited
/// by the log's own level: a refused origin is worth a warning each time it tries).
public struct Bridge: HTTPResponder {
    public let origins: OriginPolicy
    public let odoo: OdooProxy
    let logger: Logger

    public init(origins: OriginPolicy, odoo: OdooProxy, logger: Logger) {
        self.origins = origins
        self.odoo = odoo
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
        if request.method == .OPTIONS { return HTTPResponse(.noContent, headers: [("Allow", "GET, POST, OPTIONS")]) }
        return .text(.notFound, "no such route: \(request.path)\n")
    }
}
