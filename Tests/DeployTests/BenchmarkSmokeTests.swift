import Foundation
import Testing
import TestSupport

/// Every benchmark command, run small, so none of them rots between the runs
/// that produce docs/PERFORMANCE.md. These check that each runs and reports;
/// the figures themselves come from release builds (see that document).
@Suite(.serialized) struct BenchmarkSmokeTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test(arguments: [
        (["engine", "--games", "50"], "games_per_second="),
        (["bot-strength", "--games", "20"], "win"),
        (["metrics-tick", "--ticks", "20"], "microseconds_per_tick="),
        (["server-idle", "--seconds", "1"], "rss_mb="),
        (["ingest", "--days", "1"], "naive python: lines="),
        (["parse-lines", "--lines", "2000"], "lines_per_second="),
        (["agent-tail", "--seconds", "3"], "cpu_percent_of_one_core="),
        (["api", "--days", "2", "--requests", "4"], "with_default_retention_mb="),
        (["alert-latency", "--samples", "1"], "median_ms="),
        (["server-load", "--bot-delay-ms", "5", "--", "--players", "4", "--humans-per-room", "1", "--ramp-up", "0",
          "--duration", "4", "--think-ms", "150", "--sample-interval", "1", "--settle", "1"], "action -> response (ms)"),
        (["redis-backup", "--players", "4", "--seconds", "3"], "backup_cpu_us="),
        (["failover", "--trials", "1", "--redis-heartbeat", "0.5"], "failover_seconds median="),
        (["fleet-replication", "--samples", "2", "--backlog", "300", "--peer-poll", "200ms"], "catch_up lines=300"),
        (["alert-e2e", "--trials", "1"], "trials=1 median_s="),
        (["message-sizes", "--games", "1"], "protocol=2 rounds="),
        (["ws-flood", "--sockets", "4", "--seconds", "1"], "message=request_room_list answers="),
        (["ws-memory", "--connections", "20"], "kib_per_connection="),
    ])
    func benchmarkRunsAndReports(arguments: [String], expected: String) async throws {
        let bench = ChildProcess("liaptui-bench", arguments, directory: Self.repository)
        try bench.start()
        let status = await bench.wait(timeout: .seconds(240))
        #expect(status == 0, "liaptui-bench \(arguments.joined(separator: " ")): \(bench.log.suffix(2000))")
        #expect(bench.log.contains(expected), "\(arguments[0]) output: \(bench.log.suffix(2000))")
    }
}
