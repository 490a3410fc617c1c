import Foundation
import Testing
import TestSupport

@Suite struct BrowserClientTests {
    @Test func aCompleteGameAgainstThreeBotsThroughThePage() async throws {
        let server = try await GameServerProcess(arguments: ["--bot-delay-ms", "20"])
        let screenshot = server.directory.appendingPathComponent("game-over.png").path
        let (status, output) = try await BrowserScript.run("play_vs_bots.py", [server.baseURL + "/", screenshot])
        #expect(status == 0, "\(output.suffix(3000))")
        #expect(output.contains("game over:"))
        #expect(FileManager.default.fileExists(atPath: screenshot))
        // The server saw the game from start to finish.
        let metrics = try await HTTP.get(server.baseURL + "/metrics")
        #expect(metrics.body.contains("liaptui_games_finished_total 1\n"))
    }

    @Test func thePageShowsTheTurnTimerAndGivesTheSeatBack() async throws {
        let server = try await GameServerProcess(arguments: ["--bot-delay-ms", "250", "--turn-timeout", "4"])
        let (status, output) = try await BrowserScript.run("turn_timer.py", [server.baseURL + "/"])
        #expect(status == 0, "\(output.suffix(3000))")
        #expect(output.contains("turn timer:"))
        let metrics = try await HTTP.get(server.baseURL + "/metrics")
        #expect(!metrics.body.contains("liaptui_turn_timeouts_total 0\n"))
    }
}
