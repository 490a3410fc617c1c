import ArgumentParser
import Foundation
import Hummingbird
import MetricsSchema
import Synchronization

struct AlertLatencyBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alert-latency",
        abstract: "From the metrics line that breaches to the webhook received, with for: 0, through a running release agent.")

    @Option(help: "Breaches to time.") var samples = 10

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-alert-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let logs = directory.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)

        // The receiver: notes when each instance's alert arrives.
        let arrivals = ArrivalLog()
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
            arrivals.note(body)
            return Response(status: .ok)
        }
        let portBox = ArrivalLog.Port()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { portBox.set($0.localAddress?.port ?? 0) })
        let receiverTask = Task { try await app.run() }
        defer { receiverTask.cancel() }
        while portBox.value == 0 { try await Task.sleep(for: .milliseconds(10)) }

        let rules = directory.appendingPathComponent("alerts.yaml")
        try """
        global:
          evaluation_interval: 15s
          group_wait: 0s
          receivers: [hook]
        receivers:
          - name: hook
            type: webhook
            url: http://127.0.0.1:\(portBox.value)/hook
        rules:
          - name: HighCPU
            metric: cpu_percent
            comparison: ">"
            threshold: 80
            window: 1m
            for: 0s
        """.write(to: rules, atomically: true, encoding: .utf8)
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("metrics-agent")
        agent.arguments = ["run", "--log-dir", logs.path, "--db", directory.appendingPathComponent("m.sqlite").path,
                           "--listen", "127.0.0.1:0", "--rules", rules.path, "--log-level", "warning"]
        agent.standardError = FileHandle.nullDevice
        try agent.run()
        defer { agent.terminate(); agent.waitUntilExit() }
        try await Task.sleep(for: .seconds(2))

        var latencies: [Double] = []
        for i in 0..<samples {
            let instance = "bench-\(i)"
            let record = MetricsRecord(
                timestamp: Date(), instanceID: instance, version: "0.1.0", intervalSeconds: 60, uptimeSeconds: 60,
                cpuPercent: 95, memoryMB: 800, memoryPercent: 40, processCPUPercent: 1, rssMB: 30, connections: 1,
                activeRooms: 0, activeGames: 0, players: 0, messagesIn: 0, messagesOut: 0, gamesStarted: 0, gamesFinished: 0,
                errors: 0, latency: LatencySummary(), writeErrors: 0)
            let path = logs.appendingPathComponent(record.fileName).path
            let written = Date()
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
            _ = Array(record.line.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            let deadline = Date().addingTimeInterval(30)
            while arrivals.arrival(containing: "\"\(instance)\"") == nil && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
            guard let arrived = arrivals.arrival(containing: "\"\(instance)\"") else { throw ValidationError("no webhook for \(instance)") }
            latencies.append(arrived.timeIntervalSince(written) * 1000)
            try await Task.sleep(for: .milliseconds(300))
        }
        latencies.sort()
        print(String(format: "samples=%d median_ms=%.0f max_ms=%.0f (line written to webhook received; poll 250 ms, evaluation on new lines, group_wait 0)",
                     samples, latencies[latencies.count / 2], latencies.last!))
        // Prometheus + Alertmanager with their defaults, for the same for: 0 rule: the change waits for the next
        // scrape (scrape_interval 1m), the next rule evaluation (evaluation_interval 1m) and group_wait (30 s).
        print("prometheus+alertmanager defaults (derived from their documented defaults, not measured here): mean ~90 s (30 s average wait for the scrape + 30 s for the evaluation + 30 s group_wait), worst ~150 s")
    }
}

final class ArrivalLog: Sendable {
    private let log = Mutex<[(String, Date)]>([])
    func note(_ body: String) { log.withLock { $0.append((body, Date())) } }
    func arrival(containing text: String) -> Date? { log.withLock { $0.first { $0.0.contains(text) }?.1 } }
    func arrival(containing text: String, after: Date) -> Date? { log.withLock { $0.first { $0.1 > after && $0.0.contains(text) }?.1 } }

    final class Port: Sendable {
        private let port = Mutex(0)
        func set(_ value: Int) { port.withLock { $0 = value } }
        var value: Int { port.withLock { $0 } }
    }
}
