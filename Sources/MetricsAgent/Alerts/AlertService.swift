import Alerting
import Foundation
import GRDB
import GRDBSQLite
import JSONCore
import Logging
import ServiceLifecycle

/// The store as the alert evaluator reads it.
struct StoreMetricSource: MetricSource {
    let store: Store
    /// The other agents, for AgentUnreachable; nil outside a fleet.
    var fleet: Fleet?
    /// Gauges scraped between the lines (`--scrape`); nil without.
    var live: LiveSamples?
    /// When the agent started (ms): an instance only scraped so far counts as seen then, so GameServerDown
    /// still fires if it never writes a line.
    var startedAt: Int64 = 0

    func instances() throws -> [(id: String, lastSeen: Int64)] {
        var instances = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT instance_id, last_ts FROM instances").map { ($0[0] as String, $0[1] as Int64) }
        }
        for id in (live?.instances().keys).map(Array.init) ?? [] where !instances.contains(where: { $0.0 == id }) {
            instances.append((id, startedAt))
        }
        return instances
    }

    func peers() -> [(agentID: String, unreachableFor: TimeInterval)] { fleet?.unreachable() ?? [] }

    func values(metric: String, instance: String, from: Int64, to: Int64, in db: Database) throws -> [(Int64, Double)] {
        guard Store.metricColumns.contains(metric) else { return [] }
        // Where live samples exist they stand for the time they cover; the stored lines for the time before.
        let scraped = live?.values(metric: metric, instance: instance, from: from, to: to)
        let stored = try Row.fetchAll(db, sql: "SELECT ts, \(metric) FROM samples WHERE instance_id = ? AND ts >= ? AND ts < ? AND \(metric) IS NOT NULL ORDER BY ts",
                                      arguments: [instance, from, min(to, scraped?.since ?? to)]).map { ($0[0] as Int64, $0[1] as Double) }
        return stored + (scraped?.values ?? [])
    }
}

/// Evaluates the rules every evaluation interval and as soon as new lines are
/// stored; delivers from the outbox on its own loops.
struct AlertService: Service {
    let app: MetricsAgentApp
    let engine: AlertEngine
    let delivery: Delivery
    /// Signalled when lines were stored (or live gauges scraped).
    let newData: Wakeup

    func run() async throws {
        let app = app, engine = engine, delivery = delivery, newData = newData
        try await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await delivery.run() }
                group.addTask {
                    let interval = Duration.milliseconds(Int(engine.config.evaluationInterval * 1000))
                    // Not before the files present at start are read: an instance would look silent.
                    while !Task.isCancelled && !app.stats.snapshot.backfillDone {
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    var nextFlush: Int64?
                    while !Task.isCancelled {
                        do {
                            let outcome = try await app.onWorker { try engine.evaluate(at: Date()) }
                            for change in outcome.transitions { app.logger.notice("alert \(change)") }
                            if outcome.queued > 0 { delivery.wakeup.signal() }
                            nextFlush = try engine.nextFlush()
                        } catch {
                            app.stats.error()
                            app.logger.error("alert evaluation failed", metadata: ["error": "\(error)"])
                        }
                        // Until the next tick, new lines, or a group due to be sent (group_wait after its first
                        // alert, not at the next tick), whichever comes first: no polling in between.
                        var wait = interval
                        if let nextFlush {
                            let untilFlush = Duration.milliseconds(max(0, nextFlush - Int64(Date().timeIntervalSince1970 * 1000)))
                            wait = min(wait, untilFlush)
                        }
                        await newData.wait(timeout: wait)
                    }
                }
                await group.waitForAll()
            }
        }
    }
}