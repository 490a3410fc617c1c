import Alerting
import Foundation
import GRDB
import Logging
@testable import MetricsAgent
import Synchronization
import Testing
import TestSupport

/// An ownership whose answer the test sets: "this agent sends" or "another one does".
final class SwitchableOwnership: NotificationOwnership {
    let mine = Mutex(true)
    func sender(in db: Database) throws -> @Sendable ([String: String]) -> Bool {
        let answer = mine.withLock { $0 }
        return { _ in answer }
    }
}

@Suite struct OwnershipTests {
    static let cpuRule = """
      - name: HighCPU
        metric: cpu_percent
        window: 1m
        comparison: ">"
        threshold: 80
    """

    @Test func anAlertOfAnotherAgentIsNotSentButOneSentAsFiringIsSentAsResolved() throws {
        let h = try AlertHarness(rulesYAML(Self.cpuRule))
        let ownership = SwitchableOwnership()
        var logger = Logger(label: "ownership-test")
        logger.logLevel = .warning
        let engine = AlertEngine(config: h.config, pool: h.store.pool, source: StoreMetricSource(store: h.store), logger: logger, ownership: ownership)
        ownership.mine.withLock { $0 = false }
        try h.minutes(0..<3) { _ in ["cpu_percent": 95] }
        try engine.evaluate(at: AlertHarness.at(150))
        #expect(try h.states() == ["HighCPU/game-a": "firing"], "every agent evaluates every alert")
        #expect(try h.outbox().isEmpty, "the origin agent sends it, not this one")
        // The origin became unreachable: this agent takes over and announces it.
        ownership.mine.withLock { $0 = true }
        try engine.evaluate(at: AlertHarness.at(160))
        #expect(try h.outbox().map(\.status) == ["firing"])
        // The origin is back before the alert resolves: the agent that said "firing" says "resolved".
        ownership.mine.withLock { $0 = false }
        try h.minutes(3..<5) { _ in ["cpu_percent": 10] }
        try engine.evaluate(at: AlertHarness.at(290))
        try engine.evaluate(at: AlertHarness.at(400))
        #expect(try h.outbox().map(\.status) == ["firing", "resolved"])
    }

    @Test func theAgentUnreachableRuleFiresForASilentPeerAndResolvesWhenItAnswers() throws {
        final class Peers: MetricSource {
            let silence = Mutex<Double>(10)
            func instances() throws -> [(id: String, lastSeen: Int64)] { [] }
            func values(metric: String, instance: String, from: Int64, to: Int64, in db: Database) throws -> [(Int64, Double)] { [] }
            func peers() -> [(agentID: String, unreachableFor: TimeInterval)] { [("host-b", silence.withLock { $0 })] }
        }
        let h = try AlertHarness(rulesYAML("  []"))
        var config = h.config
        config.rules.append(.agentUnreachable(after: 60, receivers: ["main"]))
        let source = Peers()
        let engine = AlertEngine(config: config, pool: h.store.pool, source: source, logger: Logger(label: "t"))
        try engine.evaluate(at: AlertHarness.at(10))
        #expect(try h.outbox().isEmpty)
        source.silence.withLock { $0 = 61 }
        try engine.evaluate(at: AlertHarness.at(71))
        let fired = try h.outbox()
        #expect(fired.map(\.status) == ["firing"])
        let labels = fired.first?.body["alerts"]?.array?.first?["labels"]
        #expect(labels?["agent_id"] == "host-b" && labels?["severity"] == "critical" && labels?["alertname"] == "AgentUnreachable")
        source.silence.withLock { $0 = 0 }
        try engine.evaluate(at: AlertHarness.at(140))
        #expect(try h.outbox().map(\.status) == ["firing", "resolved"])
    }

    @Test func theOriginSendsWhileLiveThenTheLowestLiveAgentTakesOver() {
        let t0 = Date(timeIntervalSince1970: 1_900_000_000)
        func fleet(_ id: String, startedAt: Date = t0) -> Fleet {
            var config = FleetConfig()
            config.agentID = id
            config.peers = ["http://a", "http://b", "http://c"].filter { $0 != "http://\(id)" }
            config.peerTimeout = 60
            return Fleet(config: config, startedAt: startedAt)
        }
        let b = fleet("b"), c = fleet("c")
        for (f, peers) in [(b, ["a", "c"]), (c, ["a", "b"])] {
            for peer in peers { _ = f.succeeded(url: "http://\(peer)", agentID: peer, lines: 0, behind: false, at: t0) }
        }
        // Everyone answers: each origin sends its own.
        #expect(b.sends(origin: nil, now: t0 + 10) && b.sends(origin: "b", now: t0 + 10))
        #expect(!b.sends(origin: "a", now: t0 + 10) && !c.sends(origin: "a", now: t0 + 10))
        // a goes silent; b and c still hear each other. Before the timeout nobody takes over; after it, b (lowest live) does.
        for (f, peer) in [(b, "c"), (c, "b")] { _ = f.succeeded(url: "http://\(peer)", agentID: peer, lines: 0, behind: false, at: t0 + 65) }
        #expect(!b.sends(origin: "a", now: t0 + 59))
        #expect(b.sends(origin: "a", now: t0 + 66) && !c.sends(origin: "a", now: t0 + 66))
        // An origin nobody knows (a decommissioned agent): the lowest live agent.
        #expect(b.sends(origin: "zz", now: t0 + 66) && !c.sends(origin: "zz", now: t0 + 66))
        // c alone (a partition): it sends for everyone it cannot hear.
        #expect(c.sends(origin: "a", now: t0 + 200) && c.sends(origin: "b", now: t0 + 200))
        #expect(c.unreachable(now: t0 + 200).map(\.unreachableFor) == [200, 135])
        // A restarted agent counts silence from its own start: no takeover in its first minute.
        let restarted = fleet("b", startedAt: t0 + 1000)
        #expect(!restarted.sends(origin: "a", now: t0 + 1030) && restarted.sends(origin: "a", now: t0 + 1061))
    }
}
