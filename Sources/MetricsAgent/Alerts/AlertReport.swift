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
        /// The receivers told it is firing.
        let notified: [String]
    }

    func lines() throws -> [Line] {
        try store.pool.read { db in
            var told: [String: [String]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT receiver, notified FROM alert_groups ORDER BY receiver") {
                for fingerprint in (try? JSONParser.parse(row[1] as String))?.array?.compactMap(\.string) ?? [] {
                    told[fingerprint, default: []].append(row[0])
                }
            }
            return try Row.fetchAll(db, sql: "SELECT rule, instance_id, state, COALESCE(firing_since, pending_since), value, annotations, fingerprint FROM alert_states ORDER BY rule, instance_id")
                .map { row in
                    let annotations = (try? JSONParser.parse(row[5] as String))?["summary"]?.string ?? ""
                    return Line(rule: row[0], instance: row[1], state: row[2], since: row[3], value: row[4], summary: annotations,
                                notified: Array(Set(told[row[6] as String] ?? [])).sorted())
                }
        }
    }

    /// Each receiver's deliveries, from the outbox.
    struct ReceiverHealth {
        let name: String
        let sent: Int
        let failed: Int
        /// Notifications waiting after a failed attempt.
        let retrying: Int
        let pending: Int
        /// Age of the oldest notification not delivered yet (s); 0 when none waits.
        let oldestPendingSeconds: Double
        let lastDelivered: Int64?
        let lastError: String?
    }

    func receivers(now: Date = Date()) throws -> [ReceiverHealth] {
        let nowMS = Int64(now.timeIntervalSince1970 * 1000)
        let names = config?.receivers.map(\.name) ?? []
        let rows = try store.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT receiver, SUM(status = 'delivered'), SUM(status = 'failed'), SUM(status = 'pending' AND attempts > 0),
                       SUM(status = 'pending'), MIN(CASE WHEN status = 'pending' THEN created_at END), MAX(delivered_at),
                       (SELECT last_error FROM outbox o WHERE o.receiver = outbox.receiver AND o.last_error IS NOT NULL ORDER BY id DESC LIMIT 1)
                FROM outbox GROUP BY receiver
                """)
        }
        var byName: [String: Row] = [:]
        for row in rows { byName[row[0]] = row }
        return Set(names + byName.keys).sorted().map { name in
            let row = byName[name]
            return ReceiverHealth(name: name, sent: row?[1] ?? 0, failed: row?[2] ?? 0, retrying: row?[3] ?? 0, pending: row?[4] ?? 0,
                                  oldestPendingSeconds: (row?[5] as Int64?).map { Double(nowMS - $0) / 1000 } ?? 0,
                                  lastDelivered: row?[6], lastError: row?[7])
        }
    }

    func json() throws -> JSON {
        let active = try lines()
        let rules = config?.rules ?? []
        let receivers = try receivers().map { r -> JSON in
            ["name": .string(r.name), "sent": JSON(r.sent), "failed": JSON(r.failed), "retrying": JSON(r.retrying), "pending": JSON(r.pending),
             "oldest_pending_s": JSON((r.oldestPendingSeconds * 10).rounded() / 10),
             "last_delivered": r.lastDelivered.map { JSON(Int($0)) } ?? .null, "last_error": r.lastError.map { .string($0) } ?? .null]
        }
        return ["receivers": .array(receivers), "rules": .array(rules.map { rule in
            let alerts = active.filter { $0.rule == rule.name }
            let description = Self.condition(rule)
            return [
                "name": .string(rule.name), "severity": .string(rule.severity), "condition": .string(description),
                "state": .string(alerts.contains { $0.state == "firing" } ? "firing" : alerts.isEmpty ? "inactive" : "pending"),
                "receivers": JSON(rule.receivers),
                "alerts": .array(alerts.map { a in
                    ["instance_id": .string(a.instance), "state": .string(a.state), "since": JSON(Int(a.since)),
                     "value": a.value.map { JSON($0) } ?? .null, "summary": .string(a.summary), "notified": JSON(a.notified)]
                }),
            ]
        })]
    }

    /// A rule's condition in words.
    public static func condition(_ rule: AlertRule) -> String {
        switch rule.kind {
        case .threshold, .expression:
            var text: String
            if case .threshold(let metric, let statistic, let comparison, let threshold) = rule.kind {
                text = "\(statistic)(\(metric)) over \(Durations.format(rule.window)) \(comparison.rawValue) \(JSON.format(threshold))"
            } else if case .expression(let e, let statistic) = rule.kind {
                text = "\(e.isFleet ? "fleet: " : "")\(e.text) (each metric the \(statistic) over \(Durations.format(rule.window)))"
            } else { text = "" }
            if let dp = rule.datapoints { text += ", \(dp.m) of \(dp.n) datapoints" }
            if rule.forDuration > 0 { text += ", for \(Durations.format(rule.forDuration))" }
            if rule.keepFiringFor > 0 { text += ", keep firing \(Durations.format(rule.keepFiringFor))" }
            return text
        case .absent(let after):
            return "no metrics line for \(Durations.format(after))"
        case .agentUnreachable(let after):
            return after > 0 ? "another agent of the fleet unreachable for \(Durations.format(after))" : "another agent of the fleet unreachable for --peer-timeout"
        case .notificationsFailing(let after):
            return "a receiver has not delivered for \(Durations.format(after)) (told to the others)"
        }
    }

    /// `alerts check`: what a rules file holds, as the agent would run it.
    public static func summary(_ config: AlertConfig) -> String {
        var out = "global: evaluation_interval \(Durations.format(config.evaluationInterval)), external_url \(config.externalURL)\n"
        out += "receivers (\(config.receivers.count)): " + (config.receivers.isEmpty ? "none" : config.receivers.map {
            "\($0.name) (\($0.kind.rawValue)\($0.secret != nil ? ", signed" : "")\($0.titleTemplate != nil || $0.bodyTemplate != nil ? ", templated" : ""), timeout \(Durations.format($0.timeout)))"
        }.joined(separator: ", ")) + "\n"
        if !config.heartbeats.isEmpty {
            out += "heartbeats (\(config.heartbeats.count)): " + config.heartbeats.map {
                "\($0.name) (\($0.method.rawValue) every \(Durations.format($0.interval)), max silence \(Durations.format($0.maxSilence)))"
            }.joined(separator: ", ") + "\n"
        }
        out += "routes:\n" + routeLines(config.route, depth: 1)
        for rule in config.inhibitRules {
            out += "inhibit: while \(rule.sourceMatchers.map(\.description).joined(separator: ",")) fires, "
                + "\(rule.targetMatchers.map(\.description).joined(separator: ",")) is held"
                + (rule.equal.isEmpty ? "" : " when \(rule.equal.joined(separator: ",")) are equal") + "\n"
        }
        if !config.timeIntervals.isEmpty { out += "time intervals: \(config.timeIntervals.map(\.name).joined(separator: ", "))\n" }
        out += "rules (\(config.rules.count)):\n"
        for rule in config.rules {
            let to = rule.name == "NotificationsFailing" && rule.receivers.isEmpty ? "the other receivers"
                : rule.receivers.isEmpty ? "routed" : rule.receivers.joined(separator: ", ")
            out += "  \(rule.name) [\(rule.severity)]: \(condition(rule)) -> \(to)\n"
        }
        return out
    }

    static func routeLines(_ route: Route, depth: Int) -> String {
        let indent = String(repeating: "  ", count: depth)
        let name = route.path.isEmpty ? "root" : route.path
        let matchers = route.matchers.isEmpty ? "" : " {\(route.matchers.map(\.description).joined(separator: ", "))}"
        var out = "\(indent)\(name)\(matchers) -> \(route.receivers.isEmpty ? "nobody" : route.receivers.joined(separator: ", "))"
            + (route.continues ? " (continue)" : "") + " · \(route.settings)\n"
        for child in route.routes { out += routeLines(child, depth: depth + 1) }
        return out
    }

    /// `alerts routes`: where an alert with these labels goes, one receiver a line.
    public static func routes(_ config: AlertConfig, labels: [String: String], at date: Date = Date()) -> String {
        let destinations = config.destinations(for: labels)
        if destinations.isEmpty { return "nobody: no route names a receiver for these labels\n" }
        var inhibited: [String] = []
        for rule in config.inhibitRules where rule.targetMatchers.allSatisfy({ $0.matches(labels) }) {
            inhibited.append("held while \(rule.sourceMatchers.map(\.description).joined(separator: ",")) fires"
                             + (rule.equal.isEmpty ? "" : " with the same \(rule.equal.joined(separator: ","))"))
        }
        return destinations.map { d in
            let muted = config.isMuted(d.route, at: date).map { " · now \($0)" } ?? ""
            return "\(d.receiver)\t(\(d.via) · \(d.route.settings)\(muted))\n"
        }.joined() + inhibited.map { "note: \($0)\n" }.joined()
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
