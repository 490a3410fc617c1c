import Foundation
import MetricsSchema
import RedisClient

/// Everything the game server can be told from its command line. Defaults are the documented ones.
public struct ServerConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 5050
    public var instanceID = ServerConfig.defaultInstanceID()
    public var logDirectory = "./logs"
    public var metricsInterval: Duration = .seconds(60)
    public var stateFile = "./data/game-state.json"
    public var shutdownGrace: Duration = .seconds(30)
    /// How long a dropped player keeps the seat before a bot takes it.
    public var reconnectGrace: Duration = .seconds(60)
    /// How long a seat taken from the lobby waits for its player's first room connection (Colyseus's seat
    /// reservation): apart from the grace, so a short grace cannot cost a slow client its seat.
    public var seatReservation: Duration = .seconds(15)
    /// How long a connected player may take over a move before their bot makes it; zero turns the timer off.
    public var turnTimeout: Duration = .seconds(60)
    /// Pause before a bot acts, so humans can follow.
    public var botDelay: Duration = .milliseconds(800)
    public var maxMessageBytes = 16 * 1024
    /// Token bucket per connection: sustained messages per second and burst.
    public var rateLimitPerSecond = 10.0
    public var rateLimitBurst = 30.0
    /// Rooms with no connected human for this long are removed.
    public var roomIdleTimeout: Duration = .seconds(300)
    /// WebSocket ping period; a peer that misses a pong is closed by the next ping.
    public var pingInterval: Duration = .seconds(30)
    /// Static files of the browser client; nil serves the copy bundled with the executable.
    public var webRoot: String?
    /// Starts the wall clock at this instant (tests of midnight rollover); nil is the real time.
    public var clockStart: Date?
    /// The seed logger's ALERT thresholds, in percent.
    public var alertCPUPercent = 80.0
    public var alertMemoryPercent = 85.0
    /// Seconds a client should wait before reconnecting after a restart notice.
    public var reconnectDelaySeconds = 5
    /// Shared state with other instances; nil runs alone.
    public var redis: RedisEndpoint?
    /// How often this instance tells the fleet it is alive; its entries expire after three beats.
    public var redisHeartbeat: Duration = .seconds(1)
    /// How long a game's backup outlives its last turn.
    public var redisBackupTTL: Duration = .seconds(3600)

    public init() {}

    public static func defaultInstanceID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "local"
        return host.isEmpty ? "local" : host
    }

    /// Problems that make this configuration unusable, one line each.
    public func problems() -> [String] {
        var problems: [String] = []
        if !(0...65535).contains(port) { problems.append("--port must be 0-65535 (0: any free port), not \(port)") }
        if !InstanceID.isValid(instanceID) {
            problems.append("--instance-id must be 1-64 characters of letters, digits, '.', '_' or '-'")
        }
        if metricsInterval < .milliseconds(100) { problems.append("--metrics-interval must be at least 0.1 seconds") }
        if turnTimeout < .zero { problems.append("--turn-timeout must not be negative (0 turns the timer off)") }
        if shutdownGrace < .zero { problems.append("--shutdown-grace must not be negative") }
        if maxMessageBytes < 256 { problems.append("--max-message-bytes must be at least 256") }
        if rateLimitPerSecond <= 0 || rateLimitBurst < 1 { problems.append("--rate-limit must be positive") }
        if redisHeartbeat < .milliseconds(100) { problems.append("--redis-heartbeat must be at least 0.1 seconds") }
        if redisBackupTTL < .seconds(1) { problems.append("--redis-backup-ttl must be at least 1 second") }
        return problems
    }
}

public enum InstanceID {
    public static func isValid(_ id: String) -> Bool {
        (1...64).contains(id.count) && id.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0)
        }
    }
}

/// The wall clock, optionally shifted so tests can start it just before a UTC midnight.
public struct WallClock: Sendable {
    private let offset: TimeInterval

    public init(startingAt start: Date? = nil) {
        offset = start.map { $0.timeIntervalSinceNow } ?? 0
    }

    public func now() -> Date { Date().addingTimeInterval(offset) }
}
