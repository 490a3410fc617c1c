import Foundation
import GRDB
import GRDBSQLite
import MetricsSchema

/// A statistic of a metric over each step.
public enum Statistic: String, CaseIterable, Sendable {
    case avg, min, max, sum, count, p95, p99

    var isPercentile: Bool { self == .p95 || self == .p99 }
}

public struct QueryError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}

public struct SeriesQuery: Sendable {
    public var metric: String
    /// Empty means every instance (plus the fleet series).
    public var instances: [String]
    public var from: Int64
    public var to: Int64
    /// Requested step in ms; nil picks one that gives about 1,000 points.
    public var step: Int64?
    public var statistic: Statistic
    /// Most points per series: the API's charts keep to 1,500; `export` allows 1,000,000.
    public var maxPoints: Int64
    /// Round a requested step up to a round one (1, 2, 5, 10 … minutes) for charts; otherwise only to whole buckets.
    public var roundStep: Bool

    public init(metric: String, instances: [String] = [], from: Int64, to: Int64, step: Int64? = nil, statistic: Statistic = .avg,
                maxPoints: Int64 = QueryEngine.maxPoints, roundStep: Bool = true) {
        self.metric = metric
        self.instances = instances
        self.from = from
        self.to = to
        self.step = step
        self.statistic = statistic
        self.maxPoints = maxPoints
        self.roundStep = roundStep
    }
}

/// A series' highest minute: when and how high.
public struct Peak: Sendable, Equatable {
    public let time: Int64
    public let value: Double
    public let exact: Bool
}

public struct Point: Sendable, Equatable {
    public let time: Int64
    public let value: Double?
}

public struct SeriesResult: Sendable {
    public let metric: MetricDefinition
    public let statistic: Statistic
    public let tier: Tier
    public let step: Int64
    public let from: Int64
    public let to: Int64
    public let series: [(instance: String, points: [Point])]
    /// The fleet figure (sum, average or maximum of the instances, per the metric) when several were asked for.
    public let fleet: [Point]?
}

public struct InstanceInfo: Sendable, Equatable {
    public let id: String
    public let firstTimestamp: Int64
    public let lastTimestamp: Int64
    /// The agent whose files the instance's lines come from; nil: this agent's own.
    public let origin: String?
}

public struct Annotation: Sendable, Equatable {
    public let instance: String?
    public let time: Int64
    public let end: Int64?
    public let kind: String
    public let text: String
}

/// Answers series, instance and annotation questions from the store, choosing
/// the tier from the range and the step.
public struct QueryEngine: Sendable {
    public static let maxPoints: Int64 = 1_500
    /// The longest range whose percentiles are read from the raw minutes.
    static let exactPercentileRange: Int64 = 15 * 86_400_000
    static let roundSteps: [Int64] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10_080].map { $0 * 60_000 }
    let store: Store
    let retention: Retention
    let now: @Sendable () -> Date

    public init(store: Store, retention: Retention = Retention(), now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.retention = retention
        self.now = now
    }

    /// The finest tier that serves `from` (within its retention) at `step`; and the step rounded to whole buckets.
    func plan(from: Int64, to: Int64, step requested: Int64?, maxPoints: Int64 = QueryEngine.maxPoints, roundStep: Bool = true) -> (Tier, Int64) {
        let range = max(to - from, 60_000)
        let minimum = (range + maxPoints - 1) / maxPoints
        let atLeast = max(requested ?? 0, minimum, Tier.raw.milliseconds)
        // A round step (1, 2, 5, 10 … minutes, hours, days) at least as long as asked for, within the point limit;
        // or, when asked (export), the step itself.
        let wanted = !roundStep && requested != nil ? atLeast
            : QueryEngine.roundSteps.first { $0 >= atLeast } ?? (atLeast + Store.day - 1) / Store.day * Store.day
        let nowMS = Int64(now().timeIntervalSince1970 * 1000)
        // The coarsest tier whose buckets fit the step exactly (7 minutes come from raw minutes, 10 from 5-minute buckets).
        var tier = Tier.allCases.last { $0.milliseconds <= wanted && wanted % $0.milliseconds == 0 } ?? .raw
        while tier != .day && from < nowMS - Int64(retention.keeps(tier) * 1000) {
            tier = Tier.allCases.first { $0 > tier }!
        }
        let step = max(tier.milliseconds, (wanted + tier.milliseconds - 1) / tier.milliseconds * tier.milliseconds)
        return (tier, step)
    }

    public func series(_ query: SeriesQuery) throws -> SeriesResult { try series(query, tier: nil) }

    /// `tier`: read this tier whatever the plan says (tests compare each tier with the raw minutes).
    func series(_ query: SeriesQuery, tier forced: Tier?) throws -> SeriesResult {
        guard let metric = MetricCatalog.definition(query.metric) else {
            throw QueryError("unknown metric '\(query.metric)'; see /api/metrics")
        }
        guard query.to > query.from else { throw QueryError("'to' must be after 'from'") }
        if let step = query.step, step < 1000 { throw QueryError("'step' must be at least 1 second") }
        var (tier, step) = plan(from: query.from, to: query.to, step: query.step, maxPoints: query.maxPoints, roundStep: query.roundStep)
        // Percentiles are exact from the raw minutes while they are kept, for ranges of up to 15 days (at most
        // 21,600 rows an instance); beyond, merged sketches (1 %).
        if query.statistic.isPercentile, tier != .raw, query.to - query.from <= QueryEngine.exactPercentileRange,
           query.from >= Int64(now().timeIntervalSince1970 * 1000) - Int64(retention.raw * 1000) {
            tier = .raw
        }
        if let forced {
            tier = forced
            step = max(forced.milliseconds, (step + forced.milliseconds - 1) / forced.milliseconds * forced.milliseconds)
        }
        let start = floorDiv(query.from, step) * step
        let instances = query.instances.isEmpty ? try self.instances().map(\.id) : query.instances
        let series = try store.pool.read { db in
            try instances.map { instance in
                (instance, try points(metric: metric, instance: instance, tier: tier, from: start, to: query.to, step: step,
                                      statistic: query.statistic, in: db))
            }
        }
        let fleet = series.count > 1 || query.instances.isEmpty ? fleetPoints(series.map(\.1), metric: metric, statistic: query.statistic) : nil
        return SeriesResult(metric: metric, statistic: query.statistic, tier: tier, step: step, from: start, to: query.to,
                            series: series, fleet: fleet)
    }

    /// One value per step from `from` (aligned) to `to`; nil where there was no data.
    private func points(metric: MetricDefinition, instance: String, tier: Tier, from: Int64, to: Int64, step: Int64,
                        statistic: Statistic, in db: Database) throws -> [Point] {
        let count = Int((to - from + step - 1) / step)
        var accumulators = [Accumulator](repeating: Accumulator(), count: max(count, 0))
        if tier == .raw {
            let statement = try db.cachedStatement(sql: "SELECT ts, \(metric.name) FROM samples WHERE instance_id = ? AND ts >= ? AND ts < ? AND \(metric.name) IS NOT NULL")
            try statement.setArguments([instance, from, to])
            let raw = statement.sqliteStatement
            while sqlite3_step(raw) == SQLITE_ROW {
                let i = Int((sqlite3_column_int64(raw, 0) - from) / step)
                if i >= 0 && i < count { accumulators[i].add(sqlite3_column_double(raw, 1)) }
            }
            sqlite3_reset(raw)
        } else {
            let m = metric.name
            // Sketches only when a percentile spans several buckets (one bucket has its exact percentile).
            let sketches = statistic.isPercentile && step > tier.milliseconds
            let statement = try db.cachedStatement(sql: """
                SELECT bucket, \(m)_count, \(m)_sum, \(m)_min, \(m)_max, \(m)_p95, \(m)_p99\(sketches ? ", \(m)_sketch" : "") FROM \(tier.table)
                WHERE instance_id = ? AND bucket >= ? AND bucket < ? AND \(m)_count > 0
                """)
            try statement.setArguments([instance, from, to])
            let raw = statement.sqliteStatement
            while sqlite3_step(raw) == SQLITE_ROW {
                let i = Int((sqlite3_column_int64(raw, 0) - from) / step)
                guard i >= 0 && i < count else { continue }
                accumulators[i].add(BucketStats(count: Int(sqlite3_column_int64(raw, 1)), sum: sqlite3_column_double(raw, 2),
                                                min: sqlite3_column_double(raw, 3), max: sqlite3_column_double(raw, 4),
                                                p95: sqlite3_column_double(raw, 5), p99: sqlite3_column_double(raw, 6)))
                if sketches {
                    let length = Int(sqlite3_column_bytes(raw, 7))
                    if let blob = sqlite3_column_blob(raw, 7), length > 0,
                       let sketch = QuantileSketch(encoded: UnsafeRawBufferPointer(start: blob, count: length)) {
                        accumulators[i].add(sketch)
                    } else {
                        accumulators[i].missingSketch = true
                    }
                }
            }
            sqlite3_reset(raw)
        }
        return accumulators.enumerated().map { Point(time: from + Int64($0.offset) * step, value: $0.element.value(statistic)) }
    }

    /// The highest minute of a metric for an instance in [from, to): from the raw minutes where they are kept, and
    /// before them from the rollups' maxima and the minutes they came at. `exact` is false only for buckets
    /// rolled up before the agent kept those minutes (the bucket's start stands in).
    public func peak(metric: MetricDefinition, instance: String, from: Int64, to: Int64) throws -> Peak? {
        try store.pool.read { db in
            let m = metric.name
            var best: Peak?
            func consider(_ candidate: Peak?) {
                if let candidate, best == nil || candidate.value > best!.value { best = candidate }
            }
            let firstRaw = try Int64.fetchOne(db, sql: "SELECT MIN(ts) FROM samples WHERE instance_id = ? AND ts >= ?", arguments: [instance, from])
            if let firstRaw, firstRaw < to {
                consider(try Row.fetchOne(db, sql: """
                    SELECT ts, \(m) FROM samples WHERE instance_id = ? AND ts >= ? AND ts < ? AND \(m) IS NOT NULL
                    ORDER BY \(m) DESC, ts LIMIT 1
                    """, arguments: [instance, from, to]).map { Peak(time: $0[0], value: $0[1], exact: true) })
            }
            // Before the raw minutes: each rolled tier over what it holds (coarser tiers reach further back).
            let rollupEnd = min(to, firstRaw ?? to)
            if rollupEnd > from {
                for tier in Tier.rolled {
                    let start = floorDiv(from, tier.milliseconds) * tier.milliseconds
                    consider(try Row.fetchOne(db, sql: """
                        SELECT bucket, \(m)_max, \(m)_max_ts FROM \(tier.table)
                        WHERE instance_id = ? AND bucket >= ? AND bucket < ? AND \(m)_count > 0 ORDER BY \(m)_max DESC, bucket LIMIT 1
                        """, arguments: [instance, start, rollupEnd]).map { row in
                        let minute: Int64? = row[2]
                        return Peak(time: minute ?? row[0], value: row[1], exact: minute != nil)
                    })
                }
            }
            return best
        }
    }

    /// The fleet's highest minute (instances combined by the metric's fleet rule), from the raw minutes; nil when
    /// the range starts before them (the chart's own fleet points then stand in).
    public func fleetPeak(metric: MetricDefinition, instances: [String], from: Int64, to: Int64) throws -> Peak? {
        guard !instances.isEmpty else { return nil }
        return try store.pool.read { db in
            let placeholders = Array(repeating: "?", count: instances.count).joined(separator: ",")
            // The raw minutes are whole from where prune last cut (nothing cut yet: all of them).
            // Days rolled up without their raw minutes (ingest --once past raw retention) are not whole either.
            let prunedBefore = try String.fetchOne(db, sql: "SELECT value FROM agent_state WHERE key = 'raw_pruned_before'").flatMap { Int64($0) }
            // (A database of an older agent opened read-only has no such table.)
            let skippedUntil = try db.tableExists("raw_skipped_days")
                ? Int64.fetchOne(db, sql: "SELECT MAX(day) + 86400000 FROM raw_skipped_days") : nil
            guard from >= max(prunedBefore ?? Int64.min, skippedUntil ?? Int64.min) else { return nil }
            let combine = metric.fleet == .sum ? "SUM" : metric.fleet == .avg ? "AVG" : "MAX"
            return try Row.fetchOne(db, sql: """
                SELECT (ts / 60000) * 60000 AS minute, \(combine)(\(metric.name)) AS v FROM samples
                WHERE instance_id IN (\(placeholders)) AND ts >= ? AND ts < ? AND \(metric.name) IS NOT NULL
                GROUP BY minute ORDER BY v DESC, minute LIMIT 1
                """, arguments: StatementArguments(instances)! + [from, to]).map { Peak(time: $0[0], value: $0[1], exact: true) }
        }
    }

    private func fleetPoints(_ series: [[Point]], metric: MetricDefinition, statistic: Statistic) -> [Point]? {
        guard let first = series.first else { return nil }
        // Counts of samples add up whatever the metric; otherwise the metric says how instances combine.
        let rule: FleetAggregation = statistic == .count ? .sum : metric.fleet
        return first.indices.map { i in
            let values = series.compactMap { $0[i].value }
            guard !values.isEmpty else { return Point(time: first[i].time, value: nil) }
            switch rule {
            case .sum: return Point(time: first[i].time, value: values.reduce(0, +))
            case .avg: return Point(time: first[i].time, value: values.reduce(0, +) / Double(values.count))
            case .max: return Point(time: first[i].time, value: values.max())
            }
        }
    }

    public func instances() throws -> [InstanceInfo] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT instance_id, first_ts, last_ts, origin FROM instances ORDER BY instance_id")
                .map { InstanceInfo(id: $0[0], firstTimestamp: $0[1], lastTimestamp: $0[2], origin: $0[3]) }
        }
    }

    /// Restarts, gaps and deploys, plus alerts firing and resolving, in time order.
    public func annotations(from: Int64, to: Int64, instance: String? = nil) throws -> [Annotation] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT instance_id, ts, end_ts, kind, text FROM annotations
                WHERE ts < ? AND COALESCE(end_ts, ts) >= ? AND (? IS NULL OR instance_id IS NULL OR instance_id = ?)
                UNION ALL
                SELECT instance_id, at, NULL, CASE event WHEN 'firing' THEN 'alert' ELSE 'resolved' END, rule || ': ' || text FROM alert_history
                WHERE event IN ('firing', 'resolved') AND at < ? AND at >= ? AND (? IS NULL OR instance_id = ?)
                ORDER BY 2 LIMIT 5000
                """, arguments: [to, from, instance, instance, to, from, instance, instance])
                .map { Annotation(instance: $0[0], time: $0[1], end: $0[2], kind: $0[3], text: $0[4]) }
        }
    }

    /// The newest raw sample of each instance, for /metrics.
    public func latest() throws -> [(instance: String, time: Int64, values: [Double?])] {
        try store.pool.read { db in
            let ids = try String.fetchAll(db, sql: "SELECT instance_id FROM instances ORDER BY instance_id")
            return try ids.compactMap { id in
                guard let row = try Row.fetchOne(db, sql: "SELECT ts, \(Store.metricColumns.joined(separator: ", ")) FROM samples WHERE instance_id = ? ORDER BY ts DESC LIMIT 1", arguments: [id]) else { return nil }
                return (id, row[0], (1...Store.metricColumns.count).map { row[$0] as Double? })
            }
        }
    }
}

/// Combines raw values or rollup buckets into one step's statistic.
struct Accumulator {
    var count = 0
    var sum = 0.0
    var min = Double.infinity
    var max = -Double.infinity
    var values: [Double] = []
    var buckets: [BucketStats] = []
    /// The buckets' sketches merged (percentiles over several buckets).
    var sketch: QuantileSketch?
    /// A bucket rolled up before sketches existed (v5): its percentile can only be bounded.
    var missingSketch = false

    mutating func add(_ value: Double) {
        count += 1
        sum += value
        min = Swift.min(min, value)
        max = Swift.max(max, value)
        values.append(value)
    }

    mutating func add(_ bucket: QuantileSketch) {
        if sketch == nil { sketch = bucket } else { sketch!.merge(bucket) }
    }

    mutating func add(_ bucket: BucketStats) {
        count += bucket.count
        sum += bucket.sum
        min = Swift.min(min, bucket.min)
        max = Swift.max(max, bucket.max)
        buckets.append(bucket)
    }

    /// nil for an empty step: a gap is a gap, never 0.
    func value(_ statistic: Statistic) -> Double? {
        guard count > 0 else { return nil }
        switch statistic {
        case .avg: return sum / Double(count)
        case .min: return min
        case .max: return max
        case .sum: return sum
        case .count: return Double(count)
        case .p95, .p99:
            if !values.isEmpty {
                let stats = BucketStats(values: values)!
                return statistic == .p95 ? stats.p95 : stats.p99
            }
            // One bucket: its exact percentile. Several: from their merged sketches, within 1 %, kept inside
            // [min, max]; buckets without a sketch (rolled up by an older agent): the largest, an upper bound.
            if buckets.count == 1 { return statistic == .p95 ? buckets[0].p95 : buckets[0].p99 }
            if let sketch, !missingSketch, let q = sketch.quantile(statistic == .p95 ? 0.95 : 0.99) {
                return Swift.min(Swift.max(q, min), max)
            }
            return buckets.map { statistic == .p95 ? $0.p95 : $0.p99 }.max()
        }
    }
}

/// Reads the times users type: `now`, `now-24h`, RFC 3339, or Unix seconds / milliseconds.
public enum TimeParameter {
    public static func parse(_ text: String, now: Date = Date()) throws -> Int64 {
        let nowMS = Int64(now.timeIntervalSince1970 * 1000)
        if text == "now" { return nowMS }
        if text.hasPrefix("now-"), let d = try? duration(String(text.dropFirst(4))) { return nowMS - d }
        if let ms = RFC3339.parseMilliseconds(text) { return ms }
        if let n = Int64(text) { return text.count >= 12 ? n : n * 1000 }
        throw QueryError("unreadable time '\(text.prefix(40))': use now, now-24h, RFC 3339 or Unix seconds")
    }

    /// `90s`, `5m`, `24h`, `7d`, `2w`, `1y` (or plain seconds) in milliseconds.
    public static func duration(_ text: String) throws -> Int64 {
        let units: [Character: Int64] = ["s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000]
        if let seconds = Double(text), seconds > 0 { return Int64(seconds * 1000) }
        guard let unit = text.last, let factor = units[unit], let n = Double(text.dropLast()), n > 0 else {
            throw QueryError("unreadable duration '\(text.prefix(20))': use 90s, 5m, 24h, 7d, 2w or 1y")
        }
        return Int64(n * Double(factor))
    }
}
