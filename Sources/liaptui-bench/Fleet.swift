import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import JSONCore
import LiapTuiClient
import MetricsSchema
import RedisClient

struct RedisBackupBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-backup",
        abstract: "What backing games up to Redis at each turn boundary costs: the same load on a game-server without, then with --redis-url.")

    @Option(help: "Simulated players (one per room, three bots each).") var players = 40
    @Option(help: "Seconds of play per run.") var seconds = 30.0
    @Option(help: "Milliseconds the simulated players think.") var thinkMs = 100
    @Option(help: "Milliseconds the server's bots wait before acting.") var botDelayMs = 100

    func run() async throws {
        let redis = try BenchProcess.redis()
        defer { redis.kill() }
        let url = "redis://127.0.0.1:\(redis.port)"
        struct Run { var cpu = 0.0, actions = 0.0, backups = 0.0, bytes: [Int] = [] }
        var runs: [Run] = []
        for withRedis in [false, true] {
            let directory = BenchProcess.temporaryDirectory("backup")
            defer { try? FileManager.default.removeItem(at: directory) }
            let server = try BenchProcess.gameServer(["--bot-delay-ms", String(botDelayMs)] + (withRedis ? ["--redis-url", url] : []),
                                                     directory: directory)
            defer { server.stop() }
            let cpuBefore = server.cpuSeconds
            // Halfway through, the size of the games' backups.
            let sizes = Task { () -> [Int] in
                guard withRedis else { return [] }
                try? await Task.sleep(for: .seconds(seconds / 2))
                return (try? await Self.backupSizes(url)) ?? []
            }
            let report = directory.appendingPathComponent("load.json")
            let load = Process()
            load.executableURL = BenchProcess.binDirectory.appendingPathComponent("liaptui-load")
            load.arguments = ["--url", "ws://127.0.0.1:\(server.port)", "--players", String(players), "--humans-per-room", "1",
                              "--ramp-up", "1", "--duration", String(seconds), "--think-ms", String(thinkMs), "--settle", "1",
                              "--json", report.path, "--quiet"]
            load.standardOutput = FileHandle.nullDevice  // the figures come from its JSON report
            try load.run()
            load.waitUntilExit()
            guard load.terminationStatus == 0 else { throw ExitCode(load.terminationStatus) }
            var run = Run()
            run.cpu = server.cpuSeconds - cpuBefore
            run.actions = try JSONParser.parse(bytes: Data(contentsOf: report))["actions"]?.number ?? 0
            run.backups = try await Self.counter("liaptui_redis_backups_total", port: server.port) ?? 0
            run.bytes = await sizes.value
            runs.append(run)
        }
        let (without, with) = (runs[0], runs[1])
        let perThousand = { (r: Run) in r.actions > 0 ? r.cpu / r.actions * 1000 : 0 }
        let extraPerBackup = with.backups > 0 ? (with.cpu / max(with.actions, 1) - without.cpu / max(without.actions, 1)) * with.actions / with.backups : 0
        let averageBytes = with.bytes.isEmpty ? 0 : Double(with.bytes.reduce(0, +)) / Double(with.bytes.count)
        print(String(format: "without redis: actions=%.0f server_cpu_s=%.2f cpu_ms_per_1000_actions=%.1f", without.actions, without.cpu, perThousand(without) * 1000))
        print(String(format: "with redis:    actions=%.0f server_cpu_s=%.2f cpu_ms_per_1000_actions=%.1f backups=%.0f backups_per_action=%.2f",
                     with.actions, with.cpu, perThousand(with) * 1000, with.backups, with.backups / max(with.actions, 1)))
        print(String(format: "backup_cpu_us=%.0f backup_bytes_avg=%.0f (sampled %d backups)", extraPerBackup * 1e6, averageBytes, with.bytes.count))
    }

    static func backupSizes(_ url: String) async throws -> [Int] {
        let client = RedisClient(endpoint: try RedisEndpoint(url: url))
        defer { Task { await client.close() } }
        let reply = try await client.send("SCAN", "0", "MATCH", "liaptui:game:*", "COUNT", "1000")
        let keys = (reply.array?.last?.array ?? []).compactMap(\.string)
        return try await client.pipeline(keys.map { ["STRLEN", $0] }).compactMap(\.int)
    }

    /// One value from the server's Prometheus text.
    static func counter(_ name: String, port: Int) async throws -> Double? {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Double($0.split(separator: " ")[1]) }
    }
}

struct FailoverBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Kills (SIGKILL) the game-server holding a game and times until its player plays on at the other instance.",
        discussion: "Both instances run with --redis-url. The kill comes at a random point of the heartbeat cycle, in the middle of a turn. The player reconnects to the other instance at once and retries every 100 ms, as the browser does behind nginx; the game is taken over when the dead instance's heartbeat expires (three heartbeats), from the state after the last accepted move.")

    @Option(help: "How many times.") var trials = 10
    @Option(help: "The instances' --redis-heartbeat in seconds (the server's default is 1).") var redisHeartbeat = 1.0

    func run() async throws {
        let redis = try BenchProcess.redis()
        defer { redis.kill() }
        var times: [Double] = []
        for trial in 1...trials {
            let directory = BenchProcess.temporaryDirectory("failover")
            defer { try? FileManager.default.removeItem(at: directory) }
            let fleet = ["--redis-url", "redis://127.0.0.1:\(redis.port)", "--redis-heartbeat", String(redisHeartbeat), "--bot-delay-ms", "50"]
            let a = try BenchProcess.gameServer(fleet + ["--instance-id", "bench-a"], directory: directory.appendingPathComponent("a"))
            defer { a.stop() }
            let b = try BenchProcess.gameServer(fleet + ["--instance-id", "bench-b"], directory: directory.appendingPathComponent("b"))
            defer { b.kill() }

            let lobby = try await GameClient.connect(url: "ws://127.0.0.1:\(b.port)/ws/lobby", keepHistory: false)
            lobby.send("create_room", ["player_name": "Bench"])
            let created = try await lobby.waitFor("room_created")
            lobby.close()
            guard let room = created["room_id"]?.string, let token = created["token"]?.string else { throw ValidationError("no room") }
            let player = try await GameClient.connect(url: "ws://127.0.0.1:\(b.port)/ws/\(room)", keepHistory: false)
            player.send("client_ready", ["token": .string(token)])
            for slot in 2...4 { player.send("add_bot", ["slot_id": JSON(slot)]) }
            try await player.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
            player.send("start_game")
            // Play into the first turn: the game has a backup after every accepted move.
            let lastSeen = try await Self.play(player) { $0["phase"]?.string == "turn" && ($0["hand"]?.array?.count ?? 8) < 8 }
            // At a random point of the heartbeat cycle.
            try await Task.sleep(for: .milliseconds(Int.random(in: 200..<(200 + Int(redisHeartbeat * 1000)))))

            let killedAt = ContinuousClock.now
            b.kill()
            var resumed: JSON?
            while resumed == nil && ContinuousClock.now - killedAt < .seconds(120) {
                if let again = try? await GameClient.connect(url: "ws://127.0.0.1:\(a.port)/ws/\(room)", keepHistory: false) {
                    again.send("client_ready", ["token": .string(token)])
                    while let message = await again.next(timeout: .seconds(5)) {
                        if message["event"]?.string == "phase_change" { resumed = message["data"]; break }
                        if message["event"]?.string == "error" { break }
                    }
                    again.close()
                }
                if resumed == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            guard let resumed else { throw ValidationError("trial \(trial): the game was not taken over within 120 s") }
            // The bots may have moved after the player's last state; never an older state.
            guard (resumed["sequence"]?.int ?? -1) >= (lastSeen["sequence"]?.int ?? 0) else {
                throw ValidationError("trial \(trial): resumed at sequence \(resumed["sequence"]?.int ?? -1), before the last one seen (\(lastSeen["sequence"]?.int ?? 0))")
            }
            let elapsed = (ContinuousClock.now - killedAt).seconds
            times.append(elapsed)
            print(String(format: "trial %d: failover_seconds=%.2f", trial, elapsed))
        }
        let sorted = times.sorted()
        print(String(format: "failover_seconds median=%.2f max=%.2f heartbeat_s=%.1f expiry_s=%.1f trials=%d",
                     sorted[sorted.count / 2], sorted.last ?? 0, redisHeartbeat, redisHeartbeat * 3, times.count))
    }

    /// Plays legal moves until a state satisfies `done`; returns that state.
    @discardableResult
    static func play(_ client: GameClient, until done: (JSON) -> Bool) async throws -> JSON {
        var actedOn = -1
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            guard let message = await client.next(timeout: .seconds(10)) else { throw ValidationError("the game stalled") }
            guard message["event"]?.string == "phase_change", let state = message["data"] else { continue }
            if done(state) { return state }
            let sequence = state["sequence"]?.int ?? 0
            if sequence > actedOn, let move = AutoPlayer.move(for: state) {
                actedOn = sequence
                client.send(move.event, move.data)
            }
        }
        throw ValidationError("the first turn did not end within 120 s")
    }
}
