import Alerting
import Foundation
import GRDB
import JSONCore
import MetricsSchema
import Synchronization

/// What this agent knows of the other agents: who they are, when each last
/// answered, and from that who sends which alerts. A peer is *live* while it
/// has answered within `--peer-timeout`; an instance's alerts are sent by the
/// agent that reads its files (its origin) while that agent is live, else by
/// the live agent with the lowest ID. Silence is counted from this agent's
/// start at the earliest, so a restarted agent takes nothing over before the
/// timeout has passed since it started.
public final class Fleet: Sendable {
    public let config: FleetConfig
    let startedAt: Date

    struct Peer: Sendable {
        let url: String
        var agentID: String?
        var lastOK: Date?
        /// The last failure, until the next success.
        var lastError: String?
        var lastAttempt: Date?
        var lines = 0
        /// Lines the peer had that we had not stored yet, after the last pull (0 when caught up).
        var behind = false
    }

    private let peers: Mutex<[Peer]>

    public init(config: FleetConfig, startedAt: Date = Date()) {
        self.config = config
        self.startedAt = startedAt
        peers = Mutex(config.peers.map { Peer(url: $0) })
    }

    /// Fills in what the database remembers (agent IDs, replicated lines) before the first pull.
    func restore(from store: Store) throws {
        let rows = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT url, agent_id, lines, last_ok_ms FROM peers")
        }
        peers.withLock { peers in
            for row in rows {
                guard let i = peers.firstIndex(where: { $0.url == row["url"] as String }) else { continue }
                peers[i].agentID = row["agent_id"]
                peers[i].lines = row["lines"]
                peers[i].lastOK = (row["last_ok_ms"] as Int64?).map { Date(timeIntervalSince1970: Double($0) / 1000) }
            }
        }
    }

    /// Records a successful pull; true when the peer had been failing until now.
    func succeeded(url: String, agentID: String, lines: Int, behind: Bool, at now: Date) -> Bool {
        peers.withLock { peers in
            guard let i = peers.firstIndex(where: { $0.url == url }) else { return false }
            let recovered = peers[i].lastError != nil
            peers[i].agentID = agentID
            peers[i].lastOK = now
            peers[i].lastAttempt = now
            peers[i].lastError = nil
            peers[i].lines += lines
            peers[i].behind = behind
            return recovered
        }
    }

    /// Records a failed pull; true when the peer had been answering until now.
    func failed(url: String, error: String, at now: Date) -> Bool {
        peers.withLock { peers in
            guard let i = peers.firstIndex(where: { $0.url == url }) else { return false }
            let first = peers[i].lastError == nil
            peers[i].lastError = error
            peers[i].lastAttempt = now
            return first
        }
    }

    /// Seconds since the peer last answered, counted from this agent's start at the earliest.
    func silence(_ peer: Peer, now: Date) -> TimeInterval {
        max(0, now.timeIntervalSince(max(peer.lastOK ?? startedAt, startedAt)))
    }

    /// Its last request was answered.
    static func answering(_ peer: Peer) -> Bool { peer.lastError == nil && peer.lastOK != nil }

    /// A peer's name: its agent ID once it has answered, its URL before.
    static func name(_ peer: Peer) -> String { peer.agentID ?? peer.url }

    /// For the AgentUnreachable rule: each peer and how long it has been unreachable (0 while it answers).
    public func unreachable(now: Date = Date()) -> [(agentID: String, unreachableFor: TimeInterval)] {
        peers.withLock { peers in
            peers.map { peer in
                let silence = silence(peer, now: now)
                // A request still waiting for its answer counts as unreachable only once the timeout has passed.
                return (Self.name(peer), Self.answering(peer) && silence < config.peerTimeout ? 0 : silence)
            }
        }
    }

    /// Whether this agent sends the alerts of instances whose lines come from `origin` (nil: from this agent's files).
    func sends(origin: String?, now: Date = Date()) -> Bool {
        guard let origin, origin != config.agentID else { return true }
        return peers.withLock { peers in
            let timeout = config.peerTimeout
            let live = peers.filter { silence($0, now: now) < timeout }
            if let owner = peers.first(where: { Self.name($0) == origin }) {
                if silence(owner, now: now) < timeout { return false }
            } else if live.contains(where: { $0.agentID == nil }) {
                // A peer not heard from yet (since this agent started) may be the origin, or have a lower ID.
                return false
            }
            return (live.compactMap(\.agentID) + [config.agentID]).min() == config.agentID
        }
    }

    func isLive(agentID: String, now: Date = Date()) -> Bool {
        if agentID == config.agentID { return true }
        return peers.withLock { peers in
            peers.first { $0.agentID == agentID }.map { silence($0, now: now) < config.peerTimeout } ?? false
        }
    }

    /// `/api/agents`: each peer, whether it answers, and who sends its instances' alerts.
    func json(now: Date = Date()) -> [JSON] {
        let snapshot = peers.withLock { $0 }
        return snapshot.map { peer in
            let silence = silence(peer, now: now)
            return [
                "agent_id": peer.agentID.map { .string($0) } ?? .null, "url": .string(peer.url),
                "reachable": .bool(Self.answering(peer)),
                "live": .bool(peer.agentID != nil && silence < config.peerTimeout),
                "last_contact": peer.lastOK.map { JSON(Int($0.timeIntervalSince1970 * 1000)) } ?? .null,
                "silence_s": JSON((silence * 10).rounded() / 10),
                "error": peer.lastError.map { .string($0) } ?? .null,
                "lines_replicated": JSON(peer.lines), "catching_up": .bool(peer.behind),
                "alerts_sent_here": .bool(sends(origin: Self.name(peer), now: now)),
            ]
        }
    }

    /// The agent's own series about its peers, in Prometheus text format.
    func prometheus(now: Date = Date()) -> String {
        var text = PrometheusText()
        let snapshot = peers.withLock { $0 }
        for (i, peer) in snapshot.enumerated() {
            let labels = ["peer": Self.name(peer), "url": peer.url]
            let up = Self.answering(peer) ? 1.0 : 0.0
            let silence = silence(peer, now: now)
            if i == 0 {
                text.add("metricsagent_peer_up", .gauge, "1 while the peer answers replication requests.", up, labels: labels)
                text.add("metricsagent_peer_silence_seconds", .gauge, "Seconds since the peer last answered.", silence, labels: labels)
                text.add("metricsagent_peer_lines_total", .counter, "Lines stored from the peer.", Double(peer.lines), labels: labels)
            } else {
                text.sample("metricsagent_peer_up", up, labels: labels)
                text.sample("metricsagent_peer_silence_seconds", silence, labels: labels)
                text.sample("metricsagent_peer_lines_total", Double(peer.lines), labels: labels)
            }
        }
        return text.output
    }
}

/// The fleet's answer to "does this agent send this alert?", from the instances' origins.
struct FleetOwnership: NotificationOwnership {
    let fleet: Fleet

    func sender(in db: Database) throws -> @Sendable ([String: String]) -> Bool {
        let now = Date()
        var origins: [String: String?] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT instance_id, origin FROM instances") { origins[row[0]] = .some(row[1]) }
        // Decided once per origin: the same answer for every alert of an evaluation.
        var decided: [String?: Bool] = [:]
        for origin in Set(origins.values) { decided[origin] = fleet.sends(origin: origin, now: now) }
        for peer in fleet.unreachable(now: now) { decided[peer.agentID] = fleet.sends(origin: peer.agentID, now: now) }
        let answers = decided, instanceOrigins = origins
        return { labels in
            // AgentUnreachable is about the agent itself; every other alert about an instance.
            let origin: String?? = labels["agent_id"].map { .some($0) } ?? labels["instance_id"].flatMap { instanceOrigins[$0] }
            guard let origin else { return true }
            return answers[origin] ?? true
        }
    }
}
