import Foundation
import GRDB
import MetricsSchema

/// Rolls days up from the lines as `ingest --once` parses them, instead of reading each day back from the
/// database afterwards (issue 19: reading a day back and computing it was most of the rollup work).
///
/// A day is rolled up here only when what was parsed is certain to be what the database holds: none of its
/// minutes were stored before this pass, its lines came in time order without a repeated minute, and its raw
/// minutes are not pruned. The day closes when the instance's lines move on to a later day (or the pass ends);
/// its buckets are computed then by whichever thread comes to them first (`PendingDay`) and written in the
/// commit that follows, which also clears its dirty mark. Every other day stays dirty and is recomputed from the database as before, so the result is the
/// same row for row (`RollupTests`). A line for a day already rolled up here (a late line) marks that day and
/// every later one rolled up here dirty again when the pass ends: their buckets or the sample before them
/// changed.
///
/// The lines held are bounded (`maxHeldLines`, about 50 MB at the default): past it, the day that grew too
/// large, and any day opened meanwhile, is left to the database (a fleet of many instances in one pass, or a
/// writer with lines far more often than a minute).
///
/// Only where nothing else marks days dirty meanwhile, as in `ingest --once`, which holds the agent's lock.
/// `observe` and `finish` run on the parsing thread, `write` on the commit thread.
final class StreamingRollups: @unchecked Sendable {
    let engine: RollupEngine
    private let prunedBefore: Int64?
    /// Per instance: the day being collected.
    private var open: [String: OpenDay] = [:]
    /// Per instance: the last day collected (rolled up here or not); a line before it is late.
    private var lastClosed: [String: Int64] = [:]
    /// Per instance: the days rolled up here, in order.
    private var rolled: [String: [Int64]] = [:]
    private var dirtyAgain = Set<RollupEngine.DayKey>()
    /// Closed days, oldest first, that may not be computed yet.
    private var unstarted: [PendingDay] = []
    /// Days rolled up from their lines (some may be dirty again after late lines).
    private(set) var daysRolledUp = 0
    /// Lines held in open days, and the most to hold.
    private var held = 0
    let maxHeldLines: Int

    private struct OpenDay {
        let start: Int64
        /// The day's lines in time order (kept whole; taken apart by metric once, when the day closes).
        var lines: [ParsedLine] = []
        /// False once the day cannot be rolled up from its lines (stored minutes, a repeat, out of order).
        var usable: Bool

        /// A minute not after the last breaks the day. Returns the change in lines held.
        mutating func append(_ line: ParsedLine) -> Int {
            guard usable else { return 0 }
            if let last = lines.last, line.timestampMS <= last.timestampMS { return abandon() }
            lines.append(line)
            return 1
        }

        /// Leaves the day to the database; returns the change in lines held.
        mutating func abandon() -> Int {
            let count = lines.count
            usable = false
            lines = []
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
    }

    init(engine: RollupEngine, maxHeldLines: Int = 100_000) throws {
        self.engine = engine
        self.maxHeldLines = maxHeldLines
        prunedBefore = try engine.store.pool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM agent_state WHERE key = 'raw_pruned_before'").flatMap { Int64($0) }
        }
    }

    /// Takes a batch's rows in file order; returns the days they closed, for the batch's commit to write.
    func observe(_ rows: [Batch.Row]) throws -> [PendingDay] {
        var closed: [PendingDay] = []
        for row in rows {
            let ts = row.line.timestampMS
            let day = floorDiv(ts, Store.day) * Store.day
            if let start = open[row.instanceID]?.start, start == day {
                held += open[row.instanceID]!.append(row.line)  // in place, without copying the day
                if held > maxHeldLines { held += open[row.instanceID]!.abandon() }
                continue
            }
            if let current = open[row.instanceID], day < current.start {
                markLate(instance: row.instanceID, from: day)
                continue
            }
            if let last = lastClosed[row.instanceID], day <= last {
                markLate(instance: row.instanceID, from: day)
                continue
            }
            if let finished = close(row.instanceID) { closed.append(finished) }
            let usable = try held < maxHeldLines && isNew(instance: row.instanceID, day: day)
            var next = OpenDay(start: day, usable: usable)
            held += next.append(row.line)
            open[row.instanceID] = next
        }
        return closed
    }

    /// Closes the days still open (the pass has ended).
    func finish() -> [PendingDay] {
        open.keys.sorted().compactMap { close($0) }
    }

    /// Writes days computed here (inside a commit, after the rows of their lines): the sample before each day
    /// is read now, when every earlier line of the pass is stored.
    func write(_ days: [PendingDay], in db: Database) throws {
        for day in days {
            var rollup = day.rollup()
            try rollup.day?.loadPrevious(instance: rollup.key.instance, in: db)
            try engine.apply(rollup, in: db)
            try db.execute(sql: "DELETE FROM rollup_dirty WHERE instance_id = ? AND day = ?", arguments: [rollup.key.instance, rollup.key.day])
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

    private func close(_ instance: String) -> PendingDay? {
        guard let current = open.removeValue(forKey: instance) else { return nil }
        held -= current.lines.count
        lastClosed[instance] = current.start
        guard current.usable else { return nil }
        rolled[instance, default: []].append(current.start)
        daysRolledUp += 1
        let day = PendingDay { [engine] in engine.rollUp(current.samples, key: RollupEngine.DayKey(instance: instance, day: current.start)) }
        // Days the commit thread took meanwhile are let go here, or a pass would keep every day it computed.
        unstarted.removeAll { !$0.isWaiting }
        unstarted.append(day)
        return day
    }

    /// A line for a day before the one being collected: that day's buckets, and the sample before every later
    /// day, may have changed.
    private func markLate(instance: String, from day: Int64) {
        for rolledDay in rolled[instance, default: []].reversed() {
            if rolledDay < day { break }
            dirtyAgain.insert(RollupEngine.DayKey(instance: instance, day: rolledDay))
        }
        // The day being collected is whole, but the sample before it may be the late line: read at its write.
    }

    /// True when none of the day's minutes are stored yet and its raw minutes are kept.
    private func isNew(instance: String, day: Int64) throws -> Bool {
        if let prunedBefore, day < prunedBefore { return false }
        return try engine.store.pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT ts FROM samples WHERE instance_id = ? AND ts >= ? AND ts < ? LIMIT 1",
                               arguments: [instance, day, day + Store.day]) == nil
        }
    }
}

/// A closed day's buckets, computed by whichever thread comes to them first: the commit thread when it is to
/// write the day, or the parsing thread while it would otherwise wait for a free commit slot (a profile showed
/// the parsing thread 90 % busy and the commit thread 75 %, with every day computed while parsing).
final class PendingDay: @unchecked Sendable {
    private enum State {
        case waiting, computing
        case done(RollupEngine.DayRollup)
    }

    private let lock = NSLock()
    private var state = State.waiting
    private let computed = DispatchSemaphore(value: 0)
    /// Holds the day's lines until it has run.
    private var compute: (@Sendable () -> RollupEngine.DayRollup)?

    init(_ compute: @escaping @Sendable () -> RollupEngine.DayRollup) { self.compute = compute }

    var isWaiting: Bool {
        lock.withLock {
            if case .waiting = state { return true }
            return false
        }
    }

    /// Computes the day unless a thread has started on it; false when one had.
    @discardableResult
    func computeIfWaiting() -> Bool {
        let mine = lock.withLock { () -> (@Sendable () -> RollupEngine.DayRollup)? in
            guard case .waiting = state else { return nil }
            state = .computing
            defer { compute = nil }
            return compute
        }
        guard let mine else { return false }
        let rollup = mine()
        lock.withLock { state = .done(rollup) }
        computed.signal()
        return true
    }

    /// The day's rollup: computed here unless another thread has started on it, then waited for.
    func rollup() -> RollupEngine.DayRollup {
        computeIfWaiting()
        while true {
            if case .done(let rollup) = lock.withLock({ state }) { return rollup }
            computed.wait()
        }
    }
}

extension Tailer {
    /// One pass over the files with every day it touched rolled up before it returns (`ingest --once`): days
    /// from their lines as they stream through, the rest (days partly stored before, late lines) from the
    /// database afterwards, in parallel.
    func scanRollingUp(_ engine: RollupEngine, maxHeldLines: Int = 100_000, progress: ((IngestCounts) -> Void)? = nil) throws -> IngestCounts {
        let streaming = try StreamingRollups(engine: engine, maxHeldLines: maxHeldLines)
        streamingRollups = streaming
        defer { streamingRollups = nil }
        let counts = try scan(progress: progress)
        let lastDays = streaming.finish()
        try store.pool.write { db in
            try streaming.write(lastDays, in: db)
            try streaming.markChangedDaysDirty(in: db)
        }
        let fromDatabase = try engine.processAllDirtyInParallel()
        lastRollups = (streaming.daysRolledUp, fromDatabase)
        return counts
    }
}
