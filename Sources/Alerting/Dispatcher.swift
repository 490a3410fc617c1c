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
        // Firing alerts, by group.
        var firing: [String: [AlertInstance]] = [:]
        var groupInfo: [String: (receiver: String, labels: [String: String])] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM alert_states WHERE state = 'firing' ORDER BY fingerprint") {
            let alert = AlertInstance(
                fingerprint: row["fingerprint"], status: "firing",
                labels: (try? JSONParser.parse(row["labels"] as String))?.object?.compactMapValues(\.string) ?? [:],
                annotations: (try? JSONParser.parse(row["annotations"] as String))?.object?.compactMapValues(\.string) ?? [:],
                startsAt: Date(timeIntervalSince1970: Double(row["firing_since"] as Int64) / 1000), endsAt: nil, value: row["value"])
            guard !silences.contains(where: { $0.matches(alert.labels) }) else { continue }
            let ours = sends(alert.labels)
            for receiver in receivers(of: alert) {
                let (key, labels) = groupKey(alert, receiver: receiver)
                guard ours || groups[key]?.notified.contains(alert.fingerprint) == true else { continue }
                firing[key, default: []].append(alert)
                groupInfo[key] = (receiver, labels)
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
        for (key, alerts) in firing where groups[key] == nil {
            let info = groupInfo[key]!
            groups[key] = Group(key: key, receiver: info.receiver, labels: info.labels, createdAt: now,
                                nextFlushAt: now + ms(config.groupWait), lastSentAt: nil, notified: [], resolvedPending: [], lastDigest: "")
            _ = alerts
        }
        var queued = 0
        for key in groups.keys.sorted() {
            var group = groups[key]!
            let current = firing[key] ?? []
            let digest = Self.digest(current, group.resolvedPending)
            if group.nextFlushAt == nil, let last = group.lastSentAt {
                if digest != group.lastDigest {
                    group.nextFlushAt = max(now, last + ms(config.groupInterval))
                } else if !current.isEmpty && now >= last + ms(config.repeatInterval) {
                    group.nextFlushAt = now
                }
            }
            if let due = group.nextFlushAt, now >= due {
                if current.isEmpty && group.resolvedPending.isEmpty {
                    // Everything in it resolved before anyone was told: nothing to say.
                    try db.execute(sql: "DELETE FROM alert_groups WHERE group_key = ?", arguments: [key])
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
                try Outbox.enqueue(notification, receiver: receiver, now: now, in: db)
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

    func receivers(of alert: AlertInstance) -> [String] {
        guard let rule = config.rules.first(where: { $0.name == alert.labels["alertname"] }) else { return config.defaultReceivers }
        if case .notificationsFailing = rule.kind {
            // Told to every other receiver (or the rule's own list), never to the one that fails.
            return (rule.receivers.isEmpty ? config.receivers.map(\.name) : rule.receivers).filter { $0 != alert.labels["receiver"] }
        }
        return rule.receivers
    }

    /// `receiver:{k="v",…}` over the group_by labels.
    func groupKey(_ alert: AlertInstance, receiver: String) -> (String, [String: String]) {
        var labels: [String: String] = [:]
        for name in config.groupBy { if let v = alert.labels[name] { labels[name] = v } }
        let body = labels.keys.sorted().map { "\($0)=\(JSON.string(labels[$0]!).text)" }.joined(separator: ",")
        return ("\(receiver):{\(body)}", labels)
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

/// A silence: alerts whose labels match every matcher are not notified until it ends.
public struct Silence: Sendable, Equatable {
    public struct Matcher: Sendable, Equatable, CustomStringConvertible {
        public enum Operator: String, Sendable { case equal = "=", notEqual = "!=", regex = "=~", notRegex = "!~" }
        public let name: String
        public let op: Operator
        public let value: String

        /// `name=value`, `name!=value`, `name=~regex`, `name!~regex`.
        public static func parse(_ text: String) throws -> Matcher {
            for op in [Operator.regex, .notRegex, .notEqual, .equal] {
                if let range = text.range(of: op.rawValue) {
                    let name = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                    var value = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
                    if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                    guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { break }
                    if op == .regex || op == .notRegex {
                        guard (try? Regex(value)) != nil else { throw ConfigProblem("matcher", "'\(value)' is not a valid regular expression") }
                    }
                    return Matcher(name: name, op: op, value: value)
                }
            }
            throw ConfigProblem("matcher", "'\(text)' is not name=value, name!=value, name=~regex or name!~regex")
        }

        func matches(_ labels: [String: String]) -> Bool {
            let actual = labels[name] ?? ""
            switch op {
            case .equal: return actual == value
            case .notEqual: return actual != value
            case .regex, .notRegex:
                let whole = (try? Regex("^(?:\(value))$")).map { actual.wholeMatch(of: $0) != nil } ?? false
                return op == .regex ? whole : !whole
            }
        }

        public var description: String { "\(name)\(op.rawValue)\(value)" }
    }

    public var id: String
    public var matchers: [Matcher]
    public var startsAt: Int64
    public var endsAt: Int64
    public var createdBy: String
    public var comment: String

    public func matches(_ labels: [String: String]) -> Bool { matchers.allSatisfy { $0.matches(labels) } }

    public static func active(at now: Int64, in db: Database) throws -> [Silence] {
        try all(in: db).filter { $0.startsAt <= now && now < $0.endsAt }
    }

    public static func all(in db: Database) throws -> [Silence] {
        try Row.fetchAll(db, sql: "SELECT * FROM silences ORDER BY created_at").map { row in
            Silence(id: row["id"],
                    matchers: ((try? JSONParser.parse(row["matchers"] as String))?.array ?? []).compactMap { $0.string.flatMap { try? Matcher.parse($0) } },
                    startsAt: row["starts_at"], endsAt: row["ends_at"], createdBy: row["created_by"], comment: row["comment"])
        }
    }

    public static func create(matchers: [Matcher], duration: TimeInterval, createdBy: String, comment: String, now: Date,
                              in db: Database) throws -> Silence {
        guard !matchers.isEmpty else { throw ConfigProblem("silence", "at least one matcher is required") }
        let start = Int64(now.timeIntervalSince1970 * 1000)
        let silence = Silence(id: UUID().uuidString.lowercased(), matchers: matchers, startsAt: start,
                              endsAt: start + Int64(duration * 1000), createdBy: createdBy, comment: comment)
        try db.execute(sql: "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       arguments: [silence.id, JSON.array(matchers.map { .string($0.description) }).text, start, silence.endsAt, createdBy, comment, start])
        return silence
    }

    /// Ends a silence now. Returns false when there is no such silence.
    public static func expire(id: String, now: Date, in db: Database) throws -> Bool {
        try db.execute(sql: "UPDATE silences SET ends_at = MIN(ends_at, ?) WHERE id = ?", arguments: [Int64(now.timeIntervalSince1970 * 1000), id])
        return db.changesCount > 0
    }
}
