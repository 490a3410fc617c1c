import Foundation
import HTTPTypes
import Hummingbird
import JSONCore
import MetricsSchema

/// The agent's HTTP endpoints: the JSON/CSV API, the dashboard pages and /metrics.
struct AgentHTTP {
    let app: MetricsAgentApp

    /// The dashboard's static files: the copy bundled with the executable.
    static var publicFolder: String { Bundle.module.resourceURL!.appendingPathComponent("Public").path }

    func application() -> some ApplicationProtocol {
        let router = Router()
        if let token = app.config.authToken { router.middlewares.add(TokenAuthMiddleware(token: token)) }
        let api = AgentAPI(app: app)
        router.get("/api/health") { _, _ in json(.ok, ["status": "healthy"]) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: api.prometheus())))
        }
        router.get("/api/metrics") { _, _ in json(.ok, api.metricsCatalog()) }
        router.get("/api/instances") { _, _ in try await api.respond { try api.instances() } }
        router.get("/api/agents") { _, _ in try await api.respond { try api.agents() } }
        router.get("/api/replication/lines") { request, _ in try await api.respond { try api.replicationLines(request.uri.queryParameters) } }
        router.get("/api/series") { request, _ in try await api.respond { try api.series(request.uri.queryParameters) } }
        router.get("/api/series.csv") { request, _ in
            try await api.respondCSV { try api.seriesCSV(request.uri.queryParameters) }
        }
        router.get("/api/annotations") { request, _ in try await api.respond { try api.annotations(request.uri.queryParameters) } }
        router.get("/api/dashboards") { _, _ in try await api.respond { try api.dashboards() } }
        router.get("/api/dashboards/{name}") { _, context in
            try await api.respond { try api.dashboard(context.parameters.get("name") ?? "") }
        }
        router.get("/api/review") { request, _ in try await api.respond { try api.review(request.uri.queryParameters) } }
        router.get("/api/alerts") { _, _ in try await api.respond { try api.alerts() } }
        router.get("/api/alerts/history") { request, _ in try await api.respond { try api.alertHistory(request.uri.queryParameters) } }
        router.get("/api/silences") { _, _ in try await api.respond { try api.silences() } }
        router.post("/api/silences") { request, context in
            let body = try await request.body.collect(upTo: 64 * 1024)
            return try await api.respond { try api.createSilence(String(buffer: body)) }
        }
        router.delete("/api/silences/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await api.respond { try api.expireSilence(id) }
        }
        router.middlewares.add(FileMiddleware(AgentHTTP.publicFolder, searchForIndexHtml: true, logger: app.logger))
        let logger = app.logger
        return Application(
            router: router,
            configuration: .init(address: .hostname(app.config.listenHost, port: app.config.listenPort), serverName: "metrics-agent"),
            onServerRunning: { channel in
                logger.notice("accepting connections", metadata: ["port": "\(channel.localAddress?.port ?? 0)"])
            },
            logger: app.logger)
    }
}

func json(_ status: HTTPResponse.Status, _ body: JSON) -> Response {
    Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
             body: .init(byteBuffer: ByteBuffer(string: body.text)))
}

/// Requires `Authorization: Bearer <token>` (or `?token=<token>` for links and the browser) when a token is configured.
struct TokenAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/api/health" { return try await next(request, context) }
        let bearer = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        let query = request.uri.queryParameters.get("token")
        let cookie = request.cookies["agent_token"]?.value
        guard [bearer, query, cookie].contains(where: { $0.map { constantTimeEqual($0, token) } ?? false }) else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer", .contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: #"{"error":"a valid token is required"}"#)))
        }
        var response = try await next(request, context)
        if query != nil && cookie == nil {
            response.headers.append(HTTPField(name: .setCookie, value: "agent_token=\(token); Path=/; HttpOnly; SameSite=Strict"))
        }
        return response
    }
}

func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<x.count { diff |= x[i] ^ y[i] }
    return diff == 0
}
