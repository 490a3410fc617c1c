import Foundation
import GRDB
import Testing
import TestSupport

/// `ingest --once` rolls the days past raw retention (`--retention-raw`, 15 days by default) up from their lines
/// without storing their raw minutes: its rollups must be those of storing every line, a later line for such a
/// day is reported as late, and a crash at any point loses no line.
@Suite struct RawRetentionIngestTests {
    static let day: TimeInterval = 86_400
    static var today: Date { Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / day).rounded(.down) * day) }
    /// The first day whose raw minutes the default retention keeps: the days before it ended before now less 15 days.
    static var firstKeptDay: Date {
        let cutoff = Date().timeIntervalSince1970 - 15 * day
        return Date(timeIntervalSince1970: ((cutoff / day).rounded(.down)) * day)
    }

    /// Two instances in the same daily files over `days` days up to now: "b" has a gap, and "a" restarts at the
    /// first kept day's midnight (seen only against the last line of the day before, which is not stored).
    static func writeDays(_ days: Int, to logs: URL) throws -> Int {
        let start = today.addingTimeInterval(-Double(days - 1) * day)
        return try SyntheticMetrics.write(to: logs, instance: "a", from: start, to: Date(), restartAt: firstKeptDay)
            + SyntheticMetrics.write(to: logs, instance: "b", from: start.addingTimeInterval(1800), to: Date(),
                                     skip: start.addingTimeInterval(2 * day - 600)...start.addingTimeInterval(2 * day + 7200))
    }

    static func expectSameRollups(_ a: URL, _ b: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (x, y) = (try AgentDatabase(path: a.path).rollupsAndAnnotations(), try AgentDatabase(path: b.path).rollupsAndAnnotations())
        #expect(x.count == y.count, sourceLocation: sourceLocation)
        let firstDifference = zip(x, y).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "first differing row: \(firstDifference.map { "\(x[$0]) against \(y[$0])" } ?? "")",
                sourceLocation: sourceLocation)
    }

    /// The reference: the same files ingested with every raw minute kept.
    static func reference(_ logs: URL, in dir: URL) async throws -> URL {
        let reference = dir.appendingPathComponent("reference.sqlite")
        #expect(try await AgentProcess.ingestOnce(logDirectory: logs, database: reference, extra: ["--quiet", "--retention-raw", "3650d"]).status == 0)
        return reference
    }

    @Test func theRollupsAreThoseOfStoringEveryLineAndALaterLineIsLate() async throws {
        let dir = TemporaryDirectory.make("raw-retention")
        let logs = dir.appendingPathComponent("logs")
        let lines = try Self.writeDays(20, to: logs)
        let database = dir.appendingPathComponent("metrics.sqlite")
        let once = try await AgentProcess.ingestOnce(logDirectory: logs, database: database, extra: ["--quiet"])
        #expect(once.status == 0)
        #expect(once.output.split(separator: "\n").last == "ingested=\(lines) quarantined=0 files=20", "\(once.output.suffix(500))")
        let skippedDays = Int(Self.firstKeptDay.timeIntervalSince(Self.today.addingTimeInterval(-19 * Self.day)) / Self.day)
        #expect(skippedDays == 4, "today-19 to today-16: each ended before now less 15 days")
        #expect(once.output.contains("raw_skipped=\(2 * skippedDays)"), "\(once.output.suffix(500))")
        let reference = try await Self.reference(logs, in: dir)
        try Self.expectSameRollups(database, reference)
        let db = AgentDatabase(path: database.path), ref = AgentDatabase(path: reference.path)
        let keptFrom = Int64(Self.firstKeptDay.timeIntervalSince1970 * 1000)
        #expect(try db.sampleTimestamps() == ref.sampleTimestamps().filter { $0 >= keptFrom })
        #expect(try db.linesConsumed() == lines)
        #expect(try db.scalar("SELECT count(*) FROM annotations WHERE kind = 'restart' AND instance_id = 'a' AND ts = \(keptFrom)") == 1)
        // Charts of those days read the rollups: the same series from either database.
        func export(_ database: URL) async throws -> String {
            let from = Int(Self.today.timeIntervalSince1970 - 19 * Self.day), to = Int(Self.firstKeptDay.timeIntervalSince1970)
            let child = ChildProcess("metrics-agent", ["export", "--db", database.path, "--metric", "players", "--instance", "a",
                                                       "--from", "\(from)", "--to", "\(to)", "--step", "1h"])
            try child.start()
            #expect(await child.wait() == 0, "\(child.log)")
            return child.log
        }
        let series = try await export(database)
        #expect(series.split(separator: "\n").filter { !$0.hasSuffix(",") }.count >= 24 * skippedDays, "\(series.prefix(300))")
        #expect(try await series == export(reference))

        // A line for a day left out, read later: stored, annotated late, the day's rollups as they were.
        let lateDay = Self.today.addingTimeInterval(-18 * Self.day)
        let lateMS = Int64(lateDay.timeIntervalSince1970 * 1000) + 12 * 3_600_000 + 30_000
        let dayRows = "SELECT count(*), SUM(samples), SUM(players_sum) FROM rollup_1h WHERE instance_id = 'a' AND bucket >= \(Int64(lateDay.timeIntervalSince1970 * 1000)) AND bucket < \(Int64(lateDay.timeIntervalSince1970 * 1000) + 86_400_000)"
        let before = try db.text("SELECT group_concat(x) FROM (\(dayRows.replacingOccurrences(of: "count(*), SUM(samples), SUM(players_sum)", with: "count(*) || '/' || SUM(samples) || '/' || SUM(players_sum) AS x")))")
        LineWriter.appendRaw(LineWriter.line(instance: "a", at: Date(timeIntervalSince1970: Double(lateMS) / 1000)),
                             to: logs.appendingPathComponent("metrics_late.jsonl").path)
        let again = try await AgentProcess.ingestOnce(logDirectory: logs, database: database)
        #expect(again.status == 0)
        #expect(again.output.contains("late lines for a day whose raw minutes were pruned"), "\(again.output.suffix(800))")
        #expect(again.output.split(separator: "\n").last == "ingested=1 quarantined=0 files=21")
        #expect(try db.scalar("SELECT count(*) FROM annotations WHERE kind = 'late' AND instance_id = 'a' AND ts = \(Int64(lateDay.timeIntervalSince1970 * 1000))") == 1)
        #expect(try db.sampleTimestamps(instance: "a").contains(lateMS))
        #expect(try db.text("SELECT group_concat(x) FROM (\(dayRows.replacingOccurrences(of: "count(*), SUM(samples), SUM(players_sum)", with: "count(*) || '/' || SUM(samples) || '/' || SUM(players_sum) AS x")))") == before)
    }

    /// A rotated copy of an old day's file beside it (the same lines twice, one stream): the day held back is
    /// stored after all when the copy is read, and the rollups are still those of storing every line.
    @Test func aCopyOfAnOldDaysFileInTheSamePass() async throws {
        let dir = TemporaryDirectory.make("raw-retention-copy")
        let logs = dir.appendingPathComponent("logs")
        let lines = try Self.writeDays(20, to: logs)
        let old = LineWriter.fileName(for: Self.today.addingTimeInterval(-18 * Self.day))
        try FileManager.default.copyItem(at: logs.appendingPathComponent(old), to: logs.appendingPathComponent(old + ".1"))
        let database = dir.appendingPathComponent("metrics.sqlite")
        let once = try await AgentProcess.ingestOnce(logDirectory: logs, database: database, extra: ["--quiet"])
        #expect(once.status == 0)
        #expect(once.output.split(separator: "\n").last == "ingested=\(lines) quarantined=0 files=21", "\(once.output.suffix(500))")
        try Self.expectSameRollups(database, try await Self.reference(logs, in: dir))
        #expect(try AgentDatabase(path: database.path).linesConsumed() == lines, "the copy is the same stream, read once")
    }

    /// Killed at random points while it leaves raw minutes out and while lines are still written: every line
    /// ends up stored or in its day's rollups exactly once. From daily files, and from one file of all the days
    /// (as the seed's writer leaves), where a day's lines span two batches.
    @Test(arguments: [false, true])
    func sigkillWhileLeavingRawMinutesOutLosesNoLine(oneFile: Bool) async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        let dir = TemporaryDirectory.make("raw-retention-kill")
        let logs = dir.appendingPathComponent("logs")
        var lines = try Self.writeDays(40, to: logs)
        if oneFile {
            let days = try FileManager.default.contentsOfDirectory(atPath: logs.path).sorted()
            for name in days {
                LineWriter.appendRaw(try String(contentsOf: logs.appendingPathComponent(name), encoding: .utf8),
                                     to: logs.appendingPathComponent("metrics_all.jsonl").path)
                try FileManager.default.removeItem(at: logs.appendingPathComponent(name))
            }
        }
        let database = dir.appendingPathComponent("metrics.sqlite")
        var writer = LineWriter(directory: logs, instance: "c", start: Self.today)
        var killedMidway = 0
        var random = SystemRandomNumberGenerator()
        let db = AgentDatabase(path: database.path)
        for _ in 0..<12 {
            // (No database, or one being created, has consumed nothing yet.)
            let consumed = (try? db.linesConsumed()) ?? 0
            let child = ChildProcess("metrics-agent", ["ingest", "--once", "--quiet", "--log-dir", logs.path, "--db", database.path])
            try child.start()
            // Killed a moment after its first commit of this run: in the middle of the ingest, not before it.
            for _ in 0..<6000 where child.isRunning {
                if ((try? db.linesConsumed()) ?? 0) > consumed { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            // Soon after: each run moves on by about one commit (5,000 lines), so the 40 days last all 12 runs.
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...20, using: &random)))
            if child.isRunning {
                child.signal(SIGKILL)
                killedMidway += 1
            }
            _ = await child.wait(timeout: .seconds(120))
            // Lines go on arriving today.
            lines += writer.append(100, to: oneFile ? "metrics_all.jsonl" : nil, step: 1).count
        }
        #expect(killedMidway >= 6, "the kills must land during ingestion")
        print("raw retention: \(killedMidway) of 12 runs killed while ingesting")
        #expect(try await AgentProcess.ingestOnce(logDirectory: logs, database: database, extra: ["--quiet"]).status == 0)
        let reference = try await Self.reference(logs, in: dir)
        try Self.expectSameRollups(database, reference)
        let keptFrom = Int64(Self.firstKeptDay.timeIntervalSince1970 * 1000)
        #expect(try db.sampleTimestamps() == AgentDatabase(path: reference.path).sampleTimestamps().filter { $0 >= keptFrom })
        let skippedDays = Int64(Self.firstKeptDay.timeIntervalSince(Self.today.addingTimeInterval(-39 * Self.day)) / Self.day)
        #expect(try db.scalar("SELECT count(*) FROM raw_skipped_days") == 2 * skippedDays)
        #expect(try db.linesConsumed() == lines, "every line read exactly once")
    }
}
