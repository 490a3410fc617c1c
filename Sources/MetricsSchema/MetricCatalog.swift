/// A numeric series the agent stores, charts and alerts on.
public struct MetricDefinition: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// A level at sampling time (averaged over a bucket).
        case gauge
        /// A count during the interval (summed over a bucket).
        case count
    }

    /// The series name in the agent's API, rules and database (a column name).
    public let name: String
    public let unit: String
    public let kind: Kind
    public let help: String
    /// Where the value sits in a line: a top-level key, or `["latency_ms", "p95"]`.
    public let path: [String]
    /// How the fleet figure combines instances at one time.
    public let fleet: FleetAggregation

    public init(name: String, unit: String, kind: Kind, help: String, path: [String], fleet: FleetAggregation) {
        self.name = name
        self.unit = unit
        self.kind = kind
        self.help = help
        self.path = path
        self.fleet = fleet
    }
}

public enum FleetAggregation: String, Sendable {
    /// Totals: connections, players, messages, memory in use.
    case sum
    /// Shares: CPU and memory percent.
    case avg
    /// Worst case: latency percentiles.
    case max
}

public enum MetricCatalog {
    public static let all: [MetricDefinition] = [
        .init(name: "cpu_percent", unit: "%", kind: .gauge, help: "Host CPU busy over the interval", path: ["cpu_percent"], fleet: .avg),
        .init(name: "memory_percent", unit: "%", kind: .gauge, help: "Host memory in use (MemTotal - MemAvailable)", path: ["memory_percent"], fleet: .avg),
        .init(name: "memory_mb", unit: "MiB", kind: .gauge, help: "Host memory in use", path: ["memory_mb"], fleet: .sum),
        .init(name: "process_cpu_percent", unit: "% of a core", kind: .gauge, help: "Game-server CPU", path: ["process_cpu_percent"], fleet: .avg),
        .init(name: "rss_mb", unit: "MiB", kind: .gauge, help: "Game-server resident memory", path: ["rss_mb"], fleet: .sum),
        .init(name: "connections", unit: "connections", kind: .gauge, help: "Open WebSocket connections", path: ["connections"], fleet: .sum),
        .init(name: "active_rooms", unit: "rooms", kind: .gauge, help: "Rooms", path: ["active_rooms"], fleet: .sum),
        .init(name: "active_games", unit: "games", kind: .gauge, help: "Games in progress", path: ["active_games"], fleet: .sum),
        .init(name: "players", unit: "players", kind: .gauge, help: "Humans connected to a room", path: ["players"], fleet: .sum),
        .init(name: "messages_in", unit: "messages", kind: .count, help: "Client messages received", path: ["messages_in"], fleet: .sum),
        .init(name: "messages_out", unit: "messages", kind: .count, help: "Messages sent to clients", path: ["messages_out"], fleet: .sum),
        .init(name: "games_started", unit: "games", kind: .count, help: "Games started", path: ["games_started"], fleet: .sum),
        .init(name: "games_finished", unit: "games", kind: .count, help: "Games played to the end", path: ["games_finished"], fleet: .sum),
        .init(name: "errors", unit: "errors", kind: .count, help: "Error replies and internal errors", path: ["errors"], fleet: .sum),
        .init(name: "latency_p50_ms", unit: "ms", kind: .gauge, help: "Action latency, median", path: ["latency_ms", "p50"], fleet: .max),
        .init(name: "latency_p95_ms", unit: "ms", kind: .gauge, help: "Action latency, 95th percentile", path: ["latency_ms", "p95"], fleet: .max),
        .init(name: "latency_p99_ms", unit: "ms", kind: .gauge, help: "Action latency, 99th percentile", path: ["latency_ms", "p99"], fleet: .max),
        .init(name: "latency_max_ms", unit: "ms", kind: .gauge, help: "Action latency, maximum", path: ["latency_ms", "max"], fleet: .max),
        .init(name: "actions", unit: "actions", kind: .count, help: "Client messages handled (latency samples)", path: ["latency_ms", "count"], fleet: .sum),
        .init(name: "uptime_s", unit: "s", kind: .gauge, help: "Game-server uptime", path: ["uptime_s"], fleet: .avg),
        .init(name: "interval_s", unit: "s", kind: .gauge, help: "Seconds covered by the line", path: ["interval_s"], fleet: .avg),
        .init(name: "write_errors", unit: "lines", kind: .gauge, help: "Metrics lines written late after write errors", path: ["write_errors"], fleet: .sum),
        // With --redis-url (absent otherwise).
        .init(name: "takeovers", unit: "rooms", kind: .count, help: "Rooms taken over from an instance that died or drained", path: ["takeovers"], fleet: .sum),
        .init(name: "takeover_max_ms", unit: "ms", kind: .gauge, help: "Longest takeover: from the room's last saved move to its adoption", path: ["takeover_max_ms"], fleet: .max),
        .init(name: "misrouted_joins", unit: "joins", kind: .count, help: "Joins answered room_on_other_instance", path: ["misrouted_joins"], fleet: .sum),
        .init(name: "rooms_handed_over", unit: "rooms", kind: .count, help: "Rooms handed to a peer at a drain", path: ["rooms_handed_over"], fleet: .sum),
    ]

    public static let names: [String] = all.map(\.name)
    private static let indexByName = Dictionary(uniqueKeysWithValues: all.enumerated().map { ($1.name, $0) })

    public static func index(of name: String) -> Int? { indexByName[name] }
    public static func definition(_ name: String) -> MetricDefinition? { index(of: name).map { all[$0] } }

    /// Keys of the seed's Python writer that mean one of our metrics.
    static let aliases: [String: String] = ["active_connections": "connections"]
}
