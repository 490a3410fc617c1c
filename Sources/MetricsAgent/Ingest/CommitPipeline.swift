import Dispatch
import Foundation

/// Commits batches on a second thread while the caller parses the next ones.
/// At most `depth` batches are in flight (one file's parse may take longer than the next one's commit, and the
/// other way round), and batches commit in the order submitted; the first failure stops the pipeline and is
/// thrown to the caller.
final class CommitPipeline: @unchecked Sendable {
    static let depth = 2
    private let queue = DispatchQueue(label: "metrics-agent.commit")
    private let slot = DispatchSemaphore(value: CommitPipeline.depth)
    private let lock = NSLock()
    private var failure: Error?
    private var counts = IngestCounts()
    /// The streams of the batches in flight, oldest first.
    private var pending: [[StreamHandle]] = []
    private var retired: [Any] = []
    private let progress: ((IngestCounts) -> Void)?
    /// Work the submitting thread does while it waits for a free slot (true: it did some, look again).
    private let help: (() -> Bool)?

    init(progress: ((IngestCounts) -> Void)?, help: (() -> Bool)? = nil) {
        self.progress = progress
        self.help = help
    }

    /// What has been committed so far.
    var committed: IngestCounts { lock.withLock { counts } }

    /// True while a batch of the stream with this fingerprint is being committed.
    func isBusy(with fingerprint: [UInt8]) -> Bool {
        lock.withLock { pending.contains { $0.contains { $0.fingerprint == fingerprint } } }
    }

    /// Keeps what a commit is done with until the submitting thread lets it go: the lines were allocated there,
    /// and freeing them on the commit thread made the two threads contend for the allocator's lock (a profile:
    /// futex calls from malloc and free on both threads).
    func retire(_ done: Any) { lock.withLock { retired.append(done) } }

    func submit(streams: [StreamHandle], _ work: @escaping @Sendable () throws -> IngestCounts) throws {
        var done: [Any] = []
        lock.withLock { swap(&done, &retired) }
        done.removeAll()  // let go here, on this thread
        while slot.wait(timeout: .now()) == .timedOut {
            if help?() != true {
                slot.wait()
                break
            }
        }
        if let failure = lock.withLock({ failure }) {
            slot.signal()
            throw failure
        }
        lock.withLock { pending.append(streams) }
        queue.async { [self] in
            do {
                let done = try work()
                let total = lock.withLock {
                    counts += done
                    return counts
                }
                progress?(total)
            } catch {
                lock.withLock { failure = error }
            }
            lock.withLock { _ = pending.removeFirst() }
            slot.signal()
        }
    }

    /// Waits until nothing is in flight; returns the totals or throws the first failure.
    @discardableResult
    func drain() throws -> IngestCounts {
        for _ in 0..<Self.depth { slot.wait() }
        for _ in 0..<Self.depth { slot.signal() }
        return try lock.withLock {
            if let failure { throw failure }
            return counts
        }
    }

    func finish() throws -> IngestCounts { try drain() }
}
