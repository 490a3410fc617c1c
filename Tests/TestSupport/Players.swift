import Foundation
import JSONCore
import LiapTuiClient

/// A human in a room: the room socket and the token that holds the seat.
public struct SeatedPlayer: Sendable {
    public let client: GameClient
    public let roomID: String
    public let token: String
    public let name: String
    public let slot: Int
}

public enum Players {
    /// Creates a room from the lobby as `name` and connects to it.
    public static func createRoom(_ server: GameServerProcess, name: String) async throws -> SeatedPlayer {
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        defer { lobby.close() }
        lobby.send("create_room", ["player_name": .string(name)])
        let created = try await lobby.waitFor("room_created")
        return try await enter(server, roomID: created["room_id"]!.string!, token: created["token"]!.string!,
                               name: name, slot: created["assigned_slot"]!.int!)
    }

    public static func joinRoom(_ server: GameServerProcess, roomID: String, name: String) async throws -> SeatedPlayer {
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        defer { lobby.close() }
        lobby.send("join_room", ["room_id": .string(roomID), "player_name": .string(name)])
        let joined = try await lobby.waitFor("room_joined")
        return try await enter(server, roomID: roomID, token: joined["token"]!.string!, name: name, slot: joined["assigned_slot"]!.int!)
    }

    /// Opens the room socket and sends `client_ready` with the token.
    public static func enter(_ server: GameServerProcess, roomID: String, token: String, name: String, slot: Int) async throws -> SeatedPlayer {
        let client = try await GameClient.connect(url: server.wsURL("/ws/\(roomID)"))
        client.send("client_ready", ["token": .string(token)])
        try await client.waitFor("room_update")
        return SeatedPlayer(client: client, roomID: roomID, token: token, name: name, slot: slot)
    }

    /// What a player saw while playing a game to its end.
    public struct GameRecord: Sendable {
        public var states: [JSON] = []
        public var moves = 0
        public var ended: JSON?
    }

    /// Plays legal moves (AutoPlayer) until `game_ended`, or until `stop` says so.
    /// `actedOn`: the sequence of a state the caller already answered.
    @discardableResult
    public static func play(_ client: GameClient, timeout: Duration = .seconds(120), thinkTime: Duration = .zero,
                            actedOn alreadyActedOn: Int = -1, stop: (JSON) -> Bool = { _ in false }) async throws -> GameRecord {
        var record = GameRecord()
        var actedOn = alreadyActedOn
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let message = await client.next(timeout: .seconds(10)) else {
                throw TestFailure("no message for 10 s while playing (closed: \(client.isClosed))")
            }
            let event = message["event"]?.string, data = message["data"] ?? .null
            if event == "game_ended" {
                record.ended = data
                return record
            }
            if event == "error" { throw TestFailure("server error while playing: \(data.text)") }
            guard event == "phase_change" else { continue }
            record.states.append(data)
            if stop(data) { return record }
            let sequence = data["sequence"]?.int ?? 0
            // Act on a state only once, and only on states newer than the one acted on.
            if sequence > actedOn, let move = AutoPlayer.move(for: data) {
                actedOn = sequence
                if thinkTime > .zero { try await Task.sleep(for: thinkTime) }
                client.send(move.event, move.data)
                record.moves += 1
            }
        }
        throw TestFailure("the game did not end within \(timeout)")
    }
}
