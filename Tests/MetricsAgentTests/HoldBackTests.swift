import Foundation
import Logging
@testable import MetricsAgent
import MetricsSchema
import Testing
import TestSupport

/// What `StreamingRollups` lets commit while it leaves raw rows out: a read position may never pass a line
/// that is neither stored nor in a day written by then, whatever the interleaving of instances and wherever
/// the batches end (the crash tests cannot aim at every such point).
@Suite struct HoldBackTests {
    /// Two instances in one stream over three days past raw retention, "b" now and then a minute behind "a"
    /// (so "a"'s next day starts before "b"'s day ends), cut into batches of random sizes.
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func noCommitPassesALineThatIsNeitherStoredNorWritten(seed: UInt64) throws {
        let dir = TemporaryDirectory.make("hold-back")
        let store = try Store(path: dir.appendingPathComponent("m.sqlite").path)
        let start: Int64 = 1_700_006_400_000  // a midnight (UTC)
        let engine = RollupEngine(store: store, logger: Logger(label: "test"), now: { Date(timeIntervalSince1970: 1_700_006_400 + 30 * 86_400) })
        // Whatever may commit is let go at once, so that every step is checked.
        let streaming = try StreamingRollups(engine: engine, groupLines: 1)
        var random = SeededGenerator(seed: seed)
        var texts: [String] = []
        var pendingB: String?
        for minute in 0..<(3 * 1440) {
            for instance in ["a", "b"] {
                let ts = start + Int64(minute) * 60_000
                let text = #"{"timestamp":"\#(RFC3339.format(Date(timeIntervalSince1970: Double(ts) / 1000)))","instance_id":"\#(instance)","players":\#(minute % 7)}"#
                if instance == "a" {
                    texts.append(text)
                } else if let held = pendingB {
                    texts.append(held)
                    pendingB = nil
                    texts.append(text)
                } else if Int.random(in: 0..<3, using: &random) == 0 {
                    pendingB = text
                } else {
                    texts.append(text)
                }
            }
        }
        if let pendingB { texts.append(pendingB) }
        let stream = StreamHandle(id: 1, fingerprint: [1])
        let file = LogFile(path: "/nowhere/metrics_all.jsonl", device: 0, inode: 0, size: 0, mtimeNS: 0)
        var offset: Int64 = 0, committed: Int64 = 0
        var written = Set<RollupEngine.DayKey>()
        var seen: [Int64] = []
        func check(_ group: CommitGroup?) {
            guard let group else { return }
            written.formUnion(group.closedDays.map(\.key))
            for batch in group.batches {
                #expect(batch.from == committed, "read positions move on without a hole")
                committed = batch.to
                for (i, row) in batch.batch.rows.enumerated() {
                    seen.append(row.offset)
                    if !batch.skipped.isEmpty && batch.skipped[i] {
                        let key = RollupEngine.DayKey(instance: row.instanceID, day: floorDiv(row.line.timestampMS, Store.day) * Store.day)
                        #expect(written.contains(key), "a line left out is committed only with its day's rollups or after them")
                    }
                }
            }
        }
        var index = 0
        while index < texts.count {
            var batch = Batch()
            let from = offset
            for text in texts[index..<min(texts.count, index + Int.random(in: 1...60, using: &random))] {
                Array(text.utf8).withUnsafeBufferPointer { batch.add($0, at: offset, defaultInstance: "seed") }
                offset += Int64(text.utf8.count + 1)
                index += 1
            }
            check(try streaming.park(PendingBatch(batch: batch, stream: stream, from: from, to: offset, file: file, contentLength: offset)))
        }
        check(streaming.finishPass())
        #expect(committed == offset)
        #expect(seen == seen.sorted() && Set(seen).count == texts.count, "every line committed once")
        #expect(streaming.daysSkippedRaw == 6 && written.count == 6)
    }
}
