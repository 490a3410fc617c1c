import Synchronization

/// "Something happened": a signal a loop waits on instead of polling. Signals
/// made while nobody waits are kept (one), so none is lost between two waits.
/// Idle loops that poll every 100 ms cost an idle agent most of its CPU.
public final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Bool, Never>)?
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume(returning: true)
    }

    /// Takes a pending signal without waiting.
    public func take() -> Bool { state.withLock { state in defer { state.pending = false }; return state.pending } }

    /// Waits for a signal or `timeout`; true when signalled. One waiter at a time.
    @discardableResult
    public func wait(timeout: Duration) async -> Bool {
        if take() { return true }
        guard timeout > .zero else { return false }
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            let waiter = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard let waiter = state.waiter, waiter.id == id else { return nil }
                state.waiter = nil
                return waiter.continuation
            }
            waiter?.resume(returning: false)
        }
        let signalled = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Cancelled before this point, the handler below found no waiter: look at the flag under the lock.
                let resume = state.withLock { state -> Bool? in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    if Task.isCancelled { return false }
                    state.waiter = (id, continuation)
                    return nil
                }
                if let resume { continuation.resume(returning: resume) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard let waiter = state.waiter, waiter.id == id else { return nil }
                state.waiter = nil
                return waiter.continuation
            }
            waiter?.resume(returning: false)
        }
        timer.cancel()
        return signalled
    }
}
