import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct APIBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Series API latency for 24 h, 30 d and 1 y over a year of one instance; rollup cost; database size per instance-year.")

    @Option(help: "Requests per range.") var requests = 100
    @Option(help: "Days of minute records to serve (the figures use 365).") var days = 365

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-api-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let logs = directory.appendingPathComponent("logs")
        let now = Date()
        let lines = try generateYear(in: logs, days: days, start: now.addingTimeInterval(-Double(days) * 86_400))
        let db = directory.appendingPathComponent("agent.sqlite").path

        // Raw ingest, then the same with rollups and every raw minute kept on a second database: the difference is
        // the rollup cost. The default (days past raw retention not stored raw) on a third, the one queried.
        let raw = try runSibling("metrics-agent", ["ingest", "--once", "--quiet", "--no-rollups", "--log-dir", logs.path, "--db", directory.appendingPathComponent("raw.sqlite").path])
        let allRaw = directory.appendingPathComponent("all-raw.sqlite").path
        let full = try runSibling("metrics-agent", ["ingest", "--once", "--quiet", "--retention-raw", "3650d", "--log-dir", logs.path, "--db", allRaw])
        let standard = try runSibling("metrics-agent", ["ingest", "--once", "--quiet", "--log-dir", logs.path, "--db", db])
        guard raw.status == 0, full.status == 0, standard.status == 0 else { throw ValidationError("ingest failed") }
        print(String(format: "ingest lines=%d raw_only_seconds=%.2f (%.0f lines/s) with_rollups_all_raw_seconds=%.2f (%.0f lines/s) rollup_microseconds_per_line=%.2f default_seconds=%.2f (%.0f lines/s)",
                     lines, raw.seconds, Double(lines) / raw.seconds, full.seconds, Double(lines) / full.seconds,
                     (full.seconds - raw.seconds) / Double(lines) * 1e6, standard.seconds, Double(lines) / standard.seconds))

        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("metrics-agent")
        agent.arguments = ["run", "--log-dir", logs.path, "--db", db, "--listen", "127.0.0.1:0", "--log-level", "notice"]
        let pipe = Pipe()
        agent.standardError = pipe
        try agent.run()
        defer { agent.terminate(); agent.waitUntilExit() }
        var output = ""
        let deadline = Date().addingTimeInterval(30)
        while !output.contains("port=") && Date() < deadline {
            output += String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        }
        guard let range = output.range(of: "port=") else { throw ValidationError("agent did not start: \(output)") }
        let port = Int(output[range.upperBound...].prefix { $0.isNumber })!

        for (label, from) in [("24h", "now-24h"), ("30d", "now-30d"), ("1y", "now-1y")] {
            var samples: [Double] = []
            var points = 0
            for i in 0..<requests {
                let metric = ["cpu_percent", "players", "latency_p95_ms", "messages_in"][i % 4]
                let url = URL(string: "http://127.0.0.1:\(port)/api/series?metric=\(metric)&from=\(from)&to=now")!
                let started = ContinuousClock.now
                let (data, _) = try await URLSession.shared.data(from: url)
                samples.append((ContinuousClock.now - started).seconds * 1000)
                points = max(points, data.split(separator: UInt8(ascii: "[")).count)
            }
            samples.sort()
            print(String(format: "api range=%@ requests=%d median_ms=%.2f p95_ms=%.2f max_ms=%.2f points=~%d", label, requests,
                         samples[samples.count / 2], samples[Int(Double(samples.count) * 0.95)], samples.last!, points))
        }
        agent.terminate()
        agent.waitUntilExit()

        // Steady state: retention applied (raw 15 d, 5 min 63 d, 1 h 455 d) and the file vacuumed.
        let before = (try? FileManager.default.attributesOfItem(atPath: allRaw)[.size] as? Int) ?? 0
        let prune = try runSibling("metrics-agent", ["prune", "--vacuum", "--db", db, "--log-dir", logs.path])
        let after = (try? FileManager.default.attributesOfItem(atPath: db)[.size] as? Int) ?? 0
        print(String(format: "database one_instance_year_all_raw_mb=%.1f with_default_retention_mb=%.1f (%@)",
                     Double(before) / 1_048_576, Double(after) / 1_048_576, prune.output.trimmingCharacters(in: .whitespacesAndNewlines)))
    }
}
