import Foundation
import JSONCore
import LiapTuiClient
import Synchronization
import Testing
import TestSupport

/// Every kind of bad input gets an `error` with a stable code, and neither the
/// connection nor the game suffers: each case is followed by a ping, and the
/// game is played to its end afterwards.
@Suite(.serialized) final class BadInputTests: Sendable {
    /// Errors this test provoked, to compare with the server's counter.
    let provoked = Mutex(0)

    func expectError(_ client: GameClient, _ code: String, after send: () -> Void,
                     sourceLocation: SourceLocation = #_sourceLocation) async throws {
        provoked.withLock { $0 += 1 }
        send()
        let error = try await client.waitFor("error")
        #expect(error["code"]?.string == code, sourceLocation: sourceLocation)
        #expect((error["message"]?.string ?? "").isEmpty == false, sourceLocation: sourceLocation)
        // The connection is still good.
        client.send("ping", ["timestamp": 42])
        let pong = try await client.waitFor("pong")
        #expect(pong["timestamp"]?.int == 42, sourceLocation: sourceLocation)
    }

    @Test func badMessagesGetErrorsAndTheGameGoesOn() async throws {
        let server = try await GameServerProcess()
        let alice = try await Players.createRoom(server, name: "Alice")
        let bob = try await Players.joinRoom(server, roomID: alice.roomID, name: "Bob")
        let c = alice.client

        // Malformed and mistyped messages, in the lobby and in a room.
        try await expectError(c, "invalid_json") { c.sendRaw(#"{"event": "add_bot", "data": {"#) }
        try await expectError(c, "invalid_json") { c.sendRaw("not json at all") }
        try await expectError(c, "invalid_json") { c.sendRaw(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) }
        try await expectError(c, "invalid_message") { c.sendRaw("[1, 2, 3]") }
        try await expectError(c, "invalid_message") { c.sendRaw(#"{"data": {}}"#) }
        try await expectError(c, "invalid_message") { c.sendRaw(#"{"event": 7}"#) }
        try await expectError(c, "invalid_data") { c.sendRaw(#"{"event": "add_bot", "data": [3]}"#) }
        try await expectError(c, "unknown_event") { c.send("launch_missiles") }
        try await expectError(c, "invalid_data") { c.send("add_bot", ["slot_id": "three"]) }
        try await expectError(c, "invalid_data") { c.send("add_bot", ["slot_id": 9]) }
        try await expectError(c, "invalid_data") { c.send("add_bot", ["slot_id": 2.5]) }
        try await expectError(c, "message_too_large") {
            c.send("add_bot", ["slot_id": 3, "padding": .string(String(repeating: "x", count: 20_000))])
        }
        try await expectError(c, "binary_not_supported") { c.sendBinary(Array(#"{"event":"ping"}"#.utf8)) }
        try await expectError(c, "game_not_started") { c.send("declare", ["value": 1]) }
        try await expectError(c, "not_enough_players") { c.send("start_game") }
        try await expectError(c, "slot_occupied") { c.send("add_bot", ["slot_id": 2]) }

        // Admin actions by someone who is not the host.
        try await expectError(bob.client, "not_host") { bob.client.send("add_bot", ["slot_id": 3]) }
        try await expectError(bob.client, "not_host") { bob.client.send("start_game") }
        try await expectError(bob.client, "not_host") { bob.client.send("remove_player", ["slot_id": 1]) }
        try await expectError(c, "cannot_remove_host") { c.send("remove_player", ["slot_id": 1]) }
        try await expectError(c, "slot_empty") { c.send("remove_player", ["slot_id": 4]) }

        for slot in 3...4 { c.send("add_bot", ["slot_id": JSON(slot)]) }
        try await c.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        c.send("start_game")
        try await c.waitFor("game_started")
        try await expectError(c, "game_in_progress") { c.send("start_game") }
        try await expectError(c, "game_in_progress") { c.send("add_bot", ["slot_id": 3]) }

        // The test moves Bob itself, so that while it is his turn nothing changes (the bots wait for him too)
        // and the out-of-turn checks cannot race a move, however slow the machine.
        /// The current state: errors and pongs consumed by the checks may have hidden the latest one.
        func currentState(_ client: GameClient) async throws -> JSON {
            // Older messages first: a stale state must not be mistaken for the answer.
            var stale = 0
            while stale < 10_000, await client.next(timeout: .milliseconds(20)) != nil { stale += 1 }
            client.send("get_room_state")
            try await client.waitFor("room_update")
            return try await client.waitFor("phase_change")
        }
        func currentState() async throws -> JSON { try await currentState(c) }
        // Game actions out of turn, with pieces not held, of the wrong count.
        var state = try await currentState()
        let deadline = ContinuousClock.now + .seconds(60)
        var checkedNotHeld = false, checkedOutOfTurn = false, checkedIndex = false
        while !(checkedNotHeld && checkedOutOfTurn && checkedIndex) && ContinuousClock.now < deadline {
            let allowed = state["allowed_actions"]?.array?.compactMap(\.string) ?? []
            if state["current_player"]?.string == "Bob" && !checkedOutOfTurn {
                try await expectError(c, state["phase"]?.string == "turn" ? "not_your_turn" : "wrong_phase") {
                    c.send("play", ["indices": [0]])
                }
                checkedOutOfTurn = true
            }
            if allowed.contains("play") && !checkedNotHeld {
                let hand = Set(state["hand"]!.array!.compactMap(\.string))
                let kinds = ["GENERAL", "ADVISOR", "ELEPHANT", "CHARIOT", "HORSE", "CANNON", "SOLDIER"].flatMap { [$0 + "_RED", $0 + "_BLACK"] }
                let missing = try #require(kinds.first { !hand.contains($0) })
                let need = state["phase_data"]?["required_piece_count"]?.int ?? 1
                try await expectError(c, "pieces_not_in_hand") {
                    c.send("play", ["pieces": JSON(Array(repeating: missing, count: need))])
                }
                try await expectError(c, "invalid_data") { c.send("play", ["indices": [0, 0]]) }
                try await expectError(c, "invalid_data") { c.send("play", ["indices": [99]]) }
                // Only a follower has a required count; a leader's extra piece is an invalid set instead.
                if let required = state["phase_data"]?["required_piece_count"]?.int, required > 0, required < 6,
                   state["hand"]!.array!.count > required {
                    let need = required
                    try await expectError(c, "wrong_piece_count") { c.send("play", ["indices": JSON(Array(0...need))]) }
                }
                checkedNotHeld = true
            }
            if allowed.contains("declare") && !checkedIndex {
                try await expectError(c, "declaration_out_of_range") { c.sendRaw(#"{"event":"declare","data":{"value":9}}"#) }
                try await expectError(c, "invalid_data") { c.send("declare", ["value": "2"]) }
                checkedIndex = true
            }
            if let move = AutoPlayer.move(for: try await currentState()) {
                c.send(move.event, move.data)
            } else if let move = AutoPlayer.move(for: try await currentState(bob.client)) {
                bob.client.send(move.event, move.data)
            }
            try await Task.sleep(for: .milliseconds(50))
            state = try await currentState()
        }
        #expect(checkedNotHeld && checkedOutOfTurn && checkedIndex)

        // After all that, both players finish the game.
        if let move = AutoPlayer.move(for: try await currentState()) { c.send(move.event, move.data) }
        if let move = AutoPlayer.move(for: try await currentState(bob.client)) { bob.client.send(move.event, move.data) }
        async let bobGame = Players.play(bob.client)
        let ra = try await Players.play(alice.client)
        let rb = try await bobGame
        #expect(ra.ended != nil && rb.ended != nil)

        // The errors were counted.
        let metrics = try await HTTP.get(server.baseURL + "/metrics")
        let errorsLine = metrics.body.split(separator: "\n").first { $0.hasPrefix("liaptui_errors_total ") }!
        #expect(Int(Double(errorsLine.split(separator: " ")[1])!) == provoked.withLock { $0 })
    }

    @Test func rateLimitDropsTheExcessAndKeepsTheConnection() async throws {
        let server = try await GameServerProcess(arguments: ["--rate-limit", "5"])  // burst 15
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        _ = try await lobby.waitFor("room_list_update")
        for i in 0..<60 { lobby.send("ping", ["timestamp": JSON(i)]) }
        let limited = try await lobby.waitFor("error")
        #expect(limited["code"]?.string == "rate_limited")
        try await Task.sleep(for: .seconds(1.5))
        lobby.send("ping", ["timestamp": 1000])
        let pong = try await lobby.waitFor("pong") { $0["timestamp"]?.int == 1000 }
        #expect(pong["server_time"]?.number != nil)
        let pongs = lobby.history.withLock { $0.filter { $0["event"]?.string == "pong" }.count }
        #expect(pongs >= 15 && pongs < 60)
        let metrics = try await HTTP.get(server.baseURL + "/metrics")
        #expect(metrics.body.contains("liaptui_rate_limited_total"))
        #expect(!metrics.body.contains("liaptui_rate_limited_total 0\n"))
    }

    @Test func playerNamesAreValidated() async throws {
        let server = try await GameServerProcess()
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        for bad in ["", "   ", "<script>alert(1)</script>", String(repeating: "a", count: 21), "tab\there", "a\"b", "emoji 🎲"] {
            lobby.send("create_room", ["player_name": .string(bad)])
            let error = try await lobby.waitFor("error")
            #expect(error["code"]?.string == "invalid_name", "\(bad)")
        }
        lobby.send("create_room", ["player_name": 12])
        #expect(try await lobby.waitFor("error")["code"]?.string == "invalid_data")
        lobby.send("create_room", ["player_name": "  Zoë   O'Brien-2 "])
        let created = try await lobby.waitFor("room_created")
        #expect(created["player_name"]?.string == "Zoë O'Brien-2")
        // Names are unique in a room, ignoring case.
        lobby.send("join_room", ["room_id": created["room_id"]!, "player_name": "zoë o'brien-2"])
        #expect(try await lobby.waitFor("error")["code"]?.string == "name_taken")
    }

    @Test func brokenFramesCloseWithTheDocumentedCodesAndFragmentsAreJoined() async throws {
        let server = try await GameServerProcess()
        let script = ChildProcess("/usr/bin/env", ["python3", BrowserScript.directory.deletingLastPathComponent()
            .appendingPathComponent("scripts/ws_close_codes.py").path, "127.0.0.1", String(server.port)])
        try script.start()
        #expect(await script.wait(timeout: .seconds(60)) == 0, "\(script.log)")
        let out = script.log
        #expect(out.contains("oversized_frame close 1009"), "\(out)")
        #expect(out.contains("stray_continuation close 1002"), "\(out)")
        #expect(out.contains("client_close close 1000"), "\(out)")
        #expect(out.contains("fragmented_message answered"), "\(out)")
        // The server lives on.
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        lobby.send("ping", ["timestamp": 1])
        _ = try await lobby.waitFor("pong")
    }
}
