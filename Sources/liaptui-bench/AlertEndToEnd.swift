import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import JSONCore

struct AlertEndToEndBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alert-e2e",
        abstract: "With the shipped config/alerts.yaml and a game server on its defaults: from 80 players connected to the webhook (UpgradeTriggerPlayers).",
        discussion: "Each trial starts a fresh release game-server (one metrics line a minute) and metrics-agent (scraping it, as the shipped unit does), connects the players with liaptui-load, and times from the moment the server counts them to the webhook. Run from the repository root.")

    @Option(help: "Trials.") var trials = 10
    @Option(help: "Players to connect (the shipped trigger is 80).") var players = 80

    func run() async throws {
        let arrivals = ArrivalLog()
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            arrivals.note(String(buffer: try await request.body.collect(upTo: 1 << 20)))
            return Response(status: .ok)
        }
        let port = ArrivalLog.Port()
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { port.set($0.localAddress?.port ?? 0) })
        let receiver = Task { try await app.run() }
        defer { receiver.cancel() }
        while port.value == 0 { try await Task.sleep(for: .milliseconds(10)) }

        // The shipped rules file with one webhook receiver as the route's default; the only other change takes out
        // the office-hours hold on info notices (the bench measures delivery, not the calendar).
        var shipped = try String(contentsOfFile: "config/alerts.yaml", encoding: .utf8)
        let hold = "      active_time_intervals: [office-hours]\n"
        guard shipped.contains("receivers: []"), shipped.contains("  # receiver: ops-slack"), shipped.contains(hold) else {
            throw ValidationError("run from the repository root (config/alerts.yaml as shipped)")
        }
        shipped = shipped.replacingOccurrences(of: "receivers: []", with: "receivers:\n  - name: hook\n    type: webhook\n    url: http://127.0.0.1:\(port.value)/hook")
            .replacingOccurrences(of: "  # receiver: ops-slack", with: "  receiver: hook")
            .replacingOccurrences(of: hold, with: "")
        var latencies: [Double] = []
        for trial in 1...trials {
            let trialStart = Date()
            let directory = BenchProcess.temporaryDirectory("alert-e2e")
            defer { try? FileManager.default.removeItem(at: directory) }
            let rules = directory.appendingPathComponent("alerts.yaml")
            try shipped.write(to: rules, atomically: true, encoding: .utf8)
            let server = try BenchProcess.gameServer([], directory: directory)
            defer { server.kill() }
            let agent = try BenchProcess.agent(["--rules", rules.path, "--scrape", "http://127.0.0.1:\(server.port)"],
                                               directory: directory)
            defer { agent.kill() }
            // The breach comes at any point of the scrape cycle, not in step with the agent's start.
            try await Task.sleep(for: .milliseconds(Int.random(in: 0..<5000)))
            let load = Process()
            load.executableURL = BenchProcess.binDirectory.appendingPathComponent("liaptui-load")
            load.arguments = ["--url", "ws://127.0.0.1:\(server.port)", "--players", String(players), "--humans-per-room", "4",
                              "--ramp-up", "1", "--duration", "300", "--think-ms", "1000", "--quiet", "--settle", "0"]
            load.standardOutput = FileHandle.nullDevice
            load.standardError = FileHandle.nullDevice
            try load.run()
            defer { load.terminate(); load.waitUntilExit() }
            // The condition starts when the server counts the players (polled every 20 ms).
            let deadline = Date().addingTimeInterval(120)
            var breached: Date?
            while breached == nil && Date() < deadline {
                if let count = try? await Self.players(port: server.port), count >= players { breached = Date() }
                try await Task.sleep(for: .milliseconds(20))
            }
            guard let breached else { throw ValidationError("the players never all connected") }
            while arrivals.arrival(containing: "UpgradeTriggerPlayers", after: trialStart) == nil && Date() < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            guard let arrived = arrivals.arrival(containing: "UpgradeTriggerPlayers", after: trialStart) else {
                throw ValidationError("no webhook for UpgradeTriggerPlayers")
            }
            latencies.append(arrived.timeIntervalSince(breached))
            print(String(format: "trial %d: %.1f s", trial, latencies.last!))
        }
        latencies.sort()
        print(String(format: "trials=%d median_s=%.1f p90_s=%.1f max_s=%.1f (players counted by the server to webhook received; shipped alerts.yaml: group_wait 10 s, evaluation 15 s; game server defaults: a line a minute; agent scraping every 5 s)",
                     latencies.count, latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 9 / 10)], latencies.last!))
    }

    static func players(port: Int) async throws -> Int? {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/api/health/detailed")!)
        return try JSONParser.parse(bytes: data)["game_stats"]?["players"]?.int
    }
}
