import JSONCore
import Synchronization

/// Everything the simulated players count while they play; shared by all of them.
public final class LoadStats: Sendable {
    struct Counters {
        var connectionsOpened = 0
        var connectionsFailed = 0
        var open = 0
        var peakOpen = 0
        var roomsCreated = 0
        var gamesStarted = 0
        var gamesCompleted = 0
        var gamesAbandoned = 0
        var tablesDone = 0
        var actions = 0
        /// `error` events from the server, by code.
        var serverErrors: [String: Int] = [:]
        /// Failures seen by the client: refused connections, timeouts, dropped sockets.
        var clientErrors: [String: Int] = [:]
    }

    let counters = Mutex(Counters())
    /// Microseconds from sending a move to the server's answer (the next state or an error).
    private let actionLatencies = Mutex<[UInt32]>([])
    /// Where the latencies since the last progress line start.
    private let intervalStart = Mutex(0)
    /// Microseconds from opening the lobby to being seated in the room.
    private let joinLatencies = Mutex<[UInt32]>([])

    public init() {}

    func update(_ change: (inout Counters) -> Void) { counters.withLock { change(&$0) } }

    func opened() {
        update {
            $0.connectionsOpened += 1
            $0.open += 1
            $0.peakOpen = max($0.peakOpen, $0.open)
        }
    }

    func closed(_ count: Int) { update { $0.open -= count } }
    func serverError(_ code: String) { update { $0.serverErrors[code, default: 0] += 1 } }
    func clientError(_ kind: String) { update { $0.clientErrors[kind, default: 0] += 1 } }

    func recordAction(_ elapsed: Duration) { actionLatencies.withLock { $0.append(Self.micros(elapsed)) } }
    func recordJoin(_ elapsed: Duration) { joinLatencies.withLock { $0.append(Self.micros(elapsed)) } }

    private static func micros(_ d: Duration) -> UInt32 {
        UInt32(clamping: d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000)
    }

    var openNow: Int { counters.withLock { $0.open } }
    var actionLatency: LatencySummary { LatencySummary(actionLatencies.withLock { $0 }) }
    /// The action latencies since the previous call: progress lines sort only these, so a
    /// long run's progress never stalls the players' messages (sorting all of them did).
    func takeIntervalActionLatency() -> LatencySummary {
        let recent = actionLatencies.withLock { all in
            intervalStart.withLock { start in
                defer { start = all.count }
                return Array(all[min(start, all.count)...])
            }
        }
        return LatencySummary(recent)
    }
    var joinLatency: LatencySummary { LatencySummary(joinLatencies.withLock { $0 }) }
    var snapshot: Counters { counters.withLock { $0 } }
}

/// Percentiles of a set of latencies, in milliseconds (nearest-rank).
public struct LatencySummary: Sendable, Equatable {
    public let count: Int
    public let p50: Double
    public let p95: Double
    public let p99: Double
    public let max: Double

    public init(_ microseconds: [UInt32]) {
        let sorted = microseconds.sorted()
        count = sorted.count
        func rank(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = Swift.min(sorted.count - 1, Swift.max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
            return Double(sorted[index]) / 1000
        }
        p50 = rank(0.50)
        p95 = rank(0.95)
        p99 = rank(0.99)
        max = Double(sorted.last ?? 0) / 1000
    }

    var json: JSON {
        ["count": JSON(count), "p50": JSON(Self.round(p50)), "p95": JSON(Self.round(p95)),
         "p99": JSON(Self.round(p99)), "max": JSON(Self.round(max))]
    }

    static func round(_ v: Double) -> Double { (v * 100).rounded() / 100 }
}
