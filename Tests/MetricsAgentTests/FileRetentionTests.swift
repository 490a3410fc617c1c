import Foundation
import Logging
@testable import MetricsAgent
import MetricsSchema
import Testing
import TestSupport

/// The agent's own retention of metrics files, day by day over 40 simulated days: real files,
/// real gzip, the real store; only the clock is the test's.
@Suite struct FileRetentionTests {
    static let day0 = Date(timeIntervalSince1970: 1_796_083_200)  // 2026-12-01T00:00:00Z

    @Test func fortyDaysOfFilesExpireAsDocumentedAndOnlyOnceRead() throws {
        let dir = TemporaryDirectory.make("file-retention")
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let store = try Store(path: dir.appendingPathComponent("m.sqlite").path)
        var logger = Logger(label: "retention-test")
        logger.logLevel = .error
        let tailer = Tailer(store: store, config: TailerConfig(directories: [logs.path]), logger: logger)
        let policy = FileRetention()  // the defaults: compress after 1 day, delete after 30
        var writer = LineWriter(directory: logs, instance: "game-1", start: Self.day0)
        var written = 0
        func name(_ day: Int) -> String { LineWriter.fileName(for: Self.day0.addingTimeInterval(Double(day) * 86_400)) }

        for day in 0..<40 {
            written += writer.append(24, step: 3600).count
            if day == 5 {
                // The writer dies mid-line at the end of day 5 and never writes to that file again.
                LineWriter.appendRaw(#"{"v":1,"timestamp":"2026-12-06T23:59"#, to: logs.appendingPathComponent(name(5)).path)
            }
            let now = Self.day0.addingTimeInterval(Double(day) * 86_400 + 12 * 3600)
            try tailer.scan()
            if day == 20 {
                // A file that turns up late, already due, is kept until it has been read.
                var late = LineWriter(directory: logs, instance: "game-2", start: Self.day0.addingTimeInterval(10 * 86_400))
                late.append(3, to: "metrics_20261211-late.jsonl", step: 60)
                written += 3
                let early = try tailer.applyRetention(policy, now: now)
                #expect(early.waiting == [logs.appendingPathComponent("metrics_20261211-late.jsonl").path])
                #expect(FileManager.default.fileExists(atPath: logs.appendingPathComponent("metrics_20261211-late.jsonl").path))
                try tailer.scan()
            }
            let counts = try tailer.applyRetention(policy, now: now)
            #expect(counts.waiting.isEmpty, "day \(day): \(counts.waiting)")
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: logs.path))
            for earlier in 0...day {
                let plain = files.contains(name(earlier)), gz = files.contains(name(earlier) + ".gz")
                switch day - earlier {
                case 0, 1: #expect(plain && !gz, "day \(day): \(name(earlier)) stays plain")
                case 2...30: #expect(gz && !plain, "day \(day): \(name(earlier)) is compressed")
                default: #expect(!plain && !gz, "day \(day): \(name(earlier)) is deleted")
                }
            }
            // The rows never depend on the files: everything read stays in the database.
            #expect(try store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM samples") } == written)
        }
        // Nothing was read twice, however often the compressed copies were looked at.
        #expect(try store.pool.read { try Int.fetchOne($0, sql: "SELECT SUM(lines) FROM streams") } == written)
        // The unfinished line of day 5 was left out and recorded, not lost silently.
        let torn = try store.pool.read { try String.fetchAll($0, sql: "SELECT reason FROM quarantine") }
        #expect(torn == ["torn_write"])
    }

    @Test func theCompressedFileHoldsTheCompleteLinesAndIsNeverReadAgain() async throws {
        let dir = TemporaryDirectory.make("file-compress")
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let store = try Store(path: dir.appendingPathComponent("m.sqlite").path)
        let tailer = Tailer(store: store, config: TailerConfig(directories: [logs.path]), logger: Logger(label: "t"))
        var writer = LineWriter(directory: logs, instance: "game-1", start: Self.day0)
        writer.append(100, step: 60)
        let path = logs.appendingPathComponent(LineWriter.fileName(for: Self.day0)).path
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        try tailer.scan()
        let counts = try tailer.applyRetention(FileRetention(), now: Self.day0.addingTimeInterval(3 * 86_400))
        #expect(counts.compressed == 1)
        let gunzip = ChildProcess("/bin/sh", ["-c", "gzip -dc '\(path).gz' > '\(dir.path)/check.jsonl'"])
        try gunzip.start()
        #expect(await gunzip.wait(timeout: .seconds(120)) == 0)
        #expect(try Data(contentsOf: dir.appendingPathComponent("check.jsonl")) == original)
        #expect(tailer.pendingBytes() == 0, "the compressed copy is known to be stored")
        #expect(try tailer.scan().ingested == 0)
    }
}
