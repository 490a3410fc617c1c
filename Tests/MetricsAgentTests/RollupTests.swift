import Foundation
import GRDB
import JSONCore
import Logging
@testable import MetricsAgent
import MetricsSchema
import Testing
import TestSupport

/// The tests that compute for seconds take a `CPUBoundTurn` first: two at once held both threads of the
/// cooperative pool on 2 cores, long enough for other suites' 10 s connect timeouts to fire.
@Suite struct RollupTests {
    /// A line as written: time, instance and the values of two metrics (nil = absent).
    struct Line {
        let ts: Int64
        let instance: String
        let cpu: Double?
        let players: Double?

        var text: String {
            var fields = [#""timestamp":"\#(RFC3339.format(Date(timeIntervalSince1970: Double(ts) / 1000)))""#, #""instance_id":"\#(instance)""#]
            if let cpu { fields.append(#""cpu_percent":\#(JSON(cpu).text)"#) }
            if let players { fields.append(#""players":\#(JSON(players).text)"#) }
            return "{" + fields.joined(separator: ",") + "}\n"
        }
    }

    static let start: Int64 = 1_795_132_800_000  // 2026-11-20T00:00:00Z
    static let now = Date(timeIntervalSince1970: 1_795_132_800 + 4 * 86_400)

    func makeAgent(_ dir: URL, retention: Retention = Retention()) throws -> (Tailer, RollupEngine, QueryEngine) {
        let store = try Store(path: dir.appendingPathComponent("m.sqlite").path)
        let logger = Logger(label: "test")
        let tailer = Tailer(store: store, config: TailerConfig(directories: [dir.appendingPathComponent("logs").path], batchLines: 500), logger: logger)
        let fixedNow: @Sendable () -> Date = { RollupTests.now }
        return (tailer, RollupEngine(store: store, retention: retention, logger: logger, now: fixedNow),
                QueryEngine(store: store, retention: retention, now: fixedNow))
    }

    /// Raw minutes kept 1.5 days before `now`: the first two days (2026-11-20 and 21) are past raw retention.
    static var shortRawRetention: Retention {
        var retention = Retention()
        retention.raw = 1.5 * 86_400
        return retention
    }

    @Test func rollupsMatchABruteForceRecomputationWithGapsAndLateLines() async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        let dir = TemporaryDirectory.make("rollups")
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        var random = SeededGenerator(seed: 42)
        var lines: [Line] = []
        for instance in ["a", "b"] {
            var minute = 0
            while minute < 3 * 1440 {
                // Gaps: a few minutes now and then, an hour-long outage once a day.
                if Int.random(in: 0..<40, using: &random) == 0 { minute += Int.random(in: 2...9, using: &random); continue }
                if minute % 1440 == 600 && instance == "a" { minute += 75; continue }
                let cpu: Double? = Int.random(in: 0..<20, using: &random) == 0 ? nil : Double(Int.random(in: 0...10_000, using: &random)) / 100
                let players: Double? = Double(Int.random(in: 0...120, using: &random))
                lines.append(Line(ts: Self.start + Int64(minute) * 60_000, instance: instance, cpu: cpu, players: players))
                minute += 1
            }
        }
        // One in ten lines arrives late, after the rest was ingested and rolled up.
        var late: [Line] = []
        var onTime: [Line] = []
        for line in lines { if Int.random(in: 0..<10, using: &random) == 0 { late.append(line) } else { onTime.append(line) } }
        let (tailer, rollups, query) = try makeAgent(dir)
        for line in onTime { LineWriter.appendRaw(line.text, to: logs.appendingPathComponent(MetricsFiles.fileName(for: Date(timeIntervalSince1970: Double(line.ts) / 1000))).path) }
        try tailer.scan()
        try rollups.processDirty()
        for line in late.shuffled(using: &random) { LineWriter.appendRaw(line.text, to: logs.appendingPathComponent("metrics_late.jsonl").path) }
        try tailer.scan()
        #expect(try rollups.dirtyDays() > 0, "late lines mark their days dirty")
        try rollups.processDirty()
        #expect(try rollups.dirtyDays() == 0)

        // Brute force from the lines written.
        for tier in Tier.rolled {
            for metric in ["cpu_percent", "players"] {
                var expected: [String: BucketStats] = [:]
                let grouped = Dictionary(grouping: lines) { "\($0.instance)|\(floorDiv($0.ts, tier.milliseconds) * tier.milliseconds)" }
                for (key, members) in grouped {
                    let values = members.sorted { $0.ts < $1.ts }.compactMap { metric == "cpu_percent" ? $0.cpu : $0.players }
                    guard !values.isEmpty else { continue }
                    // Computed here from first principles, not with the code under test.
                    let sorted = values.sorted()
                    func rank(_ q: Double) -> Double { sorted[max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1)] }
                    expected[key] = BucketStats(count: values.count, sum: values.reduce(0, +), min: sorted.first!, max: sorted.last!,
                                                p95: rank(0.95), p99: rank(0.99))
                }
                let actual = try tailer.store.pool.read { db in
                    try Row.fetchAll(db, sql: "SELECT instance_id, bucket, \(metric)_count, \(metric)_sum, \(metric)_min, \(metric)_max, \(metric)_p95, \(metric)_p99 FROM \(tier.table) WHERE \(metric)_count > 0")
                }
                #expect(actual.count == expected.count, "\(tier.name) \(metric): bucket count")
                for row in actual {
                    let key = "\(row[0] as String)|\(row[1] as Int64)"
                    let stats = BucketStats(count: row[2], sum: row[3], min: row[4], max: row[5], p95: row[6], p99: row[7])
                    #expect(stats == expected[key], "\(tier.name) \(metric) \(key)")
                }
            }
        }

        // Gaps are annotations, and a missing minute is a null, never 0.
        let annotations = try query.annotations(from: Self.start, to: Self.start + 3 * 86_400_000, instance: "a")
        #expect(annotations.filter { $0.kind == "gap" && ($0.end! - $0.time) >= 75 * 60_000 }.count == 3)
        let series = try query.series(SeriesQuery(metric: "players", instances: ["a"], from: Self.start + 600 * 60_000,
                                                  to: Self.start + 700 * 60_000, step: 60_000))
        #expect(series.tier == .raw)
        #expect(series.series[0].points.count == 100)
        #expect(series.series[0].points.prefix(75).allSatisfy { $0.value == nil })
        // Where data exists, the raw-tier average equals the values written.
        let byTime = Dictionary(lines.filter { $0.instance == "a" }.map { ($0.ts, $0.players) }, uniquingKeysWith: { a, _ in a })
        for point in series.series[0].points.dropFirst(75) { #expect(point.value == byTime[point.time] ?? nil) }
    }

    /// `ingest --once` rolls days up from the lines as they stream through and the rest in parallel (two days
    /// computed beside the writes); what it stores must be what the one-transaction-per-day `processDirty` stores,
    /// row for row, annotations included: from one file, and from daily files with late lines, repeated lines
    /// and a day partly stored before.
    @Test(arguments: [RollupMode.parallel, .streamed, .streamedWithLateLines, .streamedWithLittleMemory, .pastRawRetention,
                      .pastRawRetentionWithLittleMemory])
    func rollupsInParallelAndFromTheLinesStoreWhatOneThreadStores(mode: RollupMode) async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        var random = SeededGenerator(seed: 7)
        var lines: [(ts: Int64, text: String)] = []
        for instance in ["a", "b"] {
            var minute = 0, uptime = 0
            while minute < 5 * 1440 {
                if Int.random(in: 0..<200, using: &random) == 0 { minute += Int.random(in: 5...90, using: &random); uptime = 0; continue }
                let ts = Self.start + Int64(minute) * 60_000
                let version = minute < 2 * 1440 ? "1.0" : "1.1"
                let cpu = minute == 3 * 1440 + 7 ? "-0.0" : "\(Int.random(in: 0...9_999, using: &random))"  // stored as 0
                lines.append((ts, #"{"timestamp":"\#(RFC3339.format(Date(timeIntervalSince1970: Double(ts) / 1000)))","instance_id":"\#(instance)","#
                    + #""version":"\#(version)","uptime_s":\#(uptime),"cpu_percent":\#(cpu),"players":\#(Int.random(in: 0...120, using: &random))}"# + "\n"))
                minute += 1
                uptime += 60
            }
        }
        var tables: [[Row]] = []
        for candidate in [RollupMode.oneThread, mode] {
            let dir = TemporaryDirectory.make("rollups-modes")
            let logs = dir.appendingPathComponent("logs")
            try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
            let skipping = candidate == .pastRawRetention || candidate == .pastRawRetentionWithLittleMemory
            let (tailer, rollups, _) = try makeAgent(dir, retention: skipping ? Self.shortRawRetention : Retention())
            if skipping {
                // Both instances in one file, in time order: one instance's day closes while the other's is open.
                LineWriter.appendRaw(lines.sorted { $0.ts < $1.ts }.map(\.text).joined(), to: logs.appendingPathComponent("metrics_all.jsonl").path)
            } else if candidate == .streamedWithLateLines {
                // "a"'s third day partly stored before; then daily files (both instances in time order), where one
                // line in 40 comes late: at the end of the next day's file (in the batch that closes its day), the
                // last day's in a file read last, one of them twice.
                let partly = lines.filter { $0.text.contains(#""instance_id":"a""#) && $0.ts >= Self.start + 2 * Store.day + 43_200_000
                    && $0.ts < Self.start + 3 * Store.day }
                LineWriter.appendRaw(partly.prefix(200).map(\.text).joined(), to: logs.appendingPathComponent("metrics_partly.jsonl").path)
                try tailer.scan()
                var byDay: [Int64: String] = [:], heldBack: [Int64: String] = [:]
                for (i, line) in lines.enumerated().sorted(by: { $0.element.ts < $1.element.ts }) {
                    let day = floorDiv(line.ts, Store.day)
                    if i % 40 == 0 { heldBack[day, default: ""] += line.text } else { byDay[day, default: ""] += line.text }
                }
                let days = byDay.keys.sorted()
                let base = Date(timeIntervalSince1970: 1_700_000_000)
                for (n, day) in days.enumerated() {
                    let path = logs.appendingPathComponent("metrics_day\(n).jsonl").path
                    LineWriter.appendRaw(byDay[day]! + (n > 0 ? heldBack[days[n - 1]]! : ""), to: path)
                    try FileManager.default.setAttributes([.modificationDate: base.addingTimeInterval(Double(n))], ofItemAtPath: path)
                }
                let latePath = logs.appendingPathComponent("metrics_late.jsonl").path
                LineWriter.appendRaw(heldBack[days.last!]! + heldBack[days.last!]!, to: latePath)
                try FileManager.default.setAttributes([.modificationDate: base.addingTimeInterval(100)], ofItemAtPath: latePath)
            } else {
                LineWriter.appendRaw(lines.map(\.text).joined(), to: logs.appendingPathComponent("metrics_all.jsonl").path)
            }
            switch candidate {
            case .oneThread, .parallel:
                try tailer.scan()
                #expect(try rollups.dirtyDays() == 10)
                #expect(try (candidate == .parallel ? rollups.processAllDirtyInParallel() : rollups.processDirty()) == 10)
            case .streamed:
                try tailer.scanRollingUp(rollups)
                #expect(tailer.lastRollups.fromLines == 10 && tailer.lastRollups.fromDatabase == 0, "every day from its lines: \(tailer.lastRollups)")
            case .pastRawRetention:
                // The first two days of both instances are rolled up from their lines without storing them.
                try tailer.scanRollingUp(rollups)
                #expect(tailer.lastRollups == (10, 0, 4), "\(tailer.lastRollups)")
                let db = AgentDatabase(path: dir.appendingPathComponent("m.sqlite").path)
                #expect(try db.scalar("SELECT MIN(ts) FROM samples") == Self.start + 2 * Store.day)
                #expect(try db.scalar("SELECT count(*) FROM raw_skipped_days") == 4)
                #expect(try db.linesConsumed() == lines.count, "every line counted once")
            case .pastRawRetentionWithLittleMemory:
                // Held back past the bound: those days' rows are stored after all and rolled up from the database.
                try tailer.scanRollingUp(rollups, maxHeldLines: 200)
                #expect(tailer.lastRollups == (0, 10, 0), "\(tailer.lastRollups)")
                #expect(try AgentDatabase(path: dir.appendingPathComponent("m.sqlite").path).sampleTimestamps().count == lines.count)
            case .streamedWithLittleMemory:
                // Fewer lines may be held than a day has: every day is left to the database.
                try tailer.scanRollingUp(rollups, maxHeldLines: 200)
                #expect(tailer.lastRollups.fromLines == 0 && tailer.lastRollups.fromDatabase == 10, "\(tailer.lastRollups)")
            case .streamedWithLateLines:
                try tailer.scanRollingUp(rollups)
                // Late lines arrive for every day, so each is computed again from the database; "a"'s third day
                // (partly stored before) and the last days (repeated lines) only there.
                #expect(tailer.lastRollups.fromLines == 7 && tailer.lastRollups.fromDatabase == 10, "\(tailer.lastRollups)")
            }
            #expect(try rollups.dirtyDays() == 0)
            let (buckets, annotations) = try rollups.store.pool.read { db in
                (try Tier.rolled.flatMap { try Row.fetchAll(db, sql: "SELECT * FROM \($0.table) ORDER BY instance_id, bucket") },
                 try Row.fetchAll(db, sql: "SELECT instance_id, ts, end_ts, kind, text, source FROM annotations ORDER BY instance_id, ts, kind"))
            }
            #expect(buckets.count > 2 * 5 * 250, "every tier of every day (gaps leave some 5-minute buckets out)")
            let kinds = Set(annotations.map { $0["kind"] as String })
            #expect(kinds == ["deploy", "restart", "gap"], "\(kinds)")
            tables.append(buckets + annotations)
        }
        #expect(tables[0].count == tables[1].count)
        let firstDifference = zip(tables[0], tables[1]).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "first differing row: \(firstDifference.map { "\(tables[0][$0]) against \(tables[1][$0])" } ?? "")")
    }

    /// The executable's `ingest --once` rolls the days up from the lines as they stream through, and stores what
    /// `ingest --once --no-rollups` followed by the one-thread `processDirty` stores.
    @Test func ingestOnceRollsUpFromTheLinesWhatTheOneThreadPathStores() async throws {
        let dir = TemporaryDirectory.make("ingest-once-rollups")
        let logs = dir.appendingPathComponent("logs")
        let end = Date(), start = end.addingTimeInterval(-3 * 86_400)
        try SyntheticMetrics.write(to: logs, instance: "a", from: start, to: end, restartAt: start.addingTimeInterval(86_400))
        // Modified in the reverse of their days' order (copied without keeping their times): files are read by
        // the day in their names, so the days still stream.
        for (n, name) in try FileManager.default.contentsOfDirectory(atPath: logs.path).sorted().reversed().enumerated() {
            try FileManager.default.setAttributes([.modificationDate: start.addingTimeInterval(Double(n) * 86_400)],
                                                  ofItemAtPath: logs.appendingPathComponent(name).path)
        }
        let streamed = dir.appendingPathComponent("streamed.sqlite"), reference = dir.appendingPathComponent("reference.sqlite")
        let once = try await AgentProcess.ingestOnce(logDirectory: logs, database: streamed)
        #expect(once.status == 0)
        let days = Set(stride(from: start.timeIntervalSince1970, through: end.timeIntervalSince1970, by: 60).map { Int($0 / 86_400) }).count
        #expect(once.output.contains("from_database=0 from_lines=\(days)") && once.output.contains("days rolled up"), "\(once.output)")
        #expect(try await AgentProcess.ingestOnce(logDirectory: logs, database: reference, extra: ["--no-rollups"]).status == 0)
        let engine = RollupEngine(store: try Store(path: reference.path), logger: Logger(label: "test"))
        #expect(try engine.processDirty() == days)
        let (a, b) = (try AgentDatabase(path: streamed.path).rollupsAndAnnotations(), try AgentDatabase(path: reference.path).rollupsAndAnnotations())
        #expect(a.count > 3 * 288 && a.contains { $0.hasColumn("kind") && $0["kind"] == "restart" }, "\(a.count) rows")
        #expect(a.count == b.count)
        let firstDifference = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "first differing row: \(firstDifference.map { "\(a[$0]) against \(b[$0])" } ?? "")")
    }

    enum RollupMode: Sendable {
        case oneThread, parallel, streamed, streamedWithLateLines, streamedWithLittleMemory, pastRawRetention, pastRawRetentionWithLittleMemory
    }

    @Test func retentionPrunesEachTierAndQueriesFallBackToCoarserTiers() async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        let dir = TemporaryDirectory.make("retention")
        let logs = dir.appendingPathComponent("logs")
        // 100 days of minutes, ending at the injected "now".
        let end = Self.now, start = end.addingTimeInterval(-100 * 86_400)
        try SyntheticMetrics.write(to: logs, instance: "a", from: start, to: end, step: 60)
        let (tailer, rollups, query) = try makeAgent(dir)
        try tailer.scan()
        let deleted = try rollups.prune()
        #expect(deleted > 0)
        let db = AgentDatabase(path: dir.appendingPathComponent("m.sqlite").path)
        let nowMS = Int64(end.timeIntervalSince1970 * 1000)
        // Raw minutes: 15 days. 5-minute buckets: 63 days. Hours and days: all 100.
        #expect(try db.scalar("SELECT MIN(ts) FROM samples")! >= nowMS - 15 * 86_400_000)
        #expect(try db.scalar("SELECT count(*) FROM samples")! >= 15 * 1440 - 1)
        #expect(try db.scalar("SELECT MIN(bucket) FROM rollup_5m")! >= nowMS - 63 * 86_400_000 - 300_000)
        #expect(try db.scalar("SELECT MIN(bucket) FROM rollup_1h")! < nowMS - 99 * 86_400_000)
        #expect(try db.scalar("SELECT count(*) FROM rollup_1d")! >= 100)
        // A day 30 days ago is answered from 5-minute buckets, a day 80 days ago from hours: no holes.
        for (ago, tier) in [(30, Tier.fiveMinutes), (80, Tier.hour)] {
            let to = nowMS - Int64(ago) * 86_400_000
            let result = try query.series(SeriesQuery(metric: "players", instances: ["a"], from: to - 86_400_000, to: to))
            #expect(result.tier == tier)
            #expect(result.series[0].points.allSatisfy { $0.value != nil }, "\(ago) days ago")
        }
        // Pruning twice deletes nothing more.
        #expect(try rollups.prune() == 0)
    }

    @Test func percentilesByQuickselectMatchSorting() {
        var random = SeededGenerator(seed: 9)
        // Around `BucketStats.selectTopFrom` the top is partitioned off first, by a threshold from a sample: orders
        // and shapes that would mislead the sample (sorted, reversed, constant, mostly the maximum) must not matter.
        let shapes: [(String, (Int, Int, inout SeededGenerator) -> Double)] = [
            ("ties", { _, _, r in Double(Int.random(in: 0...50, using: &r)) }),
            ("continuous", { _, _, r in Double.random(in: -100...100, using: &r) }),
            ("ascending", { i, _, _ in Double(i) }),
            ("descending", { i, _, _ in Double(-i) }),
            ("constant", { _, _, _ in 7 }),
            ("mostly the maximum", { _, _, r in Double.random(in: 0..<1, using: &r) < 0.9 ? 100 : Double(Int.random(in: 0...99, using: &r)) }),
            ("a few large", { _, _, r in Double.random(in: 0..<1, using: &r) < 0.02 ? 1e6 : Double.random(in: 0...1, using: &r) }),
            // Large exactly where the threshold is sampled: too few values above it, so all are selected among.
            ("large where sampled", { i, n, _ in (0..<32).contains { $0 * n / 32 == i } ? 1e6 : Double(i % 7) }),
        ]
        for n in [1, 2, 3, 5, 19, 20, 21, 60, 99, 100, 101, 255, 256, 257, 1440, 2880] {
            for (shape, value) in shapes {
                for _ in 0..<(shape == "ties" ? 20 : 3) {
                    let values = (0..<n).map { value($0, n, &random) }
                    let sorted = values.sorted()
                    func rank(_ q: Double) -> Double { sorted[max(0, Int((q * Double(n)).rounded(.up)) - 1)] }
                    let stats = BucketStats(values: values)!
                    #expect(stats.p95 == rank(0.95) && stats.p99 == rank(0.99) && stats.min == sorted.first && stats.max == sorted.last,
                            "n=\(n) \(shape)")
                }
            }
        }
    }

    @Test(arguments: [(Tier.fiveMinutes, 2), (Tier.hour, 6), (Tier.fiveMinutes, 24), (Tier.hour, 24)])
    func percentilesOverSeveralBucketsAreWithinOnePercentOfTheRawMinutes(tier: Tier, buckets: Int) async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        let dir = TemporaryDirectory.make("sketch")
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let (tailer, rollups, query) = try makeAgent(dir)
        // Three days of minutes: CPU spread over 0–100 with idle zeros, players as small counts.
        var random = SeededGenerator(seed: UInt64(buckets))
        var lines: [Line] = []
        for minute in 0..<(3 * 1440) {
            let cpu = Double.random(in: 0..<1, using: &random) < 0.1 ? 0 : (Double.random(in: 0..<100, using: &random) * 100).rounded() / 100
            lines.append(Line(ts: Self.start + Int64(minute) * 60_000, instance: "a", cpu: cpu, players: Double(Int.random(in: 0..<90, using: &random))))
        }
        try lines.map(\.text).joined().write(to: logs.appendingPathComponent("metrics_20261120.jsonl"), atomically: true, encoding: .utf8)
        try tailer.scan()
        try rollups.processDirty()
        let step = tier.milliseconds * Int64(buckets)
        for (metric, value) in [("cpu_percent", \Line.cpu), ("players", \Line.players)] as [(String, KeyPath<Line, Double?>)] {
            for stat in [Statistic.p95, .p99] {
                let q = SeriesQuery(metric: metric, instances: ["a"], from: Self.start, to: Self.start + 3 * Store.day, step: step, statistic: stat)
                let result = try query.series(q, tier: tier)
                #expect(result.tier == tier && result.step == step)
                for point in result.series[0].points {
                    // Brute force: the nearest-rank percentile of the raw minutes of the step.
                    let window = lines.filter { $0.ts >= point.time && $0.ts < point.time + step }.compactMap { $0[keyPath: value] }.sorted()
                    guard !window.isEmpty, let got = point.value else { continue }
                    let exact = window[max(0, Int(((stat == .p95 ? 0.95 : 0.99) * Double(window.count)).rounded(.up)) - 1)]
                    #expect(abs(got - exact) <= 0.01 * abs(exact), "\(metric) \(stat) at \(point.time): \(got) vs exact \(exact)")
                }
            }
        }
    }

    /// What the encoder has, as one sketch's bytes.
    func finished(_ encoder: inout SketchEncoder) -> [UInt8] {
        var bytes: [UInt8] = []
        encoder.finish(appendingTo: &bytes)
        return bytes
    }

    @Test func sketchEncodingRoundTripsAndMergesLikeTheRawValues() {
        var random = SeededGenerator(seed: 5)
        let values = (0..<500).map { i -> Double in i % 17 == 0 ? 0 : i % 29 == 0 ? -Double.random(in: 1..<50, using: &random) : exp(Double.random(in: -3..<9, using: &random)) }
        var sketch = QuantileSketch(), encoder = SketchEncoder()
        for v in values { sketch.add(v) }
        // Codes as a day's column holds them: minutes without a value (`skip`) among them are left out.
        let codes = values.flatMap { [SketchEncoder.code($0), DaySamples.skip] }
        codes.withUnsafeBufferPointer { encoder.add(UnsafeBufferPointer(rebasing: $0[0..<600]), skipping: DaySamples.skip) }
        codes.withUnsafeBufferPointer { encoder.add(UnsafeBufferPointer(rebasing: $0[600...]), skipping: DaySamples.skip) }
        let bytes = finished(&encoder)
        #expect(bytes == sketch.encoded, "the rollup path writes the same bytes as the sketch itself")
        let decoded = bytes.withUnsafeBytes { QuantileSketch(encoded: $0) }
        #expect(decoded == sketch)
        // Two halves merged are the sketch of the whole.
        var left = QuantileSketch(), right = QuantileSketch()
        for (i, v) in values.enumerated() { if i < 200 { left.add(v) } else { right.add(v) } }
        left.merge(right)
        #expect(left == sketch)
        let sorted = values.sorted()
        for q in [0.01, 0.5, 0.95, 0.99, 1.0] {
            let exact = sorted[max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1)]
            #expect(abs(sketch.quantile(q)! - exact) <= 0.01 * abs(exact), "q \(q)")
        }
        #expect(finished(&encoder) == QuantileSketch().encoded, "finish starts over")
        // Codes of small integers come from a table: the same as from the sketch's index.
        for v in (0...5000).map(Double.init) + [-0.0, -3, 0.5, 4095.5, 4096, 1e9, 1e-12] {
            let expected = QuantileSketch.index(v).map { i, negative in
                min(max(i, -SketchEncoder.limit), SketchEncoder.limit) + (negative ? SketchEncoder.negativeOffset : 0)
            } ?? SketchEncoder.zeroCode
            #expect(SketchEncoder.code(v) == expected, "\(v)")
        }
        // A few values spread wide (as in a 5-minute bucket) and many close together take different ways to order
        // the slots they used; both write what the sketch itself does.
        for (count, spread) in [(1, 12.0), (3, 12.0), (5, 12.0), (5, 0.01), (60, 12.0), (300, 0.5)] {
            let values = (0..<count).map { _ in exp(Double.random(in: -3..<(-3 + spread), using: &random)) * (Bool.random(using: &random) ? 1 : -1) }
            var sketch = QuantileSketch()
            for v in values { sketch.add(v) }
            let codes = values.map(SketchEncoder.code)
            codes.withUnsafeBufferPointer { encoder.add($0, skipping: DaySamples.skip) }
            #expect(finished(&encoder) == sketch.encoded, "\(count) values, spread \(spread)")
        }
    }

    @Test func seriesChoosesTheTierFromRangeAndStep() throws {
        let dir = TemporaryDirectory.make("tiers")
        let (_, _, query) = try makeAgent(dir)
        let day: Int64 = 86_400_000
        let now = Int64(Self.now.timeIntervalSince1970 * 1000)
        func plan(_ range: Int64, step: Int64? = nil, ago: Int64 = 0) -> (Tier, Int64) {
            query.plan(from: now - ago - range, to: now - ago, step: step)
        }
        #expect(plan(3_600_000).0 == .raw)
        #expect(plan(day).0 == .raw && plan(day).1 == 60_000)
        #expect(plan(7 * day).0 == .fiveMinutes)
        #expect(plan(30 * day).0 == .fiveMinutes && plan(30 * day).1 == 1_800_000)
        #expect(plan(90 * day).0 == .hour)
        #expect(plan(365 * day).0 == .hour && plan(365 * day).1 == 6 * 3_600_000)
        #expect(plan(3 * 365 * day).0 == .day)
        // Retention: a day's range 30 days ago has no raw minutes left, 100 days ago no 5-minute buckets.
        #expect(plan(day, ago: 30 * day).0 == .fiveMinutes)
        #expect(plan(day, ago: 100 * day).0 == .hour)
        #expect(plan(day, step: 3_600_000).0 == .hour)
        for range in [3_600_000, day, 7 * day, 30 * day, 365 * day, 5 * 365 * day] {
            let (_, step) = plan(range)
            #expect((range + step - 1) / step <= QueryEngine.maxPoints + 1, "at most about 1,500 points for \(range)")
        }
    }
}

/// SplitMix64, so the random data is the same every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
