import ArgumentParser
import Foundation
import JSONCore
import LiapTuiClient

/// Server CPU per WebSocket message, as issue 19 measures it: sockets that keep a few requests in flight
/// each, against a release game-server; the server's CPU-seconds from /proc per 1,000 answers. `ping` is
/// answered on the socket's event loop; `request_room_list` goes through the room directory, as every room
/// and lobby message does. The idle server over the same time is the baseline of each run; `--baseline-server`
/// runs the same flood against another build (e.g. one from before a change) in the same command.
struct WebSocketFloodBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-flood",
        abstract: "Server CPU-seconds per 1,000 WebSocket messages (ping, then request_room_list) with many sockets flooding.")

    @Option(help: "Sockets.") var sockets = 200
    @Option(help: "Seconds of flooding per message kind.") var seconds = 10.0
    @Option(help: "Requests each socket keeps in flight.") var inFlight = 4
    @Option(help: "Messages per second over all sockets, paced (0: as fast as the server answers). A paced flood wakes the server for few messages at a time, as real players do.")
    var rate = 0.0
    @Option(help: "Another game-server executable to measure the same way, first (a baseline build).") var baselineServer: String?

    func run() async throws {
        var costs: [String: (this: Double, baseline: Double)] = [:]
        if let baselineServer {
            for (event, cost) in try await measure(executable: baselineServer, label: "baseline") { costs[event, default: (0, 0)].baseline = cost }
        }
        for (event, cost) in try await measure(executable: nil, label: "this") { costs[event, default: (0, 0)].this = cost }
        guard baselineServer != nil else { return }
        for (event, cost) in costs.sorted(by: { $0.key < $1.key }) {
            print(String(format: "message=%@ baseline_over_this=%.2f", event, cost.baseline / cost.this))
        }
    }

    /// Floods one server; returns the server's CPU µs per message by message kind.
    private func measure(executable: String?, label: String) async throws -> [(String, Double)] {
        let directory = BenchProcess.temporaryDirectory("ws-flood")
        defer { try? FileManager.default.removeItem(at: directory) }
        // The rate limit would refuse a flood; it is not what is measured.
        let server = try BenchProcess.gameServer(["--rate-limit", "1000000"], directory: directory, executable: executable)
        defer { server.stop() }
        var clients: [GameClient] = []
        for _ in 0..<sockets {
            clients.append(try await GameClient.connect(url: "ws://127.0.0.1:\(server.port)/ws/lobby", keepHistory: false))
        }
        defer { for client in clients { client.close() } }
        let idleStart = server.cpuSeconds
        try await Task.sleep(for: .seconds(2))
        let idlePerSecond = (server.cpuSeconds - idleStart) / 2
        print(String(format: "server=%@ sockets=%d idle_server_cpu_seconds_per_second=%.4f", label, sockets, idlePerSecond))
        var costs: [(String, Double)] = []
        for (event, answer) in [("ping", "pong"), ("request_room_list", "room_list_update")] {
            let cpuBefore = server.cpuSeconds
            let started = ContinuousClock.now
            let answers = await flood(clients, event: event, answer: answer, until: started + .seconds(seconds))
            let wall = (ContinuousClock.now - started).seconds
            let cpu = server.cpuSeconds - cpuBefore
            let perMessage = cpu / Double(max(1, answers)) * 1e6
            costs.append((event, perMessage))
            print(String(format: "server=%@ message=%@ answers=%d wall_seconds=%.1f answers_per_second=%.0f server_cpu_seconds=%.2f "
                         + "server_cpu_microseconds_per_message=%.1f server_cpu_seconds_per_1000=%.4f idle_baseline_cpu_seconds=%.3f",
                         label, event, answers, wall, Double(answers) / wall, cpu, perMessage, perMessage / 1000, idlePerSecond * wall))
        }
        return costs
    }

    private func flood(_ clients: [GameClient], event: String, answer: String, until deadline: ContinuousClock.Instant) async -> Int {
        await withTaskGroup(of: Int.self) { group in
            for client in clients {
                group.addTask { [inFlight, rate] in
                    // Paced: each socket sends one message per `interval`, starting at a random offset so the sockets spread out.
                    let interval = rate > 0 ? Duration.seconds(Double(clients.count) / rate) : nil
                    var nextSend = ContinuousClock.now + (interval.map { $0 * Double.random(in: 0..<1) } ?? .zero)
                    if interval != nil { try? await Task.sleep(until: nextSend) }
                    for _ in 0..<(interval == nil ? inFlight : 1) { client.send(event, ["timestamp": 1]) }
                    var answered = 0
                    while ContinuousClock.now < deadline, let message = await client.next(timeout: .seconds(5)) {
                        guard message["event"]?.string == answer else { continue }
                        answered += 1
                        if let interval {
                            nextSend += interval
                            try? await Task.sleep(until: nextSend)
                        }
                        client.send(event, ["timestamp": 1])
                    }
                    // Let the requests still in flight come back, so the next kind starts on a quiet socket.
                    var late = 0
                    while late < (interval == nil ? inFlight : 1), let message = await client.next(timeout: .seconds(5)) {
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
/// open on the lobby and stay idle; `--baseline-server` measures another build the same way, first.
struct WebSocketMemoryBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws-memory",
        abstract: "Server RSS per idle WebSocket connection (the RSS after opening them, less the RSS before).")

    @Option(help: "Idle connections to open.") var connections = 2_000
    @Option(help: "Another game-server executable to measure the same way, first (a baseline build).") var baselineServer: String?

    func run() async throws {
        var baseline: Double?
        if let baselineServer { baseline = try await measure(executable: baselineServer, label: "baseline") }
        let this = try await measure(executable: nil, label: "this")
        if let baseline { print(String(format: "baseline_over_this=%.2f", baseline / this)) }
    }

    /// KiB of server RSS per connection.
    private func measure(executable: String?, label: String) async throws -> Double {
        let directory = BenchProcess.temporaryDirectory("ws-memory")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try BenchProcess.gameServer([], directory: directory, executable: executable)
        defer { server.stop() }
        // One connection first, so the memory of the first request (allocator arenas, lazy tables) is in the baseline.
        let warmUp = try await GameClient.connect(url: "ws://127.0.0.1:\(server.port)/ws/lobby", keepHistory: false)
        defer { warmUp.close() }
        try await Task.sleep(for: .seconds(1))
        let before = processUsage(server.process.processIdentifier).rssMB
        var clients: [GameClient] = []
        defer { for client in clients { client.close() } }
        for _ in 0..<connections {
            clients.append(try await GameClient.connect(url: "ws://127.0.0.1:\(server.port)/ws/lobby", keepHistory: false))
        }
        try await Task.sleep(for: .seconds(2))
        let after = processUsage(server.process.processIdentifier).rssMB
        let perConnection = (after - before) * 1024 / Double(connections)
        print(String(format: "server=%@ connections=%d rss_before_mib=%.1f rss_after_mib=%.1f kib_per_connection=%.1f",
                     label, connections, before, after, perConnection))
        return perConnection
    }
}
