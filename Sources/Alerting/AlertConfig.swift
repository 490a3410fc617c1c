import Foundation
import JSONCore
import MetricsSchema
import Yams

/// Why a rules file cannot be used, with where in the file.
public struct ConfigProblem: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ path: String, _ message: String) { description = path.isEmpty ? message : "\(path): \(message)" }
}

public enum Comparison: String, Sendable {
    case greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<=", equal = "==", notEqual = "!="

    func holds(_ value: Double, _ threshold: Double) -> Bool {
        switch self {
        case .greater: return value > threshold
        case .greaterOrEqual: return value >= threshold
        case .less: return value < threshold
        case .lessOrEqual: return value <= threshold
        case .equal: return value == threshold
        case .notEqual: return value != threshold
        }
    }
}

/// CloudWatch's treatments of a datapoint with no samples.
public enum MissingData: String, Sendable {
    /// Left out; with no datapoint at all the state stays as it is.
    case missing
    case breaching
    case notBreaching
    /// The state stays as it is whenever the newest datapoint is missing.
    case ignore
}

public struct AlertRule: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A metric's statistic over each window, compared with a threshold.
        case threshold(metric: String, statistic: String, comparison: Comparison, threshold: Double)
        /// `expr:` over one instance's metrics or, with aggregations, the fleet's; each metric is its `statistic`.
        case expression(ExpressionCondition, statistic: String)
        /// No new metrics line from an instance for `after` (server down).
        case absent(after: TimeInterval)
        /// Another agent of the fleet has not answered for `after` (0: the agent's `--peer-timeout`).
        case agentUnreachable(after: TimeInterval)
        /// A receiver's oldest undelivered notification is older than `after`: sent to the other receivers.
        case notificationsFailing(after: TimeInterval)
    }

    /// Built in when there are two receivers or more (and the file has no rule of type `notifications_failing`).
    public static func notificationsFailing(after: TimeInterval) -> AlertRule {
        AlertRule(name: "NotificationsFailing", kind: .notificationsFailing(after: after), window: 60, forDuration: 0, datapoints: nil,
                  keepFiringFor: 0, missingData: .missing, severity: "critical", labels: [:], annotations: [:], receivers: [])
    }

    /// The fleet's built-in rule, when the rules file has none of type `agent_unreachable`.
    public static func agentUnreachable(after: TimeInterval, receivers: [String]) -> AlertRule {
        AlertRule(name: "AgentUnreachable", kind: .agentUnreachable(after: after), window: 60, forDuration: 0, datapoints: nil,
                  keepFiringFor: 0, missingData: .missing, severity: "critical", labels: [:], annotations: [:], receivers: receivers)
    }

    public var name: String
    public var kind: Kind
    /// Length of one datapoint.
    public var window: TimeInterval
    /// `for`: how long the condition must hold before firing (Prometheus).
    public var forDuration: TimeInterval
    /// M of N datapoints must breach (CloudWatch); nil uses the newest datapoint with `for`.
    public var datapoints: (m: Int, n: Int)?
    public var keepFiringFor: TimeInterval
    public var missingData: MissingData
    public var severity: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var receivers: [String]

    public static func == (a: AlertRule, b: AlertRule) -> Bool {
        a.name == b.name && a.kind == b.kind && a.window == b.window && a.forDuration == b.forDuration
            && a.datapoints?.m == b.datapoints?.m && a.datapoints?.n == b.datapoints?.n && a.keepFiringFor == b.keepFiringFor
            && a.missingData == b.missingData && a.severity == b.severity && a.labels == b.labels
            && a.annotations == b.annotations && a.receivers == b.receivers
    }
}

public struct AlertConfig: Sendable, Equatable {
    public var evaluationInterval: TimeInterval = 15
    public var externalURL = "http://127.0.0.1:5051"
    public var groupBy: [String] = ["alertname", "instance_id"]
    public var groupWait: TimeInterval = 10
    public var groupInterval: TimeInterval = 60
    public var repeatInterval: TimeInterval = 4 * 3600
    /// Retries stop after this long; the notification is then recorded as failed.
    public var maxRetryAge: TimeInterval = 24 * 3600
    public var initialBackoff: TimeInterval = 1
    public var maxBackoff: TimeInterval = 300
    /// Instances not heard from for this long are no longer evaluated (decommissioned).
    public var forgetInstancesAfter: TimeInterval = 7 * 86_400
    public var defaultReceivers: [String] = []
    public var receivers: [ReceiverConfig] = []
    /// Dead man's switches: pinged while the agent is healthy (type `heartbeat`).
    public var heartbeats: [HeartbeatConfig] = []
    public var rules: [AlertRule] = []
    /// The routing tree; without `route:` in the file, a root that sends to `global.receivers` with the global timing.
    public var route = Route(path: "", receivers: [], matchers: [], continues: false, groupBy: ["alertname", "instance_id"],
                             groupWait: 10, groupInterval: 60, repeatInterval: 4 * 3600, muteTimeIntervals: [],
                             activeTimeIntervals: [], routes: [])
    public var inhibitRules: [InhibitRule] = []
    public var timeIntervals: [TimeIntervalSet] = []
    /// Message templates by name (`templates:`), which receivers use for their titles and bodies.
    public var templates: [String: String] = [:]

    public init() {}

    public func receiver(_ name: String) -> ReceiverConfig? { receivers.first { $0.name == name } }

    /// Every receiver name of the file, notification and heartbeat receivers alike.
    var names: Set<String> { Set(receivers.map(\.name) + heartbeats.map(\.name)) }

    func unknownReceiver(_ name: String) -> String {
        heartbeats.contains { $0.name == name }
            ? "'\(name)' is a heartbeat receiver: it is pinged while the agent is healthy and takes no notifications"
            : "no receiver named '\(name)'"
    }

    /// Reads a rules file; `environment` fills `${NAME}` references (webhook URLs and secrets stay out of the file).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AlertConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigProblem("", "cannot read rules file \(path)") }
        return try parse(text, environment: environment)
    }

    /// The rules of one or more files for `alerts test-rules`: nothing is sent, so an unset `${NAME}` stands for a
    /// placeholder instead of stopping the test; receivers, routes and the rest come from the first file.
    public static func loadForTests(paths: [String]) throws -> AlertConfig {
        var merged: AlertConfig?
        for path in paths {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigProblem("", "cannot read rules file \(path)") }
            var environment = ProcessInfo.processInfo.environment
            for match in text.matches(of: /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/) where environment[String(match.1)] == nil {
                environment[String(match.1)] = "http://127.0.0.1:9/unset-\(match.1)"
            }
            let config: AlertConfig
            do { config = try parse(text, environment: environment) } catch { throw ConfigProblem("", "\(path): \(error)") }
            if merged == nil { merged = config } else { merged!.rules += config.rules.filter { rule in !merged!.rules.contains { $0.name == rule.name } } }
        }
        guard let merged else { throw ConfigProblem("", "no rules file") }
        return merged
    }

    public static func parse(_ text: String, environment: [String: String] = [:]) throws -> AlertConfig {
        let (config, problems) = check(text, environment: environment)
        if let first = problems.first { throw first }
        return config
    }

    /// Reads as much of a rules file as it can: every receiver and rule on its own, so one run reports every
    /// mistake (`alerts check`). The configuration is usable only when the list of problems is empty.
    public static func check(_ text: String, environment: [String: String] = [:]) -> (AlertConfig, [ConfigProblem]) {
        var config = AlertConfig()
        var problems: [ConfigProblem] = []
        func attempt(_ body: () throws -> Void) {
            do { try body() } catch let problem as ConfigProblem { problems.append(problem) } catch { problems.append(ConfigProblem("", "\(error)")) }
        }
        let top: Fields
        do {
            let node: Node?
            do { node = try Yams.compose(yaml: text) } catch { throw ConfigProblem("", "not valid YAML: \(error)") }
            top = try Fields(try YAMLValue.json(node, environment: environment, path: ""), path: "", allowed: [
                "global", "receivers", "rules", "route", "inhibit_rules", "time_intervals", "templates",
            ])
        } catch {
            return (config, [(error as? ConfigProblem) ?? ConfigProblem("", "\(error)")])
        }
        attempt {
            guard let global = top["global"] else { return }
            let g = try Fields(global, path: "global", allowed: [
                "evaluation_interval", "external_url", "group_by", "group_wait", "group_interval", "repeat_interval",
                "max_retry_age", "initial_backoff", "max_backoff", "forget_instances_after", "receivers",
            ])
            config.evaluationInterval = try g.duration("evaluation_interval") ?? config.evaluationInterval
            config.externalURL = try g.string("external_url") ?? config.externalURL
            config.groupBy = try g.strings("group_by") ?? config.groupBy
            config.groupWait = try g.duration("group_wait", allowZero: true) ?? config.groupWait
            config.groupInterval = try g.duration("group_interval") ?? config.groupInterval
            config.repeatInterval = try g.duration("repeat_interval") ?? config.repeatInterval
            config.maxRetryAge = try g.duration("max_retry_age") ?? config.maxRetryAge
            config.initialBackoff = try g.duration("initial_backoff") ?? config.initialBackoff
            config.maxBackoff = try g.duration("max_backoff") ?? config.maxBackoff
            config.forgetInstancesAfter = try g.duration("forget_instances_after") ?? config.forgetInstancesAfter
            config.defaultReceivers = try g.strings("receivers") ?? []
        }
        var items: [JSON] = []
        attempt { items = try top.array("receivers") ?? [] }
        for (i, item) in items.enumerated() {
            attempt {
                let path = "receivers[\(i)]"
                let type = try Fields(item, path: path, allowed: nil).required("type")
                if type == "heartbeat" {
                    let heartbeat = try HeartbeatConfig.parse(item, path: path)
                    guard !config.names.contains(heartbeat.name) else {
                        throw ConfigProblem(path + ".name", "receiver '\(heartbeat.name)' is defined twice")
                    }
                    config.heartbeats.append(heartbeat)
                    return
                }
                let receiver = try ReceiverConfig.parse(item, type: type, path: path)
                guard !config.names.contains(receiver.name) else { throw ConfigProblem(path + ".name", "receiver '\(receiver.name)' is defined twice") }
                for (key, template) in [("title", receiver.titleTemplate), ("body", receiver.bodyTemplate)] {
                    if let template { try MessageTemplates.check(template, path: "\(path).\(key)") }
                }
                config.receivers.append(receiver)
            }
        }
        for name in config.defaultReceivers where config.receiver(name) == nil {
            problems.append(ConfigProblem("global.receivers", config.unknownReceiver(name)))
        }
        items = []
        attempt { items = try top.array("time_intervals") ?? [] }
        for (i, item) in items.enumerated() {
            attempt {
                let interval = try TimeIntervalSet.parse(item, path: "time_intervals[\(i)]")
                guard !config.timeIntervals.contains(where: { $0.name == interval.name }) else {
                    throw ConfigProblem("time_intervals[\(i)].name", "time interval '\(interval.name)' is defined twice")
                }
                config.timeIntervals.append(interval)
            }
        }
        config.route.receivers = config.defaultReceivers
        config.route.groupBy = config.groupBy
        config.route.groupWait = config.groupWait
        config.route.groupInterval = config.groupInterval
        config.route.repeatInterval = config.repeatInterval
        if let route = top["route"] {
            attempt {
                guard config.defaultReceivers.isEmpty else {
                    throw ConfigProblem("global.receivers", "with a route, name the default receiver as route.receiver instead")
                }
                config.route = try Route.parse(route, path: "", parent: config.route)
                problems += config.checkRoutes()
            }
        }
        items = []
        attempt { items = try top.array("inhibit_rules") ?? [] }
        for (i, item) in items.enumerated() {
            attempt { config.inhibitRules.append(try InhibitRule.parse(item, path: "inhibit_rules[\(i)]")) }
        }
        attempt {
            config.templates = try top.stringMap("templates") ?? [:]
            for (name, template) in config.templates { try MessageTemplates.check(template, path: "templates.\(name)") }
        }
        items = []
        attempt { items = try top.array("rules") ?? [] }
        for (i, item) in items.enumerated() {
            attempt {
                let rule = try parseRule(item, path: "rules[\(i)]", config: config)
                guard !config.rules.contains(where: { $0.name == rule.name }) else {
                    throw ConfigProblem("rules[\(i)].name", "rule '\(rule.name)' is defined twice")
                }
                config.rules.append(rule)
            }
        }
        // With two receivers or more, a receiver that stops delivering is reported to the others.
        if config.receivers.count >= 2, !config.rules.contains(where: { if case .notificationsFailing = $0.kind { true } else { false } }) {
            config.rules.append(.notificationsFailing(after: 900))
        }
        return (config, problems)
    }

    static func parseRule(_ item: JSON, path: String, config: AlertConfig) throws -> AlertRule {
        let r = try Fields(item, path: path, allowed: [
            "name", "type", "metric", "statistic", "window", "comparison", "threshold", "for", "datapoints",
            "keep_firing_for", "missing_data", "severity", "labels", "annotations", "receivers", "after", "expr",
        ])
        let name = try r.required("name")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            throw ConfigProblem(path + ".name", "use letters, digits, _ and -")
        }
        let kind: AlertRule.Kind
        switch try r.string("type") ?? (r.value("expr") != nil ? "expr" : "threshold") {
        case "expr":
            let text = try r.required("expr")
            let condition: ExpressionCondition
            do { condition = try ExpressionCondition.parse(text) } catch { throw ConfigProblem(path + ".expr", error.description) }
            let statistic = try r.string("statistic") ?? "avg"
            guard ["avg", "min", "max", "sum", "count", "p95", "p99"].contains(statistic) else {
                throw ConfigProblem(path + ".statistic", "must be avg, min, max, sum, count, p95 or p99")
            }
            kind = .expression(condition, statistic: statistic)
        case "threshold":
            let metric = try r.required("metric")
            guard MetricCatalog.definition(metric) != nil else {
                throw ConfigProblem(path + ".metric", "unknown metric '\(metric)'; known: \(MetricCatalog.names.joined(separator: ", "))")
            }
            let statistic = try r.string("statistic") ?? "avg"
            guard ["avg", "min", "max", "sum", "count", "p95", "p99"].contains(statistic) else {
                throw ConfigProblem(path + ".statistic", "must be avg, min, max, sum, count, p95 or p99")
            }
            let comparisonText = try r.required("comparison")
            guard let comparison = Comparison(rawValue: comparisonText) else {
                throw ConfigProblem(path + ".comparison", "must be one of > >= < <= == !=")
            }
            guard let threshold = r.value("threshold")?.number else { throw ConfigProblem(path + ".threshold", "a number is required") }
            kind = .threshold(metric: metric, statistic: statistic, comparison: comparison, threshold: threshold)
        case "absent":
            guard let after = try r.duration("after") else { throw ConfigProblem(path + ".after", "how long without a line, e.g. 3m") }
            kind = .absent(after: after)
        case "agent_unreachable":
            kind = .agentUnreachable(after: try r.duration("after") ?? 0)
        case "notifications_failing":
            kind = .notificationsFailing(after: try r.duration("after") ?? 900)
        case let other:
            throw ConfigProblem(path + ".type", "'\(other)' is not threshold, expr, absent, agent_unreachable or notifications_failing")
        }
        var datapoints: (Int, Int)?
        if let dp = r.value("datapoints") {
            let d = try Fields(dp, path: path + ".datapoints", allowed: ["m", "n"])
            guard let m = d.value("m")?.int, let n = d.value("n")?.int, m >= 1, n >= m, n <= 1440 else {
                throw ConfigProblem(path + ".datapoints", "needs whole numbers 1 <= m <= n")
            }
            datapoints = (m, n)
        }
        let forDuration = try r.duration("for", allowZero: true) ?? 0
        if datapoints != nil && forDuration > 0 { throw ConfigProblem(path, "use either 'for' or 'datapoints', not both") }
        guard let missing = MissingData(rawValue: try r.string("missing_data") ?? "missing") else {
            throw ConfigProblem(path + ".missing_data", "must be missing, breaching, notBreaching or ignore")
        }
        // Named receivers bypass the routing tree; a rule that names none is routed.
        let receivers = try r.strings("receivers") ?? []
        for receiver in receivers where config.receiver(receiver) == nil {
            throw ConfigProblem(path + ".receivers", config.unknownReceiver(receiver))
        }
        return AlertRule(
            name: name, kind: kind, window: try r.duration("window") ?? 60, forDuration: forDuration, datapoints: datapoints,
            keepFiringFor: try r.duration("keep_firing_for", allowZero: true) ?? 0, missingData: missing,
            severity: try r.string("severity") ?? "warning", labels: try r.stringMap("labels") ?? [:],
            annotations: try r.stringMap("annotations") ?? [:], receivers: receivers)
    }
}
