import Foundation
import JSONCore
import LiapTuiClient
import Testing
import TestSupport

@Suite(.serialized) struct GameplayTests {
    @Test func humanWithThreeBotsPlaysACompleteGame() async throws {
        let server = try await GameServerProcess()
        let alice = try await Players.createRoom(server, name: "Alice")
        #expect(alice.slot == 1)
        for slot in 2...4 { alice.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await alice.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        alice.client.send("start_game")
        let started = try await alice.client.waitFor("game_started")
        #expect(started["players"]?.array?.count == 4)
        let record = try await Players.play(alice.client)
        let ended = try #require(record.ended)
        #expect(ended["final_scores"]?.object?.count == 4)
        #expect((ended["winners"]?.array?.count ?? 0) >= 1)
        #expect(record.moves > 8)
        // Each state carries only this player's hand; the others are counts.
        for state in record.states {
            let players = try #require(state["players"]?.object)
            #expect(state["hand"]?.array?.count == players["Alice"]?["hand_size"]?.int)
            #expect(players.values.allSatisfy { $0["hand"] == nil })
        }
        let last = try #require(record.states.last)
        #expect(last["phase"]?.string == "game_over")
        let top = ended["final_scores"]!.object!.values.compactMap(\.int).max()!
        #expect(top >= 50 || last["round"]?.int == 20)
        // The room is back in its waiting state with the same four seats.
        let room = try await alice.client.waitFor("room_update")
        #expect(room["started"]?.bool == false)
    }

    @Test func fourBotsPlayAGameToTheEnd() async throws {
        // The host's seat is taken by a bot when the host does not come back: four bots play on.
        // The grace also holds the seat between room_created and client_ready: long enough for a busy machine.
        let server = try await GameServerProcess(arguments: ["--reconnect-grace", "3"])
        let host = try await Players.createRoom(server, name: "Host")
        for slot in 2...4 { host.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await host.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        host.client.send("start_game")
        try await host.client.waitFor("game_started")
        host.client.close()
        try await host.client.waitUntilClosed()
        // The metrics lines count the game as started and finished.
        let deadline = ContinuousClock.now + .seconds(120)
        var finished = 0, started = 0
        while ContinuousClock.now < deadline && finished == 0 {
            try await Task.sleep(for: .milliseconds(500))
            let lines = MetricsLines.read(server.logDirectory)
            finished = lines.reduce(0) { $0 + ($1["games_finished"]?.int ?? 0) }
            started = lines.reduce(0) { $0 + ($1["games_started"]?.int ?? 0) }
        }
        #expect(started == 1, "\(MetricsLines.read(server.logDirectory).count) metrics lines")
        #expect(finished == 1)
        // Nobody is left, so the room is gone.
        let health = try await HTTP.get(server.baseURL + "/api/health/detailed")
        let stats = try JSONParser.parse(health.body)["game_stats"]
        #expect(stats?["active_rooms"]?.int == 0, "\(health.body)")
        #expect(stats?["active_games"]?.int == 0, "\(health.body)")
    }

    @Test func playerDropsMidGameAndResumesWithTheToken() async throws {
        let server = try await GameServerProcess(arguments: ["--reconnect-grace", "30"])
        let alice = try await Players.createRoom(server, name: "Alice")
        for slot in 2...4 { alice.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await alice.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        alice.client.send("start_game")
        // Play into the turn phase of round 1, then drop while it is our move.
        let before = try await Players.play(alice.client) { state in
            state["phase"]?.string == "turn" && (state["allowed_actions"]?.array?.isEmpty == false)
                && (state["hand"]?.array?.count ?? 8) < 8
        }
        let stateAtDrop = try #require(before.states.last)
        alice.client.close()
        try await alice.client.waitUntilClosed()
        try await Task.sleep(for: .milliseconds(300))

        let back = try await Players.enter(server, roomID: alice.roomID, token: alice.token, name: "Alice", slot: alice.slot)
        let resumed = try await back.client.waitFor("phase_change")
        // The game waited for us: same round, same hand, same point in the game.
        #expect(resumed["round"] == stateAtDrop["round"])
        #expect(resumed["hand"] == stateAtDrop["hand"])
        #expect(resumed["sequence"] == stateAtDrop["sequence"])
        #expect(resumed["allowed_actions"]?.array?.contains("play") == true)
        // A wrong token gets nothing.
        let stranger = try await GameClient.connect(url: server.wsURL("/ws/\(alice.roomID)"))
        stranger.send("client_ready", ["token": "00000000000000000000000000000000"])
        let refused = try await stranger.waitFor("error")
        #expect(refused["code"]?.string == "invalid_token")
        // Finish from the resumed state.
        if let move = AutoPlayer.move(for: resumed) { back.client.send(move.event, move.data) }
        let rest = try await Players.play(back.client)
        #expect(rest.ended != nil)
    }

    @Test func aBotTakesTheSeatAfterTheGracePeriodAndThePlayerCanReclaimIt() async throws {
        // Bots slow enough that the game is still on when Bob returns.
        let server = try await GameServerProcess(arguments: ["--reconnect-grace", "2", "--bot-delay-ms", "100"])
        let alice = try await Players.createRoom(server, name: "Alice")
        let bob = try await Players.joinRoom(server, roomID: alice.roomID, name: "Bob")
        for slot in 3...4 { alice.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await alice.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        alice.client.send("start_game")
        try await bob.client.waitFor("game_started")
        bob.client.close()
        // Alice sees Bob drop, then a bot take his seat after the grace period.
        let dropped = try await alice.client.waitFor("player_disconnected")
        #expect(dropped["player"]?.string == "Bob")
        async let alicePlays = Players.play(alice.client) { _ in false }
        // Bob comes back after the bot took over and gets his seat back.
        try await Task.sleep(for: .seconds(4))  // twice the grace
        let replaced = try await GameClient.connect(url: server.wsURL("/ws/\(alice.roomID)"))
        replaced.send("client_ready", ["token": .string(bob.token)])
        let bobState = try await replaced.waitFor("phase_change")
        #expect(bobState["my_name"]?.string == "Bob")
        #expect(bobState["players"]?["Bob"]?["is_bot"]?.bool == false)
        // If the game now waits for Bob, this state is the only prompt he gets: act on it.
        if let move = AutoPlayer.move(for: bobState) { replaced.send(move.event, move.data) }
        async let bobPlays = Players.play(replaced)
        let (a, b) = try await (alicePlays, bobPlays)
        #expect(a.ended != nil && b.ended != nil)
        #expect(a.ended?["final_scores"] == b.ended?["final_scores"])
        let history = alice.client.history.withLock { $0 }
        #expect(history.contains { $0["event"]?.string == "player_replaced_by_bot" })
        #expect(history.contains { $0["event"]?.string == "player_reconnected" })
    }
}

/// Reads every metrics line the server wrote.
enum MetricsLines {
    static func read(_ directory: URL) -> [JSON] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".jsonl") }.sorted().flatMap { name in
            let text = (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
        }
    }
}
