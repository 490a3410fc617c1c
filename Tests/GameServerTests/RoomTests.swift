import Foundation
import JSONCore
import LiapTuiClient
import Testing
import TestSupport

@Suite(.serialized) struct RoomTests {
    @Test func lobbyListsJoinableRoomsLive() async throws {
        let server = try await GameServerProcess()
        let watcher = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        let initial = try await watcher.waitFor("room_list_update")
        #expect(initial["rooms"]?.array?.isEmpty == true)
        let alice = try await Players.createRoom(server, name: "Alice")
        let listed = try await watcher.waitFor("room_list_update") { ($0["rooms"]?.array?.count ?? 0) == 1 }
        let room = listed["rooms"]!.array![0]
        #expect(room["room_id"]?.string == alice.roomID)
        #expect(room["host_name"]?.string == "Alice")
        #expect(room["occupied_slots"]?.int == 1)
        // Filling the room and starting the game takes it off the list.
        for slot in 2...4 { alice.client.send("add_bot", ["slot_id": JSON(slot)]) }
        alice.client.send("start_game")
        _ = try await watcher.waitFor("room_list_update") { $0["rooms"]?.array?.isEmpty == true }
    }

    @Test func roomIDsAreLongAndRandom() async throws {
        let server = try await GameServerProcess()
        var ids = Set<String>()
        for i in 0..<5 {
            let player = try await Players.createRoom(server, name: "P\(i)")
            #expect(player.roomID.count == 16)
            #expect(player.roomID.allSatisfy { "ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains($0) })
            #expect(player.token.count == 32)
            ids.insert(player.roomID)
        }
        #expect(ids.count == 5)
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        lobby.send("join_room", ["room_id": "ROOM123", "player_name": "Mallory"])
        #expect(try await lobby.waitFor("error")["code"]?.string == "room_not_found")
    }

    @Test func hostHandsOverAndTheLastHumanClosesTheRoom() async throws {
        let server = try await GameServerProcess()
        let alice = try await Players.createRoom(server, name: "Alice")
        let bob = try await Players.joinRoom(server, roomID: alice.roomID, name: "Bob")
        #expect(bob.slot == 2)
        alice.client.send("add_bot", ["slot_id": 3])
        let withBot = try await bob.client.waitFor("room_update") { $0["occupied_slots"]?.int == 3 }
        #expect(withBot["players"]?.array?[2]["is_bot"]?.bool == true)
        #expect(withBot["host_name"]?.string == "Alice")

        alice.client.send("leave_room")
        let handover = try await bob.client.waitFor("host_changed")
        #expect(handover["old_host"]?.string == "Alice")
        #expect(handover["new_host"]?.string == "Bob")
        let left = bob.client.history.withLock { $0 }.first { $0["event"]?.string == "player_left" }
        #expect(left?["data"]?["player_name"]?.string == "Alice")
        // Bob is host now: he may remove the bot.
        bob.client.send("remove_player", ["slot_id": 3])
        let update = try await bob.client.waitFor("room_update") { $0["occupied_slots"]?.int == 1 }
        #expect(update["host_name"]?.string == "Bob")

        bob.client.send("leave_room")
        try await bob.client.waitFor("left_room")
        let health = try await HTTP.get(server.baseURL + "/api/health/detailed")
        #expect(try JSONParser.parse(health.body)["game_stats"]?["active_rooms"]?.int == 0)
        // The room is gone for anyone holding its address.
        let late = try await GameClient.connect(url: server.wsURL("/ws/\(alice.roomID)"))
        late.send("client_ready", ["token": .string(bob.token)])
        #expect(try await late.waitFor("error")["code"]?.string == "room_not_found")
    }

    @Test func otherPlayersAreToldWhenTheRoomCloses() async throws {
        let server = try await GameServerProcess()
        let alice = try await Players.createRoom(server, name: "Alice")
        let bob = try await Players.joinRoom(server, roomID: alice.roomID, name: "Bob")
        alice.client.send("remove_player", ["slot_id": 2])
        let removed = try await bob.client.waitFor("removed_from_room")
        #expect(removed["reason"]?.string == "removed_by_host")
        // Removed players can no longer act in the room.
        bob.client.send("add_bot", ["slot_id": 3])
        #expect(try await bob.client.waitFor("error")["code"]?.string == "not_joined")
        // A joiner takes a bot's seat when no seat is empty.
        for slot in 2...4 { alice.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await alice.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        let carol = try await Players.joinRoom(server, roomID: alice.roomID, name: "Carol")
        #expect(carol.slot == 2)
        let full = try await alice.client.waitFor("room_update") { $0["players"]?.array?[1]["name"]?.string == "Carol" }
        #expect(full["occupied_slots"]?.int == 4)
    }

    @Test func idleRoomsAreRemoved() async throws {
        // 3 s: long enough for the host to get in on a busy machine (the room is idle until then too).
        let server = try await GameServerProcess(arguments: ["--room-idle-timeout", "3", "--reconnect-grace", "60"])
        let alice = try await Players.createRoom(server, name: "Alice")
        alice.client.close()
        try await alice.client.waitUntilClosed()
        let deadline = ContinuousClock.now + .seconds(30)
        var rooms = 1
        while rooms > 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            let health = try await HTTP.get(server.baseURL + "/api/health/detailed")
            rooms = try JSONParser.parse(health.body)["game_stats"]?["active_rooms"]?.int ?? -1
        }
        #expect(rooms == 0)
        #expect(server.child.log.contains("removing idle room"))
    }

    @Test func aSeatNobodyClaimsIsReleasedAfterTheReservation() async throws {
        let server = try await GameServerProcess(arguments: ["--seat-reservation", "1"])
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        lobby.send("create_room", ["player_name": "Ghost"])
        let created = try await lobby.waitFor("room_created")
        let roomID = created["room_id"]!.string!
        try await lobby.waitFor("room_list_update") { $0["rooms"]?.array?.contains { $0["room_id"]?.string == roomID } == true }
        // Ghost never opens the room socket: its seat is released, and the room, empty, leaves the lobby.
        try await lobby.waitFor("room_list_update", timeout: .seconds(30)) { $0["rooms"]?.array?.isEmpty == true }
        let ghost = try await GameClient.connect(url: server.wsURL("/ws/\(roomID)"))
        ghost.send("client_ready", ["token": created["token"]!])
        let refused = try await ghost.waitFor("error")
        #expect(refused["code"]?.string == "room_not_found")
    }
}
