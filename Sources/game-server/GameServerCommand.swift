import ArgumentParser
import CommandSupport
import Foundation
import GameServer
import RedisClient
import Logging

@main
struct GameServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "game-server",
        abstract: "The Liap Tui game server: lobby, rooms and games over WebSocket, with health and metrics.",
        discussion: "Every option can also be set by its environment variable (shown in brackets); the option wins.")

    @Option(help: "Address to listen on. [LIAPTUI_HOST]") var host: String?
    @Option(help: "Port to listen on (default 5050). [LIAPTUI_PORT]") var port: Int?
    @Option(help: "This instance's ID: metrics lines, X-Instance-ID, the sticky cookie (default: host name). [LIAPTUI_INSTANCE_ID]")
    var instanceID: String?
    @Option(help: "Folder for metrics_YYYYMMDD.jsonl (default ./logs). [LIAPTUI_LOG_DIR]") var logDir: String?
    @Option(help: "Seconds between metrics lines (default 60). [LIAPTUI_METRICS_INTERVAL]") var metricsInterval: Double?
    @Option(help: "Where rooms and games are saved on shutdown and restored from on start (default ./data/game-state.json). [LIAPTUI_STATE_FILE]")
    var stateFile: String?
    @Option(help: "Seconds players get between the restart notice and the restart (default 30). [LIAPTUI_SHUTDOWN_GRACE]")
    var shutdownGrace: Double?
    @Option(help: "Seconds a dropped player keeps the seat before a bot takes it (default 60). [LIAPTUI_RECONNECT_GRACE]")
    var reconnectGrace: Double?
    @Option(help: "Seconds a seat taken from the lobby waits for its player's first room connection (default 15). [LIAPTUI_SEAT_RESERVATION]")
    var seatReservation: Double?
    @Option(help: "Seconds a connected player has for each move before their bot makes it; 0 turns the timer off (default 60). [LIAPTUI_TURN_TIMEOUT]")
    var turnTimeout: Double?
    @Option(help: "Milliseconds a bot waits before acting (default 800). [LIAPTUI_BOT_DELAY_MS]") var botDelayMs: Int?
    @Option(help: "Largest client message in bytes (default 16384). [LIAPTUI_MAX_MESSAGE_BYTES]") var maxMessageBytes: Int?
    @Option(help: "Messages per second a connection may send, sustained (default 10; burst 3x). [LIAPTUI_RATE_LIMIT]")
    var rateLimit: Double?
    @Option(help: "Seconds a room may have no connected human before it is removed (default 300). [LIAPTUI_ROOM_IDLE_TIMEOUT]")
    var roomIdleTimeout: Double?
    @Option(help: "Seconds between WebSocket pings; a peer that misses one is dropped (default 30). [LIAPTUI_PING_INTERVAL]")
    var pingInterval: Double?
    @Option(help: "Folder of the browser client (default: the bundled copy). [LIAPTUI_WEB_ROOT]") var webRoot: String?
    @Option(help: "Host CPU percent above which an ALERT line is logged (default 80). [LIAPTUI_ALERT_CPU]") var alertCpu: Double?
    @Option(help: "Host memory percent above which an ALERT line is logged (default 85). [LIAPTUI_ALERT_MEMORY]") var alertMemory: Double?
    @Option(help: "Share rooms and back up games with other instances through Redis: redis://[:password@]host[:port][/db]. [LIAPTUI_REDIS_URL]")
    var redisUrl: String?
    @Option(help: "Seconds between fleet heartbeats; an instance silent for three is taken for dead (default 1). [LIAPTUI_REDIS_HEARTBEAT]")
    var redisHeartbeat: Double?
    @Option(help: "Seconds a game's Redis backup is kept after its last turn (default 3600). [LIAPTUI_REDIS_BACKUP_TTL]")
    var redisBackupTtl: Double?
    @Option(help: "Testing aid: start the wall clock at this RFC 3339 time. [LIAPTUI_CLOCK_START]") var clockStart: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error (default info). [LIAPTUI_LOG_LEVEL]") var logLevel: String?

    func run() async throws {
        let options = FlagOrEnvironment()
        let value = options.value, number = options.number

        var config = ServerConfig()
        if let v = value(host, "LIAPTUI_HOST") { config.host = v }
        if let v = try number(port.map(Double.init), "LIAPTUI_PORT") { config.port = Int(v) }
        if let v = value(instanceID, "LIAPTUI_INSTANCE_ID") { config.instanceID = v }
        if let v = value(logDir, "LIAPTUI_LOG_DIR") { config.logDirectory = v }
        if let v = try number(metricsInterval, "LIAPTUI_METRICS_INTERVAL") { config.metricsInterval = .milliseconds(Int(v * 1000)) }
        if let v = value(stateFile, "LIAPTUI_STATE_FILE") { config.stateFile = v }
        if let v = try number(shutdownGrace, "LIAPTUI_SHUTDOWN_GRACE") { config.shutdownGrace = .milliseconds(Int(v * 1000)) }
        if let v = try number(reconnectGrace, "LIAPTUI_RECONNECT_GRACE") { config.reconnectGrace = .milliseconds(Int(v * 1000)) }
        if let v = try number(seatReservation, "LIAPTUI_SEAT_RESERVATION") { config.seatReservation = .milliseconds(Int(v * 1000)) }
        if let v = try number(turnTimeout, "LIAPTUI_TURN_TIMEOUT") { config.turnTimeout = .milliseconds(Int(v * 1000)) }
        if let v = try number(botDelayMs.map(Double.init), "LIAPTUI_BOT_DELAY_MS") { config.botDelay = .milliseconds(Int(v)) }
        if let v = try number(maxMessageBytes.map(Double.init), "LIAPTUI_MAX_MESSAGE_BYTES") { config.maxMessageBytes = Int(v) }
        if let v = try number(rateLimit, "LIAPTUI_RATE_LIMIT") {
            config.rateLimitPerSecond = v
            config.rateLimitBurst = max(1, v * 3)
        }
        if let v = try number(roomIdleTimeout, "LIAPTUI_ROOM_IDLE_TIMEOUT") { config.roomIdleTimeout = .milliseconds(Int(v * 1000)) }
        if let v = try number(pingInterval, "LIAPTUI_PING_INTERVAL") { config.pingInterval = .milliseconds(Int(v * 1000)) }
        if let v = try number(alertCpu, "LIAPTUI_ALERT_CPU") { config.alertCPUPercent = v }
        if let v = try number(alertMemory, "LIAPTUI_ALERT_MEMORY") { config.alertMemoryPercent = v }
        if let v = value(webRoot, "LIAPTUI_WEB_ROOT") { config.webRoot = v }
        if let v = value(redisUrl, "LIAPTUI_REDIS_URL") {
            do { config.redis = try RedisEndpoint(url: v) } catch { throw ValidationError("--redis-url: \(error)") }
        }
        if let v = try number(redisHeartbeat, "LIAPTUI_REDIS_HEARTBEAT") { config.redisHeartbeat = .milliseconds(Int(v * 1000)) }
        if let v = try number(redisBackupTtl, "LIAPTUI_REDIS_BACKUP_TTL") { config.redisBackupTTL = .milliseconds(Int(v * 1000)) }
        if let v = value(clockStart, "LIAPTUI_CLOCK_START") {
            guard let date = ISO8601DateFormatter().date(from: v) else {
                throw ValidationError("--clock-start must be an RFC 3339 time such as 2026-11-26T23:59:58Z")
            }
            config.clockStart = date
        }
        let levelName = value(logLevel, "LIAPTUI_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else { throw ValidationError("unknown log level '\(levelName)'") }
        if let problem = config.problems().first { throw ValidationError(problem) }

        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "game-server")
        logger[metadataKey: "instance"] = "\(config.instanceID)"
        try await GameServerApp(config: config, logger: logger).run()
    }
}

