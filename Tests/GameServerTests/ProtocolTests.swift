import Foundation
import JSONCore
import LiapTuiClient
import Testing
import TestSupport

/// docs/PROTOCOL.md's promises to client authors: turn timers, player IDs, request IDs and versions.
@Suite(.serialized) struct ProtocolTests {
    /// A room of `name` and three bots, the game started.
    private func gameWithBots(_ server: GameServerProcess, name: String = "Alice") async throws -> SeatedPlayer {
        let player = try await Players.createRoom(server, name: name)
        for slot in 2...4 { player.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await player.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        player.client.send("start_game")
        try await player.client.waitFor("game_started")
        return player
    }

    private func seat(_ room: JSON, _ slot: Int) -> JSON { room["players"]?.array?[slot - 1] ?? .null }

    @Test func aConnectedPlayerWhoNeverMovesStillFinishesTheGame() async throws {
        let server = try await GameServerProcess(arguments: ["--turn-timeout", "0.3"])
        let alice = try await gameWithBots(server)
        // The state that waits on Alice says so, and when her time runs out.
        let waiting = try await alice.client.waitFor("phase_change", timeout: .seconds(60)) { $0["current_player"]?.string == "Alice" }
        let myID = try #require(waiting["my_player_id"]?.string)
        #expect(waiting["current_player_id"]?.string == myID)
        #expect(waiting["turn_timeout_s"]?.number == 0.3)
        let deadline = try #require(waiting["turn_deadline"]?.int)
        #expect(abs(Double(deadline) / 1000 - Date().timeIntervalSince1970) < 30)
        #expect((0...300).contains(waiting["turn_remaining_ms"]?.int ?? -1))

        let timedOut = try await alice.client.waitFor("turn_timeout", timeout: .seconds(30))
        #expect(timedOut["player_id"]?.string == myID)
        #expect(timedOut["slot"]?.int == 1)
        let away = try await alice.client.waitFor("room_update") { self.seat($0, 1)["stand_in"]?.bool == true }
        #expect(seat(away, 1)["player_id"]?.string == myID, "the seat stays Alice's")
        #expect(seat(away, 1)["is_connected"]?.bool == true)

        // Alice never moves again; her bot finishes the game for her.
        let ended = try await alice.client.waitFor("game_ended", timeout: .seconds(120))
        #expect(ended["player_ids"]?["Alice"]?.string == myID)
        let after = try await alice.client.waitFor("room_update") { $0["started"]?.bool == false }
        #expect(seat(after, 1)["stand_in"]?.bool == false)
        #expect(after["host_id"]?.string == myID)
        let metrics = try await HTTP.get(server.baseURL + "/metrics")
        let counted = metrics.body.split(separator: "\n").first { $0.hasPrefix("liaptui_turn_timeouts_total ") }
        #expect((counted.flatMap { Double($0.split(separator: " ")[1]) } ?? 0) >= 1, "\(counted ?? "no liaptui_turn_timeouts_total")")
    }

    @Test func aPlayerTakesTheSeatBackByActing() async throws {
        // Bots at a human pace, so the game is far from over when Alice comes back.
        let server = try await GameServerProcess(arguments: ["--turn-timeout", "3", "--bot-delay-ms", "200"])
        let alice = try await gameWithBots(server)
        try await alice.client.waitFor("turn_timeout", timeout: .seconds(60))
        try await alice.client.waitFor("room_update") { self.seat($0, 1)["stand_in"]?.bool == true }
        // Asking for the state is not acting.
        alice.client.send("get_room_state", id: "look")
        let looked = try await alice.client.waitForMessage("room_update") { $0["id"]?.string == "look" }
        #expect(seat(looked["data"] ?? .null, 1)["stand_in"]?.bool == true)
        // Any other message is: the seat is Alice's to play again, refused or not.
        alice.client.send("add_bot", ["slot_id": 2])
        try await alice.client.waitFor("room_update") { self.seat($0, 1)["stand_in"]?.bool == false }
        let refused = try await alice.client.waitFor("error")
        #expect(refused["code"]?.string == "game_in_progress")
        // Her next move is hers to make, and it is accepted.
        alice.client.send("get_room_state", id: "now")
        var turn = try await alice.client.waitForMessage("phase_change") { $0["id"]?.string == "now" }["data"] ?? .null
        if turn["allowed_actions"]?.array?.isEmpty != false {
            turn = try await alice.client.waitFor("phase_change", timeout: .seconds(60)) { $0["allowed_actions"]?.array?.isEmpty == false }
        }
        #expect(turn["players"]?["Alice"]?["stand_in"]?.bool == false)
        let move = try #require(AutoPlayer.move(for: turn))
        alice.client.send(move.event, move.data, id: "mine")
        let answer = try await alice.client.waitForMessage("phase_change") { $0["id"]?.string == "mine" }
        #expect((answer["data"]?["sequence"]?.int ?? 0) > (turn["sequence"]?.int ?? 0))
    }

    @Test func requestIDsComeBackOnEveryDirectAnswer() async throws {
        let server = try await GameServerProcess()
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        lobby.send("ping", ["timestamp": 7], id: "p-1")
        let pong = try await lobby.waitForMessage("pong")
        #expect(pong["id"]?.string == "p-1")
        #expect(pong["data"]?["timestamp"]?.int == 7)
        lobby.send("request_room_list", id: 12)
        #expect(try await lobby.waitForMessage("room_list_update") { $0["id"] != nil }["id"]?.int == 12)
        lobby.send("create_room", ["player_name": "Alice"], id: "c")
        let created = try await lobby.waitForMessage("room_created")
        #expect(created["id"]?.string == "c")
        // Errors echo the id, including errors about the data of a message that parsed.
        lobby.send("join_room", ["room_id": "NOSUCHROOM234567", "player_name": "Bob"], id: "j")
        let missing = try await lobby.waitForMessage("error")
        #expect(missing["id"]?.string == "j")
        #expect(missing["data"]?["code"]?.string == "room_not_found")
        lobby.sendRaw(#"{"event":"create_room","data":[1],"id":"bad-data"}"#)
        let badData = try await lobby.waitForMessage("error")
        #expect(badData["id"]?.string == "bad-data")
        #expect(badData["data"]?["code"]?.string == "invalid_data")
        // An id that is neither a short string nor an integer is refused, and not echoed.
        lobby.sendRaw(#"{"event":"ping","id":{"n":1}}"#)
        let badID = try await lobby.waitForMessage("error")
        #expect(badID["id"] == nil)
        #expect(badID["data"]?["code"]?.string == "invalid_data")
        lobby.sendRaw(#"{"event":"ping","id":"x"#)
        let notJSON = try await lobby.waitForMessage("error")
        #expect(notJSON["id"] == nil && notJSON["data"]?["code"]?.string == "invalid_json")

        // In the room: client_ready's answers carry it for this player only.
        let roomID = created["data"]!["room_id"]!.string!, token = created["data"]!["token"]!.string!
        let alice = try await GameClient.connect(url: server.wsURL("/ws/\(roomID)"))
        alice.send("client_ready", ["token": .string(token)], id: "ready")
        #expect(try await alice.waitForMessage("room_update")["id"]?.string == "ready")
        for slot in 2...4 { alice.send("add_bot", ["slot_id": JSON(slot)]) }
        try await alice.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        alice.send("start_game", id: "go")
        try await alice.waitFor("game_started")
        // A move's answer is the state it produced; a refused move's answer is the error.
        var answered = false
        for _ in 0..<400 where !answered {
            guard let message = await alice.next(timeout: .seconds(10)) else { break }
            guard message["event"]?.string == "phase_change", let data = message["data"],
                  let move = AutoPlayer.move(for: data) else { continue }
            #expect(message["id"] == nil, "a state nobody asked for carries no id")
            alice.send(move.event, move.data, id: "move-1")
            let answer = try await alice.waitForMessage("phase_change") { $0["id"] != nil }
            #expect(answer["id"]?.string == "move-1")
            #expect((answer["data"]?["sequence"]?.int ?? 0) > (data["sequence"]?.int ?? 0))
            alice.send(move.event, move.data, id: 99)
            let again = try await alice.waitForMessage("error")
            #expect(again["id"]?.int == 99)
            answered = true
        }
        #expect(answered)
    }

    @Test func clientsStateTheirVersionAndTheServerAnswersWithItsOwn() async throws {
        let server = try await GameServerProcess()
        let v2 = try await GameClient.connect(url: server.wsURL("/ws/lobby?protocol=2"))
        let welcome = try await v2.waitForMessage("welcome")
        #expect(welcome["data"]?["protocol"]?.int == 2)
        #expect(welcome["data"]?["server_protocol"]?.int == 2)
        #expect(welcome["data"]?["supported"]?.array?.compactMap(\.int) == [1, 2])
        #expect(welcome["data"]?["instance_id"]?.string == server.instanceID)
        #expect(welcome["id"] == nil)

        // A version the server does not speak: the error names the ones it does, then the socket closes.
        // hummingbird's WebSocket client sometimes loses frames that arrive together with the 101 answer when the
        // server closes at once (a raw socket always gets both the error and the close frame from the server, even
        // under load), so a refusal is looked for on up to three connections.
        var v9 = try await GameClient.connect(url: server.wsURL("/ws/lobby?protocol=9"))
        var answer = try? await v9.waitFor("error", timeout: .seconds(10))
        for _ in 0..<2 where answer == nil {
            v9 = try await GameClient.connect(url: server.wsURL("/ws/lobby?protocol=9"))
            answer = try? await v9.waitFor("error", timeout: .seconds(10))
        }
        let refused = try #require(answer)
        #expect(refused["code"]?.string == "unsupported_protocol")
        #expect(refused["supported"]?.array?.compactMap(\.int) == [1, 2])
        try await v9.waitUntilClosed(timeout: .seconds(30))
        #expect(v9.closeCode == 1008)

        // In client_ready, with its request id; unsupported there is an error and the socket stays.
        let alice = try await Players.createRoom(server, name: "Alice")
        alice.client.send("client_ready", ["token": .string(alice.token), "protocol": "3"], id: 5)
        let wrong = try await alice.client.waitForMessage("error")
        #expect(wrong["id"]?.int == 5 && wrong["data"]?["code"]?.string == "unsupported_protocol")
        alice.client.send("client_ready", ["token": .string(alice.token), "protocol": 1], id: 6)
        let v1Welcome = try await alice.client.waitForMessage("welcome")
        #expect(v1Welcome["id"]?.int == 6 && v1Welcome["data"]?["protocol"]?.int == 1)

        // Protocol 1 keeps every scored round in every state; protocol 2 only in full states.
        let bob = try await Players.joinRoom(server, roomID: alice.roomID, name: "Bob")
        bob.client.send("client_ready", ["token": .string(bob.token), "protocol": 2])
        try await bob.client.waitFor("welcome")
        for slot in 3...4 { alice.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await alice.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        alice.client.send("start_game")
        let v1State = try await alice.client.waitFor("phase_change")
        let v2State = try await bob.client.waitFor("phase_change")
        #expect(v1State["round_results"]?.array != nil)
        #expect(v2State["round_results"] == nil)
        bob.client.send("get_room_state")
        #expect(try await bob.client.waitFor("phase_change") { $0["round_results"] != nil }["round_results"]?.array != nil)
    }

    @Test func playerIDsStayWithThePlayerThroughBotsAndReconnects() async throws {
        let server = try await GameServerProcess(arguments: ["--reconnect-grace", "1", "--turn-timeout", "0"])
        let alice = try await Players.createRoom(server, name: "Alice")
        let bob = try await Players.joinRoom(server, roomID: alice.roomID, name: "Bob")
        for slot in 3...4 { alice.client.send("add_bot", ["slot_id": JSON(slot)]) }
        let full = try await alice.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        let aliceID = try #require(seat(full, 1)["player_id"]?.string)
        let bobID = try #require(seat(full, 2)["player_id"]?.string)
        #expect(aliceID != bobID)
        #expect(seat(full, 3)["is_bot"]?.bool == true && seat(full, 3)["stand_in"]?.bool == false)
        #expect(full["host_id"]?.string == aliceID)

        // The same name in another room is another player.
        let otherAlice = try await Players.createRoom(server, name: "Alice")
        otherAlice.client.send("get_room_state")
        let other = try await otherAlice.client.waitFor("room_update")
        #expect(seat(other, 1)["player_id"]?.string != aliceID)

        alice.client.send("start_game")
        let started = try await alice.client.waitFor("game_started")
        #expect(started["player_ids"]?.array?.compactMap(\.string).prefix(2) == [aliceID, bobID])

        // Bob drops past the grace: a bot stands in under his ID, and he takes it back under the same ID.
        bob.client.close()
        let dropped = try await alice.client.waitFor("player_disconnected")
        #expect(dropped["player_id"]?.string == bobID)
        let replaced = try await alice.client.waitFor("player_replaced_by_bot", timeout: .seconds(30))
        #expect(replaced["player_id"]?.string == bobID)
        let standIn = try await alice.client.waitFor("room_update") { self.seat($0, 2)["stand_in"]?.bool == true }
        #expect(seat(standIn, 2)["player_id"]?.string == bobID)
        #expect(seat(standIn, 2)["is_bot"]?.bool == true)
        let back = try await Players.enter(server, roomID: alice.roomID, token: bob.token, name: "Bob", slot: 2)
        let returned = try await alice.client.waitFor("player_reconnected")
        #expect(returned["player_id"]?.string == bobID)
        let state = try await back.client.waitFor("phase_change")
        #expect(state["my_player_id"]?.string == bobID)
        #expect(state["players"]?["Bob"]?["stand_in"]?.bool == false)

        // Alice leaves mid-game: a bot plays her seat for good, still under her ID; Bob becomes host.
        alice.client.send("leave_room")
        let left = try await back.client.waitFor("player_left")
        #expect(left["player_id"]?.string == aliceID && left["replaced_by_bot"]?.bool == true)
        let host = try await back.client.waitFor("host_changed")
        #expect(host["old_host_id"]?.string == aliceID && host["new_host_id"]?.string == bobID)
        let after = try await back.client.waitFor("room_update") { self.seat($0, 1)["stand_in"]?.bool == true }
        #expect(seat(after, 1)["player_id"]?.string == aliceID)
        #expect(seat(after, 1)["is_bot"]?.bool == true)
    }

    @Test func gameOverAndOutOfRangeDeclarationsHaveTheirOwnCodes() async throws {
        let server = try await GameServerProcess(arguments: ["--turn-timeout", "0"])
        let alice = try await gameWithBots(server)
        // Out of range is the game's rule, once it is Alice's turn to declare; a non-integer is a format error.
        let record = try await Players.play(alice.client) { $0["allowed_actions"]?.array?.contains("declare") == true }
        let asked = try #require(record.states.last)
        alice.client.send("declare", ["value": "three"])
        #expect(try await alice.client.waitFor("error")["code"]?.string == "invalid_data")
        for value in [9, -1] {
            alice.client.sendRaw(#"{"event":"declare","data":{"value":\#(value)}}"#)
            let error = try await alice.client.waitFor("error")
            #expect(error["code"]?.string == "declaration_out_of_range", "\(error.text)")
        }
        // Play on to the end, starting with a legal answer to the state that asked.
        let move = try #require(AutoPlayer.move(for: asked))
        alice.client.send(move.event, move.data)
        try await Players.play(alice.client, actedOn: asked["sequence"]?.int ?? 0)
        alice.client.send("declare", ["value": 1])
        #expect(try await alice.client.waitFor("error")["code"]?.string == "game_over")
        alice.client.send("play", ["indices": [0]])
        #expect(try await alice.client.waitFor("error")["code"]?.string == "game_over")
        // Before any game: not started.
        let bob = try await Players.createRoom(server, name: "Bob")
        bob.client.send("declare", ["value": 1])
        #expect(try await bob.client.waitFor("error")["code"]?.string == "game_not_started")
    }
}
