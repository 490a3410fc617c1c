import Foundation
import GRDB
import Synchronization

extension RollupEngine {
    /// Rolls up every dirty day on several threads: two read and compute the next two days while a third
    /// writes the last (the rollups of `ingest --once`; the single-threaded `processDirty` left a core idle).
    /// Only where nothing else marks days dirty meanwhile, as in `ingest --once`, which holds the agent's
    /// lock: a day marked again between its read and its write would lose that mark. Days are written in
    /// order, each in its own transaction with its dirty mark; the first failure stops the rest and is thrown.
    @discardableResult
    public func processAllDirtyInParallel() throws -> Int {
        let keys = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT instance_id, day FROM rollup_dirty ORDER BY day").map { DayKey(instance: $0[0], day: $0[1]) }
        }
        let writer = DispatchQueue(label: "metrics-agent.rollup-writes")
        let slot = DispatchSemaphore(value: 1)
        let failure = Mutex<Error?>(nil)
        // Even when computing a day throws: the write in flight finishes before this returns.
        defer {
            slot.wait()
            slot.signal()
        }
        var done = 0
        // Computing is most of the work (a profile: four fifths), so two days are computed at once.
        var start = 0
        chunks: while start < keys.count {
            let chunk = Array(keys[start..<min(start + 2, keys.count)])
            start += chunk.count
            let computed = Mutex<[Result<DayRollup, Error>?]>(Array(repeating: nil, count: chunk.count))
            DispatchQueue.concurrentPerform(iterations: chunk.count) { i in
                let result = Result { try store.pool.read { try compute(chunk[i], in: $0) } }
                computed.withLock { $0[i] = result }
            }
            for result in computed.withLock({ $0 }) {
                let rollup = try result!.get()
                slot.wait()
                if failure.withLock({ $0 }) != nil {
                    slot.signal()
                    break chunks
                }
                writer.async { [self] in
                    do {
                        try store.pool.write { db in
                            try apply(rollup, in: db)
                            try db.execute(sql: "DELETE FROM rollup_dirty WHERE instance_id = ? AND day = ?",
                                           arguments: [rollup.key.instance, rollup.key.day])
                        }
                    } catch {
                        failure.withLock { $0 = error }
                    }
                    slot.signal()
                }
                done += 1
            }
        }
        slot.wait()
        slot.signal()
        if let error = failure.withLock({ $0 }) { throw error }
        return done
    }
}
