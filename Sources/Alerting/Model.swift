import Foundation
import GRDB
import JSONCore

/// Where the evaluator reads metrics from (the agent's store).
public protocol MetricSource: Sendable {
    /// Each instance with the time of its newest line (ms).
    func instances() throws -> [(id: String, lastSeen: Int64)]
    /// Raw values of `metric` for `instance` with from <= ts < to, in time order.
    func values(metric: String, instance: String, from: Int64, to: Int64, in db: Database) throws -> [(Int64, Double)]
    /// The other agents of the fleet, each with how long it has been unreachable (0 while it answers).
    func peers() -> [(agentID: String, unreachableFor: TimeInterval)]
}

extension MetricSource {
    public func peers() -> [(agentID: String, unreachableFor: TimeInterval)] { [] }
}

/// In a fleet of agents every agent evaluates every alert, but one sends it:
/// the agent the alert's instance reports to, or a survivor when that agent is
/// unreachable. Asked once per evaluation, inside its transaction.
public protocol NotificationOwnership: Sendable {
    /// Whether this agent sends the notifications about an alert with these labels.
    func sender(in db: Database) throws -> @Sendable ([String: String]) -> Bool
}

/// One alert as notifications carry it.
public struct AlertInstance: Sendable, Equatable {
    public var fingerprint: String
    public var status: String  // firing | resolved
    public var labels: [String: String]
    public var annotations: [String: String]
    public var startsAt: Date
    public var endsAt: Date?
    public var value: Double?

    var json: JSON {
        [
            "fingerprint": .string(fingerprint), "status": .string(status),
            "labels": .object(labels.mapValues { .string($0) }), "annotations": .object(annotations.mapValues { .string($0) }),
            "startsAt": .number(startsAt.timeIntervalSince1970), "endsAt": endsAt.map { .number($0.timeIntervalSince1970) } ?? .null,
            "value": value.map { JSON($0) } ?? .null,
        ]
    }

    init(fingerprint: String, status: String, labels: [String: String], annotations: [String: String], startsAt: Date, endsAt: Date?, value: Double?) {
        self.fingerprint = fingerprint
        self.status = status
        self.labels = labels
        self.annotations = annotations
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.value = value
    }

    init?(json: JSON) {
        guard let fingerprint = json["fingerprint"]?.string, let status = json["status"]?.string,
              let starts = json["startsAt"]?.number else { return nil }
        self.init(fingerprint: fingerprint, status: status,
                  labels: (json["labels"]?.object ?? [:]).compactMapValues(\.string),
                  annotations: (json["annotations"]?.object ?? [:]).compactMapValues(\.string),
                  startsAt: Date(timeIntervalSince1970: starts), endsAt: json["endsAt"]?.number.map { Date(timeIntervalSince1970: $0) },
                  value: json["value"]?.number)
    }

    public var name: String { labels["alertname"] ?? "alert" }

    /// What the alert is about: its instance, or for fleet alerts the agent.
    public var subject: String {
        labels["instance_id"] ?? labels["agent_id"].map { "agent " + $0 } ?? labels["receiver"].map { "receiver " + $0 }
            ?? (labels["scope"] == "fleet" ? "the fleet" : "-")
    }
}

/// A notification to one receiver: a group of alerts that belong together.
public struct AlertNotification: Sendable, Equatable {
    public var receiver: String
    public var groupKey: String
    public var groupLabels: [String: String]
    public var status: String  // firing | resolved
    public var alerts: [AlertInstance]
    public var externalURL: String

    public var firing: [AlertInstance] { alerts.filter { $0.status == "firing" } }
    public var resolved: [AlertInstance] { alerts.filter { $0.status == "resolved" } }
    public var commonLabels: [String: String] {
        guard let first = alerts.first else { return [:] }
        return first.labels.filter { key, value in alerts.allSatisfy { $0.labels[key] == value } }
    }
    public var commonAnnotations: [String: String] {
        guard let first = alerts.first else { return [:] }
        return first.annotations.filter { key, value in alerts.allSatisfy { $0.annotations[key] == value } }
    }
}

/// Stable identity of an alert: FNV-1a 64 of its sorted labels, in hex (as Alertmanager's fingerprints are).
func fingerprint(_ labels: [String: String]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for key in labels.keys.sorted() {
        for byte in (key + "\u{1}" + labels[key]! + "\u{2}").utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// `{{ .instance }}`, `{{ .value }}`, `{{ .threshold }}`, `{{ .rule }}`, `{{ .metric }}`, `{{ .labels.NAME }}`.
enum Template {
    static func render(_ text: String, values: [String: String], labels: [String: String]) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else { return out + rest[open.lowerBound...] }
            let expression = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            if expression.hasPrefix(".labels.") {
                out += labels[String(expression.dropFirst(8))] ?? ""
            } else if expression.hasPrefix(".") {
                out += values[String(expression.dropFirst())] ?? ""
            }
            rest = rest[close.upperBound...]
        }
        return out + rest
    }
}

public enum AlertSchema {
    /// Migrations registered after every earlier one (GRDB applies them in order).
    public static let laterMigrations: [(String, @Sendable (Database) throws -> Void)] = [
        ("v6: when a firing condition stopped holding", { db in
            try db.execute(sql: "ALTER TABLE alert_states ADD COLUMN cleared_at INTEGER")
        }),
    ]

    /// Migrations the agent registers after its own.
    public static let migrations: [(String, @Sendable (Database) throws -> Void)] = [
        ("v3: alerting", { db in
            try db.execute(sql: """
                CREATE TABLE alert_states (
                    fingerprint TEXT PRIMARY KEY,
                    rule TEXT NOT NULL,
                    instance_id TEXT NOT NULL,
                    labels TEXT NOT NULL,
                    annotations TEXT NOT NULL,
                    state TEXT NOT NULL,
                    pending_since INTEGER,
                    firing_since INTEGER,
                    last_true INTEGER,
                    value REAL,
                    updated_at INTEGER NOT NULL
                );
                CREATE TABLE alert_history (
                    id INTEGER PRIMARY KEY,
                    fingerprint TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    instance_id TEXT NOT NULL,
                    event TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    value REAL,
                    text TEXT NOT NULL
                );
                CREATE INDEX alert_history_by_time ON alert_history(at);
                CREATE TABLE alert_groups (
                    group_key TEXT PRIMARY KEY,
                    receiver TEXT NOT NULL,
                    labels TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    next_flush_at INTEGER,
                    last_sent_at INTEGER,
                    notified TEXT NOT NULL DEFAULT '[]',
                    resolved_pending TEXT NOT NULL DEFAULT '[]',
                    last_digest TEXT NOT NULL DEFAULT ''
                );
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY,
                    receiver TEXT NOT NULL,
                    group_key TEXT NOT NULL,
                    message_id TEXT NOT NULL UNIQUE,
                    status TEXT NOT NULL,
                    body BLOB NOT NULL,
                    summary TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    delivered_at INTEGER,
                    status_code INTEGER,
                    last_error TEXT
                );
                CREATE INDEX outbox_queue ON outbox(receiver, status, id);
                CREATE TABLE silences (
                    id TEXT PRIMARY KEY,
                    matchers TEXT NOT NULL,
                    starts_at INTEGER NOT NULL,
                    ends_at INTEGER NOT NULL,
                    created_by TEXT NOT NULL,
                    comment TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                """)
        }),
    ]
}
