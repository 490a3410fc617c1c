import Foundation
import GRDB
import JSONCore
import Logging
@testable import MetricsAgent
import MetricsSchema
import Testing
import TestSupport

/// What writers and disks really produce: byte order marks, torn writes, corrupt archives, stalls,
/// agents that were away for weeks; and the progress of a backfill over compressed files.
@Suite(.serialized) struct IngestEdgeTests {
    static let day0 = Date(timeIntervalSince1970: 1_796_083_200)  // 2026-12-01T00:00:00Z

    struct Agent {
        let store: Store
        let tailer: Tailer
        let logs: URL
        func rollups(now: Date, rawRetention: TimeInterval = 15 * 86_400) -> RollupEngine {
            var retention = Retention()
            retention.raw = rawRetention
            return RollupEngine(store: store, retention: retention, logger: Logger(label: "t"), now: { now })
        }
        func rows(_ sql: String) throws -> [Row] { try store.pool.read { try Row.fetchAll($0, sql: sql) } }
    }

    func agent(_ name: String) throws -> Agent {
        let dir = TemporaryDirectory.make(name)
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let store = try Store(path: dir.appendingPathComponent("m.sqlite").path)
        var logger = Logger(label: "edge-test")
        logger.logLevel = .critical
        return Agent(store: store, tailer: Tailer(store: store, config: TailerConfig(directories: [logs.path]), logger: logger), logs: logs)
    }

    static func line(_ date: Date, interval: Double = 60, uptime: Double? = nil, cpu: Double = 10) -> String {
        #"{"v":1,"timestamp":"\#(RFC3339.format(date))","instance_id":"g","cpu_percent":\#(cpu),"interval_s":\#(interval)\#(uptime.map { #","uptime_s":\#($0)"# } ?? "")}"# + "\n"
    }

    @Test func aByteOrderMarkIsSkippedAndATornWriteCostsOnlyItself() throws {
        let a = try agent("bom")
        let path = a.logs.appendingPathComponent("metrics_20261201.jsonl").path
        let t = Self.day0
        // A BOM, then a good line; a line cut short glued to the next good one; a last good line.
        LineWriter.appendRaw("\u{FEFF}" + Self.line(t), to: path)
        let torn = String(Self.line(t.addingTimeInterval(60)).prefix(40))
        LineWriter.appendRaw(torn + Self.line(t.addingTimeInterval(120)) + Self.line(t.addingTimeInterval(180)), to: path)
        let counts = try a.tailer.scan()
        #expect(counts.ingested == 3)
        #expect(try a.rows("SELECT ts FROM samples ORDER BY ts").map { $0[0] as Int64 } == [0, 120, 180].map { Int64((t.timeIntervalSince1970 + $0) * 1000) })
        let quarantined = try a.rows("SELECT reason, length FROM quarantine")
        #expect(quarantined.map { $0[0] as String } == ["torn_write"])
        #expect(quarantined.first?[1] as Int? == torn.utf8.count, "only the torn part is quarantined")
    }

    @Test func aCorruptArchiveIsReportedOncePerFileNotOncePerPoll() async throws {
        let dir = TemporaryDirectory.make("corrupt-gz")
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        try Data([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9]).write(to: logs.appendingPathComponent("metrics_20261130.jsonl.gz"))
        let agent = try await AgentProcess(logDirectory: logs, database: dir.appendingPathComponent("m.sqlite"))
        // Many polls (50 ms each) pass while new lines arrive and are read.
        var writer = LineWriter(directory: logs, instance: "g")
        for round in 1...5 {
            writer.append(1)
            #expect(try await eventually(timeout: .seconds(20)) { try agent.db.sampleTimestamps().count == round })
        }
        #expect(agent.child.log.components(separatedBy: "cannot read metrics file").count - 1 == 1, "\(agent.child.log.suffix(2000))")
        let metrics = try await HTTP.get(agent.baseURL + "/metrics").body
        #expect(metrics.contains("metricsagent_unreadable_files_total 1"))
        await agent.stop()
    }

    @Test func backfillProgressCountsUncompressedBytes() async throws {
        let a = try agent("progress")
        var writer = LineWriter(directory: a.logs, instance: "g", start: Self.day0)
        writer.append(500, to: "metrics_20261201.jsonl")
        writer.append(1500, to: "metrics_20261202.jsonl")
        let first = a.logs.appendingPathComponent("metrics_20261201.jsonl").path
        let size = try FileManager.default.attributesOfItem(atPath: first)[.size] as! Int
        let gzip = ChildProcess("/bin/gzip", ["-9", first])  // a compressed file of 500 lines, much smaller on disk
        try gzip.start()
        #expect(await gzip.wait() == 0)
        let total = size + (try FileManager.default.attributesOfItem(atPath: a.logs.appendingPathComponent("metrics_20261202.jsonl").path)[.size] as! Int)
        #expect(a.tailer.pendingBytes() == Int64(total))
        var lines: [String] = []
        var reporter = ProgressReporter(total: a.tailer.pendingBytes(), isTerminal: false, write: { lines.append($0) })
        let counts = try a.tailer.scan { reporter.update(bytes: $0.bytes, lines: $0.ingested, final: true) }
        #expect(counts.ingested == 2000 && counts.bytes == Int64(total))
        #expect(lines.last?.hasPrefix("backfill: 100%") == true, "\(lines)")
        #expect(lines.dropLast().allSatisfy { !$0.hasPrefix("backfill: 100%") }, "100 % only when the work is done: \(lines)")
        #expect(a.tailer.pendingBytes() == 0)
    }

    @Test func aStallWithoutARestartIsAGap() throws {
        let a = try agent("stall")
        let path = a.logs.appendingPathComponent("metrics_20261201.jsonl").path
        var text = ""
        for m in 0..<10 { text += Self.line(Self.day0.addingTimeInterval(Double(m) * 60), uptime: Double(1000 + m * 60)) }
        // Two hours without a line; the next line's interval covers the stall and its uptime goes on (no restart).
        let after = Self.day0.addingTimeInterval(9 * 60 + 7200)
        text += Self.line(after, interval: 7200, uptime: Double(1000 + 9 * 60 + 7200))
        text += Self.line(after.addingTimeInterval(60), uptime: Double(1000 + 9 * 60 + 7260))
        LineWriter.appendRaw(text, to: path)
        try a.tailer.scan()
        try a.rollups(now: Self.day0.addingTimeInterval(86_400)).processDirty()
        let notes = try a.rows("SELECT kind, ts, end_ts FROM annotations ORDER BY ts")
        #expect(notes.map { $0[0] as String } == ["gap"], "\(notes)")
        #expect(notes.first?[2] as Int64? == Int64(after.timeIntervalSince1970 * 1000))
    }

    @Test func oldDaysAreRolledUpWhileTheirRawMinutesExistAndLateLinesAfterPruneAreReported() throws {
        let a = try agent("late")
        let path = a.logs.appendingPathComponent("metrics_20261201.jsonl").path
        // Day 0: half a day of lines, rolled up at once.
        var text = ""
        for m in 0..<720 { text += Self.line(Self.day0.addingTimeInterval(Double(m) * 60), cpu: 10) }
        LineWriter.appendRaw(text, to: path)
        try a.tailer.scan()
        try a.rollups(now: Self.day0.addingTimeInterval(43_200)).processDirty()
        func dayCount() throws -> Int? { try a.rows("SELECT cpu_percent_count FROM rollup_1d").first?[0] }
        #expect(try dayCount() == 720)
        // The agent was away 20 days (past raw retention + 1 day); the rest of day 0 arrives. Nothing was pruned
        // in between, so the day is whole and is rolled up again.
        text = ""
        for m in 720..<1440 { text += Self.line(Self.day0.addingTimeInterval(Double(m) * 60), cpu: 30) }
        LineWriter.appendRaw(text, to: path)
        try a.tailer.scan()
        let later = Self.day0.addingTimeInterval(20 * 86_400)
        try a.rollups(now: later).processDirty()
        #expect(try dayCount() == 1440)
        #expect(try a.rows("SELECT cpu_percent_sum FROM rollup_1d").first?[0] as Double? == 720 * 10 + 720 * 30)
        // Now prune cuts the day's raw minutes; a late line for it is stored and reported, the rollups stay.
        try a.rollups(now: later).prune()
        LineWriter.appendRaw(Self.line(Self.day0.addingTimeInterval(30), cpu: 99), to: a.logs.appendingPathComponent("metrics_20261201-late.jsonl").path)
        try a.tailer.scan()
        #expect(try a.rows("SELECT count(*) FROM samples").first?[0] as Int? == 1, "the late line is stored")
        try a.rollups(now: later).processDirty()
        #expect(try dayCount() == 1440, "not recomputed from one line")
        #expect(try a.rows("SELECT kind FROM annotations WHERE kind = 'late'").count == 1)
    }

    @Test func exportKeepsTheStepItIsGivenAndSaysWhenItCannot() async throws {
        let dir = TemporaryDirectory.make("export-step")
        let logs = dir.appendingPathComponent("logs")
        let now = Date()
        _ = try SyntheticMetrics.write(to: logs, instance: "g", from: now.addingTimeInterval(-8 * 86_400), to: now, step: 60)
        let db = dir.appendingPathComponent("m.sqlite")
        #expect(try await AgentProcess.ingestOnce(logDirectory: logs, database: db, extra: ["--quiet"]).status == 0)
        func export(_ args: [String]) async throws -> (JSON, String) {
            let child = ChildProcess("metrics-agent", ["export", "--db", db.path, "--metric", "cpu_percent", "--format", "json"] + args)
            try child.start()
            #expect(await child.wait() == 0)
            let json = child.log.split(separator: "\n").first { $0.hasPrefix("{") }.map { try? JSONParser.parse(String($0)) } ?? nil
            return (json ?? .null, child.log)
        }
        // A week at 5 minutes: 2,016 points, more than the charts' 1,500, at the step asked for.
        let (week, quiet) = try await export(["--from", "now-7d", "--step", "5m"])
        #expect(week["step_ms"]?.int == 300_000)
        #expect((week["points"]?.array?.count ?? 0) >= 2016)
        #expect(!quiet.contains("coarsened"))
        // Seven minutes of a week: 1,440 points of exactly 7 minutes (a chart would round to 10).
        let (odd, _) = try await export(["--from", "now-7d", "--step", "7m"])
        #expect(odd["step_ms"]?.int == 420_000)
        // One minute over 20 days: raw minutes are kept 15 days, so the step is coarsened, and it says so.
        let (coarse, said) = try await export(["--from", "now-20d", "--step", "1m"])
        #expect((coarse["step_ms"]?.int ?? 0) > 60_000)
        #expect(said.contains("export: step 1m coarsened to"), "\(said.suffix(500))")
    }
}
