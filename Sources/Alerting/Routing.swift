import Foundation
import JSONCore

/// A node of the routing tree, as in Alertmanager: an alert enters at the root and goes down into the first
/// child whose matchers it satisfies (and on into later siblings while the matched child says `continue`);
/// the deepest matching nodes deliver it. Settings a node leaves out are its parent's.
public struct Route: Sendable, Equatable {
    /// Where the node is in the file: "" for the root, "routes[1].routes[0]" below it.
    public var path: String
    public var receivers: [String]
    public var matchers: [LabelMatcher]
    public var continues: Bool
    /// Labels that make a group; `["..."]` groups by every label (one alert per group).
    public var groupBy: [String]
    public var groupWait: TimeInterval
    public var groupInterval: TimeInterval
    public var repeatInterval: TimeInterval
    public var muteTimeIntervals: [String]
    public var activeTimeIntervals: [String]
    public var routes: [Route]

    public var groupsByEveryLabel: Bool { groupBy.contains("...") }

    /// The nodes that deliver an alert with these labels, in the file's order.
    public func match(_ labels: [String: String]) -> [Route] {
        guard matchers.allSatisfy({ $0.matches(labels) }) else { return [] }
        var found: [Route] = []
        for child in routes {
            let matched = child.match(labels)
            found += matched
            if !matched.isEmpty && !child.continues { break }
        }
        return found.isEmpty ? [self] : found
    }

    /// The node at `path` ("" is the root).
    public func node(_ path: String) -> Route? {
        if self.path == path { return self }
        for child in routes where path.hasPrefix(child.path) { if let found = child.node(path) { return found } }
        return nil
    }

    var all: [Route] { [self] + routes.flatMap(\.all) }

    static let keys: Set<String> = [
        "receiver", "receivers", "matchers", "continue", "group_by", "group_wait", "group_interval", "repeat_interval",
        "mute_time_intervals", "active_time_intervals", "routes",
    ]

    /// Reads a node; `parent` gives what it leaves out (the root's parent is `global`).
    static func parse(_ item: JSON, path: String, parent: Route) throws -> Route {
        let f = try Fields(item, path: path, allowed: keys)
        var route = parent
        route.path = path
        route.routes = []
        route.matchers = try (f.strings("matchers") ?? []).map { text in
            do { return try LabelMatcher.parse(text) } catch { throw ConfigProblem(f.at("matchers"), "\(error)") }
        }
        if path.isEmpty && !route.matchers.isEmpty { throw ConfigProblem("route.matchers", "the root route takes every alert; give matchers to its routes") }
        if let one = try f.string("receiver") { route.receivers = [one] }
        if let many = try f.strings("receivers") {
            guard f.value("receiver") == nil else { throw ConfigProblem(f.at("receivers"), "use receiver or receivers, not both") }
            route.receivers = many
        }
        route.continues = f.value("continue")?.bool ?? false
        if f.value("continue") != nil && f.value("continue")?.bool == nil { throw ConfigProblem(f.at("continue"), "must be true or false") }
        route.groupBy = try f.strings("group_by") ?? parent.groupBy
        route.groupWait = try f.duration("group_wait", allowZero: true) ?? parent.groupWait
        route.groupInterval = try f.duration("group_interval") ?? parent.groupInterval
        route.repeatInterval = try f.duration("repeat_interval") ?? parent.repeatInterval
        route.muteTimeIntervals = try f.strings("mute_time_intervals") ?? parent.muteTimeIntervals
        route.activeTimeIntervals = try f.strings("active_time_intervals") ?? parent.activeTimeIntervals
        for (i, child) in (try f.array("routes") ?? []).enumerated() {
            route.routes.append(try parse(child, path: (path.isEmpty ? "routes" : path + ".routes") + "[\(i)]", parent: route))
        }
        return route
    }

    /// One line per setting, for `alerts routes` and `alerts check`.
    public var settings: String {
        "group_by \(groupBy.joined(separator: ",")) · group_wait \(Durations.short(groupWait)) · group_interval \(Durations.short(groupInterval))"
            + " · repeat_interval \(Durations.short(repeatInterval))"
            + (muteTimeIntervals.isEmpty ? "" : " · muted during \(muteTimeIntervals.joined(separator: ","))")
            + (activeTimeIntervals.isEmpty ? "" : " · active only during \(activeTimeIntervals.joined(separator: ","))")
    }
}

/// Where one alert goes: a receiver, by way of a route (whose grouping and timing apply).
public struct Destination: Sendable, Equatable {
    public var receiver: String
    public var route: Route
    /// Why: "route routes[0]", "the rule's receivers", …
    public var via: String
}

extension AlertConfig {
    /// The receivers an alert with these labels reaches. A rule that names its receivers sends to them with the
    /// root route's timing (the shorthand kept from before routes); every other alert goes down the tree.
    public func destinations(for labels: [String: String]) -> [Destination] {
        let rule = rules.first { $0.name == labels["alertname"] }
        if let rule, case .notificationsFailing = rule.kind {
            // Told to every other receiver (or the rule's own list), never to the one that fails.
            let names = (rule.receivers.isEmpty ? receivers.map(\.name) : rule.receivers).filter { $0 != labels["receiver"] }
            return names.map { Destination(receiver: $0, route: route, via: "every other receiver") }
        }
        if let rule, !rule.receivers.isEmpty {
            return rule.receivers.map { Destination(receiver: $0, route: route, via: "the rule's receivers") }
        }
        var seen = Set<String>()
        return route.match(labels).flatMap { node in
            node.receivers.compactMap { name in
                // A receiver reached by two routes gets the alert once, by the first.
                guard seen.insert(node.path + "\u{1}" + name).inserted else { return nil }
                return Destination(receiver: name, route: node, via: node.path.isEmpty ? "the root route" : "route \(node.path)")
            }
        }
    }

    /// Whether a route's notifications wait now: inside one of its mute intervals, or outside all its active ones.
    public func isMuted(_ route: Route, at date: Date) -> String? {
        for name in route.muteTimeIntervals where timeIntervals.first(where: { $0.name == name })?.contains(date) == true {
            return "muted by \(name)"
        }
        if !route.activeTimeIntervals.isEmpty,
           !route.activeTimeIntervals.contains(where: { name in timeIntervals.first { $0.name == name }?.contains(date) == true }) {
            return "outside \(route.activeTimeIntervals.joined(separator: ", "))"
        }
        return nil
    }

    /// Checks that every name a route uses is defined.
    func checkRoutes() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        let at = { (route: Route) in route.path.isEmpty ? "route" : "route.\(route.path)" }
        for node in route.all {
            for name in node.receivers where receiver(name) == nil {
                problems.append(ConfigProblem(at(node) + ".receiver", unknownReceiver(name)))
            }
            for name in node.muteTimeIntervals + node.activeTimeIntervals where !timeIntervals.contains(where: { $0.name == name }) {
                problems.append(ConfigProblem(at(node), "no time interval named '\(name)' (define it under time_intervals)"))
            }
        }
        return problems
    }
}

/// Alertmanager's inhibition: while an alert matching `source_matchers` fires, alerts matching
/// `target_matchers` that carry the same values of the `equal` labels are not notified.
public struct InhibitRule: Sendable, Equatable {
    public var sourceMatchers: [LabelMatcher]
    public var targetMatchers: [LabelMatcher]
    public var equal: [String]

    /// Whether `target` is held back by one of the `firing` alerts (an alert never inhibits itself).
    public func inhibits(_ target: [String: String], firing: [[String: String]]) -> Bool {
        guard targetMatchers.allSatisfy({ $0.matches(target) }) else { return false }
        return firing.contains { source in
            source != target && sourceMatchers.allSatisfy { $0.matches(source) } && equal.allSatisfy { source[$0] == target[$0] }
        }
    }

    static func parse(_ item: JSON, path: String) throws -> InhibitRule {
        let f = try Fields(item, path: path, allowed: ["source_matchers", "target_matchers", "equal"])
        func matchers(_ key: String) throws -> [LabelMatcher] {
            let texts = try f.strings(key) ?? []
            guard !texts.isEmpty else { throw ConfigProblem(f.at(key), "list at least one matcher, e.g. alertname=GameServerDown") }
            return try texts.map { text in
                do { return try LabelMatcher.parse(text) } catch { throw ConfigProblem(f.at(key), "\(error)") }
            }
        }
        return InhibitRule(sourceMatchers: try matchers("source_matchers"), targetMatchers: try matchers("target_matchers"),
                           equal: try f.strings("equal") ?? [])
    }
}
