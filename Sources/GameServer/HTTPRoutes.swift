import Foundation
import HTTPTypes
import Hummingbird
import JSONCore
import MetricsSchema
import Synchronization

/// Tells clients and load balancers which instance answered: `X-Instance-ID`
/// on every response, and a `LIAPTUI_INSTANCE` cookie that sticky sessions key on.
struct InstanceMiddleware<Context: RequestContext>: RouterMiddleware {
    static var cookieName: String { "LIAPTUI_INSTANCE" }
    static func cookie(_ instanceID: String) -> String { "\(cookieName)=\(instanceID); Path=/; SameSite=Lax" }
    let instanceID: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[HTTPField.Name("X-Instance-ID")!] = instanceID
        // On every response, even when the request already carries it: a load balancer may have rewritten it.
        response.headers.append(HTTPField(name: .setCookie, value: Self.cookie(instanceID)))
        return response
    }
}

/// The latest host sample for the HTTP endpoints, refreshed at most once a second
/// so health checks cannot make the server read /proc in a loop.
final class ResourceMonitor: Sendable {
    private let state = Mutex<(sampler: SystemSampler, sample: SystemSampler.Sample, at: ContinuousClock.Instant?)>(
        (SystemSampler(), SystemSampler.Sample(), nil))

    func current() -> SystemSampler.Sample {
        state.withLock { state in
            if let at = state.at, ContinuousClock.now - at < .seconds(1) { return state.sample }
            state.sample = state.sampler.sample()
            state.at = .now
            return state.sample
        }
    }
}

struct HTTPRoutes {
    let config: ServerConfig
    let metrics: ServerMetrics
    let directory: RoomDirectory
    let lifecycle: Lifecycle
    let resources: ResourceMonitor
    let clock: WallClock

    func add(to router: Router<BasicRequestContext>) {
        router.get("/api/health") { _, _ in
            let shuttingDown = lifecycle.isShuttingDown
            return json(shuttingDown ? .serviceUnavailable : .ok, [
                "status": .string(shuttingDown ? "shutting_down" : "healthy"),
                "instance_id": .string(config.instanceID),
            ])
        }
        router.get("/api/health/detailed") { _, _ in
            let detailed = await detailedHealth()
            return json(lifecycle.isShuttingDown ? .serviceUnavailable : .ok, detailed)
        }
        router.get("/api/metrics/dashboard") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: dashboardPage(await detailedHealth()))))
        }
        // The metrics line's gauges as they are now, for the agent's alerting between the lines (docs/METRICS.md).
        router.get("/api/metrics/live") { _, _ in
            json(.ok, await liveLine())
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: await prometheusText())))
        }
    }

    private func json(_ status: HTTPResponse.Status, _ body: JSON) -> Response {
        Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: body.text)))
    }

    /// A metrics line (docs/METRICS.md) of the gauges only: host and process resources (CPU since the previous
    /// sample, at least 1 s before) and the game's gauges. Counters are per line interval and left out.
    func liveLine() async -> JSON {
        let sample = resources.current()
        let gauges = await directory.gauges()
        return [
            "v": 1, "timestamp": .string(RFC3339.format(clock.now())), "instance_id": .string(config.instanceID),
            "version": .string(ServerVersion.current), "uptime_s": JSON(lifecycle.uptime.seconds),
            "cpu_percent": JSON(sample.cpuPercent), "memory_percent": JSON(sample.memoryPercent), "memory_mb": JSON(sample.memoryMB),
            "process_cpu_percent": JSON(sample.processCPUPercent), "rss_mb": JSON(sample.rssMB),
            "connections": JSON(metrics.connections), "active_rooms": JSON(gauges.activeRooms), "active_games": JSON(gauges.activeGames),
            "players": JSON(gauges.players),
        ]
    }

    func detailedHealth() async -> JSON {
        let sample = resources.current()
        let gauges = await directory.gauges()
        var health: JSON = [
            "status": .string(lifecycle.isShuttingDown ? "shutting_down" : "healthy"),
            "timestamp": .string(RFC3339.format(clock.now())),
            "uptime_seconds": JSON((lifecycle.uptime.seconds * 10).rounded() / 10),
            "version": .string(ServerVersion.current),
            "instance_id": .string(config.instanceID),
            "resources": [
                "cpu_percent": JSON((sample.cpuPercent * 10).rounded() / 10),
                "memory_percent": JSON((sample.memoryPercent * 10).rounded() / 10),
                "memory_mb": JSON(sample.memoryMB.rounded()),
                "process_rss_mb": JSON((sample.rssMB * 10).rounded() / 10),
            ],
            "game_stats": [
                "active_rooms": JSON(gauges.activeRooms),
                "active_connections": JSON(metrics.connections),
                "active_games": JSON(gauges.activeGames),
                "players": JSON(gauges.players),
            ],
        ]
        if let fleet = await directory.fleetStatus() { health["fleet"] = fleet }
        return health
    }

    /// The seed's simple status page: the detailed health as a table, refreshed every 30 s.
    func dashboardPage(_ health: JSON) -> String {
        func rows(_ section: String) -> String {
            (health[section]?.object ?? [:]).keys.sorted().map { key in
                "<tr><th>\(HTML.escape(key))</th><td>\(HTML.escape(health[section]![key]!.text))</td></tr>"
            }.joined()
        }
        let status = health["status"]?.string ?? "unknown"
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="30">
        <title>Liap Tui server \(HTML.escape(config.instanceID))</title>
        <style>body{font:15px system-ui,sans-serif;margin:2em;max-width:40em}table{border-collapse:collapse;margin-bottom:1.5em}
        th,td{padding:.3em .8em;border-bottom:1px solid #ccc;text-align:left}.healthy{color:#1a7f37}.shutting_down{color:#b35900}</style>
        </head><body>
        <h1>Liap Tui server</h1>
        <p>Status: <strong class="\(HTML.escape(status))">\(HTML.escape(status))</strong> ·
        instance \(HTML.escape(config.instanceID)) · version \(HTML.escape(ServerVersion.current)) ·
        up \(HTML.escape(health["uptime_seconds"]?.text ?? "0")) s · \(HTML.escape(health["timestamp"]?.string ?? ""))</p>
        <h2>Resources</h2><table>\(rows("resources"))</table>
        <h2>Game</h2><table>\(rows("game_stats"))</table>
        <p>This page refreshes every 30 seconds. History lives in the metrics agent's dashboard.</p>
        </body></html>
        """
    }

    func prometheusText() async -> String {
        let totals = metrics.totals
        let gauges = await directory.gauges()
        let sample = resources.current()
        var text = PrometheusText()
        let id = config.instanceID
        text.add("liaptui_info", .gauge, "Build and instance information.", 1, labels: ["instance_id": id, "version": ServerVersion.current])
        text.add("liaptui_up", .gauge, "1 while serving, 0 while shutting down.", lifecycle.isShuttingDown ? 0 : 1)
        text.add("liaptui_uptime_seconds", .gauge, "Seconds since the process started.", lifecycle.uptime.seconds)
        text.add("liaptui_connections", .gauge, "Open WebSocket connections (lobby and rooms).", Double(metrics.connections))
        text.add("liaptui_active_rooms", .gauge, "Rooms on this instance.", Double(gauges.activeRooms))
        text.add("liaptui_active_games", .gauge, "Games in progress.", Double(gauges.activeGames))
        text.add("liaptui_players", .gauge, "Humans connected to a room.", Double(gauges.players))
        text.add("liaptui_messages_in_total", .counter, "Client messages received.", Double(totals.messagesIn))
        text.add("liaptui_messages_out_total", .counter, "Messages sent to clients.", Double(totals.messagesOut))
        text.add("liaptui_games_started_total", .counter, "Games started.", Double(totals.gamesStarted))
        text.add("liaptui_games_finished_total", .counter, "Games played to the end.", Double(totals.gamesFinished))
        text.add("liaptui_errors_total", .counter, "Error replies and internal errors.", Double(totals.errors))
        text.add("liaptui_rate_limited_total", .counter, "Messages dropped by the per-connection rate limit.", Double(totals.rateLimited))
        text.add("liaptui_dead_connections_total", .counter, "WebSockets closed because the client missed a ping or stopped reading.",
                 Double(totals.deadConnections))
        text.add("liaptui_turn_timeouts_total", .counter, "Moves a bot made because a player's turn timer ran out.", Double(totals.turnTimeouts))
        text.add("liaptui_metrics_write_errors_total", .counter, "Metrics lines that could not be written.", Double(totals.metricsWriteErrors))
        if config.redis != nil {
            text.add("liaptui_redis_errors_total", .counter, "Redis operations that failed (the instance serves its own rooms meanwhile).", Double(totals.redisErrors))
            text.add("liaptui_redis_backups_total", .counter, "Game states backed up to Redis.", Double(totals.redisBackups))
            text.add("liaptui_rooms_adopted_total", .counter, "Rooms taken over from an instance that died or drained.", Double(totals.roomsAdopted))
            text.add("liaptui_misrouted_joins_total", .counter, "Joins answered room_on_other_instance.", Double(totals.misroutedJoins))
            text.add("liaptui_rooms_handed_over_total", .counter, "Rooms handed to a peer at a drain.", Double(totals.roomsHandedOver))
        }
        text.add("liaptui_host_cpu_percent", .gauge, "Host CPU busy percent.", sample.cpuPercent)
        text.add("liaptui_host_memory_percent", .gauge, "Host memory used percent (MemTotal - MemAvailable).", sample.memoryPercent)
        text.add("liaptui_host_memory_used_bytes", .gauge, "Host memory used.", sample.memoryMB * 1_048_576)
        text.add("process_resident_memory_bytes", .gauge, "Resident memory of this process.", sample.rssMB * 1_048_576)
        return text.output
    }
}

