import Alerting
import Foundation
import JSONCore
@testable import MetricsAgent
import Testing
import TestSupport

/// `expr:` rules over ratios and the fleet, and `alerts test-rules` with the shipped rules' own tests.
@Suite struct ExpressionTests {
    @Test func badExpressionsSayWhereAndWhy() {
        func problem(_ expr: String) -> String {
            AlertConfig.check("rules:\n  - name: R\n    expr: '\(expr)'\n").1.map(\.description).joined(separator: "; ")
        }
        #expect(problem("errors / > 1") == "rules[0].expr: at column 10: unexpected '>'")
        #expect(problem("errors / messages_in") == "rules[0].expr: at column 21: expected a comparison (> >= < <= == !=)")
        #expect(problem("error_count > 1").hasPrefix("rules[0].expr: unknown metric 'error_count'; known: cpu_percent"))
        #expect(problem("sum(players) + cpu_percent > 1").contains("must put every metric inside"))
        #expect(problem("median(players) > 1") == "rules[0].expr: at column 1: 'median' is not an aggregation (sum, avg, min, max, count)")
        #expect(problem("sum(sum(players)) > 1").contains("aggregations do not nest"))
        #expect(problem("(players > 1").contains("expected ')'"))
        #expect(problem("players > 1 2").contains("unexpected '2'"))
        #expect(problem("errors / messages_in * 100 > 1").isEmpty)
    }

    @Test func ratiosAndFleetSumsFireThroughTheEngine() throws {
        let h = try AlertHarness(rulesYAML("""
              - name: ErrorRate
                expr: errors / messages_in * 100 > 1
                statistic: sum
                window: 2m
              - name: FleetPlayers
                expr: sum(players) > 80
                statistic: max
                window: 1m
              - name: NoDivisionByZero
                expr: errors / messages_in > -1
                window: 1m
            """))
        // game-a: 3 errors in 200 messages over two minutes (1.5 %); game-b: none. Players 50 + 40 = 90.
        try h.minutes(0..<2, instance: "game-a") { _ in ["errors": 1.5, "messages_in": 100, "players": 50] }
        try h.minutes(0..<2, instance: "game-b") { _ in ["errors": 0, "messages_in": 0, "players": 40] }
        try h.evaluate(at: 121)
        let states = try h.states()
        #expect(states["ErrorRate/game-a"] == "firing" && states["ErrorRate/game-b"] == nil, "\(states)")
        #expect(states["FleetPlayers/fleet"] == "firing")
        #expect(states["NoDivisionByZero/game-b"] == nil, "0 / 0 is no data, not a breach")
        let fleet = try #require(try h.outbox().first { $0.summary.contains("FleetPlayers") })
        let alert = fleet.body["alerts"]?.array?.first
        #expect(alert?["labels"] == ["alertname": "FleetPlayers", "scope": "fleet", "severity": "warning"])
        #expect(alert?["annotations"]?["summary"]?.string == "FleetPlayers on the fleet: sum(players) (max over 60 s) is 90, > 80")
        let rate = try #require(try h.outbox().first { $0.summary.contains("ErrorRate") })
        #expect(rate.body["alerts"]?.array?.first?["annotations"]?["summary"]?.string?.contains("is 1.5, > 1") == true)
    }

    @Test func seriesNotationExpandsAsPromtoolDoes() throws {
        #expect(try RuleTestFile.expand("1 2 3", path: "") == [1, 2, 3])
        #expect(try RuleTestFile.expand("0+10x3", path: "") == [0, 10, 20, 30])
        #expect(try RuleTestFile.expand("5-1x2 _ 7x1 _x1", path: "") == [5, 4, 3, nil, 7, 7, nil, nil])
        #expect(try RuleTestFile.expand("-2+1x2", path: "") == [-2, -1, 0])
        #expect(throws: ConfigProblem.self) { try RuleTestFile.expand("1+x", path: "") }
    }

    @Test func theShippedRulesPassTheirTestsAndABrokenExpectationPrintsADiff() async throws {
        let repository = AgentProcess.dashboards.deletingLastPathComponent()
        let shipped = ChildProcess("metrics-agent", ["alerts", "test-rules", repository.appendingPathComponent("config/alerts.test.yaml").path])
        try shipped.start()
        #expect(await shipped.wait(timeout: .seconds(120)) == 0, "\(shipped.log)")
        #expect(shipped.log.contains("SUCCESS"))

        let dir = TemporaryDirectory.make("test-rules")
        try FileManager.default.copyItem(at: repository.appendingPathComponent("config/alerts.yaml"), to: dir.appendingPathComponent("alerts.yaml"))
        try """
            rule_files: [alerts.yaml]
            tests:
              - name: wrong on purpose
                input_series:
                  - series: 'cpu_percent{instance_id="game-1"}'
                    values: '90x10'
                alert_rule_test:
                  - eval_time: 2m
                    alertname: HighCPU
                    exp_alerts:
                      - exp_labels: {instance_id: game-1, severity: critical}
            """.write(to: dir.appendingPathComponent("broken.test.yaml"), atomically: true, encoding: .utf8)
        let broken = ChildProcess("metrics-agent", ["alerts", "test-rules", dir.appendingPathComponent("broken.test.yaml").path])
        try broken.start()
        #expect(await broken.wait(timeout: .seconds(60)) == 1)
        #expect(broken.log.contains("FAILED: test \"wrong on purpose\": alertname HighCPU, eval_time 2m"), "\(broken.log)")
        #expect(broken.log.contains("expected:\n      {instance_id=\"game-1\", severity=\"critical\"}\n    got:\n      (no alerts)"), "\(broken.log)")
    }
}
