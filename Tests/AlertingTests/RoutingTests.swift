import Alerting
import Foundation
import GRDB
import JSONCore
@testable import MetricsAgent
import Testing
import TestSupport

/// Alertmanager's routing tree, inhibition and time intervals, through the real engine and outbox.
@Suite struct RoutingTests {
    static let receivers = """
        receivers:
          - {name: chat, type: webhook, url: "http://127.0.0.1:9/chat"}
          - {name: pager, type: webhook, url: "http://127.0.0.1:9/pager"}
          - {name: info, type: webhook, url: "http://127.0.0.1:9/info"}
        """

    static let rules = """
        rules:
          - {name: HighCPU, metric: cpu_percent, window: 1m, comparison: ">", threshold: 80, severity: critical}
          - {name: Busy, metric: players, statistic: max, window: 1m, comparison: ">=", threshold: 1, severity: info}
        """

    static let tree = """
        global:
          group_wait: 0s
          external_url: http://agent.example
        \(receivers)
        route:
          receiver: chat
          routes:
            - matchers: ['severity="critical"']
              receiver: pager
              continue: true
              group_by: ['...']
              group_wait: 30s
            - matchers: ['severity=~"info|debug"', 'instance_id!="game-x"']
              receiver: info
              group_by: [alertname]
            - matchers: ['alertname="HighCPU"', 'instance_id=~"game-[ab]"']
              receiver: chat
        \(rules)
        """

    func queued(_ h: AlertHarness) throws -> [String] {
        try h.store.pool.read { try String.fetchAll($0, sql: "SELECT group_key FROM outbox ORDER BY id") }
    }

    @Test func routesMatchContinueAndCarryTheirOwnGroupingAndTiming() throws {
        let h = try AlertHarness(Self.tree)
        try h.minutes(0..<3, instance: "game-a") { _ in ["cpu_percent": 95, "players": 0] }
        try h.minutes(0..<3, instance: "game-c") { _ in ["cpu_percent": 95, "players": 4] }
        try h.evaluate(at: 90)
        // Busy (info) goes to `info` grouped by alertname only; HighCPU on game-a reaches chat through the third
        // route (the critical route continues); HighCPU on game-c matches only the critical route.
        #expect(try Set(queued(h)) == ["routes[1]/info:{alertname=\"Busy\"}", "routes[2]/chat:{alertname=\"HighCPU\",instance_id=\"game-a\"}"])
        try h.evaluate(at: 110)
        #expect(try queued(h).count == 2, "the critical route waits its own group_wait of 30 s")
        try h.evaluate(at: 121)
        let pager = try queued(h).filter { $0.hasPrefix("routes[0]/pager:") }.sorted()
        #expect(pager == [
            "routes[0]/pager:{alertname=\"HighCPU\",instance_id=\"game-a\",severity=\"critical\"}",
            "routes[0]/pager:{alertname=\"HighCPU\",instance_id=\"game-c\",severity=\"critical\"}",
        ], "group_by ['...']: one group per alert")
        #expect(try !queued(h).contains { $0.hasPrefix("chat:") }, "matched by a child route, so not by the root")
    }

    @Test func aRuleThatNamesItsReceiversBypassesTheTree() throws {
        let h = try AlertHarness(Self.tree.replacingOccurrences(of: "severity: info}", with: "severity: info, receivers: [pager]}"))
        try h.minutes(0..<3, instance: "game-a") { _ in ["players": 4] }
        try h.evaluate(at: 90)
        #expect(try queued(h) == ["pager:{alertname=\"Busy\",instance_id=\"game-a\"}"])
    }

    @Test func routesCommandSaysWhereAnAlertGoes() async throws {
        let file = TemporaryDirectory.make("routes").appendingPathComponent("alerts.yaml")
        try Self.tree.write(to: file, atomically: true, encoding: .utf8)
        func run(_ labels: String) async throws -> String {
            let child = ChildProcess("metrics-agent", ["alerts", "routes", "--rules", file.path, "--labels", labels])
            try child.start()
            #expect(await child.wait() == 0)
            return child.log
        }
        let critical = try await run("alertname=HighCPU,instance_id=game-b,severity=critical")
        let lines = critical.split(separator: "\n").map { String($0.split(separator: "\t")[0]) }
        #expect(lines == ["pager", "chat"], "\(critical)")
        #expect(critical.contains("route routes[0]") && critical.contains("group_wait 30s"))
        let other = try await run("alertname=Other,instance_id=game-x,severity=warning")
        #expect(other.hasPrefix("chat\t(the root route"), "\(other)")
        let bad = ChildProcess("metrics-agent", ["alerts", "routes", "--rules", file.path, "--labels", "nonsense"])
        try bad.start()
        #expect(await bad.wait() != 0)
    }

    @Test func routeConfigurationErrorsNameTheirPlace() {
        func problems(_ yaml: String) -> [String] { AlertConfig.check(yaml).1.map(\.description) }
        #expect(problems("\(Self.receivers)\nroute:\n  receiver: nobody\n") == ["route.receiver: no receiver named 'nobody'"])
        #expect(problems("\(Self.receivers)\nroute:\n  routes:\n    - matchers: ['sev=~\"(\"']\n").first?.contains("routes[0].matchers") == true)
        #expect(problems("\(Self.receivers)\nroute:\n  routes:\n    - mute_time_intervals: [nights]\n") == ["route.routes[0]: no time interval named 'nights' (define it under time_intervals)"])
        #expect(problems("global: {receivers: [chat]}\n\(Self.receivers)\nroute:\n  receiver: chat\n").first?.hasPrefix("global.receivers") == true)
        #expect(problems("inhibit_rules:\n  - target_matchers: ['a=b']\n").first?.contains("inhibit_rules[0].source_matchers") == true)
        #expect(problems("time_intervals:\n  - name: x\n    time_intervals:\n      - location: Mars/Olympus\n").first?.contains("location") == true)
        #expect(problems("time_intervals:\n  - name: x\n    time_intervals:\n      - times: [{start_time: '18:00', end_time: '09:00'}]\n").first?.contains("end_time") == true)
    }

    /// A dead server: GameServerDown, and HighMemory that fires only because its data stopped (missing data
    /// breaching). With the inhibition, chat hears one message; without it, two.
    @Test(arguments: [true, false])
    func aDownServerSendsOneMessageNotOnePerAlert(inhibit: Bool) throws {
        let h = try AlertHarness("""
            global:
              group_wait: 0s
              external_url: http://agent.example
            \(Self.receivers)
            route:
              receiver: chat
            rules:
              - {name: GameServerDown, type: absent, after: 3m, severity: critical}
              - {name: HighMemory, metric: memory_percent, window: 1m, comparison: ">", threshold: 85, for: 3m, missing_data: breaching}
            \(inhibit ? "inhibit_rules:\n  - source_matchers: ['alertname=\"GameServerDown\"']\n    target_matchers: ['alertname!=\"GameServerDown\"']\n    equal: [instance_id]" : "")
            """)
        try h.minutes(0..<3, instance: "game-a") { _ in ["memory_percent": 50] }
        try h.minutes(0..<10, instance: "game-b") { _ in ["memory_percent": 50] }
        for second in stride(from: 30.0, through: 480, by: 30) { try h.evaluate(at: second) }
        #expect(try h.states()["HighMemory/game-a"] == "firing" && h.states()["GameServerDown/game-a"] == "firing")
        #expect(try queued(h).map { $0.components(separatedBy: ",")[0] } == (inhibit
            ? ["chat:{alertname=\"GameServerDown\""]
            : ["chat:{alertname=\"GameServerDown\"", "chat:{alertname=\"HighMemory\""]))
    }

    @Test func timeIntervalsReadWeekdaysTimesDaysMonthsAndZones() throws {
        let config = try AlertConfig.parse("""
            time_intervals:
              - name: office
                time_intervals:
                  - weekdays: ['monday:friday']
                    times: [{start_time: "09:00", end_time: "18:00"}]
                    location: Europe/London
              - name: month-end
                time_intervals:
                  - days_of_month: ['-2:-1']
                    months: ['january', 'march:april']
                    years: ['2030']
            """)
        let office = config.timeIntervals[0], monthEnd = config.timeIntervals[1]
        func at(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
        #expect(office.contains(at("2030-01-01T09:00:00Z")))  // a Tuesday; London is on UTC in winter
        #expect(!office.contains(at("2030-01-01T08:59:00Z")))
        #expect(!office.contains(at("2030-01-01T18:00:00Z")), "the end is exclusive")
        #expect(!office.contains(at("2030-01-05T12:00:00Z")), "a Saturday")
        #expect(office.contains(at("2030-07-01T08:30:00Z")), "09:30 in London in summer (BST)")
        #expect(!office.contains(at("2030-07-01T17:30:00Z")), "18:30 BST")
        #expect(monthEnd.contains(at("2030-01-31T12:00:00Z")) && monthEnd.contains(at("2030-01-30T00:00:00Z")))
        #expect(!monthEnd.contains(at("2030-01-29T23:59:00Z")))
        #expect(monthEnd.contains(at("2030-04-29T10:00:00Z")), "April has 30 days")
        #expect(!monthEnd.contains(at("2030-02-27T10:00:00Z")) && !monthEnd.contains(at("2031-01-31T10:00:00Z")))
    }

    /// t0 is Tuesday 2030-01-01 00:00 UTC: an active interval from 09:00 holds the notice until then, a mute
    /// interval until it ends; neither drops it.
    @Test(arguments: ["active_time_intervals: [office]", "mute_time_intervals: [night]"])
    func notificationsWaitForTheirIntervalAndAreThenSent(setting: String) throws {
        let h = try AlertHarness("""
            global:
              group_wait: 0s
              external_url: http://agent.example
            \(Self.receivers)
            route:
              receiver: info
              \(setting)
            time_intervals:
              - name: office
                time_intervals: [{weekdays: ['monday:friday'], times: [{start_time: "09:00", end_time: "18:00"}]}]
              - name: night
                time_intervals: [{times: [{start_time: "00:00", end_time: "09:00"}]}]
            \(Self.rules)
            """)
        try h.minutes(0..<600, instance: "game-a") { _ in ["players": 5] }
        try h.evaluate(at: 90)
        #expect(try h.states()["Busy/game-a"] == "firing")
        try h.evaluate(at: 9 * 3600 - 30)
        #expect(try queued(h).isEmpty, "held before 09:00")
        #expect(try h.number("SELECT next_flush_at FROM alert_groups")! > Int64(AlertHarness.at(9 * 3600 - 30).timeIntervalSince1970 * 1000),
                "looked at again later, not in a tight loop")
        try h.evaluate(at: 9 * 3600 + 30)
        #expect(try queued(h) == ["info:{alertname=\"Busy\",instance_id=\"game-a\"}"])
    }
}
