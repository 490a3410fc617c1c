import Alerting
import Foundation
import GRDB
import JSONCore
import MetricsSchema

/// Each rule with the state of its alerts, for `alerts list` and `/api/alerts`.
public struct AlertReport {
    let store: Store
    let config: AlertConfig?

    public init(store: Store, config: AlertConfig?) {
        self.store = store
        self.config = config
    }

    struct Line {
        let rule: String
        let instance: String
        let state: String
        let since: Int64
        let value: Double?
        let summary: String
    }

    func lines() throws -> [Line] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT rule, instance_id, state, COALESCE(firing_since, pending_since), value, annotations FROM alert_states ORDER BY rule, instance_id")
                .map { row in
                    let annotations = (try? JSONParser.parse(row[5] as String))?["summary"]?.string ?? ""
                    return Line(rule: row[0], instance: row[1], state: row[2], since: row[3], value: row[4], summary: annotations)
                }
        }
    }

    func json() throws -> JSON {
        let active = try lines()
        let rules = config?.rules ?? []
        return ["rules": .array(rules.map { rule in
            let alerts = active.filter { $0.rule == rule.name }
            var description: String
            switch rule.kind {
            case .threshold(let metric, let statistic, let comparison, let threshold):
                description = "\(statistic)(\(metric)) over \(Durations.format(rule.window)) \(comparison.rawValue) \(JSON.format(threshold))"
                if let dp = rule.datapoints { description += ", \(dp.m) of \(dp.n) datapoints" }
                if rule.forDuration > 0 { description += ", for \(Durations.format(rule.forDuration))" }
            case .absent(let after):
                description = "no metrics line for \(Durations.format(after))"
            case .agentUnreachable(let after):
                description = "another agent of the fleet unreachable for \(Durations.format(after))"
            }
            return [
                "name": .string(rule.name), "severity": .string(rule.severity), "condition": .string(description),
                "state": .string(alerts.contains { $0.state == "firing" } ? "firing" : alerts.isEmpty ? "inactive" : "pending"),
                "receivers": JSON(rule.receivers),
                "alerts": .array(alerts.map { a in
                    ["instance_id": .string(a.instance), "state": .string(a.state), "since": JSON(Int(a.since)),
                     "value": a.value.map { JSON($0) } ?? .null, "summary": .string(a.summary)]
                }),
            ]
        })]
    }

    /// `alerts list`: one line per rule and per active alert.
    public func text() throws -> String {
        guard let config else { return "alerting is off: no rules file\n" }
        let active = try lines()
        var out = ""
        for rule in config.rules {
            let alerts = active.filter { $0.rule == rule.name }
            let state = alerts.contains { $0.state == "firing" } ? "FIRING" : alerts.isEmpty ? "inactive" : "pending"
            out += "\(rule.name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(state.padding(toLength: 9, withPad: " ", startingAt: 0)) \(rule.severity)\n"
            out += describe(alerts)
        }
        // Rules the file does not hold but the running agent evaluates (the fleet's AgentUnreachable).
        let others = Set(active.map(\.rule)).subtracting(config.rules.map(\.name)).sorted()
        for name in others {
            let alerts = active.filter { $0.rule == name }
            let state = alerts.contains { $0.state == "firing" } ? "FIRING" : "pending"
            out += "\(name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(state.padding(toLength: 9, withPad: " ", startingAt: 0)) (built in)\n"
            out += describe(alerts)
        }
        return out
    }

    private func describe(_ alerts: [Line]) -> String {
        var out = ""
        for a in alerts {
            let since = RFC3339.format(Date(timeIntervalSince1970: Double(a.since) / 1000))
            out += "    \(a.instance): \(a.state) since \(since)\(a.value.map { ", value \(JSON.format(($0 * 100).rounded() / 100))" } ?? "") — \(a.summary)\n"
        }
        return out
    }

    static func json(_ s: Silence) -> JSON {
        ["id": .string(s.id), "matchers": JSON(s.matchers.map(\.description)), "starts_at": JSON(Int(s.startsAt)),
         "ends_at": JSON(Int(s.endsAt)), "created_by": .string(s.createdBy), "comment": .string(s.comment)]
    }
}
