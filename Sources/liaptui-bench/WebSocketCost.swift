import ArgumentParser
import Foundation
import JSONCore
import LiapTuiClient

/// Server CPU per WebSocket message, as the issue measures it: sockets that keep a few requests in flight
/// each, against a release game-server; the server's CPU-seconds from /proc per 1,000 answers. `ping` is
/// answered on the socket's event loop; `request_room_list` goes through the room directory, as every room
/// and lobby message does. The idle server over the same time is the baseline.
struct WebSocketFloodBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-flood",
        abstract: "Server CPU-seconds per 1,000 WebSocket messages (ping, then request_room_list) with many sockets flooding.")

    @Option(help: "Sockets.") var sockets = 200
    @Option(help: "Seconds of flooding per message kind.") var seconds = 10.0
    @Option(help: "Requests each socket keeps in flight.") var inFlight = 4

    func run() async throws {
        let directory = BenchProcess.temporaryDirectory("ws-flood")
        defer { try? FileManager.default.removeItem(at: directory) }
        // The rate limit would refuse a flood; it is not what is measured.
        let server = try BenchProcess.gameServer(["--rate-limit", "1000000"], directory: directory)
        defer { server.stop() }
        var clients: [GameClient] = []
        for _ in 0..<sockets {
            clients.append(try await GameClient.connect(url: "ws://127.0.0.1:\(server.port)/ws/lobby", keepHistory: false))
        }
        let idleStart = server.cpuSeconds
        try await Task.sleep(for: .seconds(2))
        let idlePerSecond = (server.cpuSeconds - idleStart) / 2
        print(String(format: "sockets=%d idle_server_cpu_seconds_per_second=%.4f", sockets, idlePerSecond))
        for (event, answer) in [("ping", "pong"), ("request_room_list", "room_list_update")] {
            let cpuBefore = server.cpuSeconds
            let started = ContinuousClock.now
            let answers = await flood(clients, event: event, answer: answer, until: started + .seconds(seconds))
            let wall = (ContinuousClock.now - started).seconds
            let cpu = server.cpuSeconds - cpuBefore
            print(String(format: "message=%@ answers=%d wall_seconds=%.1f answers_per_second=%.0f server_cpu_seconds=%.2f "
                         + "server_cpu_microseconds_per_message=%.1f server_cpu_seconds_per_1000=%.4f idle_baseline_cpu_seconds=%.3f",
                         event, answers, wall, Double(answers) / wall, cpu, cpu / Double(max(1, answers)) * 1e6,
                         cpu / Double(max(1, answers)) * 1000, idlePerSecond * wall))
        }
        for client in clients { client.close() }
    }

    private func flood(_ clients: [GameClient], event: String, answer: String, until deadline: ContinuousClock.Instant) async -> Int {
        await withTaskGroup(of: Int.self) { group in
            for client in clients {
                group.addTask { [inFlight] in
                    for _ in 0..<inFlight { client.send(event, ["timestamp": 1]) }
                    var answered = 0
                    while ContinuousClock.now < deadline, let message = await client.next(timeout: .seconds(5)) {
                        guard message["event"]?.string == answer else { continue }
                        answered += 1
                        client.send(event, ["timestamp": 1])
                    }
                    // Let the requests still in flight come back, so the next kind starts on a quiet socket.
                    var late = 0
                    while late < inFlight, let message = await client.next(timeout: .seconds(5)) {
                        if message["event"]?.string == answer { late += 1 }
                    }
                    return answered
                }
            }
            return await group.reduce(0, +)
        }
    }
}

/// Server memory per idle WebSocket: the release game-server's RSS before and after `--connections` sockets
/// open on the lobby and stay idle.
struct WebSocketMemoryBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-memory",
        abstract: "Server RSS per idle WebSocket connection (the RSS after opening them, less the RSS before).")

    @Option(help: "Idle connections to open.") var connections = 2_000

    func run() async throws {
        let directory = BenchProcess.temporaryDirectory("ws-memory")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try BenchProcess.gameServer([], directory: directory)
        defer { server.stop() }
        // One connection first, so the memory of the first request (allocator arenas, lazy tables) is in the baseline.
        let warmUp = try await GameClient.connect(url: "ws://127.0.0.1:\(server.port)/ws/lobby", keepHistory: false)
        try await Task.sleep(for: .seconds(1))
        let before = processUsage(server.process.processIdentifier).rssMB
        var clients: [GameClient] = []
        for _ in 0..<connections {
            clients.append(try await GameClient.connect(url: "ws://127.0.0.1:\(server.port)/ws/lobby", keepHistory: false))
        }
        try await Task.sleep(for: .seconds(2))
        let after = processUsage(server.process.processIdentifier).rssMB
        print(String(format: "connections=%d rss_before_mib=%.1f rss_after_mib=%.1f kib_per_connection=%.1f",
                     connections, before, after, (after - before) * 1024 / Double(connections)))
        for client in clients { client.close() }
        warmUp.close()
    }
}
