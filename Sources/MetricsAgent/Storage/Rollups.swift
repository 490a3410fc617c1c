import Foundation
import GRDB
import GRDBSQLite
import Logging
import MetricsSchema

/// How long each tier is kept. Defaults follow CloudWatch: raw minutes 15
/// days, 5-minute buckets 63 days, 1-hour 455 days, 1-day 5 years.
public struct Retention: Sendable, Equatable {
    public var raw: TimeInterval = 15 * 86_400
    public var fiveMinutes: TimeInterval = 63 * 86_400
    public var hour: TimeInterval = 455 * 86_400
    public var day: TimeInterval = 5 * 365 * 86_400

    public init() {}

    func keeps(_ tier: Tier) -> TimeInterval {
        switch tier {
        case .raw: return raw
        case .fiveMinutes: return fiveMinutes
        case .hour: return hour
        case .day: return day
        }
    }
}

/// The storage tiers, finest first.
public enum Tier: Int, CaseIterable, Sendable, Comparable {
    case raw = 60_000
    case fiveMinutes = 300_000
    case hour = 3_600_000
    case day = 86_400_000

    public var milliseconds: Int64 { Int64(rawValue) }
    public var name: String {
        switch self {
        case .raw: return "raw"
        case .fiveMinutes: return "5m"
        case .hour: return "1h"
        case .day: return "1d"
        }
    }
    var table: String { "rollup_\(name)" }
    static let rolled: [Tier] = [.fiveMinutes, .hour, .day]

    public static func < (a: Tier, b: Tier) -> Bool { a.rawValue < b.rawValue }
}

/// The per-bucket figures kept for each metric.
enum RollupField: String, CaseIterable {
    case count, sum, min, max, p95, p99
}

extension Store {
    static let day: Int64 = 86_400_000

    static var rollupMigrations: [(String, @Sendable (Database) throws -> Void)] {
        [("v2: rollups, annotations", { db in
            for tier in Tier.rolled {
                let columns = v1MetricColumns.flatMap { m in RollupField.allCases.map { "\(m)_\($0.rawValue) \($0 == .count ? "INTEGER" : "REAL")" } }
                try db.execute(sql: """
                    CREATE TABLE \(tier.table) (
                        instance_id TEXT NOT NULL,
                        bucket INTEGER NOT NULL,
                        samples INTEGER NOT NULL,
                        \(columns.joined(separator: ",\n    ")),
                        PRIMARY KEY (instance_id, bucket)
                    ) WITHOUT ROWID
                    """)
            }
            try db.execute(sql: """
                CREATE TABLE rollup_dirty (instance_id TEXT NOT NULL, day INTEGER NOT NULL, PRIMARY KEY (instance_id, day)) WITHOUT ROWID;
                CREATE TABLE annotations (
                    id INTEGER PRIMARY KEY,
                    instance_id TEXT,
                    ts INTEGER NOT NULL,
                    end_ts INTEGER,
                    kind TEXT NOT NULL,
                    text TEXT NOT NULL,
                    source TEXT NOT NULL
                );
                CREATE INDEX annotations_by_time ON annotations(ts);
                CREATE INDEX annotations_by_source ON annotations(source, instance_id, ts);
                CREATE TABLE instances (
                    instance_id TEXT PRIMARY KEY,
                    first_ts INTEGER NOT NULL,
                    last_ts INTEGER NOT NULL,
                    last_version TEXT
                );
                """)
        })]
    }

    /// Percentile sketches per metric and bucket (QuantileSketch); every day whose raw minutes are stored is
    /// rolled up again to fill them.
    static var sketchMigrations: [(String, @Sendable (Database) throws -> Void)] {
        [("v5: percentile sketches", { db in
            for tier in Tier.rolled {
                try addColumns(v1MetricColumns.map { "\($0)_sketch BLOB" }, to: tier.table, in: db)
            }
            try rollUpAgainEveryStoredDay(in: db)
        })]
    }

    static var rawSkipMigrations: [(String, @Sendable (Database) throws -> Void)] {
        [("v9: days rolled up from their lines without storing their raw minutes", { db in
            // With the day's last sample: the sample before the next day, for its gaps and restarts at midnight.
            try db.execute(sql: """
                CREATE TABLE raw_skipped_days (
                    instance_id TEXT NOT NULL, day INTEGER NOT NULL,
                    last_ts INTEGER, last_uptime_s REAL, last_version TEXT, last_interval_s REAL,
                    PRIMARY KEY (instance_id, day)
                ) WITHOUT ROWID
                """)
        })]
    }
}

extension Store {
    /// The minute each bucket's maximum came at, per metric: charts label a peak with its exact minute at any
    /// zoom. Every day whose raw minutes are stored is rolled up again to fill them.
    /// Marks every day whose raw minutes are stored for a new roll-up (a migration that adds rollup columns).
    static func rollUpAgainEveryStoredDay(in db: Database) throws {
        try db.execute(sql: """
            INSERT OR IGNORE INTO rollup_dirty (instance_id, day)
            SELECT DISTINCT instance_id, (ts / 86400000) * 86400000 FROM samples WHERE ts >= 0
            """)
    }

    static var peakMigrations: [(String, @Sendable (Database) throws -> Void)] {
        [("v8: the minute of each bucket's maximum", { db in
            for tier in Tier.rolled {
                try addColumns(metricColumns.map { "\($0)_max_ts INTEGER" }, to: tier.table, in: db)
            }
            try rollUpAgainEveryStoredDay(in: db)
        })]
    }
}

/// Keeps the rollup tiers and the derived annotations (restarts, gaps,
/// deploys) up to date. Ingestion marks each (instance, UTC day) it touched as
/// dirty in its own transaction; `processDirty` recomputes those days from the
/// raw minutes, so late lines update their buckets and percentiles are exact.
public final class RollupEngine: Sendable {
    let store: Store
    let retention: Retention
    let logger: Logger
    /// The wall clock, injectable for tests.
    let now: @Sendable () -> Date

    public init(store: Store, retention: Retention = Retention(), logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.retention = retention
        self.logger = logger
        self.now = now
    }

    /// Marks the days of freshly stored rows and keeps the instance list (called inside the ingest transaction).
    /// `origin`: the agent whose files the rows came from (nil: this agent's own).
    static func markDirty(_ stored: StoredSpans, origin: String?, in db: Database) throws {
        for span in stored.instances {
            for day in span.days {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO rollup_dirty (instance_id, day) VALUES (?, ?)").execute(arguments: [span.id, day])
            }
            try db.cachedStatement(sql: """
                INSERT INTO instances (instance_id, first_ts, last_ts, origin) VALUES (?, ?, ?, ?)
                ON CONFLICT(instance_id) DO UPDATE SET first_ts = min(first_ts, excluded.first_ts), last_ts = max(last_ts, excluded.last_ts),
                    origin = excluded.origin
                """).execute(arguments: [span.id, span.first, span.last, origin])
        }
    }

    struct DayKey: Hashable, Sendable {
        let instance: String
        let day: Int64
    }

    /// Recomputes every dirty day, one transaction per day. Returns the days done.
    @discardableResult
    public func processDirty(limit: Int = .max) throws -> Int {
        var done = 0
        while done < limit {
            let batch = try store.pool.read { db in
                try Row.fetchAll(db, sql: "SELECT instance_id, day FROM rollup_dirty ORDER BY day LIMIT 64")
                    .map { DayKey(instance: $0[0], day: $0[1]) }
            }
            if batch.isEmpty { break }
            for key in batch {
                try store.pool.write { db in
                    try recompute(key, in: db)
                    try db.execute(sql: "DELETE FROM rollup_dirty WHERE instance_id = ? AND day = ?", arguments: [key.instance, key.day])
                }
                done += 1
                if done >= limit { break }
            }
        }
        return done
    }

    public func dirtyDays() throws -> Int {
        try store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM rollup_dirty") ?? 0 }
    }

    private func recompute(_ key: DayKey, in db: Database) throws {
        try apply(compute(key, in: db), in: db)
    }

    /// One day's rollups, computed from a read of its raw minutes; `apply` writes them.
    struct DayRollup: Sendable {
        let key: DayKey
        /// The day's raw minutes were pruned: its rollups keep their values (nil below).
        let late: Bool
        var day: DaySamples?
        let tiers: [(tier: Tier, buckets: [Bucket])]
    }

    /// Reads the day and computes its buckets: no writes, so it may run on a reader beside the writer.
    func compute(_ key: DayKey, in db: Database) throws -> DayRollup {
        // Whether the day's raw minutes are all still stored decides, not its age: an agent that was down
        // for weeks rolls up every day it has not pruned. A day that prune has cut into cannot be recomputed
        // exactly: its rollups stay, and the late lines are stored raw (until the next prune) and reported.
        // A day rolled up from its lines without storing them (past raw retention) is final in the same way.
        let prunedBefore = try String.fetchOne(db, sql: "SELECT value FROM agent_state WHERE key = 'raw_pruned_before'").flatMap { Int64($0) }
        if let prunedBefore, key.day < prunedBefore { return DayRollup(key: key, late: true, day: nil, tiers: []) }
        if try Self.rawSkipped(key, in: db) { return DayRollup(key: key, late: true, day: nil, tiers: []) }
        return rollUp(try DaySamples.load(instance: key.instance, day: key.day, in: db), key: key)
    }

    /// True when `ingest --once` rolled the day up from its lines and left its raw minutes out (past raw retention).
    static func rawSkipped(_ key: DayKey, in db: Database) throws -> Bool {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM raw_skipped_days WHERE instance_id = ? AND day = ?"), arguments: [key.instance, key.day]) != nil
    }

    /// The buckets of one day's minutes in every tier still kept (no database access).
    func rollUp(_ day: DaySamples, key: DayKey) -> DayRollup {
        let nowMS = Int64(now().timeIntervalSince1970 * 1000)
        let codes = day.sketchCodes()
        // Tiers past their retention for this day would be pruned at once: skip the work.
        let tiers = Tier.rolled.filter { key.day + Store.day > nowMS - Int64(retention.keeps($0) * 1000) }
        return DayRollup(key: key, late: false, day: day, tiers: tiers.map { ($0, day.buckets($0, codes: codes)) })
    }

    /// Writes a computed day: its buckets in every tier still kept, and its derived annotations.
    func apply(_ rollup: DayRollup, in db: Database) throws {
        let key = rollup.key
        guard let day = rollup.day, !rollup.late else {
            let dayText = RFC3339.format(Date(timeIntervalSince1970: Double(key.day) / 1000)).prefix(10)
            logger.notice("late lines for a day whose raw minutes were pruned: stored, its rollups keep their values",
                          metadata: ["instance": "\(key.instance)", "day": "\(dayText)"])
            try db.execute(sql: "INSERT INTO annotations (instance_id, ts, end_ts, kind, text, source) VALUES (?, ?, NULL, 'late', ?, 'late')",
                           arguments: [key.instance, key.day, "Lines for \(dayText) arrived after its raw minutes were pruned: stored, rollups unchanged"])
            return
        }
        for (tier, buckets) in rollup.tiers {
            try write(tier: tier, instance: key.instance, day: key.day, buckets: buckets, in: db)
        }
        try writeAnnotations(for: day, instance: key.instance, in: db)
    }

    /// Each tier's statement for one bucket (built once: 211 columns).
    private static let insertSQL: [Tier: String] = Dictionary(uniqueKeysWithValues: Tier.rolled.map { tier in
        let columns = ["instance_id", "bucket", "samples"]
            + Store.metricColumns.flatMap { m in RollupField.allCases.map { "\(m)_\($0.rawValue)" } + ["\(m)_sketch", "\(m)_max_ts"] }
        return (tier, "INSERT INTO \(tier.table) (\(columns.joined(separator: ","))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ",")))")
    })

    private func write(tier: Tier, instance: String, day: Int64, buckets: [Bucket], in db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM \(tier.table) WHERE instance_id = ? AND bucket >= ? AND bucket < ?")
            .execute(arguments: [instance, day, day + Store.day])
        let statement = try db.cachedStatement(sql: Self.insertSQL[tier]!).sqliteStatement
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        // Bindings outlive sqlite3_reset: the instance is bound once.
        sqlite3_bind_text(statement, 1, instance, -1, transient)
        for bucket in buckets {
            sqlite3_bind_int64(statement, 2, bucket.start)
            sqlite3_bind_int64(statement, 3, Int64(bucket.samples))
            // The sketches are bound in place (no copy each): the step runs while their bytes are pinned.
            let result = bucket.sketchBytes.withUnsafeBytes { sketches -> Int32 in
                var index: Int32 = 4
                for (m, stats) in bucket.metrics.enumerated() {
                    if let stats {
                        sqlite3_bind_int64(statement, index, Int64(stats.count))
                        sqlite3_bind_double(statement, index + 1, stats.sum)
                        sqlite3_bind_double(statement, index + 2, stats.min)
                        sqlite3_bind_double(statement, index + 3, stats.max)
                        sqlite3_bind_double(statement, index + 4, stats.p95)
                        sqlite3_bind_double(statement, index + 5, stats.p99)
                        let range = bucket.sketchRange(m)
                        sqlite3_bind_blob(statement, index + 6, sketches.baseAddress! + range.lowerBound, Int32(range.count), nil)
                        sqlite3_bind_int64(statement, index + 7, bucket.maxTimes[m])
                    } else {
                        sqlite3_bind_int64(statement, index, 0)
                        for i in 1...7 { sqlite3_bind_null(statement, index + Int32(i)) }
                    }
                    index += 8
                }
                let result = sqlite3_step(statement)
                sqlite3_reset(statement)
                return result
            }
            guard result == SQLITE_DONE else {
                throw DatabaseError(resultCode: ResultCode(rawValue: result), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
        }
        sqlite3_clear_bindings(statement)
    }

    /// Restarts (uptime going back), gaps (a missing minute or more) and deploys (version changes) of one day.
    private func writeAnnotations(for day: DaySamples, instance: String, in db: Database) throws {
        // What this day derives: restarts and deploys in it, and gaps that end in it (a gap is stored at its start,
        // which may be the day before: deleting by start alone lost the next day's gap across midnight whenever a
        // day was computed again after it).
        try db.cachedStatement(sql: """
            DELETE FROM annotations WHERE source = 'derived' AND instance_id = ?
                AND ((end_ts IS NULL AND ts >= ? AND ts < ?) OR (end_ts >= ? AND end_ts < ?))
            """).execute(arguments: [instance, day.start, day.start + Store.day, day.start, day.start + Store.day])
        guard !day.timestamps.isEmpty else { return }
        let uptime = MetricCatalog.index(of: "uptime_s")!, interval = MetricCatalog.index(of: "interval_s")!
        var previous = day.previous
        for i in 0..<day.timestamps.count {
            let ts = day.timestamps[i]
            if let p = previous {
                // The writer's cadence is the interval before the silence: the line after a stall reports the
                // stall itself as its interval. More than three intervals without a line is a gap.
                let step = (p.interval ?? day.values[interval][i] ?? 60) * 1000
                if Double(ts - p.ts) > 3 * step {
                    try annotate(instance, at: p.ts, end: ts, kind: "gap",
                                 text: "No metrics for \(Self.duration(ts - p.ts))", in: db)
                }
                if let now = day.values[uptime][i], let before = p.uptime, now < before {
                    try annotate(instance, at: ts, end: nil, kind: "restart", text: "Game server restarted (uptime \(Int(now)) s)", in: db)
                }
                if let version = day.versions[i], let old = p.version, version != old {
                    try annotate(instance, at: ts, end: nil, kind: "deploy", text: "Version \(old) → \(version)", in: db)
                }
            }
            previous = (ts, day.values[uptime][i], day.versions[i] ?? previous?.version, day.values[interval][i])
        }
    }

    private func annotate(_ instance: String, at ts: Int64, end: Int64?, kind: String, text: String, in db: Database) throws {
        try db.execute(sql: "INSERT INTO annotations (instance_id, ts, end_ts, kind, text, source) VALUES (?, ?, ?, ?, ?, 'derived')",
                       arguments: [instance, ts, end, kind, text])
    }

    static func duration(_ ms: Int64) -> String {
        let minutes = ms / 60_000
        if minutes < 120 { return "\(minutes) min" }
        if minutes < 48 * 60 { return String(format: "%.1f h", Double(minutes) / 60) }
        return String(format: "%.1f days", Double(minutes) / 1440)
    }

    /// Deletes what each tier no longer keeps, one instance-day per transaction
    /// along the primary key, so ingestion never waits long. Dirty days are rolled up first.
    @discardableResult
    public func prune() throws -> Int {
        try processDirty()
        let nowMS = Int64(now().timeIntervalSince1970 * 1000)
        var deleted = 0
        let keyed: [(String, String, TimeInterval)] = [
            ("samples", "ts", retention.raw), ("rollup_5m", "bucket", retention.fiveMinutes),
            ("rollup_1h", "bucket", retention.hour), ("rollup_1d", "bucket", retention.day),
        ]
        let instances = try store.pool.read { try String.fetchAll($0, sql: "SELECT instance_id FROM instances") }
        // From here on, days before the raw cutoff are no longer whole (recompute reads this).
        let rawCutoff = nowMS - Int64(retention.raw * 1000)
        try store.pool.write { db in
            let known = try String.fetchOne(db, sql: "SELECT value FROM agent_state WHERE key = 'raw_pruned_before'").flatMap { Int64($0) }
            try store.setState("raw_pruned_before", String(max(known ?? rawCutoff, rawCutoff)), in: db)
        }
        for (table, column, keep) in keyed {
            let cutoff = nowMS - Int64(keep * 1000)
            for instance in instances {
                guard var oldest = try store.pool.read({ db in
                    try Int64.fetchOne(db, sql: "SELECT MIN(\(column)) FROM \(table) WHERE instance_id = ?", arguments: [instance])
                }) else { continue }
                while oldest < cutoff {
                    let upTo = min(cutoff, oldest + Store.day)
                    deleted += try store.pool.write { db -> Int in
                        try db.execute(sql: "DELETE FROM \(table) WHERE instance_id = ? AND \(column) < ?", arguments: [instance, upTo])
                        return db.changesCount
                    }
                    oldest = upTo
                }
            }
        }
        deleted += try store.pool.write { try ReplicationLog.prune(before: nowMS - Int64(retention.raw * 1000), in: $0) }
        // Days rolled up without their raw minutes are kept as long as their daily rollups (a row each).
        deleted += try store.pool.write { db -> Int in
            try db.execute(sql: "DELETE FROM raw_skipped_days WHERE day < ?", arguments: [nowMS - Int64(retention.day * 1000)])
            return db.changesCount
        }
        // Small tables with their own row ids.
        for (table, column, keep) in [("quarantine", "quarantined_ms", retention.raw), ("annotations", "ts", retention.day)] {
            let cutoff = nowMS - Int64(keep * 1000)
            while true {
                let n = try store.pool.write { db -> Int in
                    try db.execute(sql: "DELETE FROM \(table) WHERE rowid IN (SELECT rowid FROM \(table) WHERE \(column) < ? LIMIT 5000)",
                                   arguments: [cutoff])
                    return db.changesCount
                }
                deleted += n
                if n < 5000 { break }
            }
        }
        return deleted
    }
}

/// Floor division for possibly negative timestamps.
func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }

/// The figures of one metric in one bucket.
public struct BucketStats: Sendable, Equatable {
    public var count: Int
    public var sum: Double
    public var min: Double
    public var max: Double
    public var p95: Double
    public var p99: Double

    /// Nearest-rank percentiles, the same definition as the game server's latency summary.
    public init?(values: [Double]) {
        guard !values.isEmpty else { return nil }
        var sum = 0.0, lo = Double.infinity, hi = -Double.infinity
        for v in values {  // in time order: the same sum however the bucket is read
            sum += v
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
        }
        var scratch = values
        self = scratch.withUnsafeMutableBufferPointer { BucketStats(selectingIn: $0, sum: sum, min: lo, max: hi) }
    }

    /// With the sum, minimum and maximum known: the percentiles selected among the values of `scratch` (at
    /// least one), which it reorders.
    init(selectingIn scratch: UnsafeMutableBufferPointer<Double>, sum: Double, min lo: Double, max hi: Double) {
        let n = scratch.count
        func rank(_ q: Double) -> Int { Swift.max(0, Int((q * Double(n)).rounded(.up)) - 1) }
        let k99 = rank(0.99), k95 = rank(0.95)
        // Both percentiles lie in the top twentieth: among many values, only the top few are selected in.
        let first = n >= Self.selectTopFrom ? Self.partitionTop(scratch, keeping: k95) : 0
        // Under 100 values the 99th percentile is the maximum (under 20, the 95th too): nothing to select.
        let p99 = k99 == n - 1 ? hi : Self.select(scratch, k99, in: first..<n)
        // After selecting k99 everything before it is no larger, so k95 is selected among those.
        let p95 = k95 == k99 ? p99 : Self.select(scratch, k95, in: first..<(k99 == n - 1 ? n : k99))
        self.init(count: n, sum: sum, min: lo, max: hi, p95: p95, p99: p99)
    }

    /// From this many values on, `partitionTop` runs before selecting (a day bucket's 1,440: quickselect over
    /// all of them was a twentieth of `ingest --once`).
    static let selectTopFrom = 256

    /// Moves the values below a threshold to the front of `a` and returns how many there are, when that leaves
    /// the k-th smallest and everything above it behind them; otherwise 0 (nothing to skip). Every value before
    /// the returned index is smaller than every value from it on, so selecting at k or above among a[index...]
    /// gives what selecting among all would: exact, whatever the threshold. The threshold is the 29th of 32
    /// values sampled evenly (about the 88th percentile), so about an eighth of the values remain.
    static func partitionTop(_ a: UnsafeMutableBufferPointer<Double>, keeping k: Int) -> Int {
        let n = a.count
        var sample = (0..<32).map { a[$0 * n / 32] }
        sample.sort()
        let threshold = sample[28]
        var below = 0
        for i in 0..<n where a[i] < threshold {
            a.swapAt(i, below)
            below += 1
        }
        return below <= k ? below : 0
    }

    /// Hoare's quickselect: the k-th smallest of a[range], a partially reordered in place.
    static func select(_ a: UnsafeMutableBufferPointer<Double>, _ k: Int, in range: Range<Int>) -> Double {
        var lo = range.lowerBound, hi = range.upperBound - 1
        while lo < hi {
            let pivot = a[lo + (hi - lo) / 2]
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j {
                    a.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return a[k] }
        }
        return a[k]
    }

    public init(count: Int, sum: Double, min: Double, max: Double, p95: Double, p99: Double) {
        (self.count, self.sum, self.min, self.max, self.p95, self.p99) = (count, sum, min, max, p95, p99)
    }
}

struct Bucket: Sendable {
    let start: Int64
    let samples: Int
    let metrics: [BucketStats?]
    /// Each metric's QuantileSketch, encoded one after the other (empty where the metric has no value).
    let sketchBytes: [UInt8]
    /// Where each metric's sketch ends in `sketchBytes`.
    let sketchEnds: [Int]
    /// The minute of each metric's maximum (its first, on a tie); meaningless where the metric has no value.
    let maxTimes: [Int64]

    /// Where metric `m`'s sketch lies in `sketchBytes` (never empty where the metric has a value).
    func sketchRange(_ m: Int) -> Range<Int> { (m == 0 ? 0 : sketchEnds[m - 1])..<sketchEnds[m] }
}

/// One instance's raw minutes of one UTC day, by metric, in time order.
struct DaySamples: Sendable {
    let start: Int64
    var timestamps: [Int64] = []
    /// values[metric][row]
    var values: [[Double?]]
    var versions: [String?] = []
    /// The last sample before the day: (ts, uptime, version, interval), for gaps and restarts at midnight.
    var previous: (ts: Int64, uptime: Double?, version: String?, interval: Double?)?

    static func load(instance: String, day: Int64, in db: Database) throws -> DaySamples {
        var samples = DaySamples(start: day, values: Array(repeating: [], count: Store.metricColumns.count))
        let columns = Store.metricColumns.joined(separator: ", ")
        let statement = try db.cachedStatement(sql: "SELECT ts, version, \(columns) FROM samples WHERE instance_id = ? AND ts >= ? AND ts < ? ORDER BY ts")
        let raw = statement.sqliteStatement
        try statement.setArguments([instance, day, day + Store.day])
        while true {
            let result = sqlite3_step(raw)
            if result == SQLITE_DONE { break }
            guard result == SQLITE_ROW else {
                throw DatabaseError(resultCode: ResultCode(rawValue: result), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
            samples.timestamps.append(sqlite3_column_int64(raw, 0))
            samples.versions.append(sqlite3_column_type(raw, 1) == SQLITE_NULL ? nil : String(cString: sqlite3_column_text(raw, 1)))
            for m in 0..<Store.metricColumns.count {
                let column = Int32(m + 2)
                samples.values[m].append(sqlite3_column_type(raw, column) == SQLITE_NULL ? nil : sqlite3_column_double(raw, column))
            }
        }
        sqlite3_reset(raw)
        try samples.loadPrevious(instance: instance, in: db)
        return samples
    }

    /// Reads the last sample before the day: stored, or the last of a day rolled up without its raw minutes.
    mutating func loadPrevious(instance: String, in db: Database) throws {
        if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT ts, uptime_s, version, interval_s FROM samples WHERE instance_id = ? AND ts < ? ORDER BY ts DESC LIMIT 1"),
                                      arguments: [instance, start]) {
            previous = (row[0], row[1], row[2], row[3])
        }
        if let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT last_ts, last_uptime_s, last_version, last_interval_s FROM raw_skipped_days
            WHERE instance_id = ? AND day < ? AND last_ts IS NOT NULL ORDER BY day DESC LIMIT 1
            """), arguments: [instance, start]), (row[0] as Int64) > previous?.ts ?? Int64.min {
            previous = (row[0], row[1], row[2], row[3])
        }
    }

    /// Each value's sketch code (SketchEncoder), computed once per day for all three tiers; nil values get `skip`.
    static let skip = Int32.max

    func sketchCodes() -> [[Int32]] {
        values.map { SketchEncoder.codes($0, skip: Self.skip) }
    }

    func buckets(_ tier: Tier, codes: [[Int32]]) -> [Bucket] {
        var result: [Bucket] = []
        // A bucket's values of one metric, for selecting its percentiles (a bucket holds at most the day's lines).
        let scratch = UnsafeMutableBufferPointer<Double>.allocate(capacity: Swift.max(1, timestamps.count))
        defer { scratch.deallocate() }
        var encoder = SketchEncoder()
        let metricCount = values.count
        var i = 0
        while i < timestamps.count {
            let start = floorDiv(timestamps[i], tier.milliseconds) * tier.milliseconds
            var j = i
            while j < timestamps.count && timestamps[j] < start + tier.milliseconds { j += 1 }
            var metrics: [BucketStats?] = []
            var maxTimes: [Int64] = []
            var sketchBytes: [UInt8] = []
            var sketchEnds: [Int] = []
            metrics.reserveCapacity(metricCount)
            maxTimes.reserveCapacity(metricCount)
            sketchEnds.reserveCapacity(metricCount)
            sketchBytes.reserveCapacity(metricCount * 8)
            timestamps.withUnsafeBufferPointer { times in
                for m in 0..<metricCount {
                    // One pass per metric: the figures in time order (the same sum however the bucket is read),
                    // the first minute of the maximum, and the sketch.
                    var count = 0
                    var sum = 0.0, lo = Double.infinity, hi = -Double.infinity, hiTime = start
                    values[m].withUnsafeBufferPointer { column in
                        for k in i..<j {
                            guard let v = column[k] else { continue }
                            scratch[count] = v
                            count += 1
                            sum += v
                            lo = Swift.min(lo, v)
                            if v > hi {
                                hi = v
                                hiTime = times[k]
                            }
                        }
                    }
                    codes[m].withUnsafeBufferPointer { encoder.add(UnsafeBufferPointer(rebasing: $0[i..<j]), skipping: Self.skip) }
                    if count == 0 {
                        metrics.append(nil)
                    } else {
                        metrics.append(BucketStats(selectingIn: UnsafeMutableBufferPointer(rebasing: scratch[0..<count]), sum: sum, min: lo, max: hi))
                        encoder.finish(appendingTo: &sketchBytes)
                    }
                    sketchEnds.append(sketchBytes.count)
                    maxTimes.append(hiTime)
                }
            }
            result.append(Bucket(start: start, samples: j - i, metrics: metrics, sketchBytes: sketchBytes, sketchEnds: sketchEnds, maxTimes: maxTimes))
            i = j
        }
        return result
    }
}
