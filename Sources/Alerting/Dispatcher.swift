import Foundation
import GRDB
import JSONCore
import Logging

/// Groups alerts per receiver the way Alertmanager does, and queues a
/// notification when one is due: `group_wait` after a group appears, at most
/// every `group_interval` while it changes, every `repeat_interval` while it
/// stays the same. An alert is sent as resolved only if it was sent as firing.
struct Dispatcher {
    let config: AlertConfig
    let logger: Logger
    /// Whether this agent sends an alert (in a fleet, another agent may); an alert it has sent as
    /// firing it also sends as resolved, whoever owns it by then.
    var sends: ([String: String]) -> Bool = { _ in true }

    struct Group {
        var key: String
        var receiver: String
        var labels: [String: String]
        var createdAt: Int64
        var nextFlushAt: Int64?
        var lastSentAt: Int64?
        var notified: Set<String>
        var resolvedPending: [AlertInstance]
        var lastDigest: String
    }

    func dispatch(resolvedNow: [AlertInstance], now: Int64, in db: Database) throws -> Int {
        let silences = try Silence.active(at: now, in: db)
        var groups = try loadGroups(in: db)
        let alerts = try Row.fetchAll(db, sql: "SELECT * FROM alert_states WHERE state = 'firing' ORDER BY fingerprint").map { row in
            AlertInstance(
                fingerprint: row["fingerprint"], status: "firing",
                labels: (try? JSONParser.parse(row["labels"] as String))?.object?.compactMapValues(\.string) ?? [:],
                annotations: (try? JSONParser.parse(row["annotations"] as String))?.object?.compactMapValues(\.string) ?? [:],
                startsAt: Date(timeIntervalSince1970: Double(row["firing_since"] as Int64) / 1000), endsAt: nil, value: row["value"])
        }
        // Every firing alert can inhibit others, silenced or not (as in Alertmanager).
        let sources = alerts.map(\.labels)
        func held(_ labels: [String: String]) -> Bool {
            silences.contains { $0.matches(labels) } || config.inhibitRules.contains { $0.inhibits(labels, firing: sources) }
        }
        // Firing alerts, by group.
        var firing: [String: [AlertInstance]] = [:]
        var groupInfo: [String: (receiver: String, labels: [String: String], route: Route)] = [:]
        for alert in alerts where !held(alert.labels) {
            let ours = sends(alert.labels)
            for destination in config.destinations(for: alert.labels) {
                let (key, labels) = groupKey(alert, destination)
                guard ours || groups[key]?.notified.contains(alert.fingerprint) == true else { continue }
                firing[key, default: []].append(alert)
                groupInfo[key] = (destination.receiver, labels, destination.route)
            }
        }
        // Resolved alerts join the pending list of every group that told its receiver they were firing, whatever
        // the configuration says now: a rule removed from the file, or routed elsewhere, still resolves where it fired.
        for alert in resolvedNow where !silences.contains(where: { $0.matches(alert.labels) }) {
            for key in groups.keys where groups[key]!.notified.contains(alert.fingerprint) {
                groups[key]!.resolvedPending.append(alert)
            }
        }
        // New groups wait group_wait; changed ones group_interval after the last send; unchanged ones repeat.
        for key in firing.keys where groups[key] == nil {
            let info = groupInfo[key]!
            groups[key] = Group(key: key, receiver: info.receiver, labels: info.labels, createdAt: now,
                                nextFlushAt: now + ms(info.route.groupWait), lastSentAt: nil, notified: [], resolvedPending: [], lastDigest: "")
        }
        var queued = 0
        for key in groups.keys.sorted() {
            var group = groups[key]!
            let route = groupInfo[key]?.route ?? Self.routePath(of: key).flatMap(config.route.node) ?? config.route
            let current = firing[key] ?? []
            let digest = Self.digest(current, group.resolvedPending)
            if group.nextFlushAt == nil, let last = group.lastSentAt {
                if digest != group.lastDigest {
                    group.nextFlushAt = max(now, last + ms(route.groupInterval))
                } else if !current.isEmpty && now >= last + ms(route.repeatInterval) {
                    group.nextFlushAt = now
                }
            }
            if let due = group.nextFlushAt, now >= due {
                if current.isEmpty && group.resolvedPending.isEmpty {
                    // Everything in it resolved before anyone was told: nothing to say.
                    try db.execute(sql: "DELETE FROM alert_groups WHERE group_key = ?", arguments: [key])
                    continue
                }
                if config.isMuted(route, at: Date(timeIntervalSince1970: Double(now) / 1000)) != nil {
                    // Held, not dropped: looked at again each minute (time intervals have minutes), sent once allowed.
                    group.nextFlushAt = (now / 60_000 + 1) * 60_000
                    try save(group, in: db)
                    continue
                }
                let notification = AlertNotification(
                    receiver: group.receiver, groupKey: key, groupLabels: group.labels,
                    status: current.isEmpty ? "resolved" : "firing", alerts: current + group.resolvedPending,
                    externalURL: config.externalURL)
                guard let receiver = config.receiver(group.receiver) else {
                    // The receiver was removed from the file: nobody left to tell.
                    logger.warning("a group's receiver is no longer configured; its notifications are dropped",
                                   metadata: ["receiver": "\(group.receiver)", "group": "\(key)"])
                    try db.execute(sql: "DELETE FROM alert_groups WHERE group_key = ?", arguments: [key])
                    continue
                }
                try Outbox.enqueue(notification, receiver: receiver, templates: config.templates, now: now, in: db)
                queued += 1
                group.lastSentAt = now
                group.nextFlushAt = nil
                group.notified = Set(current.map(\.fingerprint))
                group.resolvedPending = []
                group.lastDigest = Self.digest(current, [])
            }
            if current.isEmpty && group.resolvedPending.isEmpty && group.nextFlushAt == nil {
                try db.execute(sql: "DELETE FROM alert_groups WHERE group_key = ?", arguments: [key])
            } else {
                try save(group, in: db)
            }
        }
        return queued
    }

    /// `receiver:{k="v",…}` over the route's group_by labels, prefixed by the route's path below the root
    /// (`routes[0]/receiver:{…}`): the same receiver reached by two routes keeps two groups.
    func groupKey(_ alert: AlertInstance, _ destination: Destination) -> (String, [String: String]) {
        let route = destination.route
        var labels: [String: String] = [:]
        for name in route.groupsByEveryLabel ? Array(alert.labels.keys) : route.groupBy { if let v = alert.labels[name] { labels[name] = v } }
        let body = labels.keys.sorted().map { "\($0)=\(JSON.string(labels[$0]!).text)" }.joined(separator: ",")
        return ((route.path.isEmpty ? "" : route.path + "/") + "\(destination.receiver):{\(body)}", labels)
    }

    static func routePath(of key: String) -> String? {
        guard key.hasPrefix("routes["), let slash = key.firstIndex(of: "/") else { return nil }
        return String(key[..<slash])
    }

    static func digest(_ firing: [AlertInstance], _ resolved: [AlertInstance]) -> String {
        (firing.map { "f" + $0.fingerprint }.sorted() + resolved.map { "r" + $0.fingerprint }.sorted()).joined(separator: ",")
    }

    func ms(_ seconds: TimeInterval) -> Int64 { Int64(seconds * 1000) }

    func loadGroups(in db: Database) throws -> [String: Group] {
        var groups: [String: Group] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM alert_groups") {
            let key: String = row["group_key"]
            groups[key] = Group(
                key: key, receiver: row["receiver"],
                labels: (try? JSONParser.parse(row["labels"] as String))?.object?.compactMapValues(\.string) ?? [:],
                createdAt: row["created_at"], nextFlushAt: row["next_flush_at"], lastSentAt: row["last_sent_at"],
                notified: Set((try? JSONParser.parse(row["notified"] as String))?.array?.compactMap(\.string) ?? []),
                resolvedPending: (try? JSONParser.parse(row["resolved_pending"] as String))?.array?.compactMap(AlertInstance.init(json:)) ?? [],
                lastDigest: row["last_digest"])
        }
        return groups
    }

    func save(_ g: Group, in db: Database) throws {
        try db.execute(sql: """
            INSERT INTO alert_groups (group_key, receiver, labels, created_at, next_flush_at, last_sent_at, notified, resolved_pending, last_digest)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(group_key) DO UPDATE SET next_flush_at = excluded.next_flush_at, last_sent_at = excluded.last_sent_at,
                notified = excluded.notified, resolved_pending = excluded.resolved_pending, last_digest = excluded.last_digest
            """, arguments: [g.key, g.receiver, JSON.object(g.labels.mapValues { .string($0) }).text, g.createdAt, g.nextFlushAt,
                             g.lastSentAt, JSON.array(g.notified.sorted().map { .string($0) }).text,
                             JSON.array(g.resolvedPending.map(\.json)).text, g.lastDigest])
    }
}
