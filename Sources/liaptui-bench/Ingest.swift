import ArgumentParser
import Foundation
import MetricsSchema
import Synchronization

/// Runs a built executable that sits next to this tool; returns its output and wall time.
/// Runs a tool beside this one (or an absolute path) to its end: its output, wall seconds, status and
/// CPU seconds (user + system, from the children's rusage; run one child at a time).
func runSibling(_ name: String, _ arguments: [String]) throws -> (output: String, seconds: Double, status: Int32, cpuSeconds: Double) {
    let process = Process()
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    process.executableURL = name.hasPrefix("/") ? URL(fileURLWithPath: name) : directory.appendingPathComponent(name)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    let cpuBefore = childrenCPUSeconds()
    let started = ContinuousClock.now
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (String(decoding: data, as: UTF8.self), (ContinuousClock.now - started).seconds, process.terminationStatus,
            childrenCPUSeconds() - cpuBefore)
}

/// CPU seconds of every child that has ended and been waited for.
private func childrenCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Writes `days` files of minute records from `start` (rounded down to its UTC day), as the game server would.
func generateYear(in directory: URL, days: Int, instance: String = "bench-1", start: Date) throws -> Int {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var lines = 0
    var random = SystemRandomNumberGenerator()
    let start = Date(timeIntervalSince1970: (start.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
    for day in 0..<days {
        var text = ""
        text.reserveCapacity(1440 * 520)
        for minute in 0..<1440 {
            let t = start.addingTimeInterval(Double(day * 86_400 + minute * 60))
            let players = Int.random(in: 0...120, using: &random)
            let record = MetricsRecord(
                timestamp: t, instanceID: instance, version: "0.1.0", intervalSeconds: 60, uptimeSeconds: Double(day * 86_400 + minute * 60),
                cpuPercent: Double.random(in: 2...90, using: &random), memoryMB: Double.random(in: 600...1600, using: &random),
                memoryPercent: Double.random(in: 30...80, using: &random), processCPUPercent: Double.random(in: 0...60, using: &random),
                rssMB: Double.random(in: 30...200, using: &random), connections: players + 3, activeRooms: players / 3,
                activeGames: players / 4, players: players, messagesIn: players * 20, messagesOut: players * 90,
                gamesStarted: players / 10, gamesFinished: players / 10, errors: Int.random(in: 0...2, using: &random),
                latency: LatencySummary(p50: 0.4, p95: 2.1, p99: 4.2, max: 9.9, count: players * 20), writeErrors: 0)
            text += record.line
            lines += 1
        }
        try text.write(to: directory.appendingPathComponent(record(day: day, start: start)), atomically: false, encoding: .utf8)
    }
    return lines
}

private func record(day: Int, start: Date) -> String {
    MetricsFiles.fileName(for: start.addingTimeInterval(Double(day * 86_400)))
}

struct IngestBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "`metrics-agent ingest --once` over a year of minute records, beside a naive Python json+sqlite3 ingest and the SQLite floor (the raw rows copied by sqlite3 itself).")

    @Option(help: "Days of minute records to generate (365 = 525,600 lines).") var days = 365
    @Option(help: "The naive baseline script.") var baseline = "scripts/bench/naive_ingest.py"
    @Option(help: "Keep the generated files in this folder (its logs/ reused while it holds the same days up to yesterday, else generated anew).") var data: String?
    @Option(help: "Runs of each, taken in turn; the figures printed are the medians (a shared machine is noisy).") var runs = 3
    @Option(help: "Another build of metrics-agent (e.g. of an earlier commit) to run with rollups too, in the same rounds.")
    var compareAgent: String?

    func run() throws {
        let directory = data.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-ingest-\(UUID().uuidString.prefix(8))")
        defer { if data == nil { try? FileManager.default.removeItem(at: directory) } }
        let logs = directory.appendingPathComponent("logs")
        // The days up to yesterday (UTC): retention is relative to now, so data of fixed dates would be rolled up
        // and pruned differently as time passes. Kept files are reused only while they are still those days.
        let start = Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 / 86_400).rounded(.down) - Double(days)) * 86_400)
        let wanted = Set((0..<days).map { MetricsFiles.fileName(for: start.addingTimeInterval(Double($0 * 86_400))) })
        let existing = Set((try? FileManager.default.contentsOfDirectory(atPath: logs.path)) ?? [])
        let lines: Int
        if existing == wanted {
            lines = days * 1440
        } else {
            for stale in existing { try? FileManager.default.removeItem(at: logs.appendingPathComponent(stale)) }
            lines = try generateYear(in: logs, days: days, start: start)
        }
        for stale in ["naive.sqlite"] {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(stale))
        }
        let bytes = (try FileManager.default.contentsOfDirectory(atPath: logs.path)).reduce(0) {
            $0 + ((try? FileManager.default.attributesOfItem(atPath: logs.appendingPathComponent($1).path)[.size] as? Int) ?? 0)
        }
        print("generated lines=\(lines) files=\(days) bytes=\(bytes)")

        // Each configuration once per round, rounds in turn, so a slow spell of the machine hits all three alike.
        var agentRuns: [(label: String, executable: String, extra: [String])] = [
            ("metrics-agent (lines only, --no-rollups)", "metrics-agent", ["--no-rollups"]),
            ("metrics-agent (with rollups)", "metrics-agent", []),
        ]
        if let compareAgent {
            let path = URL(fileURLWithPath: compareAgent).standardizedFileURL.path
            agentRuns.append(("compared build \(path) (with rollups)", path, []))
        }
        let naiveDB = directory.appendingPathComponent("naive.sqlite").path
        var agentResults = Array(repeating: [(output: String, seconds: Double, cpuSeconds: Double, dbBytes: Int)](), count: agentRuns.count)
        var naiveResults: [(output: String, seconds: Double, cpuSeconds: Double)] = []
        var naiveFailed: Int32?
        var floorResults: [(rows: Int, seconds: Double, cpuSeconds: Double)] = []
        for _ in 0..<max(1, runs) {
            for (i, configuration) in agentRuns.enumerated() {
                let db = directory.appendingPathComponent("agent-\(i).sqlite").path
                for suffix in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: db + suffix) }
                let agent = try runSibling(configuration.executable, ["ingest", "--once", "--quiet", "--log-dir", logs.path, "--db", db] + configuration.extra)
                guard agent.status == 0 else { throw ValidationError("metrics-agent failed: \(agent.output)") }
                let dbBytes = ((try? FileManager.default.attributesOfItem(atPath: db)[.size] as? Int) ?? 0)
                agentResults[i].append((agent.output.split(separator: "\n").last.map(String.init) ?? "", agent.seconds, agent.cpuSeconds, dbBytes))
            }
            // Every raw row: the lines-only database (the default leaves out days past raw retention).
            floorResults.append(try sqliteFloor(copying: directory.appendingPathComponent("agent-0.sqlite").path,
                                                into: directory.appendingPathComponent("floor.sqlite").path))
            try? FileManager.default.removeItem(atPath: naiveDB)
            let naive = try runSibling("/usr/bin/env", ["python3", baseline, logs.path, naiveDB])
            if naive.status == 0 { naiveResults.append((naive.output, naive.seconds, naive.cpuSeconds)) } else { naiveFailed = naive.status }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        var withRollups: (seconds: Double, cpuSeconds: Double)?
        for (i, configuration) in agentRuns.enumerated() {
            let results = agentResults[i]
            let seconds = median(results.map(\.seconds)), cpu = median(results.map(\.cpuSeconds))
            print(String(format: "%@: %@ seconds=%.2f lines_per_second=%.0f cpu_seconds=%.2f lines_per_cpu_second=%.0f db_mb=%.1f runs=%d (wall %@)",
                         configuration.label, results.last!.output, seconds, Double(lines) / seconds, cpu, Double(lines) / cpu,
                         Double(results.last!.dbBytes) / 1_048_576, results.count,
                         results.map { String(format: "%.2f", $0.seconds) }.joined(separator: " ")))
            if configuration.label == "metrics-agent (with rollups)" { withRollups = (seconds, cpu) }
        }
        if !floorResults.isEmpty {
            let seconds = median(floorResults.map(\.seconds)), cpu = median(floorResults.map(\.cpuSeconds))
            print(String(format: "sqlite floor (the raw rows alone, copied by sqlite3 itself, one UTC day per transaction): rows=%d seconds=%.2f rows_per_second=%.0f cpu_seconds=%.2f rows_per_cpu_second=%.0f runs=%d (wall %@)",
                         floorResults.last!.rows, seconds, Double(floorResults.last!.rows) / seconds, cpu, Double(floorResults.last!.rows) / cpu,
                         floorResults.count, floorResults.map { String(format: "%.2f", $0.seconds) }.joined(separator: " ")))
        }
        if let naiveFailed {
            print("naive python: failed (\(naiveFailed)); run from the repository root")
        } else if !naiveResults.isEmpty {
            let seconds = median(naiveResults.map(\.seconds)), cpu = median(naiveResults.map(\.cpuSeconds))
            // The script's own line (its own timing) from the run of median wall time.
            let middle = naiveResults.sorted { $0.seconds < $1.seconds }[naiveResults.count / 2]
            print(String(format: "naive python: %@ lines_per_second=%.0f cpu_seconds=%.2f lines_per_cpu_second=%.0f (wall %.2f s incl. interpreter start) runs=%d",
                         middle.output.trimmingCharacters(in: .whitespacesAndNewlines), Double(lines) / seconds,
                         cpu, Double(lines) / cpu, seconds, naiveResults.count))
            if let withRollups {
                // The default (with rollups) against the baseline: above 1 is faster, per wall second and per CPU-second.
                print(String(format: "ratio (with rollups / naive python): wall=%.2fx cpu=%.2fx", seconds / withRollups.seconds, cpu / withRollups.cpuSeconds))
            }
        }
    }
}

/// The least SQLite itself needs to store the raw rows of an agent database (`samples`), as a bound on what
/// any ingest into that table can reach on this machine: the rows are copied by the `sqlite3` program into an
/// empty table of the same definition and settings, one UTC day per transaction (as the agent commits daily
/// files), with nothing parsed, bound or rolled up. The `WHERE` keeps SQLite from copying the records whole (its
/// transfer optimisation), so each row is read as well as encoded and inserted: a little more than inserting alone.
func sqliteFloor(copying source: String, into target: String) throws -> (rows: Int, seconds: Double, cpuSeconds: Double) {
    func sqlite(_ database: String, _ command: String) throws -> (output: String, seconds: Double, cpuSeconds: Double) {
        let run = try runSibling("/usr/bin/env", ["sqlite3", "-bail", database, command])
        guard run.status == 0 else { throw ValidationError("sqlite3 failed on \(database) (is the sqlite3 program installed?)") }
        return (run.output, run.seconds, run.cpuSeconds)
    }
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: target + suffix) }
    let table = try sqlite(source, "SELECT sql FROM sqlite_master WHERE name = 'samples'").output
    let days = try sqlite(source, "SELECT DISTINCT instance_id || '|' || (ts / 86400000) FROM samples ORDER BY 1").output
        .split(separator: "\n").compactMap { line -> (String, Int64)? in
            guard let bar = line.lastIndex(of: "|"), let day = Int64(line[line.index(after: bar)...]) else { return nil }
            return (String(line[..<bar]), day * 86_400_000)
        }
    // The agent's settings (Store): 16 KiB pages, WAL, synchronous NORMAL, a 32 MB cache.
    _ = try sqlite(target, "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; \(table);")
    let script = URL(fileURLWithPath: target + ".sql")
    defer { try? FileManager.default.removeItem(at: script) }
    var sql = "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32000; ATTACH '\(source)' AS source;\n"
    for (instance, day) in days {
        sql += "BEGIN; INSERT OR IGNORE INTO samples SELECT * FROM source.samples WHERE instance_id = '\(instance.replacingOccurrences(of: "'", with: "''"))' "
            + "AND ts >= \(day) AND ts < \(day + 86_400_000); COMMIT;\n"
    }
    try sql.write(to: script, atomically: true, encoding: .utf8)
    let copy = try sqlite(target, ".read '\(script.path)'")
    let rows = Int(try sqlite(target, "SELECT count(*) FROM samples").output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: target + suffix) }
    return (rows, copy.seconds, copy.cpuSeconds)
}

struct ParseBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse-lines",
        abstract: "Metrics lines parsed per second by the agent's line parser (no I/O, no SQLite).")

    @Option(help: "Lines to parse.") var lines = 200_000

    func run() throws {
        let record = MetricsRecord(
            timestamp: Date(), instanceID: "bench-1", version: "0.1.0", intervalSeconds: 60, uptimeSeconds: 1234,
            cpuPercent: 12.34, memoryMB: 812.5, memoryPercent: 41.25, processCPUPercent: 3.5, rssMB: 38.2,
            connections: 14, activeRooms: 5, activeGames: 3, players: 11, messagesIn: 412, messagesOut: 2301,
            gamesStarted: 1, gamesFinished: 1, errors: 0, latency: LatencySummary(p50: 0.41, p95: 1.9, p99: 3.02, max: 8.12, count: 412),
            writeErrors: 0)
        let bytes = Array(record.json.text.utf8)
        var parsed = 0
        let elapsed = ContinuousClock().measure {
            bytes.withUnsafeBufferPointer { buffer in
                for _ in 0..<lines {
                    if case .success = MetricsLineParser.parse(buffer) { parsed += 1 }
                }
            }
        }
        print(String(format: "lines=%d bytes_per_line=%d lines_per_second=%.0f", parsed, bytes.count, Double(lines) / elapsed.seconds))
    }
}

/// RSS (MiB) and CPU seconds of a running process, from /proc.
func processUsage(_ pid: Int32) -> (rssMB: Double, cpuSeconds: Double) {
    let usage = ProcessUsage.read(pid: pid)
    return (Double(usage.residentKB) / 1024, usage.cpuSeconds)
}

struct AgentTailBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent-tail",
        abstract: "RSS and CPU of `metrics-agent run` while metrics lines are appended (one a second by default; --every 60 is production's idle).")

    @Option(help: "Seconds to run.") var seconds = 60
    @Option(help: "Seconds between two lines.") var every = 1

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-tail-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let logs = directory.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("metrics-agent")
        process.arguments = ["run", "--log-dir", logs.path, "--db", directory.appendingPathComponent("m.sqlite").path,
                             "--listen", "127.0.0.1:0", "--log-level", "warning"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        try await Task.sleep(for: .seconds(2))
        let before = processUsage(process.processIdentifier)
        let start = Date()
        // RSS is sampled every second from here on: the largest is what the agent needed while tailing.
        let peakKB = Mutex(0)
        let sampler = Task {
            while !Task.isCancelled {
                let rss = ProcessUsage.read(pid: process.processIdentifier).residentKB
                peakKB.withLock { $0 = max($0, rss) }
                try await Task.sleep(for: .seconds(1))
            }
        }
        for i in stride(from: 0, to: seconds, by: max(1, every)) {
            let record = MetricsRecord(
                timestamp: start.addingTimeInterval(Double(i)), instanceID: "tail", version: "0.1.0", intervalSeconds: Double(every),
                uptimeSeconds: Double(i), cpuPercent: 10, memoryMB: 800, memoryPercent: 40, processCPUPercent: 1, rssMB: 30,
                connections: 3, activeRooms: 1, activeGames: 1, players: 2, messagesIn: 5, messagesOut: 9, gamesStarted: 0,
                gamesFinished: 0, errors: 0, latency: LatencySummary(), writeErrors: 0)
            let path = logs.appendingPathComponent(record.fileName).path
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
            _ = Array(record.line.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            try await Task.sleep(for: .seconds(max(1, every)))
        }
        sampler.cancel()
        let after = ProcessUsage.read(pid: process.processIdentifier)
        let proportionalKB = ProcessUsage.proportionalKB(pid: process.processIdentifier)
        process.terminate()
        process.waitUntilExit()
        let cpu = after.cpuSeconds - before.cpuSeconds
        print(String(format: "seconds=%d lines=%d rss_mb=%.1f rss_max_mb=%.1f pss_mb=%.1f anonymous_mb=%.1f cpu_seconds=%.3f cpu_seconds_per_120s=%.3f cpu_percent_of_one_core=%.2f",
                     seconds, (seconds + max(1, every) - 1) / max(1, every), Double(after.residentKB) / 1024,
                     Double(max(peakKB.withLock { $0 }, after.residentKB)) / 1024, Double(proportionalKB) / 1024, Double(after.anonymousKB) / 1024,
                     cpu, cpu / Double(seconds) * 120, cpu / Double(seconds) * 100))
    }
}
