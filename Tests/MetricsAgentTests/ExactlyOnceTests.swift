import Foundation
import GRDB
import Testing
import TestSupport

/// Each test ends with exactly the lines written in the database: no more, no fewer,
/// and every line read once (the streams' line counts equal the lines written).
@Suite(.serialized) struct ExactlyOnceTests {
    let dir = TemporaryDirectory.make("agent")
    var logs: URL { dir.appendingPathComponent("logs") }
    var dbURL: URL { dir.appendingPathComponent("metrics.sqlite") }
    var db: AgentDatabase { AgentDatabase(path: dbURL.path) }

    init() throws { try FileManager.default.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: true) }

    func expectExactly(_ written: [Int64], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let stored = try db.sampleTimestamps()
        #expect(stored.count == written.count, "stored \(stored.count), written \(written.count)", sourceLocation: sourceLocation)
        #expect(stored == written.sorted(), sourceLocation: sourceLocation)
        #expect(try db.linesConsumed() == written.count, "every line read exactly once", sourceLocation: sourceLocation)
    }

    func ingest(sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let (status, output) = try await AgentProcess.ingestOnce(logDirectory: logs, database: dbURL)
        #expect(status == 0, "\(output.suffix(2000))", sourceLocation: sourceLocation)
        return output
    }

    @Test func ingestOncePrintsItsSummaryLast() async throws {
        var writer = LineWriter(directory: logs)
        let written = writer.append(10, to: "metrics_20261126.jsonl")
        LineWriter.appendRaw("not json\n", to: logs.appendingPathComponent("metrics_20261126.jsonl").path)
        let output = try await ingest()
        #expect(output.split(separator: "\n").last == "ingested=10 quarantined=1 files=1")
        let again = try await ingest()
        #expect(again.split(separator: "\n").last == "ingested=0 quarantined=0 files=1")
        try #expect(db.sampleTimestamps() == written)
    }

    @Test func restartWithLinesAppendedWhileStopped() async throws {
        var writer = LineWriter(directory: logs)
        var written = writer.append(50)
        let agent = try await AgentProcess(logDirectory: logs, database: dbURL)
        #expect(try await eventually { try db.sampleTimestamps().count == 50 })
        #expect(await agent.stop() == 0)
        written += writer.append(30)
        let again = try await AgentProcess(logDirectory: logs, database: dbURL)
        #expect(try await eventually { try db.sampleTimestamps().count == 80 })
        written += writer.append(5)  // and while running: found within the poll interval
        #expect(try await eventually(timeout: .seconds(2)) { try db.sampleTimestamps().count == 85 })
        await again.stop()
        try expectExactly(written)
    }

    @Test func sigkillDuringIngestAtRandomPoints() async throws {
        var writer = LineWriter(directory: logs)
        var written = writer.append(60_000, to: "metrics_big.jsonl", step: 1)
        var killedMidway = 0
        var random = SystemRandomNumberGenerator()
        for round in 0..<20 {
            let child = ChildProcess("metrics-agent", ["ingest", "--once", "--quiet", "--log-dir", logs.path, "--db", dbURL.path])
            try child.start()
            try await Task.sleep(for: .milliseconds(Int.random(in: 30...400, using: &random)))
            if child.isRunning {
                child.signal(SIGKILL)
                killedMidway += 1
            }
            _ = await child.wait(timeout: .seconds(60))
            // More lines arrive between crashes, in the same file and in a new one.
            written += writer.append(200, to: round % 2 == 0 ? "metrics_big.jsonl" : "metrics_more.jsonl", step: 1)
        }
        #expect(killedMidway >= 10, "the kills must land during ingestion")
        _ = try await ingest()
        try expectExactly(written)
    }

    @Test func partialLineWaitsUntilComplete() async throws {
        let path = logs.appendingPathComponent("metrics_20261126.jsonl").path
        var writer = LineWriter(directory: logs)
        var written = writer.append(3, to: "metrics_20261126.jsonl")
        let next = LineWriter.line(instance: "test", at: writer.next)
        let agent = try await AgentProcess(logDirectory: logs, database: dbURL)
        LineWriter.appendRaw(String(next.prefix(40)), to: path)
        try await Task.sleep(for: .milliseconds(500))
        try #expect(db.sampleTimestamps().count == 3)
        try #expect(db.quarantine().isEmpty, "half a line is not a bad line")
        LineWriter.appendRaw(String(next.dropFirst(40)), to: path)
        written.append(Int64((writer.next.timeIntervalSince1970 * 1000).rounded()))
        #expect(try await eventually { try db.sampleTimestamps().count == 4 })
        await agent.stop()
        try expectExactly(written)
    }

    @Test func renameRotationWithUnreadLines() async throws {
        var writer = LineWriter(directory: logs)
        var written = writer.append(20, to: "metrics_20261126.jsonl")
        _ = try await ingest()
        // While stopped: more lines, then the file is renamed and a new one started.
        written += writer.append(15, to: "metrics_20261126.jsonl")
        try FileManager.default.moveItem(at: logs.appendingPathComponent("metrics_20261126.jsonl"),
                                        to: logs.appendingPathComponent("metrics_20261126.jsonl.1"))
        written += writer.append(10, to: "metrics_20261126.jsonl")
        _ = try await ingest()
        try expectExactly(written)
    }

    @Test func copytruncateWithLinesAppendedBetweenCopyAndTruncate() async throws {
        let live = logs.appendingPathComponent("metrics_20261126.jsonl")
        var writer = LineWriter(directory: logs)
        var written = writer.append(25, to: live.lastPathComponent)
        let agent = try await AgentProcess(logDirectory: logs, database: dbURL)
        #expect(try await eventually { try db.sampleTimestamps().count == 25 })
        // copytruncate by hand: copy, lines arrive, the agent reads them, then the truncate.
        try FileManager.default.copyItem(at: live, to: logs.appendingPathComponent("metrics_20261126.jsonl.1"))
        written += writer.append(7, to: live.lastPathComponent)
        #expect(try await eventually { try db.sampleTimestamps().count == 32 })
        #expect(truncate(live.path, 0) == 0)
        written += writer.append(9, to: live.lastPathComponent)
        #expect(try await eventually { try db.sampleTimestamps().count == 41 })
        try await Task.sleep(for: .milliseconds(300))
        await agent.stop()
        try expectExactly(written)
    }

    @Test func truncateWhileStoppedAndRegrownPastTheOldOffset() async throws {
        let live = logs.appendingPathComponent("metrics_20261126.jsonl")
        var writer = LineWriter(directory: logs)
        var written = writer.append(10, to: live.lastPathComponent)
        _ = try await ingest()
        #expect(truncate(live.path, 0) == 0)
        written += writer.append(25, to: live.lastPathComponent)  // longer than before the truncate
        _ = try await ingest()
        try expectExactly(written)
    }

    @Test func gzipOfAnAlreadyIngestedFileAndOfUnreadLines() async throws {
        var writer = LineWriter(directory: logs)
        var written = writer.append(30, to: "metrics_20261125.jsonl")
        _ = try await ingest()
        try gzip(logs.appendingPathComponent("metrics_20261125.jsonl"), as: "metrics_20261125.jsonl.1.gz")
        // Unread lines compressed while the agent was stopped.
        written += writer.append(12, to: "metrics_20261126.jsonl")
        _ = try await ingest()
        written += writer.append(8, to: "metrics_20261126.jsonl")
        try gzip(logs.appendingPathComponent("metrics_20261126.jsonl"), as: "metrics_20261126.jsonl.gz")
        _ = try await ingest()
        _ = try await ingest()
        try expectExactly(written)
    }

    @Test func inodeReuse() async throws {
        let path = logs.appendingPathComponent("metrics_20261126.jsonl").path
        var writer = LineWriter(directory: logs)
        var written = writer.append(10, to: "metrics_20261126.jsonl")
        _ = try await ingest()
        var info = stat()
        stat(path, &info)
        let oldInode = info.st_ino
        // Delete and create files until one gets the old inode (file systems hand freed inodes out again;
        // other tests creating files at the same time may take it first, hence many tries).
        try FileManager.default.removeItem(atPath: path)
        var reused = false
        for _ in 0..<5000 {
            let fd = open(path, O_WRONLY | O_CREAT, 0o644)
            fstat(fd, &info)
            close(fd)
            if info.st_ino == oldInode { reused = true; break }
            let spare = logs.appendingPathComponent("spare-\(UUID().uuidString)").path
            rename(path, spare)
        }
        #expect(reused, "the file system did not reuse the inode")
        written += writer.append(4, to: "metrics_20261126.jsonl")  // fewer bytes than the old offset
        _ = try await ingest()
        try expectExactly(written)
    }

    @Test func midnightRolloverWithALateLineInTheOldFile() async throws {
        var writer = LineWriter(directory: logs, start: Date(timeIntervalSince1970: 1_795_737_540))  // 23:59 UTC
        let agent = try await AgentProcess(logDirectory: logs, database: dbURL)
        var written = writer.append(3)  // 23:59, 00:00, 00:01: two files
        #expect(try await eventually { try db.sampleTimestamps().count == 3 })
        let names = try FileManager.default.contentsOfDirectory(atPath: logs.path).sorted()
        #expect(names.count == 2)
        // A late line lands in yesterday's file after today's lines were read.
        let late = Date(timeIntervalSince1970: 1_795_737_570)
        LineWriter.appendRaw(LineWriter.line(instance: "test", at: late), to: logs.appendingPathComponent(names[0]).path)
        written.append(1_795_737_570_000)
        #expect(try await eventually { try db.sampleTimestamps().count == 4 })
        await agent.stop()
        try expectExactly(written)
    }

    @Test func outageAcrossTwoDayBoundariesWithRotations() async throws {
        var writer = LineWriter(directory: logs, start: Date(timeIntervalSince1970: 1_795_651_200 - 3600))  // day 1, 23:00
        var written = writer.append(30)
        _ = try await ingest()
        // The agent is down for two days: files roll over, get rotated and compressed.
        written += writer.append(60 * 24 * 2, step: 60)
        let day1 = LineWriter.fileName(for: Date(timeIntervalSince1970: 1_795_651_200 - 3600))
        try FileManager.default.moveItem(at: logs.appendingPathComponent(day1), to: logs.appendingPathComponent(day1 + ".1"))
        try gzip(logs.appendingPathComponent(day1 + ".1"), as: day1 + ".1.gz")
        let files = try FileManager.default.contentsOfDirectory(atPath: logs.path)
        #expect(files.count == 3)  // day 1 (rotated, compressed), day 2, day 3
        let output = try await ingest()
        #expect(output.contains("ingested=\(60 * 24 * 2)"))
        try expectExactly(written)
    }

    @Test func twoNewCopiesOfOneFileInOnePass() async throws {
        // logrotate's `copy` mode while the agent was down: two files with the same lines, both unknown.
        var writer = LineWriter(directory: logs)
        let written = writer.append(100, to: "metrics_20261126.jsonl")
        try FileManager.default.copyItem(at: logs.appendingPathComponent("metrics_20261126.jsonl"),
                                        to: logs.appendingPathComponent("metrics_20261126.jsonl.1"))
        let output = try await ingest()
        #expect(output.split(separator: "\n").last == "ingested=100 quarantined=0 files=2")
        try expectExactly(written)
    }

    @Test func newFilesAreFoundWithinTwoSeconds() async throws {
        let agent = try await AgentProcess(logDirectory: logs, database: dbURL)
        var writer = LineWriter(directory: logs)
        let written = writer.append(1, to: "metrics_20300101.jsonl")
        let started = ContinuousClock.now
        #expect(try await eventually(timeout: .seconds(2), every: .milliseconds(20)) { try db.sampleTimestamps().count == 1 })
        #expect(ContinuousClock.now - started < .seconds(2))
        await agent.stop()
        try expectExactly(written)
    }

    func gzip(_ file: URL, as name: String) throws {
        let child = ChildProcess("/bin/gzip", ["-c", file.path])
        let target = logs.appendingPathComponent(name)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "gzip -c '\(file.path)' > '\(target.path)' && rm '\(file.path)'"]
        try process.run()
        process.waitUntilExit()
        _ = child
        #expect(process.terminationStatus == 0)
    }
}
