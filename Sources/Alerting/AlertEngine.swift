import Foundation
import GRDB
import JSONCore
import Logging

/// Evaluates the rules and turns state changes into notifications in the
/// outbox. One evaluation is one database transaction: states, history, group
/// state and queued notifications change together, so a restart can neither
/// send a notification twice nor forget one.
public final class AlertEngine: Sendable {
    public let config: AlertConfig
    let pool: DatabasePool
    let source: MetricSource
    let logger: Logger
    /// Who sends which notifications in a fleet of agents; nil: this agent sends every one.
    let ownership: NotificationOwnership?
    /// When this agent started watching (ms): an instance silent since before then is given `after`
    /// from this moment, so a restarted agent does not call a server down before it could write again.
    let watchingSince: Int64?

    public init(config: AlertConfig, pool: DatabasePool, source: MetricSource, logger: Logger,
                ownership: NotificationOwnership? = nil, watchingSince: Date? = nil) {
        self.config = config
        self.pool = pool
        self.source = source
        self.logger = logger
        self.ownership = ownership
        self.watchingSince = watchingSince.map { Int64($0.timeIntervalSince1970 * 1000) }
    }

    public struct Outcome: Sendable, Equatable {
        public var transitions: [String] = []
        public var queued = 0
    }

    /// Evaluates every rule for every instance at `now` and queues what is due.
    @discardableResult
    public func evaluate(at now: Date) throws -> Outcome {
        let nowMS = Int64((now.timeIntervalSince1970 * 1000).rounded())
        let instances = try source.instances().filter { nowMS - $0.lastSeen <= Int64(config.forgetInstancesAfter * 1000) }
        let peers = source.peers()
        return try pool.write { db in
            var outcome = Outcome()
            var resolvedNow: [AlertInstance] = []
            var seen = Set<String>()
            for rule in config.rules {
                if case .notificationsFailing(let after) = rule.kind {
                    // About this agent's own receivers: the oldest notification each has not delivered yet.
                    for receiver in config.receivers {
                        var labels = rule.labels
                        labels["alertname"] = rule.name
                        labels["receiver"] = receiver.name
                        labels["severity"] = rule.severity
                        let fp = fingerprint(labels)
                        seen.insert(fp)
                        let oldest = try Int64.fetchOne(db, sql: "SELECT MIN(created_at) FROM outbox WHERE receiver = ? AND status = 'pending'",
                                                        arguments: [receiver.name])
                        let waiting = oldest.map { Double(nowMS - $0) / 1000 } ?? 0
                        if let change = try transition(rule, fingerprint: fp, labels: labels, instance: receiver.name,
                                                       condition: waiting >= after, value: waiting, now: nowMS, in: db, resolved: &resolvedNow) {
                            outcome.transitions.append("\(rule.name)/\(receiver.name): \(change)")
                        }
                    }
                    continue
                }
                if case .agentUnreachable(let after) = rule.kind {
                    // About the other agents, not the instances.
                    for peer in peers {
                        var labels = rule.labels
                        labels["alertname"] = rule.name
                        labels["agent_id"] = peer.agentID
                        labels["severity"] = rule.severity
                        let fp = fingerprint(labels)
                        seen.insert(fp)
                        if let change = try transition(rule, fingerprint: fp, labels: labels, instance: peer.agentID,
                                                       condition: peer.unreachableFor >= after, value: peer.unreachableFor,
                                                       now: nowMS, in: db, resolved: &resolvedNow) {
                            outcome.transitions.append("\(rule.name)/\(peer.agentID): \(change)")
                        }
                    }
                    continue
                }
                if case .expression(let expression, let statistic) = rule.kind, expression.isFleet {
                    // One alert about the whole fleet.
                    var labels = rule.labels
                    labels["alertname"] = rule.name
                    labels["scope"] = "fleet"
                    labels["severity"] = rule.severity
                    let fp = fingerprint(labels)
                    seen.insert(fp)
                    let points = try fleetPoints(rule, expression, statistic: statistic, instances: instances.map(\.id), now: nowMS, in: db)
                    let (condition, value) = Self.decide(rule, points)
                    if let change = try transition(rule, fingerprint: fp, labels: labels, instance: "fleet", condition: condition,
                                                   value: value, now: nowMS, in: db, resolved: &resolvedNow) {
                        outcome.transitions.append("\(rule.name)/fleet: \(change)")
                    }
                    continue
                }
                for instance in instances {
                    let labels = labels(rule, instance: instance.id)
                    let fp = fingerprint(labels)
                    seen.insert(fp)
                    let (condition, value) = try self.condition(rule, instance: instance, now: nowMS, in: db)
                    if let change = try transition(rule, fingerprint: fp, labels: labels, instance: instance.id, condition: condition,
                                                   value: value, now: nowMS, in: db, resolved: &resolvedNow) {
                        outcome.transitions.append("\(rule.name)/\(instance.id): \(change)")
                    }
                }
            }
            // Alerts whose rule or instance is gone resolve.
            for row in try Row.fetchAll(db, sql: "SELECT fingerprint FROM alert_states WHERE state = 'firing'") where !seen.contains(row[0]) {
                if let alert = try resolve(fingerprint: row[0], now: nowMS, note: "its rule or instance is gone", in: db) { resolvedNow.append(alert) }
            }
            try db.execute(sql: "DELETE FROM alert_states WHERE state = 'pending' AND fingerprint NOT IN (\(seen.isEmpty ? "''" : seen.map { "'\($0)'" }.joined(separator: ",")))")
            let sends = try ownership?.sender(in: db) ?? { _ in true }
            outcome.queued = try Dispatcher(config: config, logger: logger, sends: sends).dispatch(resolvedNow: resolvedNow, now: nowMS, in: db)
            return outcome
        }
    }

    /// When the next group is due to be sent (ms), so the evaluator can wake for it instead of waiting for its tick.
    public func nextFlush() throws -> Int64? {
        try pool.read { try Int64.fetchOne($0, sql: "SELECT MIN(next_flush_at) FROM alert_groups WHERE next_flush_at IS NOT NULL") }
    }

    func labels(_ rule: AlertRule, instance: String) -> [String: String] {
        var labels = rule.labels
        labels["alertname"] = rule.name
        labels["instance_id"] = instance
        labels["severity"] = rule.severity
        return labels
    }

    /// Whether the rule's condition holds now (nil: not enough data, keep the state) and the value shown.
    func condition(_ rule: AlertRule, instance: (id: String, lastSeen: Int64), now: Int64, in db: Database) throws -> (Bool?, Double?) {
        switch rule.kind {
        case .absent(let after):
            let silent = Double(now - instance.lastSeen) / 1000
            let watched = watchingSince.map { Double(now - $0) / 1000 } ?? silent
            return (min(silent, watched) >= after, silent)
        case .agentUnreachable, .notificationsFailing:
            return (nil, nil)  // evaluated per agent or per receiver, not per instance
        case .threshold(let metric, let statistic, let comparison, let threshold):
            let points = try statistics(rule, metric: metric, statistic: statistic, instance: instance.id, now: now, in: db).map { value in
                value.map { (value: $0, breach: comparison.holds($0, threshold)) }
            }
            return Self.decide(rule, points)
        case .expression(let expression, let statistic):
            var byMetric: [String: [Double?]] = [:]
            for metric in expression.metrics {
                byMetric[metric] = try statistics(rule, metric: metric, statistic: statistic, instance: instance.id, now: now, in: db)
            }
            let points = (0..<(rule.datapoints?.n ?? 1)).map { k -> (value: Double, breach: Bool)? in
                guard let left = expression.left.value({ byMetric[$0]?[k] }), let right = expression.right.value({ byMetric[$0]?[k] }) else { return nil }
                return (left, expression.comparison.holds(left, right))
            }
            return Self.decide(rule, points)
        }
    }

    /// A fleet expression's datapoints: every instance's statistics, combined by the aggregations.
    func fleetPoints(_ rule: AlertRule, _ expression: ExpressionCondition, statistic: String, instances: [String], now: Int64,
                     in db: Database) throws -> [(value: Double, breach: Bool)?] {
        var byInstance: [String: [String: [Double?]]] = [:]
        for instance in instances {
            for metric in expression.metrics {
                byInstance[instance, default: [:]][metric] = try statistics(rule, metric: metric, statistic: statistic, instance: instance, now: now, in: db)
            }
        }
        return (0..<(rule.datapoints?.n ?? 1)).map { k in
            let read = { (instance: String, metric: String) in byInstance[instance]?[metric]?[k] }
            guard let left = expression.left.fleetValue(instances: instances, read),
                  let right = expression.right.fleetValue(instances: instances, read) else { return nil }
            return (left, expression.comparison.holds(left, right))
        }
    }

    /// A metric's statistic over each of the rule's windows, newest first (nil: no sample in that window).
    func statistics(_ rule: AlertRule, metric: String, statistic: String, instance: String, now: Int64, in db: Database) throws -> [Double?] {
        let window = Int64(rule.window * 1000)
        let n = rule.datapoints?.n ?? 1
        let values = try source.values(metric: metric, instance: instance, from: now - Int64(n) * window, to: now, in: db)
        // Datapoint k covers [now - (k+1)·window, now - k·window); k = 0 is the newest.
        var buckets = [[Double]](repeating: [], count: n)
        for (ts, v) in values {
            let k = Int((now - 1 - ts) / window)
            if k >= 0 && k < n { buckets[k].append(v) }
        }
        return buckets.map { Self.statistic(statistic, of: $0) }
    }

    /// Whether M of the N datapoints breach, after the missing-data policy; and the newest value, to show.
    static func decide(_ rule: AlertRule, _ points: [(value: Double, breach: Bool)?]) -> (Bool?, Double?) {
        if rule.missingData == .ignore && points.first.map({ $0 == nil }) ?? true { return (nil, nil) }
        let breaches: [Bool?] = points.map { point in
            if let point { return point.breach }
            switch rule.missingData {
            case .breaching: return true
            case .notBreaching: return false
            case .missing, .ignore: return nil
            }
        }
        let present = breaches.compactMap { $0 }
        let shown = points.compactMap { $0?.value }.first
        guard !present.isEmpty else { return (nil, shown) }
        return (present.filter { $0 }.count >= (rule.datapoints?.m ?? 1), shown)
    }

    static func statistic(_ name: String, of values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        switch name {
        case "min": return values.min()
        case "max": return values.max()
        case "sum": return values.reduce(0, +)
        case "count": return Double(values.count)
        case "p95", "p99":
            let sorted = values.sorted()
            let q = name == "p95" ? 0.95 : 0.99
            return sorted[max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1)]
        default: return values.reduce(0, +) / Double(values.count)
        }
    }

    /// inactive → pending → firing → resolved, with `for` and `keep_firing_for`.
    private func transition(_ rule: AlertRule, fingerprint fp: String, labels: [String: String], instance: String, condition: Bool?,
                            value: Double?, now: Int64, in db: Database, resolved: inout [AlertInstance]) throws -> String? {
        let row = try Row.fetchOne(db, sql: "SELECT state, pending_since, last_true, cleared_at FROM alert_states WHERE fingerprint = ?", arguments: [fp])
        let state: String? = row?["state"]
        guard let condition else { return nil }  // not enough data: the state stays
        let annotations = render(rule, labels: labels, value: value)
        let labelsText = JSON.object(labels.mapValues { .string($0) }).text
        let annotationsText = JSON.object(annotations.mapValues { .string($0) }).text
        switch (state, condition) {
        case (nil, true):
            if rule.forDuration == 0 {
                try db.execute(sql: """
                    INSERT INTO alert_states (fingerprint, rule, instance_id, labels, annotations, state, pending_since, firing_since, last_true, value, updated_at)
                    VALUES (?, ?, ?, ?, ?, 'firing', ?, ?, ?, ?, ?)
                    """, arguments: [fp, rule.name, instance, labelsText, annotationsText, now, now, now, value, now])
                try history(fp, rule, instance, "firing", now, value, annotations["summary"] ?? rule.name, db)
                return "firing"
            }
            try db.execute(sql: """
                INSERT INTO alert_states (fingerprint, rule, instance_id, labels, annotations, state, pending_since, last_true, value, updated_at)
                VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)
                """, arguments: [fp, rule.name, instance, labelsText, annotationsText, now, now, value, now])
            try history(fp, rule, instance, "pending", now, value, annotations["summary"] ?? rule.name, db)
            return "pending"
        case ("pending", true):
            let since: Int64 = row!["pending_since"]
            guard Double(now - since) >= rule.forDuration * 1000 else {
                try db.execute(sql: "UPDATE alert_states SET value = ?, last_true = ?, annotations = ?, updated_at = ? WHERE fingerprint = ?",
                               arguments: [value, now, annotationsText, now, fp])
                return nil
            }
            try db.execute(sql: "UPDATE alert_states SET state = 'firing', firing_since = ?, last_true = ?, value = ?, annotations = ?, updated_at = ? WHERE fingerprint = ?",
                           arguments: [now, now, value, annotationsText, now, fp])
            try history(fp, rule, instance, "firing", now, value, annotations["summary"] ?? rule.name, db)
            return "firing"
        case ("pending", false):
            try db.execute(sql: "DELETE FROM alert_states WHERE fingerprint = ?", arguments: [fp])
            try history(fp, rule, instance, "inactive", now, value, "condition cleared before 'for' elapsed", db)
            return "inactive"
        case ("firing", true):
            try db.execute(sql: "UPDATE alert_states SET last_true = ?, cleared_at = NULL, value = ?, annotations = ?, updated_at = ? WHERE fingerprint = ?",
                           arguments: [now, value, annotationsText, now, fp])
            return nil
        case ("firing", false):
            // keep_firing_for: a condition that flaps off for a moment does not resolve the alert. It counts from
            // the first evaluation that found the condition cleared, as Prometheus does, not from the last true one.
            let cleared: Int64 = row!["cleared_at"] ?? now
            if row!["cleared_at"] as Int64? == nil {
                try db.execute(sql: "UPDATE alert_states SET cleared_at = ? WHERE fingerprint = ?", arguments: [now, fp])
            }
            guard Double(now - cleared) >= rule.keepFiringFor * 1000 else { return nil }
            if let alert = try resolve(fingerprint: fp, now: now, note: nil, in: db) { resolved.append(alert) }
            return "resolved"
        default:
            return nil
        }
    }

    private func resolve(fingerprint fp: String, now: Int64, note: String?, in db: Database) throws -> AlertInstance? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM alert_states WHERE fingerprint = ?", arguments: [fp]) else { return nil }
        try db.execute(sql: "DELETE FROM alert_states WHERE fingerprint = ?", arguments: [fp])
        let labels = (try? JSONParser.parse(row["labels"] as String))?.object?.compactMapValues(\.string) ?? [:]
        let annotations = (try? JSONParser.parse(row["annotations"] as String))?.object?.compactMapValues(\.string) ?? [:]
        try db.execute(sql: "INSERT INTO alert_history (fingerprint, rule, instance_id, event, at, value, text) VALUES (?, ?, ?, 'resolved', ?, ?, ?)",
                       arguments: [fp, row["rule"] as String, row["instance_id"] as String, now, row["value"] as Double?,
                                   note ?? "resolved: " + (annotations["summary"] ?? (row["rule"] as String))])
        let starts: Int64 = row["firing_since"] ?? now
        return AlertInstance(fingerprint: fp, status: "resolved", labels: labels, annotations: annotations,
                             startsAt: Date(timeIntervalSince1970: Double(starts) / 1000), endsAt: Date(timeIntervalSince1970: Double(now) / 1000),
                             value: row["value"])
    }

    private func history(_ fp: String, _ rule: AlertRule, _ instance: String, _ event: String, _ at: Int64, _ value: Double?, _ text: String, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO alert_history (fingerprint, rule, instance_id, event, at, value, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       arguments: [fp, rule.name, instance, event, at, value, text])
    }

    func render(_ rule: AlertRule, labels: [String: String], value: Double?) -> [String: String] {
        var values = ["instance": labels["instance_id"] ?? labels["agent_id"] ?? labels["receiver"] ?? "", "rule": rule.name, "value": value.map { JSON.format(($0 * 100).rounded() / 100) } ?? "no data"]
        switch rule.kind {
        case .threshold(let metric, _, let comparison, let threshold):
            values["metric"] = metric
            values["threshold"] = JSON.format(threshold)
            values["comparison"] = comparison.rawValue
        case .expression(let expression, _):
            values["metric"] = expression.left.description
            values["threshold"] = expression.right.description
            values["comparison"] = expression.comparison.rawValue
            if expression.isFleet { values["instance"] = "the fleet" }
        case .absent(let after):
            values["metric"] = "metrics lines"
            values["threshold"] = Durations.format(after)
            values["silence"] = value.map { Durations.format($0) } ?? ""
        case .notificationsFailing(let after):
            values["metric"] = "deliveries to the receiver"
            values["threshold"] = Durations.format(after)
            values["silence"] = value.map { Durations.format($0) } ?? ""
        case .agentUnreachable(let after):
            values["metric"] = "answers from the agent"
            values["threshold"] = Durations.format(after)
            values["silence"] = value.map { Durations.format($0) } ?? ""
        }
        var annotations = rule.annotations.mapValues { Template.render($0, values: values, labels: labels) }
        if annotations["summary"] == nil {
            switch rule.kind {
            case .threshold(let metric, let statistic, let comparison, let threshold):
                annotations["summary"] = "\(rule.name) on \(values["instance"]!): \(statistic) \(metric) \(values["value"]!) \(comparison.rawValue) \(JSON.format(threshold))"
            case .expression(let expression, let statistic):
                annotations["summary"] = "\(rule.name) on \(values["instance"]!): \(expression.left) (\(statistic) over \(Durations.format(rule.window))) is \(values["value"]!), \(expression.comparison.rawValue) \(expression.right)"
            case .absent:
                annotations["summary"] = "\(rule.name): no metrics from \(values["instance"]!) for \(values["silence"]!)"
            case .notificationsFailing:
                annotations["summary"] = "\(rule.name): receiver \(values["instance"]!) has not delivered for \(values["silence"]!)"
                annotations["description"] = annotations["description"]
                    ?? "Its notifications wait in the agent's outbox and are retried; see /api/alerts (receivers) and the agent's log."
            case .agentUnreachable:
                annotations["summary"] = "\(rule.name): agent \(values["instance"]!) has not answered for \(values["silence"]!)"
                annotations["description"] = annotations["description"]
                    ?? "A surviving agent now sends the alerts about the instances that report to \(values["instance"]!)."
            }
        }
        return annotations
    }
}
