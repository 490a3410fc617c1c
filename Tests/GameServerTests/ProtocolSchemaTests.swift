import Foundation
import JSONCore
import LiapTuiClient
import Testing
import TestSupport

/// docs/protocol.schema.json against what the server really sends and accepts: every message of a
/// session with complete games, two protocol versions, timeouts, drops, bots standing in and a restart
/// is checked by an independent validator (Python's jsonschema). A field the schema lacks, or a
/// required one the server leaves out, fails the test.
@Suite(.serialized) struct ProtocolSchemaTests {
    private final class Session: @unchecked Sendable {
        let server: GameServerProcess
        private(set) var clients: [GameClient] = []
        init(_ server: GameServerProcess) { self.server = server }

        func connect(_ path: String) async throws -> GameClient {
            let client = try await GameClient.connect(url: server.wsURL(path))
            clients.append(client)
            return client
        }

        /// Every message each client received and sent (through `send`: the well-formed ones), as JSON lines.
        func transcript() -> String {
            var lines: [String] = []
            for client in clients {
                for message in client.history.withLock({ $0 }) {
                    lines.append(JSON.object(["direction": "server", "message": message]).text)
                }
                for message in client.sentHistory.withLock({ $0 }) {
                    lines.append(JSON.object(["direction": "client", "message": message]).text)
                }
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    @Test func everyMessageOfCompleteGamesMatchesTheSchema() async throws {
        // The grace (15 s) holds each seat until its player connects, even on a busy CI machine; a game at the
        // bots' pace (100 ms a move, over a hundred of them, and Bob's timeouts) usually outlasts it, so Bob's
        // stand-in comes before the end (if not, his stand-in comes after it).
        let server = try await GameServerProcess(arguments: ["--turn-timeout", "2", "--reconnect-grace", "15", "--shutdown-grace", "1", "--bot-delay-ms", "100"])
        let session = Session(server)

        // The lobby, in protocol 2 and in protocol 1.
        let lobby = try await session.connect("/ws/lobby?protocol=2")
        try await lobby.waitFor("welcome")
        lobby.send("ping", ["timestamp": 42], id: "p1")
        try await lobby.waitFor("pong")
        lobby.send("request_room_list", id: 1)
        lobby.send("get_rooms")
        lobby.send("create_room", ["player_name": "Alice"], id: "c1")
        let created = try await lobby.waitFor("room_created")
        let roomID = try #require(created["room_id"]?.string)
        // Each player connects to the room at once: a seat is held only for the grace until then.
        let alice = try await session.connect("/ws/\(roomID)?protocol=2")
        alice.send("client_ready", ["token": created["token"]!])
        try await alice.waitFor("room_update")
        lobby.sendRaw(#"{"event":"create_room","data":{"player_name":"<b>"}}"#)
        try await lobby.waitFor("error") { $0["code"]?.string == "invalid_name" }
        lobby.sendRaw("{nope")
        try await lobby.waitFor("error") { $0["code"]?.string == "invalid_json" }
        lobby.send("join_room", ["room_id": "NOSUCHROOM234567", "player_name": "Bob"])
        try await lobby.waitFor("error") { $0["code"]?.string == "room_not_found" }
        // Bob in protocol 1 (a lobby that states none, then client_ready), Carol in 2 by client_ready.
        let lobby1 = try await session.connect("/ws/lobby")
        lobby1.send("join_room", ["room_id": .string(roomID), "player_name": "Bob"])
        let bobTicket = try await lobby1.waitFor("room_joined")
        var bob = try await session.connect("/ws/\(roomID)")
        bob.send("client_ready", ["token": bobTicket["token"]!, "protocol": 1], id: "b")
        try await bob.waitFor("welcome")
        try await bob.waitFor("room_update")
        lobby1.send("join_room", ["room_id": .string(roomID), "player_name": "Carol"])
        let carolTicket = try await lobby1.waitFor("room_joined")
        let carol = try await session.connect("/ws/\(roomID)")
        carol.send("client_ready", ["token": carolTicket["token"]!, "protocol": "2"])
        try await carol.waitFor("room_update")
        try await lobby1.waitFor("room_list_update") { ($0["rooms"]?.array?.first?["occupied_slots"]?.int ?? 0) == 3 }
        alice.send("add_bot", ["slot_id": 2])
        try await alice.waitFor("error") { $0["code"]?.string == "slot_occupied" }
        bob.send("add_bot", ["slot_id": 4])
        try await bob.waitFor("error") { $0["code"]?.string == "not_host" }
        alice.send("add_bot", ["slot_id": 4])
        alice.send("remove_player", ["slot_id": 3])
        try await carol.waitFor("removed_from_room")
        try await alice.waitFor("player_left")
        alice.send("add_bot", ["slot_id": 3])
        try await alice.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        // Bob opens his seat elsewhere: the old connection hears session_replaced.
        let bobElsewhere = try await session.connect("/ws/\(roomID)")
        bobElsewhere.send("client_ready", ["token": bobTicket["token"]!])
        try await bob.waitFor("session_replaced")
        bob = bobElsewhere
        try await bob.waitFor("room_update")
        alice.send("get_room_state", id: "s")
        alice.send("start_game", id: "go")
        try await alice.waitFor("game_started")

        // Alice plays a complete game. Bob never moves: his timer runs out, then he drops past the grace
        // and comes back while a bot plays for him.
        let bobBack = try await session.connect("/ws/\(roomID)")
        var actedOn = -1, aliceTimedOut = false, ended = false, bobCameBack = false
        let deadline = ContinuousClock.now + .seconds(240)
        while !ended, ContinuousClock.now < deadline {
            let message = try #require(await alice.next(timeout: .seconds(20)), "no message for 20 s")
            let data = message["data"] ?? .null
            switch message["event"]?.string {
            case "game_ended":
                ended = true
            case "player_replaced_by_bot" where data["player"]?.string == "Bob":
                bobBack.send("client_ready", ["token": bobTicket["token"]!])
                bobCameBack = true
            case "turn_timeout" where data["player"]?.string == "Bob" && !bob.isClosed:
                bob.close()
            case "turn_timeout" where data["player"]?.string == "Alice":
                aliceTimedOut = true  // a slow machine: her bot may now beat her to a move
            case "error":
                #expect(aliceTimedOut, "\(data.text)")
            case "phase_change":
                if let sequence = data["sequence"]?.int, sequence > actedOn, let move = AutoPlayer.move(for: data) {
                    actedOn = sequence
                    alice.send(move.event, move.data)
                }
            default:
                break
            }
        }
        #expect(ended)
        if !bobCameBack {
            try await alice.waitFor("player_replaced_by_bot", timeout: .seconds(30))
            bobBack.send("client_ready", ["token": bobTicket["token"]!])
        }
        try await bobBack.waitFor("room_update")
        alice.send("declare", ["value": 1])
        try await alice.waitFor("error") { $0["code"]?.string == "game_over" }
        alice.send("leave_room", id: "bye")
        try await alice.waitFor("left_room")
        try await bobBack.waitFor("host_changed")

        // A second room, where the host leaves mid-game and a bot stands in for good.
        let lobby2 = try await session.connect("/ws/lobby?protocol=2")
        lobby2.send("create_room", ["player_name": "Dave"])
        let dave = try await lobby2.waitFor("room_created")
        let room2 = try #require(dave["room_id"]?.string)
        let daveRoom = try await session.connect("/ws/\(room2)?protocol=2")
        daveRoom.send("client_ready", ["token": dave["token"]!])
        lobby2.send("join_room", ["room_id": .string(room2), "player_name": "Erin"])
        let erinTicket = try await lobby2.waitFor("room_joined")
        let erin = try await session.connect("/ws/\(room2)")
        erin.send("client_ready", ["token": erinTicket["token"]!])
        try await erin.waitFor("room_update")
        daveRoom.send("add_bot", ["slot_id": 3])
        daveRoom.send("add_bot", ["slot_id": 4])
        try await daveRoom.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        daveRoom.send("start_game")
        try await erin.waitFor("phase_change")
        daveRoom.send("leave_room")
        try await erin.waitFor("player_left") { $0["replaced_by_bot"]?.bool == true }
        try await erin.waitFor("host_changed")

        // A restart: everyone still connected hears server_shutdown.
        server.child.signal(SIGTERM)
        try await erin.waitFor("server_shutdown", timeout: .seconds(30))
        try await bobBack.waitFor("server_shutdown", timeout: .seconds(30))
        #expect(await server.child.wait(timeout: .seconds(30)) == 0)

        let file = server.directory.appendingPathComponent("protocol-transcript.jsonl")
        try Data(session.transcript().utf8).write(to: file)
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let validator = ChildProcess(BrowserScript.python, [
            repository.appendingPathComponent("Tests/scripts/validate_protocol.py").path,
            repository.appendingPathComponent("docs/protocol.schema.json").path, file.path,
        ])
        try validator.start()
        let status = await validator.wait(timeout: .seconds(120))
        #expect(status == 0, "\(validator.log.suffix(6000))")
        let summary = try JSONParser.parse(String(validator.log.split(separator: "\n").last ?? ""))
        #expect((summary["messages"]?.int ?? 0) > 300)
        let serverEvents = Set(summary["server_events"]?.array?.compactMap(\.string) ?? [])
        let expected: Set = [
            "welcome", "pong", "error", "room_list_update", "room_created", "room_joined", "room_update", "player_left",
            "removed_from_room", "session_replaced", "game_started", "phase_change", "round_started", "declare", "play",
            "turn_complete", "round_complete", "game_ended", "turn_timeout", "player_disconnected", "player_replaced_by_bot",
            "player_reconnected", "host_changed", "left_room", "server_shutdown",
        ]
        #expect(expected.subtracting(serverEvents).isEmpty, "never seen: \(expected.subtracting(serverEvents).sorted())")
        let clientEvents = Set(summary["client_events"]?.array?.compactMap(\.string) ?? [])
        let sent: Set = ["ping", "request_room_list", "get_rooms", "create_room", "join_room", "client_ready", "add_bot",
                         "remove_player", "get_room_state", "start_game", "declare", "play", "leave_room"]
        #expect(sent.subtracting(clientEvents).isEmpty, "never sent: \(sent.subtracting(clientEvents).sorted())")
    }
}
