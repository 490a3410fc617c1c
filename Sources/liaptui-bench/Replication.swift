import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import JSONCore
import LiapTuiClient
import MetricsSchema

struct ReplicationBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-replication",
        abstract: "Two release agents as peers: from a line written on host B to the line visible on agent A, and what following a peer costs A.")

    @Option(help: "Lines to time, one at a time.") var samples = 20
    @Option(help: "The agents' --peer-poll (default: theirs, 2s).") var peerPoll: String?
    @Option(help: "Lines of backlog written while A's agent is down, then caught up.") var backlog = 20_000

    func run() async throws {
        let hostA = BenchProcess.temporaryDirectory("replica-a"), hostB = BenchProcess.temporaryDirectory("replica-b")
        defer { for dir in [hostA, hostB] { try? FileManager.default.removeItem(at: dir) } }
        let portA = LoopbackPort.free(), portB = LoopbackPort.free()
        let poll = peerPoll.map { ["--peer-poll", $0] } ?? []
        var agentA = try BenchProcess.agent(["--agent-id", "a", "--peer", "http://127.0.0.1:\(portB)"] + poll, directory: hostA, port: portA)
        let agentB = try BenchProcess.agent(["--agent-id", "b", "--peer", "http://127.0.0.1:\(portA)"] + poll, directory: hostB, port: portB)
        defer { agentA.kill(); agentB.kill() }
        let logsB = hostB.appendingPathComponent("logs")

        // Latency: one line at a time on B, until A's /api/instances shows it.
        var latencies: [Double] = []
        var next = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down) - 86_400)
        for _ in 0..<samples {
            let ms = Int(next.timeIntervalSince1970 * 1000)
            let written = ContinuousClock.now
            Self.append(instance: "bench-b", at: next, to: logsB)
            next = next.addingTimeInterval(1)
            let deadline = written + .seconds(60)
            while ContinuousClock.now < deadline {
                if try await Self.newest("bench-b", port: portA) == ms { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            guard try await Self.newest("bench-b", port: portA) == ms else { throw ValidationError("the line never reached agent A") }
            latencies.append((ContinuousClock.now - written).seconds * 1000)
            // Out of phase with the poll, so the samples spread over it.
            try await Task.sleep(for: .milliseconds(Int.random(in: 100...700)))
        }
        latencies.sort()

        // Catching up: A down while B ingests a backlog; A back, timed until it holds every line.
        agentA.kill()
        for _ in 0..<backlog {
            Self.append(instance: "bench-b", at: next, to: logsB)
            next = next.addingTimeInterval(1)  // a 1-second writer: a backlog of hours
        }
        let expected = Int(next.addingTimeInterval(-1).timeIntervalSince1970 * 1000)
        agentA = try BenchProcess.agent(["--agent-id", "a", "--peer", "http://127.0.0.1:\(portB)"] + poll, directory: hostA, port: portA)
        let started = ContinuousClock.now, cpuBefore = agentA.cpuSeconds
        while try await Self.newest("bench-b", port: portA) != expected {
            guard ContinuousClock.now - started < .seconds(600) else { throw ValidationError("agent A did not catch up") }
            try await Task.sleep(for: .milliseconds(20))
        }
        let catchUp = (ContinuousClock.now - started).seconds, catchUpCPU = agentA.cpuSeconds - cpuBefore
        // Following an idle peer: A's and B's CPU over 20 s with nothing new, against an agent without peers (baseline).
        let hostC = BenchProcess.temporaryDirectory("replica-c")
        defer { try? FileManager.default.removeItem(at: hostC) }
        let alone = try BenchProcess.agent([], directory: hostC)
        defer { alone.kill() }
        let idleA = agentA.cpuSeconds, idleB = agentB.cpuSeconds, idleC = alone.cpuSeconds
        try await Task.sleep(for: .seconds(20))
        print(String(format: "samples=%d median_ms=%.0f p90_ms=%.0f max_ms=%.0f (line written on B to visible on A's API; peer poll %@)",
                     latencies.count, latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 9 / 10)],
                     latencies.last!, peerPoll ?? "2s (default)"))
        print(String(format: "catch_up lines=%d seconds=%.2f lines_per_second=%.0f cpu_seconds=%.2f cpu_us_per_line=%.1f",
                     backlog, catchUp, Double(backlog) / catchUp, catchUpCPU, catchUpCPU / Double(backlog) * 1e6))
        print(String(format: "idle_follow cpu_seconds_per_20s a=%.3f b=%.3f baseline_without_peers=%.3f",
                     agentA.cpuSeconds - idleA, agentB.cpuSeconds - idleB, alone.cpuSeconds - idleC))
    }

    static func append(instance: String, at date: Date, to logs: URL) {
        let record = MetricsRecord(
            timestamp: date, instanceID: instance, version: "0.1.0", intervalSeconds: 60, uptimeSeconds: 60,
            cpuPercent: 20, memoryMB: 800, memoryPercent: 40, processCPUPercent: 1, rssMB: 30, connections: 1,
            activeRooms: 0, activeGames: 0, players: 0, messagesIn: 0, messagesOut: 0, gamesStarted: 0, gamesFinished: 0,
            errors: 0, latency: LatencySummary(), writeErrors: 0)
        let fd = open(logs.appendingPathComponent(record.fileName).path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        _ = Array(record.line.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// The newest line of `instance` the agent on `port` has (ms), or nil.
    static func newest(_ instance: String, port: Int) async throws -> Int? {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/api/instances")!)
        let instances = try JSONParser.parse(bytes: data)["instances"]?.array ?? []
        return instances.first { $0["instance_id"]?.string == instance }?["last"]?.int
    }
}
