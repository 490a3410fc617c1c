import MetricsSchema
import JSONCore

/// The result of a load run, as a table for people and as JSON for scripts.
public struct LoadReport: Sendable {
    public let plan: LoadPlan
    public let seconds: Double
    let counters: LoadStats.Counters
    public let actionLatency: LatencySummary
    public let joinLatency: LatencySummary
    public let serverBefore: ServerSample?
    public let serverSamples: [ServerSample]
    public let serverAfter: ServerSample?

    public var errorCount: Int { serverErrorCount + clientErrorCount }
    var serverErrorCount: Int { counters.serverErrors.values.reduce(0, +) }
    var clientErrorCount: Int { counters.clientErrors.values.reduce(0, +) }
    public var gamesCompleted: Int { counters.gamesCompleted }
    public var peakConnections: Int { counters.peakOpen }

    /// The sample with the most connections, where memory per connection is read.
    var busiest: ServerSample? { serverSamples.max { $0.connections < $1.connections } }

    /// Growth of the server's RSS per open connection, between the idle start and the busiest sample.
    public var rssKBPerConnection: Double? {
        guard let before = serverBefore, let busiest, busiest.connections > 0 else { return nil }
        return (busiest.rssMB - before.rssMB) * 1024 / Double(busiest.connections)
    }

    public var json: JSON {
        var server: [String: JSON] = ["samples": .array(serverSamples.map(\.json))]
        if let serverBefore { server["before"] = serverBefore.json }
        if let serverAfter { server["after"] = serverAfter.json }
        if let busiest { server["busiest"] = busiest.json }
        if let perConnection = rssKBPerConnection { server["rss_kb_per_connection"] = JSON(LatencySummary.round(perConnection)) }
        server["rss_mb_peak"] = JSON(serverSamples.map(\.rssMB).max() ?? 0)
        return [
            "plan": [
                "url": .string(plan.serverURL), "players": JSON(plan.players), "humans_per_room": JSON(plan.humansPerRoom),
                "ramp_up_seconds": JSON(plan.rampUp.seconds), "hold_seconds": JSON(plan.hold.seconds),
                "think_ms": JSON(plan.thinkTime.seconds * 1000), "games_per_room": JSON(plan.gamesPerRoom),
                "games_per_table": JSON(plan.gamesPerTable),
            ],
            "seconds": JSON(LatencySummary.round(seconds)),
            "connections": ["opened": JSON(counters.connectionsOpened), "failed": JSON(counters.connectionsFailed),
                            "peak_open": JSON(counters.peakOpen)],
            "rooms_created": JSON(counters.roomsCreated),
            "games": ["started": JSON(counters.gamesStarted), "completed": JSON(counters.gamesCompleted),
                      "abandoned": JSON(counters.gamesAbandoned)],
            "actions": JSON(counters.actions),
            "action_latency_ms": actionLatency.json,
            "join_latency_ms": joinLatency.json,
            "errors": ["total": JSON(errorCount),
                       "server": .object(counters.serverErrors.mapValues { JSON($0) }),
                       "client": .object(counters.clientErrors.mapValues { JSON($0) })],
            "server": .object(server),
        ]
    }

    public var table: String {
        func ms(_ v: Double) -> String { String(LatencySummary.round(v)) }
        func row(_ label: String, _ value: String) -> String { label.padding(toLength: 28, withPad: " ", startingAt: 0) + value }
        func latency(_ l: LatencySummary) -> String {
            "p50 \(ms(l.p50))  p95 \(ms(l.p95))  p99 \(ms(l.p99))  max \(ms(l.max))  (n=\(l.count))"
        }
        func breakdown(_ counts: [String: Int]) -> String {
            counts.isEmpty ? "" : " (" + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
        }
        var lines = [
            "liaptui-load: \(plan.players) players, \(plan.humansPerRoom) per room, ramp-up \(Int(plan.rampUp.seconds)) s, "
                + "hold \(Int(plan.hold.seconds)) s, think \(Int(plan.thinkTime.seconds * 1000)) ms, against \(plan.serverURL)",
            row("duration", "\(ms(seconds)) s"),
            row("connections", "opened \(counters.connectionsOpened)  failed \(counters.connectionsFailed)  peak open \(counters.peakOpen)"),
            row("rooms created", "\(counters.roomsCreated)"),
            row("games", "started \(counters.gamesStarted)  completed \(counters.gamesCompleted)  abandoned at the end \(counters.gamesAbandoned)"),
            row("actions", "\(counters.actions)"),
            row("action -> response (ms)", latency(actionLatency)),
            row("lobby -> seated (ms)", latency(joinLatency)),
            row("errors", "\(errorCount)  server \(serverErrorCount)\(breakdown(counters.serverErrors))  client \(clientErrorCount)\(breakdown(counters.clientErrors))"),
        ]
        if let before = serverBefore, let busiest {
            var memory = "before \(before.rssMB) MB  busiest \(busiest.rssMB) MB at \(busiest.connections) connections"
            if let perConnection = rssKBPerConnection { memory += "  (\(ms(perConnection)) KB per connection)" }
            lines.append(row("server RSS", memory))
        }
        if let after = serverAfter {
            lines.append(row("server after the run", "rooms \(after.rooms)  connections \(after.connections)  games \(after.games)  RSS \(after.rssMB) MB"))
        }
        return lines.joined(separator: "\n")
    }
}
