import Foundation
import GRDB
import JSONCore
import MetricsSchema

/// Writes metrics lines the way the game server does: one `write(2)` per
/// append on a file opened with O_APPEND, reopened every time.
public struct LineWriter {
    public let directory: URL
    public let instance: String
    /// Minute of the next line: every line has its own timestamp.
    public private(set) var next: Date

    public init(directory: URL, instance: String = "test", start: Date = LineWriter.recentStart) {
        self.directory = directory
        self.instance = instance
        next = start
    }

    /// 08:26:40 UTC three days ago: within the agent's default raw retention (15 days), so `ingest --once`
    /// stores these lines raw whenever the tests run (days past it are rolled up without their raw minutes).
    public static var recentStart: Date {
        let today = (Date().timeIntervalSince1970 / 86_400).rounded(.down) * 86_400
        return Date(timeIntervalSince1970: today - 3 * 86_400 + 30_400)
    }

    public static func line(instance: String, at date: Date, cpu: Double = 10) -> String {
        // The schema's own formatter: Foundation's are slow to create, and tests write tens of thousands of lines.
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let stamp = RFC3339.format(Date(timeIntervalSince1970: Double(ms) / 1000))
        return #"{"v":1,"timestamp":"\#(stamp)","instance_id":"\#(instance)","cpu_percent":\#(cpu),"memory_percent":40,"memory_mb":800,"connections":3,"active_rooms":1,"active_games":1,"players":2,"messages_in":5,"messages_out":9,"games_started":0,"games_finished":0,"errors":0,"latency_ms":{"p50":1,"p95":2,"p99":3,"max":4,"count":5},"uptime_s":100}"# + "\n"
    }

    /// Appends `count` lines to `name` (the file of their day by default); returns their timestamps in ms.
    @discardableResult
    public mutating func append(_ count: Int, to name: String? = nil, step: TimeInterval = 60) -> [Int64] {
        var stamps: [Int64] = []
        for _ in 0..<count {
            let file = name ?? Self.fileName(for: next)
            Self.appendRaw(Self.line(instance: instance, at: next), to: directory.appendingPathComponent(file).path)
            stamps.append(Int64((next.timeIntervalSince1970 * 1000).rounded()))
            next = next.addingTimeInterval(step)
        }
        return stamps
    }

    public static func fileName(for date: Date) -> String { MetricsFiles.fileName(for: date) }

    public static func appendRaw(_ text: String, to path: String) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        precondition(fd >= 0, "cannot open \(path)")
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

/// Read-only looks into an agent database.
public struct AgentDatabase {
    public let path: String

    public init(path: String) { self.path = path }

    private func read<T>(_ body: (Database) throws -> T) throws -> T {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        return try DatabaseQueue(path: path, configuration: config).read(body)
    }

    public func sampleTimestamps(instance: String? = nil) throws -> [Int64] {
        try read { db in
            if let instance {
                return try Int64.fetchAll(db, sql: "SELECT ts FROM samples WHERE instance_id = ? ORDER BY ts", arguments: [instance])
            }
            return try Int64.fetchAll(db, sql: "SELECT ts FROM samples ORDER BY ts")
        }
    }

    /// Lines the agent consumed (stored, duplicate or quarantined), summed over streams: equal to the
    /// lines written exactly when nothing was read twice.
    public func linesConsumed() throws -> Int {
        try read { try Int.fetchOne($0, sql: "SELECT COALESCE(SUM(lines), 0) FROM streams") ?? 0 }
    }

    public func quarantine() throws -> [(path: String, offset: Int64, reason: String)] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT path, line_offset, reason FROM quarantine ORDER BY id").map { ($0[0], $0[1], $0[2]) }
        }
    }

    /// Every rollup row of every tier and every annotation but its id, in a fixed order: two databases hold the
    /// same rollups exactly when these are equal.
    public func rollupsAndAnnotations() throws -> [Row] {
        try read { db in
            try ["rollup_5m", "rollup_1h", "rollup_1d"].flatMap { try Row.fetchAll(db, sql: "SELECT * FROM \($0) ORDER BY instance_id, bucket") }
                + Row.fetchAll(db, sql: "SELECT instance_id, ts, end_ts, kind, text, source FROM annotations ORDER BY instance_id, ts, kind")
        }
    }

    public func scalar(_ sql: String) throws -> Int64? {
        try read { try Int64.fetchOne($0, sql: sql) }
    }

    public func text(_ sql: String) throws -> String? {
        try read { try String.fetchOne($0, sql: sql) }
    }
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(timeout: Duration = .seconds(15), every: Duration = .milliseconds(100), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? condition()) == true { return true }
        try await Task.sleep(for: every)
    }
    return try condition()
}
