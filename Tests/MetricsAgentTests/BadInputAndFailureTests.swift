import Foundation
import GRDB
import Testing
import TestSupport

@Suite(.serialized) struct BadInputAndFailureTests {
    let dir = TemporaryDirectory.make("agent-bad")
    var logs: URL { dir.appendingPathComponent("logs") }
    var dbURL: URL { dir.appendingPathComponent("metrics.sqlite") }
    var db: AgentDatabase { AgentDatabase(path: dbURL.path) }

    init() throws { try FileManager.default.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: true) }

    @Test func badLinesAreQuarantinedAndNeverBlockTheLinesAfterThem() async throws {
        let path = logs.appendingPathComponent("metrics_20261126.jsonl").path
        var writer = LineWriter(directory: logs)
        var written = writer.append(2, to: "metrics_20261126.jsonl")
        let bad: [(String, String)] = [
            ("{\"timestamp\": \"2026-11-26T10:00:00Z\", \"cpu_percent\": 1", "invalid_json"),
            ("[1, 2, 3]", "not_an_object"),
            ("{\"cpu_percent\": 5}", "missing_timestamp"),
            ("{\"timestamp\": \"yesterday\", \"cpu_percent\": 5}", "invalid_timestamp"),
            ("{\"timestamp\": \"2026-11-26T10:00:00Z\", \"cpu_percent\": \"high\"}", "wrong_type"),
            ("{\"timestamp\": \"2026-11-26T10:00:00Z\", \"latency_ms\": [1]}", "wrong_type"),
            ("{\"timestamp\": 1795700000}", "wrong_type"),
            ("{\"timestamp\": \"2026-11-26T10:00:00Z\", \"pad\": \"" + String(repeating: "x", count: 70_000) + "\"}", "line_too_long"),
            (String(repeating: "y", count: 1_500_000), "line_too_long"),
        ]
        var offsets: [Int64] = []
        for (text, _) in bad {
            offsets.append(Int64((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0))
            LineWriter.appendRaw(text + "\n", to: path)
            written += writer.append(1, to: "metrics_20261126.jsonl")
        }
        // Invalid UTF-8 inside a string.
        offsets.append(Int64((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0))
        let fd = open(path, O_WRONLY | O_APPEND)
        let invalid: [UInt8] = Array("{\"timestamp\": \"2026-11-26T10:00:00Z\", \"note\": \"".utf8) + [0xFF, 0xFE] + Array("\"}\n".utf8)
        _ = invalid.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        written += writer.append(1, to: "metrics_20261126.jsonl")

        let (status, output) = try await AgentProcess.ingestOnce(logDirectory: logs, database: dbURL)
        #expect(status == 0)
        #expect(output.split(separator: "\n").last == "ingested=\(written.count) quarantined=\(bad.count + 1) files=1")
        #expect(output.contains("quarantined a metrics line"))
        let rows = try db.quarantine()
        #expect(rows.map(\.reason) == bad.map(\.1) + ["invalid_utf8"])
        #expect(rows.map(\.offset) == offsets)
        #expect(rows.allSatisfy { $0.path.hasSuffix("metrics_20261126.jsonl") })
        #expect(try db.sampleTimestamps() == written)
    }

    @Test func seedPythonLinesAreReadWithTheDefaultInstanceAndExtrasKept() async throws {
        let path = logs.appendingPathComponent("metrics_20261126.jsonl").path
        LineWriter.appendRaw("""
            {"timestamp": "2026-11-26T22:15:00.123456", "cpu_percent": 12.5, "memory_percent": 41.6, "memory_mb": 812.4, "active_rooms": 5, "active_connections": 14, "active_games": 3}
            {"timestamp": "2026-11-26T22:16:00", "cpu_percent": 13.0, "memory_percent": 41.0, "memory_mb": 800.0, "active_rooms": 5, "active_connections": 15, "active_games": 3, "region": "eu", "disk": {"free_gb": 12}}

            """, to: path)
        // Lines of a fixed day, kept raw however long ago it is.
        let (status, _) = try await AgentProcess.ingestOnce(logDirectory: logs, database: dbURL,
                                                            extra: ["--default-instance", "legacy", "--retention-raw", "3650d"])
        #expect(status == 0)
        #expect(try db.sampleTimestamps(instance: "legacy") == [1_795_731_300_123, 1_795_731_360_000])
        #expect(try db.scalar("SELECT CAST(connections AS INTEGER) FROM samples WHERE ts = 1795731300123") == 14)
        let queue = try DatabaseQueue(path: dbURL.path)
        let extra = try await queue.read { db in try String.fetchOne(db, sql: "SELECT extra FROM samples WHERE ts = 1795731360000") }
        #expect(extra == #"{"disk":{"free_gb":12},"region":"eu"}"#)
    }

    @Test func databaseLockedByAnotherProcessForFiveSeconds() async throws {
        var writer = LineWriter(directory: logs)
        var written = writer.append(10)
        let agent = try await AgentProcess(logDirectory: logs, database: dbURL)
        #expect(try await eventually { try db.sampleTimestamps().count == 10 })
        let holder = ChildProcess("/usr/bin/env", ["python3", "-c", """
            import sqlite3, time
            con = sqlite3.connect("\(dbURL.path)", isolation_level=None)
            con.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(5)
            con.execute("COMMIT")
            print("released", flush=True)
            """])
        try holder.start()
        try await holder.waitForOutput("locked")
        written += writer.append(20)
        try await holder.waitForOutput("released", timeout: .seconds(15))
        #expect(try await eventually(timeout: .seconds(20)) { try db.sampleTimestamps().count == 30 })
        #expect(agent.child.isRunning)
        #expect(await agent.stop() == 0)
        #expect(try db.sampleTimestamps() == written)
        #expect(try db.linesConsumed() == 30)
    }

    @Test func damagedDatabaseGivesAClearErrorAndADistinctExitCode() async throws {
        var writer = LineWriter(directory: logs)
        writer.append(3)
        try Data(repeating: 0x41, count: 8192).write(to: dbURL)
        let child = ChildProcess("metrics-agent", ["run", "--log-dir", logs.path, "--db", dbURL.path, "--listen", "127.0.0.1:0"])
        try child.start()
        let status = await child.wait(timeout: .seconds(15))
        #expect(status == 78, "EX_CONFIG: the systemd unit does not restart on it")
        #expect(child.log.contains("is damaged"))
        #expect(child.log.contains("docs/OPERATIONS.md"))
        #expect(child.log.contains("ingest --once"))
        let once = try await AgentProcess.ingestOnce(logDirectory: logs, database: dbURL)
        #expect(once.status == 78)
    }

    @Test func secondAgentOnTheSameDatabaseIsRefused() async throws {
        let agent = try await AgentProcess(logDirectory: logs, database: dbURL)
        let second = try await AgentProcess.ingestOnce(logDirectory: logs, database: dbURL)
        #expect(second.status != 0)
        #expect(second.output.contains("another metrics-agent is already using"))
        await agent.stop()
    }

    @Test func backfillShowsProgressOldestFirstAndSelfMetrics() async throws {
        var writer = LineWriter(directory: logs, start: Date(timeIntervalSince1970: 1_790_000_000))
        let written = writer.append(30_000, step: 60)  // about three weeks, one file a day
        let agent = try await AgentProcess(logDirectory: logs, database: dbURL)
        #expect(agent.child.log.contains("backfill: "), "plain progress lines when not on a terminal")
        #expect(agent.child.log.contains("backfill done"))
        #expect(try db.sampleTimestamps() == written)
        // Oldest first: the rows' storage order follows their time.
        let firstStream = try db.scalar("SELECT MIN(s.id) FROM streams s WHERE s.last_path LIKE '%\(LineWriter.fileName(for: Date(timeIntervalSince1970: 1_790_000_000)))'")
        #expect(firstStream == 1)
        let metrics = try await HTTP.get(agent.baseURL + "/metrics")
        #expect(metrics.body.contains("metricsagent_lines_ingested_total 30000\n"))
        #expect(metrics.body.contains("metricsagent_lines_quarantined_total 0\n"))
        #expect(metrics.body.contains("metricsagent_files_tracked "))
        #expect(metrics.body.contains("metricsagent_lag_seconds "))
        #expect(metrics.body.contains("metricsagent_last_ingest_timestamp_seconds "))
        await agent.stop()
    }

    /// After the backfill is rolled up the agent hands back its start-up code pages (StartupMemory); what it runs
    /// afterwards (a new line, the dashboard, the API) comes back on demand and works as before.
    @Test func startUpMemoryIsGivenBackAndTheAgentKeepsWorking() async throws {
        var writer = LineWriter(directory: logs, start: Date(timeIntervalSince1970: 1_790_000_000))
        var written = writer.append(3_000, step: 60)  // two days: both rolled up before the memory goes back
        let agent = try await AgentProcess(logDirectory: logs, database: dbURL)
        let log = try await agent.child.waitForOutput("start-up memory given back")
        let line = try #require(log.split(separator: "\n").last { $0.contains("start-up memory given back") })
        func field(_ name: String) -> Int? {
            line.split(separator: " ").first { $0.hasPrefix(name + "=") }.flatMap { Int($0.dropFirst(name.count + 1)) }
        }
        let before = try #require(field("rss_kb_before")), after = try #require(field("rss_kb_after"))
        #expect(after < before, "resident memory fell when the start-up's code pages were handed back: \(line)")
        #expect(try #require(field("code_advised_kb")) > 0)
        #expect(try db.scalar("SELECT count(*) FROM rollup_dirty") == 0, "only after the backfill's days are rolled up")
        written += writer.append(1)
        #expect(try await eventually(timeout: .seconds(60)) { try db.sampleTimestamps() == written })
        #expect(try await HTTP.get(agent.baseURL + "/").status == 200)
        let series = try await HTTP.get(agent.baseURL + "/api/series?metric=cpu_percent&from=1790000000&to=1790200000")
        #expect(series.status == 200 && series.body.contains("\"points\""))
        await agent.stop()
    }
}
