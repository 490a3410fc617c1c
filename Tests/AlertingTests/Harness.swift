import Alerting
import Foundation
import GRDB
import JSONCore
import Logging
@testable import MetricsAgent
import TestSupport

/// An agent database, a rules file and the alert engine, driven by an injected clock.
final class AlertHarness: @unchecked Sendable {
    let store: Store
    let config: AlertConfig
    let engine: AlertEngine
    let delivery: Delivery
    static let t0 = Date(timeIntervalSince1970: 1_893_456_000)  // 2030-01-01T00:00:00Z

    init(_ yaml: String, environment: [String: String] = [:]) throws {
        let dir = TemporaryDirectory.make("alerting")
        store = try Store(path: dir.appendingPathComponent("m.sqlite").path)
        config = try AlertConfig.parse(yaml, environment: environment)
        var logger = Logger(label: "alert-test")
        logger.logLevel = .warning
        engine = AlertEngine(config: config, pool: store.pool, source: StoreMetricSource(store: store), logger: logger)
        delivery = Delivery(config: config, pool: store.pool, logger: logger)
    }

    /// A new engine on the same database: what an agent restart does.
    func restarted() -> (AlertEngine, Delivery) {
        var logger = Logger(label: "alert-test")
        logger.logLevel = .warning
        return (AlertEngine(config: config, pool: store.pool, source: StoreMetricSource(store: store), logger: logger),
                Delivery(config: config, pool: store.pool, logger: logger))
    }

    static func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    /// A raw sample `seconds` after t0.
    func sample(_ instance: String = "game-a", at seconds: Double, _ values: [String: Double]) throws {
        let ts = Int64((Self.t0.timeIntervalSince1970 + seconds) * 1000)
        try store.pool.write { db in
            let columns = values.keys.sorted()
            try db.execute(sql: "INSERT INTO samples (instance_id, ts\(columns.map { ", " + $0 }.joined())) VALUES (?, ?\(String(repeating: ", ?", count: columns.count)))",
                           arguments: StatementArguments([instance, ts] + columns.map { values[$0]! as DatabaseValueConvertible })!)
            try db.execute(sql: """
                INSERT INTO instances (instance_id, first_ts, last_ts) VALUES (?, ?, ?)
                ON CONFLICT(instance_id) DO UPDATE SET last_ts = max(last_ts, excluded.last_ts)
                """, arguments: [instance, ts, ts])
        }
    }

    /// One sample a minute (at second 1 of each minute) from `from` to `to` minutes.
    func minutes(_ range: Range<Int>, instance: String = "game-a", _ value: (Int) -> [String: Double]) throws {
        for m in range { try sample(instance, at: Double(m * 60 + 1), value(m)) }
    }

    @discardableResult
    func evaluate(at seconds: Double) throws -> AlertEngine.Outcome { try engine.evaluate(at: Self.at(seconds)) }

    struct Queued {
        let receiver: String
        let status: String
        let summary: String
        let body: JSON
        let deliveryStatus: String
        let attempts: Int
        let lastError: String?
    }

    func outbox() throws -> [Queued] {
        try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT receiver, summary, body, status, attempts, last_error FROM outbox ORDER BY id").map { row in
                let body = try JSONParser.parse(bytes: row["body"] as Data)
                let summary: String = row["summary"]
                return Queued(receiver: row["receiver"], status: summary.hasPrefix("RESOLVED") ? "resolved" : "firing", summary: summary,
                              body: body, deliveryStatus: row["status"], attempts: row["attempts"], lastError: row["last_error"])
            }
        }
    }

    func states() throws -> [String: String] {
        try store.pool.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT rule || '/' || instance_id, state FROM alert_states").map { ($0[0], $0[1]) })
        }
    }

    func text(_ sql: String) throws -> String? { try store.pool.read { try String.fetchOne($0, sql: sql) } }
    func number(_ sql: String) throws -> Int64? { try store.pool.read { try Int64.fetchOne($0, sql: sql) } }

    func history(_ rule: String) throws -> [String] {
        try store.pool.read { try String.fetchAll($0, sql: "SELECT event FROM alert_history WHERE rule = ? ORDER BY id", arguments: [rule]) }
    }
}

/// A rules file with one webhook receiver and the given rules (YAML list items).
func rulesYAML(receiverURL: String = "http://127.0.0.1:9/hook", kind: String = "webhook", groupWait: String = "0s",
               groupInterval: String = "1m", repeatInterval: String = "4h", groupBy: String = "[alertname, instance_id]",
               extraReceivers: String = "", timeout: String = "2s", _ rules: String) -> String {
    """
    global:
      group_wait: \(groupWait)
      group_interval: \(groupInterval)
      repeat_interval: \(repeatInterval)
      group_by: \(groupBy)
      initial_backoff: 1s
      max_backoff: 60s
      external_url: http://agent.example
      receivers: [main]
    receivers:
      - name: main
        type: \(kind)
        url: \(receiverURL)
        timeout: \(timeout)
    \(extraReceivers)
    rules:
    \(rules)
    """
}
