import Foundation
import Synchronization

/// Counters and gauges of the running server, shared by every connection.
/// Counters only grow (Prometheus reads them as totals); the metrics writer
/// turns them into per-interval counts.
public final class ServerMetrics: Sendable {
    public struct Totals: Sendable, Equatable {
        public var messagesIn = 0
        public var messagesOut = 0
        public var gamesStarted = 0
        public var gamesFinished = 0
        public var errors = 0
        public var rateLimited = 0
        public var metricsWriteErrors = 0
        public var connectionsOpened = 0
        /// WebSockets closed for a missed pong or for not reading their messages.
        public var deadConnections = 0
        /// Failed Redis operations (`--redis-url`); the instance serves its own rooms meanwhile.
        public var redisErrors = 0
        /// Game states written to Redis at turn boundaries.
        public var redisBackups = 0
        /// Rooms taken over from an instance that died or drained.
        public var roomsAdopted = 0
        /// Joins answered `room_on_other_instance`.
        public var misroutedJoins = 0
        /// Rooms handed to a peer at a drain.
        public var roomsHandedOver = 0
        /// Moves a bot made because a player's turn timer ran out.
        public var turnTimeouts = 0
    }

    private struct State {
        var totals = Totals()
        var connections = 0
        var latencies: [Double] = []
        var latencyCount = 0
        /// The longest takeover since the last metrics line (ms).
        var takeoverMax = 0.0
    }

    /// Latency samples kept per interval; beyond this, reservoir sampling keeps percentiles honest.
    static let maxLatencySamples = 50_000
    private let state = Mutex(State())

    public init() {}

    public var totals: Totals { state.withLock { $0.totals } }
    public var connections: Int { state.withLock { $0.connections } }

    public func update(_ change: (inout Totals) -> Void) { state.withLock { change(&$0.totals) } }
    public func messageIn() { state.withLock { $0.totals.messagesIn += 1 } }
    public func messagesOut(_ n: Int) { state.withLock { $0.totals.messagesOut += n } }
    public func error() { state.withLock { $0.totals.errors += 1 } }

    /// A room adopted, `ms` after its last saved move.
    public func tookOver(afterMS ms: Double) {
        state.withLock {
            $0.totals.roomsAdopted += 1
            $0.takeoverMax = max($0.takeoverMax, ms)
        }
    }

    /// The longest takeover since the last call (the metrics writer's interval).
    public func drainTakeoverMax() -> Double {
        state.withLock { state in
            defer { state.takeoverMax = 0 }
            return state.takeoverMax
        }
    }

    public func connectionOpened() {
        state.withLock {
            $0.connections += 1
            $0.totals.connectionsOpened += 1
        }
    }

    public func connectionClosed() { state.withLock { $0.connections -= 1 } }

    /// Records the server-side time to handle one action, in milliseconds.
    public func recordLatency(milliseconds: Double) {
        state.withLock {
            $0.latencyCount += 1
            if $0.latencies.count < Self.maxLatencySamples {
                $0.latencies.append(milliseconds)
            } else {
                let slot = Int.random(in: 0..<$0.latencyCount)
                if slot < Self.maxLatencySamples { $0.latencies[slot] = milliseconds }
            }
        }
    }

    /// Takes the latency samples of the interval that just ended.
    public func drainLatencies() -> [Double] {
        state.withLock {
            let samples = $0.latencies
            $0.latencies.removeAll(keepingCapacity: true)
            $0.latencyCount = 0
            return samples
        }
    }
}
