import Synchronization

/// One synchronous, CPU-bound test body at a time in the test process.
///
/// Swift Testing runs every test on the cooperative pool, which has one thread per core: two on the machines
/// this project runs its tests on. A synchronous test that computes for seconds (rollups of a month in
/// SQLite) holds one of them; two such tests at once hold both, and every other test's sockets, timers and
/// child-process polls wait behind them, until a 10 s timeout of an unrelated test fires. Such a test takes
/// its turn first (waiting without holding a thread) and ends it when done:
///
///     let turn = await CPUBoundTurn.take()
///     defer { turn.end() }
public final class CPUBoundTurn: Sendable {
    private struct Queue {
        var busy = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private static let queue = Mutex(Queue())
    private let ended = Mutex(false)

    private init() {}

    /// Waits until no other CPU-bound body runs; the caller runs next.
    public static func take() async -> CPUBoundTurn {
        await withCheckedContinuation { continuation in
            let runsNow = queue.withLock { queue -> Bool in
                guard queue.busy else {
                    queue.busy = true
                    return true
                }
                queue.waiting.append(continuation)
                return false
            }
            if runsNow { continuation.resume() }
        }
        return CPUBoundTurn()
    }

    /// Hands the turn to the next waiting body (first come, first served). Ending twice ends once.
    public func end() {
        guard ended.withLock({ ended in defer { ended = true }; return !ended }) else { return }
        let next = Self.queue.withLock { queue -> CheckedContinuation<Void, Never>? in
            guard !queue.waiting.isEmpty else {
                queue.busy = false
                return nil
            }
            return queue.waiting.removeFirst()
        }
        next?.resume()
    }
}
