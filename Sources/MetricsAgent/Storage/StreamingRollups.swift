import Foundation
import GRDB
import MetricsSchema

/// Rolls days up from the lines as `ingest --once` parses them, instead of reading each day back from the
/// database afterwards (issue 19: reading a day back and computing it was most of the rollup work).
///
/// A day is rolled up here only when what was parsed is certain to be what the database holds: none of its
/// minutes were stored before this pass, its lines came in time order without a repeated minute, and its raw
/// minutes are not pruned. The day closes when the instance's lines move on to a later day (or the pass ends);
/// its buckets are computed then by whichever thread comes to them first (`PendingDay`) and written in a
/// commit once all its lines are committed, which also clears its dirty mark. Every other day stays dirty and
/// is recomputed from the database as before, so the result is the same row for row (`RollupTests`). A line
/// for a day already rolled up here (a late line) marks that day and every later one rolled up here dirty
/// again when the pass ends: their buckets or the sample before them changed.
///
/// **Days past raw retention are not stored raw.** A day that ended before now less `--retention-raw` would
/// lose its raw minutes at the first prune; rolled up here, its rows are left out of the inserts and
/// `raw_skipped_days` records it with its last sample. Exactly once still holds: a stream's read position is
/// not committed past the first line of such a day until the day is written, in the transaction that moves
/// it, so a crash leaves every line stored, rolled up, or still to read. A day that cannot be rolled up here
/// after all (a repeated minute, lines out of order, too many lines held) has its rows stored as usual. Such a
/// day is final, as a pruned day is: a later line for it is stored raw, annotated `late`, and leaves its
/// rollups as they are.
///
/// The lines held are bounded (`maxHeldLines`, about 50 MB at the default): past it, the day that grew too
/// large, and any day opened meanwhile, is left to the database (a fleet of many instances in one pass, or a
/// writer with lines far more often than a minute); past it in rows held back, every day holding them is.
///
/// Only where nothing else marks days dirty meanwhile, as in `ingest --once`, which holds the agent's lock.
/// `park` and `finishPass` run on the parsing thread, `write` on the commit thread.
final class StreamingRollups: @unchecked Sendable {
    let engine: RollupEngine
    private let prunedBefore: Int64?
    /// Days that end at or before this (ms) are past raw retention: rolled up here, their raw rows are not stored.
    let skipRawBefore: Int64
    /// Per instance: the day being collected.
    private var open: [String: OpenDay] = [:]
    /// Per instance: the last day collected (rolled up here or not); a line before it is late.
    private var lastClosed: [String: Int64] = [:]
    /// Per instance: the days rolled up here, in order.
    private var rolled: [String: [Int64]] = [:]
    /// The days rolled up here whose raw rows are left out.
    private var skipped = Set<RollupEngine.DayKey>()
    private var dirtyAgain = Set<RollupEngine.DayKey>()
    /// Closed days, oldest first, that may not be computed yet.
    private var unstarted: [PendingDay] = []
    /// Days rolled up from their lines (some may be dirty again after late lines).
    private(set) var daysRolledUp = 0
    /// Days whose raw rows were left out.
    var daysSkippedRaw: Int { skipped.count }
    /// Lines held in open days, and the most to hold.
    private var held = 0
    let maxHeldLines: Int
    /// The fewest lines committed at once while the pass goes on.
    let groupLines: Int
    /// Daily files are a transaction each otherwise, and every commit writes the pages all of them touch to the
    /// log again: 5,000 lines (three and a half days of one instance) made the year's ingest 3 - 8 % faster
    /// than a transaction a day; 20,000 no faster still, and twice the peak memory (160 MB instead of 77).
    static let defaultGroupLines = 5_000
    /// Closed days not written yet, in the order they closed.
    private var closing: [ClosedDay] = []
    /// What was read and not committed yet, in the order read.
    private var parked: [PendingBatch] = []
    private var parkedRows = 0

    typealias Sample = (ts: Int64, uptime: Double?, version: String?, interval: Double?)

    /// Where a day's lines lie in one stream: the offsets of its first and last line there.
    struct Span {
        let stream: StreamHandle
        let first: Int64
        var last: Int64
    }

    /// A day closed and rolled up from its lines, to be written once all its lines are committed.
    struct ClosedDay: @unchecked Sendable {
        let key: RollupEngine.DayKey
        let rollup: PendingDay
        let rawSkipped: Bool
        let spans: [Span]
        /// Its last line (recorded for the day after it when its rows are left out).
        let last: Sample?
    }

    private struct OpenDay {
        let start: Int64
        /// The day's lines in time order (kept whole; taken apart by metric once, when the day closes).
        var lines: [ParsedLine] = []
        /// False once the day cannot be rolled up from its lines (stored minutes, a repeat, out of order).
        var usable: Bool
        /// Past raw retention: its rows are left out while it stays usable.
        let pastRawRetention: Bool
        var spans: [Span] = []

        var skipsRaw: Bool { usable && pastRawRetention }

        /// A minute not after the last breaks the day. Returns the change in lines held.
        mutating func append(_ line: ParsedLine, stream: StreamHandle, offset: Int64) -> Int {
            guard usable else { return 0 }
            if let last = lines.last, line.timestampMS <= last.timestampMS { return abandon() }
            lines.append(line)
            if let last = spans.last, last.stream === stream {
                spans[spans.count - 1].last = offset
            } else {
                spans.append(Span(stream: stream, first: offset, last: offset))
            }
            return 1
        }

        /// Leaves the day to the database; returns the change in lines held.
        mutating func abandon() -> Int {
            let count = lines.count
            usable = false
            lines = []
            spans = []
            return -count
        }

        /// The day's values by metric, as the database will return them.
        var samples: DaySamples {
            var samples = DaySamples(start: start, values: [])
            samples.timestamps = lines.map(\.timestampMS)
            samples.versions = lines.map(\.version)
            samples.values = (0..<Store.metricColumns.count).map { m in
                // SQLite stores an integral REAL as an integer: -0.0 comes back as 0.0.
                lines.map { $0.values[m].map { $0 == 0 ? 0 : $0 } }
            }
            return samples
        }

        var lastSample: Sample? {
            lines.last.map { ($0.timestampMS, $0.values[Self.uptime], $0.version, $0.values[Self.interval]) }
        }

        static let uptime = MetricCatalog.index(of: "uptime_s")!
        static let interval = MetricCatalog.index(of: "interval_s")!
    }

    init(engine: RollupEngine, maxHeldLines: Int = 100_000, groupLines: Int = StreamingRollups.defaultGroupLines,
         skipRawPastRetention: Bool = true) throws {
        self.engine = engine
        self.maxHeldLines = maxHeldLines
        self.groupLines = groupLines
        prunedBefore = try engine.store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM agent_state WHERE key = 'raw_pruned_before'").flatMap { Int64($0) }
        }
        skipRawBefore = skipRawPastRetention
            ? Int64(engine.now().timeIntervalSince1970 * 1000) - Int64(engine.retention.raw * 1000) : Int64.min
    }

    /// Takes a batch in file order; returns what may commit now (nil: nothing).
    func park(_ batch: PendingBatch) throws -> CommitGroup? {
        var batch = batch
        batch.candidates = try observe(batch.batch.rows, stream: batch.stream)
        parked.append(batch)
        parkedRows += batch.batch.rows.count
        if parkedRows > maxHeldLines { storeDaysHeldBack() }
        return release()
    }

    /// Closes the days still open (the pass has ended): everything may commit.
    func finishPass() -> CommitGroup? {
        for instance in open.keys.sorted() { close(instance) }
        return release(force: true)
    }

    /// True while lines of the stream with this fingerprint are held back.
    func isHoldingBack(_ fingerprint: [UInt8]) -> Bool { parked.contains { $0.stream.fingerprint == fingerprint } }

    /// Stores the rows of every day being held back after all; everything may commit.
    func letHeldBackGo() -> CommitGroup? {
        storeDaysHeldBack()
        return release(force: true)
    }

    /// The open days whose rows are left out are left to the database: their rows are stored.
    private func storeDaysHeldBack() {
        for (instance, day) in open where day.skipsRaw { held += open[instance]!.abandon() }
    }

    /// What may commit now, in one transaction: in each stream, the lines before the first line of any day
    /// whose rows are left out and that is not written yet (open, or closed but waiting); and the closed days
    /// whose lines are all among them or committed before. A day waits while an earlier day of its instance waits.
    private func release(force: Bool = false) -> CommitGroup? {
        var limit: [ObjectIdentifier: Int64] = [:]
        func lower(_ span: Span) -> Bool {
            let id = ObjectIdentifier(span.stream)
            guard span.first < limit[id] ?? Int64.max else { return false }
            limit[id] = span.first
            return true
        }
        for day in open.values where day.skipsRaw { for span in day.spans { _ = lower(span) } }
        var writable = [Bool](repeating: true, count: closing.count)
        var changed = true
        while changed {
            changed = false
            var waiting = Set<String>()
            for (i, day) in closing.enumerated() {
                if waiting.contains(day.key.instance) || day.spans.contains(where: { $0.last >= limit[ObjectIdentifier($0.stream)] ?? Int64.max }) {
                    writable[i] = false
                    waiting.insert(day.key.instance)
                    if day.rawSkipped { for span in day.spans where lower(span) { changed = true } }
                }
            }
        }
        var group = CommitGroup(batches: [], closedDays: [])
        var rest: [PendingBatch] = []
        for batch in parked {
            let end = limit[ObjectIdentifier(batch.stream)] ?? Int64.max
            if end >= batch.to {
                group.batches.append(batch)
            } else if end <= batch.from {
                rest.append(batch)
            } else {
                let (now, later) = batch.split(at: end)
                group.batches.append(now)
                rest.append(later)
            }
        }
        // At least `groupLines` per transaction, unless the pass ends.
        guard force || group.batches.reduce(0, { $0 + $1.batch.count }) >= groupLines else { return nil }
        parked = rest
        for i in group.batches.indices {
            parkedRows -= group.batches[i].batch.rows.count
            group.batches[i].skipped = skipMask(group.batches[i])
        }
        group.closedDays = zip(closing, writable).filter(\.1).map(\.0)
        closing = zip(closing, writable).filter { !$0.1 }.map(\.0)
        return group.batches.isEmpty && group.closedDays.isEmpty ? nil : group
    }

    /// Per row: left out of the inserts (a line of a day rolled up here without its raw rows; empty: none).
    private func skipMask(_ batch: PendingBatch) -> [Bool] {
        guard !batch.candidates.isEmpty, !skipped.isEmpty else { return [] }
        // Rows come day after day: the last day's answer holds for the next row of the same day.
        var last: (instance: String, day: Int64, skipped: Bool)?
        // By index, in place: a copy of each row (its values retained and released) showed in profiles.
        return batch.batch.rows.withUnsafeBufferPointer { rows in
            batch.candidates.indices.map { i in
                guard batch.candidates[i] else { return false }
                let day = floorDiv(rows[i].line.timestampMS, Store.day) * Store.day
                if let last, last.day == day && last.instance == rows[i].instanceID { return last.skipped }
                let answer = skipped.contains(RollupEngine.DayKey(instance: rows[i].instanceID, day: day))
                last = (rows[i].instanceID, day, answer)
                return answer
            }
        }
    }

    /// Takes a batch's rows in file order; returns which rows joined a day whose raw rows may be left out
    /// (empty: none).
    private func observe(_ rows: [Batch.Row], stream: StreamHandle) throws -> [Bool] {
        var candidates: [Bool] = []
        // By index, in place: a copy of each row (its values retained and released) showed in profiles.
        try rows.withUnsafeBufferPointer { rows in
            for index in rows.indices {
                let instance = rows[index].instanceID
                let day = floorDiv(rows[index].line.timestampMS, Store.day) * Store.day
                var i: Dictionary<String, OpenDay>.Index
                // Most lines join their instance's open day: one look-up, the day changed in place.
                if let found = open.index(forKey: instance), open.values[found].start == day {
                    i = found
                    held += open.values[i].append(rows[index].line, stream: stream, offset: rows[index].offset)
                    if held > maxHeldLines { held += open.values[i].abandon() }
                } else {
                    if let current = open[instance], day < current.start {
                        markLate(instance: instance, from: day)
                        continue
                    }
                    if let last = lastClosed[instance], day <= last {
                        markLate(instance: instance, from: day)
                        continue
                    }
                    close(instance)
                    let usable = try held < maxHeldLines && isNew(instance: instance, day: day)
                    var next = OpenDay(start: day, usable: usable, pastRawRetention: day + Store.day <= skipRawBefore)
                    held += next.append(rows[index].line, stream: stream, offset: rows[index].offset)
                    open[instance] = next
                    i = open.index(forKey: instance)!
                }
                if open.values[i].skipsRaw {
                    if candidates.isEmpty { candidates = Array(repeating: false, count: rows.count) }
                    candidates[index] = true
                }
            }
        }
        return candidates
    }

    /// Writes days computed here (inside a commit, with or after the rows of their lines): the sample before
    /// each day is read now, when every earlier line of the instance is stored or its day recorded.
    func write(_ days: [ClosedDay], in db: Database) throws {
        for day in days {
            var rollup = day.rollup.rollup()
            try rollup.day?.loadPrevious(instance: day.key.instance, in: db)
            try engine.apply(rollup, in: db)
            try db.cachedStatement(sql: "DELETE FROM rollup_dirty WHERE instance_id = ? AND day = ?").execute(arguments: [day.key.instance, day.key.day])
            if day.rawSkipped {
                try db.cachedStatement(sql: """
                    INSERT OR REPLACE INTO raw_skipped_days (instance_id, day, last_ts, last_uptime_s, last_version, last_interval_s)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [day.key.instance, day.key.day, day.last?.ts, day.last?.uptime, day.last?.version, day.last?.interval])
            }
        }
    }

    /// Marks the days that late lines changed dirty again (after the pass, before the remaining days are rolled up).
    func markChangedDaysDirty(in db: Database) throws {
        for key in dirtyAgain {
            try db.execute(sql: "INSERT OR IGNORE INTO rollup_dirty (instance_id, day) VALUES (?, ?)", arguments: [key.instance, key.day])
        }
    }

    /// Computes the oldest closed day no thread has started on (the parsing thread, while it waits for a free
    /// commit slot); false when there is none.
    func computeOnePending() -> Bool {
        while !unstarted.isEmpty {
            if unstarted.removeFirst().computeIfWaiting() { return true }
        }
        return false
    }

    private func close(_ instance: String) {
        guard let current = open.removeValue(forKey: instance) else { return }
        held -= current.lines.count
        lastClosed[instance] = current.start
        guard current.usable else { return }
        let key = RollupEngine.DayKey(instance: instance, day: current.start)
        rolled[instance, default: []].append(current.start)
        daysRolledUp += 1
        if current.skipsRaw { skipped.insert(key) }
        let day = PendingDay { [engine] in engine.rollUp(current.samples, key: key) }
        // Days the commit thread took meanwhile are let go here, or a pass would keep every day it computed.
        unstarted.removeAll { !$0.isWaiting }
        unstarted.append(day)
        closing.append(ClosedDay(key: key, rollup: day, rawSkipped: current.skipsRaw, spans: current.spans, last: current.lastSample))
    }

    /// A line for a day before the one being collected: that day's buckets, and the sample before every later
    /// day, may have changed. A day whose raw rows were left out is final (a late line is annotated, as for a
    /// pruned day), and the sample before a later one stays the one its lines gave.
    private func markLate(instance: String, from day: Int64) {
        for rolledDay in rolled[instance, default: []].reversed() {
            if rolledDay < day { break }
            let key = RollupEngine.DayKey(instance: instance, day: rolledDay)
            if skipped.contains(key) && rolledDay != day { continue }
            dirtyAgain.insert(key)
        }
        // The day being collected is whole, but the sample before it may be the late line: read at its write.
    }

    /// True when none of the day's minutes are stored yet, its raw minutes are kept, and it was not rolled up
    /// without them before.
    private func isNew(instance: String, day: Int64) throws -> Bool {
        if let prunedBefore, day < prunedBefore { return false }
        return try engine.store.pool.read { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT ts FROM samples WHERE instance_id = ? AND ts >= ? AND ts < ? LIMIT 1"),
                               arguments: [instance, day, day + Store.day]) == nil
                && RollupEngine.rawSkipped(RollupEngine.DayKey(instance: instance, day: day), in: db) == false
        }
    }
}

/// Lines read and not committed yet, committed in one transaction with the days whose lines are all committed then.
struct CommitGroup {
    var batches: [PendingBatch]
    var closedDays: [StreamingRollups.ClosedDay]
}

/// Lines read from one stream, with where they start and end there.
struct PendingBatch {
    var batch: Batch
    let stream: StreamHandle
    private(set) var from: Int64
    private(set) var to: Int64
    let file: LogFile
    let contentLength: Int64
    /// Per row: joined a day whose raw rows may be left out (empty: none).
    var candidates: [Bool] = []
    /// Per row, once decided: left out of the inserts (empty: none).
    var skipped: [Bool] = []

    /// The lines before `offset` (a line's start), and those from it.
    func split(at offset: Int64) -> (PendingBatch, PendingBatch) {
        let cut = batch.rows.firstIndex { $0.offset >= offset } ?? batch.rows.count
        var before = self, after = self
        before.batch.rows = Array(batch.rows[..<cut])
        after.batch.rows = Array(batch.rows[cut...])
        before.batch.quarantined = batch.quarantined.filter { $0.offset < offset }
        after.batch.quarantined = batch.quarantined.filter { $0.offset >= offset }
        if !candidates.isEmpty {
            before.candidates = Array(candidates[..<cut])
            after.candidates = Array(candidates[cut...])
        }
        before.to = offset
        after.from = offset
        return (before, after)
    }
}

extension Tailer {
    /// One pass over the files with every day it touched rolled up before it returns (`ingest --once`): days
    /// from their lines as they stream through, the rest (days partly stored before, late lines) from the
    /// database afterwards, in parallel.
    func scanRollingUp(_ engine: RollupEngine, maxHeldLines: Int = 100_000, skipRawPastRetention: Bool = true,
                       progress: ((IngestCounts) -> Void)? = nil) throws -> IngestCounts {
        let streaming = try StreamingRollups(engine: engine, maxHeldLines: maxHeldLines,
                                             groupLines: min(config.batchLines, StreamingRollups.defaultGroupLines),
                                             skipRawPastRetention: skipRawPastRetention)
        streamingRollups = streaming
        defer { streamingRollups = nil }
        let counts = try scan(progress: progress)
        try store.pool.write { db in try streaming.markChangedDaysDirty(in: db) }
        let fromDatabase = try engine.processAllDirtyInParallel()
        lastRollups = (streaming.daysRolledUp, fromDatabase, streaming.daysSkippedRaw)
        return counts
    }
}
