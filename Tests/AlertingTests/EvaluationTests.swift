import Alerting
import Foundation
import JSONCore
import Logging
@testable import MetricsAgent
import Testing
import TestSupport

@Suite struct EvaluationTests {
    static let cpuRule = """
      - name: HighCPU
        metric: cpu_percent
        statistic: avg
        window: 1m
        comparison: ">"
        threshold: 80
    """

    @Test func pendingUntilForElapsesThenFiringThenResolved() throws {
        let h = try AlertHarness(rulesYAML(Self.cpuRule + "\n    for: 3m"))
        try h.minutes(0..<10) { _ in ["cpu_percent": 95] }
        try h.evaluate(at: 90)
        #expect(try h.states() == ["HighCPU/game-a": "pending"])
        try h.evaluate(at: 150)
        try h.evaluate(at: 240)
        #expect(try h.states() == ["HighCPU/game-a": "pending"], "3 minutes have not passed since 90 s")
        #expect(try h.outbox().isEmpty)
        try h.evaluate(at: 271)
        #expect(try h.states() == ["HighCPU/game-a": "firing"])
        #expect(try h.outbox().map(\.status) == ["firing"])
        // The CPU drops: resolved, and one resolved notification (after group_interval).
        try h.minutes(10..<12) { _ in ["cpu_percent": 20] }
        try h.evaluate(at: 10 * 60 + 30)
        #expect(try h.states().isEmpty)
        try h.evaluate(at: 10 * 60 + 31)
        #expect(try h.outbox().map(\.status) == ["firing", "resolved"])
        #expect(try h.history("HighCPU") == ["pending", "firing", "resolved"])
    }

    @Test func pendingThatClearsNeverNotifies() throws {
        let h = try AlertHarness(rulesYAML(Self.cpuRule + "\n    for: 5m"))
        try h.minutes(0..<2) { _ in ["cpu_percent": 95] }
        try h.minutes(2..<4) { _ in ["cpu_percent": 10] }
        try h.evaluate(at: 90)
        try h.evaluate(at: 3 * 60 + 30)
        #expect(try h.states().isEmpty)
        #expect(try h.history("HighCPU") == ["pending", "inactive"])
        #expect(try h.outbox().isEmpty)
    }

    @Test func mOfNDatapoints() throws {
        let h = try AlertHarness(rulesYAML(Self.cpuRule + "\n    datapoints: {m: 3, n: 5}"))
        // Minutes 0-4: breach, ok, breach, ok, ok → 2 of 5.
        let pattern = [95.0, 10, 95, 10, 10, 95, 10]
        try h.minutes(0..<7) { ["cpu_percent": pattern[$0]] }
        try h.evaluate(at: 5 * 60)
        #expect(try h.states().isEmpty, "2 of 5 do not fire")
        try h.evaluate(at: 6 * 60)  // minutes 1-5: ok, breach, ok, ok, breach → 2
        #expect(try h.states().isEmpty)
        try h.sample(at: 7 * 60 + 1, ["cpu_percent": 95])
        try h.evaluate(at: 8 * 60)  // minutes 3-7: ok, ok, breach, ok, breach → 2
        #expect(try h.states().isEmpty)
        try h.sample(at: 8 * 60 + 1, ["cpu_percent": 95])
        try h.evaluate(at: 9 * 60)  // minutes 4-8: ok, breach, ok, breach, breach → 3
        #expect(try h.states() == ["HighCPU/game-a": "firing"])
    }

    @Test(arguments: ["missing", "breaching", "notBreaching", "ignore"])
    func missingDataPolicies(policy: String) throws {
        let h = try AlertHarness(rulesYAML(Self.cpuRule + "\n    missing_data: \(policy)"))
        // Firing first, then the data stops (the instance keeps sending other metrics).
        try h.minutes(0..<3) { _ in ["cpu_percent": 95] }
        try h.evaluate(at: 2 * 60 + 30)
        #expect(try h.states() == ["HighCPU/game-a": "firing"])
        try h.minutes(3..<6) { _ in ["players": 5] }
        try h.evaluate(at: 5 * 60 + 30)
        let state = try h.states()["HighCPU/game-a"]
        switch policy {
        case "missing", "ignore", "breaching": #expect(state == "firing", "\(policy) keeps it firing")
        default: #expect(state == nil, "notBreaching resolves it")
        }
        // And from nothing: missing data alone fires only with `breaching`.
        let fresh = try AlertHarness(rulesYAML(Self.cpuRule + "\n    missing_data: \(policy)"))
        try fresh.minutes(0..<3) { _ in ["players": 5] }
        try fresh.evaluate(at: 2 * 60 + 30)
        #expect(try fresh.states()["HighCPU/game-a"] == (policy == "breaching" ? "firing" : nil))
    }

    @Test func keepFiringForAgainstThirtyMinutesOfOscillation() throws {
        let h = try AlertHarness(rulesYAML(Self.cpuRule + "\n    keep_firing_for: 5m"))
        // Above and below the threshold every other minute for 30 minutes, then calm.
        try h.minutes(0..<30) { ["cpu_percent": $0 % 2 == 0 ? 95 : 20] }
        try h.minutes(30..<45) { _ in ["cpu_percent": 20] }
        for second in stride(from: 30, through: 45 * 60, by: 30) { try h.evaluate(at: Double(second)) }
        let sent = try h.outbox().map(\.status)
        #expect(sent == ["firing", "resolved"], "at most one firing and one resolved: \(sent)")
        #expect(try h.history("HighCPU") == ["firing", "resolved"])
    }

    @Test func keepFiringForCountsFromTheFirstEvaluationThatFoundTheConditionCleared() throws {
        let h = try AlertHarness(rulesYAML(Self.cpuRule + "\n    keep_firing_for: 2m"))
        try h.minutes(0..<3) { _ in ["cpu_percent": 95] }
        try h.minutes(3..<10) { _ in ["cpu_percent": 20] }
        // Evaluated once a minute: true at 1, 2 and 3 min; false from 4 min (the first evaluation that sees it clear).
        // Evaluated once a minute: true at 1:30 and 2:30; the evaluation at 3:30 is the first to see it clear.
        for minute in 1...4 { try h.evaluate(at: Double(minute * 60 + 30)) }
        #expect(try h.states() == ["HighCPU/game-a": "firing"], "at 4:30 only one minute has passed since it was seen clear")
        try h.evaluate(at: 5 * 60 + 30)
        #expect(try h.states().isEmpty, "resolved 2 minutes after it was first seen clear")
        #expect(try h.history("HighCPU") == ["firing", "resolved"])
    }

    @Test func aRuleRemovedFromTheFileResolvesWhereItFired() throws {
        let yaml = rulesYAML(extraReceivers: """
              - name: pager
                type: webhook
                url: http://127.0.0.1:9/pager
            """, Self.cpuRule + "\n    receivers: [pager]")
        let h = try AlertHarness(yaml)
        try h.minutes(0..<3) { _ in ["cpu_percent": 95] }
        try h.evaluate(at: 150)
        #expect(try h.outbox().map { "\($0.receiver) \($0.status)" } == ["pager firing"])
        // The rule is taken out of the file (the receiver stays); the agent restarts with the new file.
        let without = try AlertConfig.parse(rulesYAML(extraReceivers: """
              - name: pager
                type: webhook
                url: http://127.0.0.1:9/pager
            """, "  []"))
        let engine = AlertEngine(config: without, pool: h.store.pool, source: StoreMetricSource(store: h.store), logger: Logger(label: "t"))
        try engine.evaluate(at: AlertHarness.at(160))
        try engine.evaluate(at: AlertHarness.at(400))
        #expect(try h.outbox().map { "\($0.receiver) \($0.status)" } == ["pager firing", "pager resolved"], "told where it was told it fired")
    }

    @Test func aReceiverThatStopsDeliveringIsReportedToTheOthers() throws {
        let yaml = rulesYAML(extraReceivers: """
              - name: chat
                type: slack
                url: http://127.0.0.1:9/chat
            """, Self.cpuRule + "\n    receivers: [main]")
        let h = try AlertHarness(yaml)
        #expect(h.config.rules.contains { $0.name == "NotificationsFailing" }, "built in with two receivers")
        try h.minutes(0..<3) { _ in ["cpu_percent": 95] }
        try h.evaluate(at: 150)
        #expect(try h.outbox().map(\.receiver) == ["main"])
        // Nothing is delivered (no delivery runs): 15 minutes later the main receiver is reported to chat, not to itself.
        try h.evaluate(at: 150 + 14 * 60)
        #expect(try h.outbox().count == 1)
        try h.evaluate(at: 150 + 15 * 60 + 1)
        let queued = try h.outbox()
        #expect(queued.count == 2)
        #expect(queued.last?.receiver == "chat" && queued.last?.summary.contains("NotificationsFailing") == true, "\(queued.map(\.summary))")
    }

    @Test func absentRuleForAServerThatStopsWriting() throws {
        let h = try AlertHarness(rulesYAML("""
              - name: GameServerDown
                type: absent
                after: 3m
                severity: critical
            """))
        try h.minutes(0..<5) { _ in ["players": 3] }
        try h.evaluate(at: 5 * 60)
        #expect(try h.states().isEmpty)
        try h.evaluate(at: 7 * 60 + 30)
        #expect(try h.states() == ["GameServerDown/game-a": "firing"])
        let alert = try #require(h.outbox().first?.body["alerts"]?.array?.first)
        #expect(alert["labels"]?["severity"]?.string == "critical")
        #expect(alert["annotations"]?["summary"]?.string?.contains("No metrics from game-a") == true || alert["annotations"]?["summary"]?.string?.contains("no metrics from game-a") == true)
        try h.minutes(8..<9) { _ in ["players": 3] }
        try h.evaluate(at: 8 * 60 + 30)
        try h.evaluate(at: 10 * 60)
        #expect(try h.outbox().map(\.status) == ["firing", "resolved"])
    }

    @Test func groupingWaitsAndBundles() throws {
        let h = try AlertHarness(rulesYAML(groupWait: "30s", groupBy: "[alertname]", Self.cpuRule))
        try h.minutes(0..<5, instance: "game-a") { _ in ["cpu_percent": 95] }
        try h.minutes(0..<5, instance: "game-b") { _ in ["cpu_percent": 90] }
        try h.evaluate(at: 60)
        #expect(try h.outbox().isEmpty, "group_wait holds the first message")
        try h.evaluate(at: 80)
        #expect(try h.outbox().isEmpty)
        try h.evaluate(at: 91)
        let sent = try h.outbox()
        #expect(sent.count == 1)
        #expect(sent[0].body["alerts"]?.array?.count == 2)
        #expect(sent[0].body["groupLabels"] == ["alertname": "HighCPU"])
        #expect(sent[0].body["commonLabels"]?["alertname"]?.string == "HighCPU")
    }

    @Test func repeatIntervalRemindsWhileFiring() throws {
        let h = try AlertHarness(rulesYAML(repeatInterval: "1h", Self.cpuRule))
        try h.minutes(0..<200) { _ in ["cpu_percent": 95] }
        for minute in stride(from: 1, through: 130, by: 1) { try h.evaluate(at: Double(minute * 60 + 30)) }
        #expect(try h.outbox().map(\.status) == ["firing", "firing", "firing"], "at 1 min, 61 min and 121 min")
    }

    @Test func resolvedNeverWithoutAFiringBeforeIt() throws {
        // It fires and clears within group_wait: nobody was told it fired, so nobody hears it resolved.
        let h = try AlertHarness(rulesYAML(groupWait: "2m", Self.cpuRule))
        try h.minutes(0..<1) { _ in ["cpu_percent": 95] }
        try h.minutes(1..<6) { _ in ["cpu_percent": 10] }
        for second in stride(from: 30, through: 6 * 60, by: 30) { try h.evaluate(at: Double(second)) }
        #expect(try h.history("HighCPU") == ["firing", "resolved"])
        #expect(try h.outbox().isEmpty)
    }

    @Test func restartNeitherResendsNorForgets() throws {
        let h = try AlertHarness(rulesYAML(Self.cpuRule + "\n    for: 2m"))
        try h.minutes(0..<20) { _ in ["cpu_percent": 95] }
        try h.evaluate(at: 30)
        #expect(try h.states() == ["HighCPU/game-a": "pending"])
        // Restart while pending: the pending time survives, so it fires 2 minutes after it began, not after the restart.
        var (engine, _) = h.restarted()
        try engine.evaluate(at: AlertHarness.at(151))
        #expect(try h.states() == ["HighCPU/game-a": "firing"])
        #expect(try h.outbox().count == 1)
        // Restart while firing: evaluating again sends nothing new.
        (engine, _) = h.restarted()
        for second in [180.0, 240, 300] { try engine.evaluate(at: AlertHarness.at(second)) }
        #expect(try h.outbox().count == 1)
    }

    @Test func silencesHoldNotificationsUntilTheyEnd() throws {
        let h = try AlertHarness(rulesYAML(Self.cpuRule))
        try h.store.pool.write { db in
            _ = try Silence.create(matchers: [try Silence.Matcher.parse("alertname=HighCPU"), try Silence.Matcher.parse("instance_id=~game-.*")],
                                   duration: 600, createdBy: "test", comment: "maintenance", now: AlertHarness.at(0), in: db)
        }
        try h.minutes(0..<15) { _ in ["cpu_percent": 95] }
        for second in stride(from: 30, through: 9 * 60, by: 60) { try h.evaluate(at: Double(second)) }
        #expect(try h.states() == ["HighCPU/game-a": "firing"])
        #expect(try h.outbox().isEmpty, "silenced")
        try h.evaluate(at: 10 * 60 + 30)
        #expect(try h.outbox().map(\.status) == ["firing"], "the silence ended")
        #expect(throws: ConfigProblem.self) { try Silence.Matcher.parse("no operator") }
        #expect(throws: ConfigProblem.self) { try Silence.Matcher.parse("a=~(") }
    }

    @Test func configErrorsNameWhereTheyAre() {
        func problem(_ yaml: String) -> String {
            do { _ = try AlertConfig.parse(yaml, environment: ["HOOK": "http://127.0.0.1:1/x"]); return "" } catch { return "\(error)" }
        }
        #expect(problem("rules:\n  - name: X\n    metric: cpu\n    comparison: '>'\n    threshold: 1").contains("rules[0].metric: unknown metric 'cpu'"))
        #expect(problem("rules:\n  - name: X\n    metric: cpu_percent\n    comparison: '>'\n    threshold: 1\n    treshold: 2").contains("rules[0].treshold: unknown key"))
        #expect(problem("rules:\n  - name: X\n    metric: cpu_percent\n    comparison: '>>'\n    threshold: 1").contains("rules[0].comparison"))
        #expect(problem("receivers:\n  - name: a\n    type: slack\n    url: ${SLACK}").contains("environment variable SLACK is not set"))
        #expect(problem("receivers:\n  - name: a\n    type: slack\n    url: ${HOOK}\nrules:\n  - name: X\n    type: absent\n    after: 1m\n    receivers: [b]").contains("no receiver named 'b'"))
        #expect(problem("receivers:\n  - name: a\n    type: webhook\n    url: ${HOOK}\n    secret: nope").contains("whsec_"))
        #expect(problem("rules:\n  - name: X\n    type: absent\n    after: 1m\n    for: 1m\n    datapoints: {m: 1, n: 2}").contains("either 'for' or 'datapoints'"))
        #expect(problem(": : :").contains("YAML"))
        #expect(problem(try! String(contentsOf: AgentProcess.dashboards.deletingLastPathComponent().appendingPathComponent("config/alerts.yaml"), encoding: .utf8)) == "",
                "the shipped rules file loads")
    }
}
