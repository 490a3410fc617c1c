import ArgumentParser
import Foundation
import GameServer
import Logging

struct MetricsTickBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics-tick",
        abstract: "Cost of one metrics tick: /proc sampling, gauges, one JSON line appended to the daily file.")

    @Option(help: "Ticks to run.") var ticks = 2_000

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-bench-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        var config = ServerConfig()
        config.logDirectory = directory.path
        config.alertCPUPercent = 1000  // the tight loop keeps a core busy; that is not what is measured
        let logger = Logger(label: "bench")
        let app = GameServerApp(config: config, logger: logger)
        await app.writer.writeLine()  // warm up: creates the folder and file
        let clock = ContinuousClock()
        let elapsed = await clock.measure {
            for _ in 0..<ticks { await app.writer.writeLine() }
        }
        let perTick = elapsed.seconds / Double(ticks)
        print(String(format: "ticks=%d microseconds_per_tick=%.1f share_of_one_core_at_60s=%.6f%%",
                     ticks, perTick * 1e6, perTick / 60 * 100))
    }
}

struct IdleServerBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server-idle",
        abstract: "Starts the built game-server next to this tool, lets it idle, and reports its RSS and CPU.")

    @Option(help: "Seconds to let the server idle before measuring.") var seconds = 10.0

    func run() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("game-server")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-idle-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--port", "0", "--log-dir", directory.appendingPathComponent("logs").path,
                             "--state-file", directory.appendingPathComponent("state.json").path, "--log-level", "warning"]
        try process.run()
        try await Task.sleep(for: .seconds(seconds))
        let usage = processUsage(process.processIdentifier)
        process.terminate()
        process.waitUntilExit()
        print(String(format: "idle_seconds=%.0f rss_mb=%.1f cpu_seconds=%.2f", seconds, usage.rssMB, usage.cpuSeconds))
    }
}
