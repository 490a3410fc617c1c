import Dispatch
import Foundation

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
