import ArgumentParser
import CommandSupport
import Foundation
import JSONCore
import LiapTuiClient
import Logging

@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liaptui-load",
        abstract: "Simulated Liap Tui players over real WebSockets: they open and join rooms, fill them with bots or each other, and play complete games.",
        discussion: """
            Players start spread over the ramp-up, then play for the duration; the report gives connections, games, \
            action -> response latency (p50/p95/p99/max) and errors as a table, and as JSON with --json. \
            Every option can also be set by its environment variable (shown in brackets); the option wins.
            """)

    @Option(help: "The game server's WebSocket base URL (default ws://127.0.0.1:5050). [LIAPTUI_LOAD_URL]") var url: String?
    @Option(help: "Simulated players (default 100). [LIAPTUI_LOAD_PLAYERS]") var players: Int?
    @Option(help: "Humans per room, 1-4; bots take the other seats (default 4). [LIAPTUI_LOAD_HUMANS_PER_ROOM]") var humansPerRoom: Int?
    @Option(help: "Seconds over which players arrive (default 10). [LIAPTUI_LOAD_RAMP_UP]") var rampUp: Double?
    @Option(help: "Seconds everyone plays after the ramp-up (default 60). [LIAPTUI_LOAD_DURATION]") var duration: Double?
    @Option(help: "Milliseconds a player thinks before each move, varied by ±50% (default 1000). [LIAPTUI_LOAD_THINK_MS]") var thinkMs: Double?
    @Option(help: "Games per room before the table opens a new one; 0 keeps the room (default 3). [LIAPTUI_LOAD_GAMES_PER_ROOM]") var gamesPerRoom: Int?
    @Option(help: "Games each table plays before stopping; the run ends when all are done (default 0: play for the whole duration). [LIAPTUI_LOAD_GAMES]") var games: Int?
    @Option(help: "Seconds between server samples and progress lines (default 10). [LIAPTUI_LOAD_SAMPLE_INTERVAL]") var sampleInterval: Double?
    @Option(help: "Seconds to wait after the run before the last server sample (default 5). [LIAPTUI_LOAD_SETTLE]") var settle: Double?
    @Option(help: "Also write the report as JSON to this file ('-' for standard output, instead of the table). [LIAPTUI_LOAD_JSON]") var json: String?
    @Flag(help: "No progress lines while running.") var quiet = false
    @Option(help: "Log level: trace, debug, info, notice, warning, error (default warning). [LIAPTUI_LOG_LEVEL]") var logLevel: String?

    func run() async throws {
        let options = FlagOrEnvironment()
        let value = options.value, number = options.number
        func duration(_ seconds: Double) -> Duration { .milliseconds(Int((seconds * 1000).rounded())) }

        var plan = LoadPlan()
        if let v = value(url, "LIAPTUI_LOAD_URL") { plan.serverURL = v.hasSuffix("/") ? String(v.dropLast()) : v }
        if let v = try number(players.map(Double.init), "LIAPTUI_LOAD_PLAYERS") { plan.players = Int(v) }
        if let v = try number(humansPerRoom.map(Double.init), "LIAPTUI_LOAD_HUMANS_PER_ROOM") { plan.humansPerRoom = Int(v) }
        if let v = try number(rampUp, "LIAPTUI_LOAD_RAMP_UP") { plan.rampUp = duration(v) }
        if let v = try number(self.duration, "LIAPTUI_LOAD_DURATION") { plan.hold = duration(v) }
        if let v = try number(thinkMs, "LIAPTUI_LOAD_THINK_MS") { plan.thinkTime = duration(v / 1000) }
        if let v = try number(gamesPerRoom.map(Double.init), "LIAPTUI_LOAD_GAMES_PER_ROOM") { plan.gamesPerRoom = Int(v) }
        if let v = try number(games.map(Double.init), "LIAPTUI_LOAD_GAMES") { plan.gamesPerTable = Int(v) }
        if let v = try number(sampleInterval, "LIAPTUI_LOAD_SAMPLE_INTERVAL") { plan.sampleInterval = duration(v) }
        if let v = try number(settle, "LIAPTUI_LOAD_SETTLE") { plan.settle = duration(max(0, v)) }
        if let problem = plan.problems().first { throw ValidationError(problem) }
        let jsonPath = value(json, "LIAPTUI_LOAD_JSON")
        let levelName = value(logLevel, "LIAPTUI_LOG_LEVEL") ?? "warning"
        guard let level = Logger.Level(rawValue: levelName) else { throw ValidationError("unknown log level '\(levelName)'") }

        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "liaptui-load")
        logger.info("starting", metadata: ["players": "\(plan.players)", "url": "\(plan.serverURL)"])
        let quiet = quiet
        let report = await LoadRunner(plan: plan, logger: logger).run { progress in
            if !quiet { FileHandle.standardError.write(Data((progress.line + "\n").utf8)) }
        }
        if jsonPath == "-" {
            print(report.json.prettyText)
        } else {
            print(report.table)
            if let jsonPath {
                do {
                    try (report.json.prettyText + "\n").write(toFile: jsonPath, atomically: true, encoding: .utf8)
                } catch {
                    throw ValidationError("cannot write --json \(jsonPath): \(error.localizedDescription)")
                }
            }
        }
    }
}
