import Foundation
import JSONCore
import Testing
import TestSupport

/// liaptui-load as users run it: the built executable against a live game-server.
@Suite struct LoadGeneratorTests {
    @Test func simulatedPlayersPlayCompleteGamesAndLeaveNothingBehind() async throws {
        let server = try await GameServerProcess()
        let report = server.directory.appendingPathComponent("load.json")
        let load = ChildProcess("liaptui-load", [
            "--url", server.wsURL(""), "--players", "6", "--humans-per-room", "2", "--ramp-up", "1", "--duration", "300",
            "--think-ms", "5", "--games", "2", "--games-per-room", "1", "--sample-interval", "1", "--settle", "2",
            "--json", report.path,
        ])
        try load.start()
        // Each table plays two games, one per room, then the run ends by itself (well before --duration).
        let status = await load.wait(timeout: .seconds(300))
        #expect(status == 0, "liaptui-load: \(load.log.suffix(2000))")
        #expect(load.log.contains("action -> response (ms)"))
        let json = try JSONParser.parse(String(contentsOf: report, encoding: .utf8))

        #expect(json["connections"]?["peak_open"]?.int == 6)
        #expect(json["connections"]?["failed"]?.int == 0)
        let completed = try #require(json["games"]?["completed"]?.int)
        #expect(completed == 6)
        #expect(json["games"]?["started"]?.int == 6)
        #expect(json["games"]?["abandoned"]?.int == 0)
        #expect(json["rooms_created"]?.int == 6, "one game per room: every table opened a second room")
        #expect((json["seconds"]?.number ?? 300) < 290, "the run ended when the games were done")
        #expect(json["errors"]?["total"]?.int == 0, "\(json["errors"]?.text ?? "")")
        let latency = try #require(json["action_latency_ms"])
        #expect((latency["count"]?.int ?? 0) > 50)
        let p50 = latency["p50"]?.number ?? -1, p99 = latency["p99"]?.number ?? -1, max = latency["max"]?.number ?? -1
        #expect(p50 > 0 && p50 <= p99 && p99 <= max)

        // The server agrees: it finished at least as many games, and every room and connection is gone.
        let metrics = try await HTTP.get(server.baseURL + "/metrics").body
        let finished = metrics.split(separator: "\n").first { $0.hasPrefix("liaptui_games_finished_total ") }
            .flatMap { Double($0.split(separator: " ").last!) } ?? 0
        #expect(Int(finished) >= completed)
        #expect(json["server"]?["after"]?["rooms"]?.int == 0)
        #expect(json["server"]?["after"]?["connections"]?.int == 0)
        #expect((json["server"]?["samples"]?.array?.count ?? 0) >= 2)
        #expect(json["server"]?["rss_kb_per_connection"]?.number != nil)
    }

    @Test func anUnreachableServerIsCountedNotFatal() async throws {
        let load = ChildProcess("liaptui-load", [
            "--url", "ws://127.0.0.1:1", "--players", "2", "--ramp-up", "0", "--duration", "2", "--settle", "0",
            "--sample-interval", "1", "--json", "-",
        ])
        try load.start()
        #expect(await load.wait(timeout: .seconds(60)) == 0)
        let output = load.log
        let json = try JSONParser.parse(String(output[output.firstIndex(of: "{")!...]))
        #expect((json["connections"]?["failed"]?.int ?? 0) >= 1)
        #expect((json["errors"]?["client"]?["connect_failed"]?.int ?? 0) >= 1)
        #expect(json["games"]?["completed"]?.int == 0)
    }

    @Test func badConfigurationExitsWithAOneLineReason() async throws {
        for (arguments, reason) in [
            (["--players", "0"], "--players must be at least 1"),
            (["--url", "http://127.0.0.1:5050"], "--url must start with ws:// or wss://"),
            (["--humans-per-room", "5"], "--humans-per-room must be 1-4"),
        ] {
            let load = ChildProcess("liaptui-load", arguments)
            try load.start()
            let status = await load.wait(timeout: .seconds(30))
            #expect(status != nil && status != 0)
            #expect(load.log.contains(reason), "\(arguments): \(load.log)")
        }
        let env = ChildProcess("liaptui-load", [], environment: ["LIAPTUI_LOAD_PLAYERS": "many"])
        try env.start()
        #expect(await env.wait(timeout: .seconds(30)) != 0)
        #expect(env.log.contains("LIAPTUI_LOAD_PLAYERS must be a number"))
        let help = ChildProcess("liaptui-load", ["--help"])
        try help.start()
        #expect(await help.wait(timeout: .seconds(30)) == 0)
        #expect(help.log.contains("--think-ms") && help.log.contains("LIAPTUI_LOAD_URL"))
    }
}
