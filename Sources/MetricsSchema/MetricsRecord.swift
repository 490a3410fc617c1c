import Foundation
import JSONCore

/// Server-side action latency over one interval, in milliseconds.
public struct LatencySummary: Sendable, Equatable {
    public var p50: Double
    public var p95: Double
    public var p99: Double
    public var max: Double
    public var count: Int

    public init(p50: Double = 0, p95: Double = 0, p99: Double = 0, max: Double = 0, count: Int = 0) {
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
        self.max = max
        self.count = count
    }

    /// Nearest-rank percentiles of the samples (0 for every figure when there are none).
    public init(samples: [Double]) {
        guard !samples.isEmpty else {
            self.init()
            return
        }
        let sorted = samples.sorted()
        func rank(_ q: Double) -> Double { sorted[Swift.max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1)] }
        self.init(p50: rank(0.50), p95: rank(0.95), p99: rank(0.99), max: sorted.last!, count: sorted.count)
    }
}

/// One line of `metrics_YYYYMMDD.jsonl`: what one game-server instance did in
/// one interval. The field list and units are in docs/METRICS.md.
public struct MetricsRecord: Sendable, Equatable {
    public static let schemaVersion = 1

    public var v = MetricsRecord.schemaVersion
    public var timestamp: Date
    public var instanceID: String
    public var version: String
    public var intervalSeconds: Double
    public var uptimeSeconds: Double
    // Host
    public var cpuPercent: Double
    public var memoryMB: Double
    public var memoryPercent: Double
    // This process
    public var processCPUPercent: Double
    public var rssMB: Double
    // Game, at the end of the interval
    public var connections: Int
    public var activeRooms: Int
    public var activeGames: Int
    public var players: Int
    // Counts during the interval
    public var messagesIn: Int
    public var messagesOut: Int
    public var gamesStarted: Int
    public var gamesFinished: Int
    public var errors: Int
    public var latency: LatencySummary
    /// Earlier metrics lines that could not be written and are included again in this write.
    public var writeErrors: Int
    /// What the fleet did in the interval (`--redis-url`); nil without Redis, and then not in the line.
    public var fleet: FleetActivity?

    public struct FleetActivity: Sendable, Equatable {
        public var takeovers: Int
        public var takeoverMaxMS: Double
        public var misroutedJoins: Int
        public var roomsHandedOver: Int

        public init(takeovers: Int, takeoverMaxMS: Double, misroutedJoins: Int, roomsHandedOver: Int) {
            self.takeovers = takeovers
            self.takeoverMaxMS = takeoverMaxMS
            self.misroutedJoins = misroutedJoins
            self.roomsHandedOver = roomsHandedOver
        }
    }

    public init(timestamp: Date, instanceID: String, version: String, intervalSeconds: Double, uptimeSeconds: Double,
                cpuPercent: Double, memoryMB: Double, memoryPercent: Double, processCPUPercent: Double, rssMB: Double,
                connections: Int, activeRooms: Int, activeGames: Int, players: Int, messagesIn: Int, messagesOut: Int,
                gamesStarted: Int, gamesFinished: Int, errors: Int, latency: LatencySummary, writeErrors: Int) {
        self.timestamp = timestamp
        self.instanceID = instanceID
        self.version = version
        self.intervalSeconds = intervalSeconds
        self.uptimeSeconds = uptimeSeconds
        self.cpuPercent = cpuPercent
        self.memoryMB = memoryMB
        self.memoryPercent = memoryPercent
        self.processCPUPercent = processCPUPercent
        self.rssMB = rssMB
        self.connections = connections
        self.activeRooms = activeRooms
        self.activeGames = activeGames
        self.players = players
        self.messagesIn = messagesIn
        self.messagesOut = messagesOut
        self.gamesStarted = gamesStarted
        self.gamesFinished = gamesFinished
        self.errors = errors
        self.latency = latency
        self.writeErrors = writeErrors
    }

    public var json: JSON {
        func r(_ x: Double, _ places: Double = 100) -> JSON { .number((x * places).rounded() / places) }
        var json: JSON = [
            "v": JSON(v),
            "timestamp": .string(RFC3339.format(timestamp)),
            "instance_id": .string(instanceID),
            "version": .string(version),
            "interval_s": r(intervalSeconds, 1000),
            "uptime_s": r(uptimeSeconds, 1000),
            "cpu_percent": r(cpuPercent),
            "memory_mb": r(memoryMB),
            "memory_percent": r(memoryPercent),
            "process_cpu_percent": r(processCPUPercent),
            "rss_mb": r(rssMB),
            "connections": JSON(connections),
            "active_rooms": JSON(activeRooms),
            "active_games": JSON(activeGames),
            "players": JSON(players),
            "messages_in": JSON(messagesIn),
            "messages_out": JSON(messagesOut),
            "games_started": JSON(gamesStarted),
            "games_finished": JSON(gamesFinished),
            "errors": JSON(errors),
            "latency_ms": [
                "p50": r(latency.p50, 1000), "p95": r(latency.p95, 1000), "p99": r(latency.p99, 1000),
                "max": r(latency.max, 1000), "count": JSON(latency.count),
            ],
            "write_errors": JSON(writeErrors),
        ]
        if let fleet {
            json["takeovers"] = JSON(fleet.takeovers)
            json["takeover_max_ms"] = r(fleet.takeoverMaxMS, 1)
            json["misrouted_joins"] = JSON(fleet.misroutedJoins)
            json["rooms_handed_over"] = JSON(fleet.roomsHandedOver)
        }
        return json
    }

    /// The record as one line of JSON, newline included.
    public var line: String { json.text + "\n" }

    /// `metrics_YYYYMMDD.jsonl` for the record's UTC date.
    public var fileName: String { MetricsFiles.fileName(for: timestamp) }
}

public enum MetricsFiles {
    public static let prefix = "metrics_"
    public static let suffix = ".jsonl"

    public static func fileName(for date: Date) -> String {
        let c = RFC3339.utcComponents(date)
        return String(format: "%@%04d%02d%02d%@", prefix, c.year, c.month, c.day, suffix)
    }
}

/// RFC 3339 timestamps in UTC with milliseconds, without Foundation's formatters
/// (thread-safe, allocation-light, and the same on every platform).
public enum RFC3339 {
    public struct Components: Equatable {
        public var year, month, day, hour, minute, second, millisecond: Int
    }

    public static func utcComponents(_ date: Date) -> Components {
        let totalMillis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var days = totalMillis >= 0 ? totalMillis / 86_400_000 : (totalMillis - 86_399_999) / 86_400_000
        let millisOfDay = Int(totalMillis - days * 86_400_000)
        // Civil-from-days (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = Int(yoe + era * 400) + (month <= 2 ? 1 : 0)
        return Components(year: year, month: month, day: day, hour: millisOfDay / 3_600_000,
                          minute: millisOfDay / 60_000 % 60, second: millisOfDay / 1000 % 60, millisecond: millisOfDay % 1000)
    }

    public static func format(_ date: Date) -> String {
        let c = utcComponents(date)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", c.year, c.month, c.day, c.hour, c.minute, c.second, c.millisecond)
    }
}
