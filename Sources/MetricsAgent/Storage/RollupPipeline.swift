import Foundation
import GRDB
import Synchronization

extension RollupEngine {
    /// Rolls up every dirty day on two threads: this one reads and computes the next day while a second
    /// writes the last (the rollups of `ingest --once`; the single-threaded `processDirty` left a core idle).
    /// Only where nothing else marks days dirty meanwhile, as in `ingest --once`, which holds the agent's
    /// lock: a day marked again between its read and its write would lose that mark. Days are written in
    /// order, each in its own transaction with its dirty mark; the first failure stops the rest and is thrown.
    @discardableResult
    public func processAllDirtyOnTwoThreads() throws -> Int {
        let keys = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT instance_id, day FROM rollup_dirty ORDER BY day").map { DayKey(instance: $0[0], day: $0[1]) }
        }
        let writer = DispatchQueue(label: "metrics-agent.rollup-writes")
        let slot = DispatchSemaphore(value: 1)
        let failure = Mutex<Error?>(nil)
        var done = 0
        for key in keys {
            let rollup = try store.pool.read { try compute(key, in: $0) }
            slot.wait()
            if failure.withLock({ $0 }) != nil {
                slot.signal()
                break
            }
            writer.async { [self] in
                do {
                    try store.pool.write { db in
                        try apply(rollup, in: db)
                        try db.execute(sql: "DELETE FROM rollup_dirty WHERE instance_id = ? AND day = ?", arguments: [key.instance, key.day])
                    }
                } catch {
                    failure.withLock { $0 = error }
                }
                slot.signal()
            }
            done += 1
        }
        slot.wait()
        slot.signal()
        if let error = failure.withLock({ $0 }) { throw error }
        return done
    }
}
