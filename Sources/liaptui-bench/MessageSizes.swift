import ArgumentParser
import Foundation
import JSONCore
import LiapTuiClient

/// Issue 19's third point: messages late in a game are no larger than early ones. Plays whole games against
/// three bots in each protocol version and reports the size of the states (`phase_change`) by round.
struct MessageSizesBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "message-sizes",
        abstract: "Bytes of each state (phase_change) by round, in protocol 1 and 2, over complete games against bots.")

    @Option(help: "Games per protocol version.") var games = 3

    func run() async throws {
        let directory = BenchProcess.temporaryDirectory("message-sizes")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try BenchProcess.gameServer(["--bot-delay-ms", "5", "--turn-timeout", "0", "--rate-limit", "1000"], directory: directory)
        defer { server.kill() }
        for version in [1, 2] {
            var byRound: [Int: [Int]] = [:]
            for game in 0..<games {
                let sizes = try await play(port: server.port, version: version, name: "P\(version)g\(game)")
                for (round, size) in sizes { byRound[round, default: []].append(size) }
            }
            let rounds = byRound.keys.sorted()
            guard let first = rounds.first, let last = rounds.last else { throw ValidationError("no states recorded") }
            func mean(_ r: Int) -> Double { Double(byRound[r]!.reduce(0, +)) / Double(byRound[r]!.count) }
            let largest = byRound.values.flatMap { $0 }.max() ?? 0
            print(String(format: "protocol=%d rounds=%d first_round_mean_bytes=%.0f last_round_mean_bytes=%.0f max_bytes=%d late_to_early=%.2f",
                         version, rounds.count, mean(first), mean(last), largest, mean(last) / mean(first)))
        }
    }

    /// One game: Alice and three bots; each state's size (as the server's JSON, re-serialized) by round.
    func play(port: Int, version: Int, name: String) async throws -> [(Int, Int)] {
        let base = "ws://127.0.0.1:\(port)"
        let lobby = try await GameClient.connect(url: base + "/ws/lobby", keepHistory: false)
        defer { lobby.close() }
        lobby.send("create_room", ["player_name": .string(name)])
        let created = try await lobby.waitFor("room_created")
        let room = try await GameClient.connect(url: base + "/ws/\(created["room_id"]!.string!)?protocol=\(version)", keepHistory: false)
        defer { room.close() }
        room.send("client_ready", ["token": created["token"]!])
        try await room.waitFor("room_update")
        for slot in 2...4 { room.send("add_bot", ["slot_id": JSON(slot)]) }
        try await room.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        room.send("start_game")
        var sizes: [(Int, Int)] = []
        var actedOn = -1
        var last = ""
        let deadline = ContinuousClock.now + .seconds(300)
        while ContinuousClock.now < deadline {
            guard let message = await room.next(timeout: .seconds(30)) else { throw ValidationError("the game stalled after: \(last.prefix(600))") }
            last = message.text
            switch message["event"]?.string {
            case "game_ended": return sizes
            case "phase_change":
                let data = message["data"] ?? .null
                sizes.append((data["round"]?.int ?? 0, message.text.utf8.count))
                if let sequence = data["sequence"]?.int, sequence > actedOn, let move = AutoPlayer.move(for: data) {
                    actedOn = sequence
                    room.send(move.event, move.data)
                }
            default: break
            }
        }
        throw ValidationError("the game did not end in 300 s")
    }
}
