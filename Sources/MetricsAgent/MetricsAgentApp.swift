import Alerting
import Foundation
import GRDB
import Hummingbird
import Logging
import MetricsSchema
import ServiceLifecycle

/// The sidecar: backfills, then tails the metrics files into the store and
/// serves the API, dashboard and /metrics.
public final class MetricsAgentApp: Sendable {
    public let config: AgentConfig
    public let logger: Logger
    public let store: Store
    public let stats = AgentStats()
    public let rollups: RollupEngine
    public let query: QueryEngine
    /// The other agents of the fleet (none unless `--peer` is given).
    public let fleet: Fleet
    /// The game servers' gauges between the lines (empty unless `--scrape` is given).
    public let live = LiveSamples()
    /// Wakes the delivery loops when a notification or a review is queued.
    let deliveryWakeup = Wakeup()
    /// Wakes the rollups when lines were stored (from the files or from a peer).
    let linesStored = Wakeup()
    private let lock: AgentLock
    /// Blocking work (file reads, SQLite writes) runs here, off the async threads that serve HTTP.
    private let worker = DispatchQueue(label: "metrics-agent.ingest")

    public init(config: AgentConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        lock = try AgentLock(databasePath: config.databasePath)
        store = try Store(path: config.databasePath)
        rollups = RollupEngine(store: store, retention: config.retention, logger: logger)
        query = QueryEngine(store: store, retention: config.retention)
        fleet = Fleet(config: config.fleet, startedAt: stats.snapshot.startedAt)
        try fleet.restore(from: store)
    }

    func makeTailer() -> Tailer { Tailer(store: store, config: config.tailer, logger: logger) }

    /// Ingests everything not yet ingested and returns what it did (`ingest --once`).
    public func ingestOnce(showProgress: Bool = true, rollUp: Bool = true) throws -> IngestCounts {
        let tailer = makeTailer()
        var reporter = ProgressReporter(total: tailer.pendingBytes())
        let report: (IngestCounts) -> Void = { so in if showProgress { reporter.update(bytes: so.bytes, lines: so.ingested) } }
        // Leave the store consistent: every touched day rolled up before exiting (unless left to `run`).
        let counts = try rollUp ? tailer.scanRollingUp(rollups, progress: report) : tailer.scan(progress: report)
        if showProgress && counts.ingested + counts.quarantined > 0 {
            reporter.update(bytes: counts.bytes, lines: counts.ingested, final: true)
        }
        stats.update(from: tailer)
        if rollUp {
            logger.info("days rolled up", metadata: ["from_lines": "\(tailer.lastRollups.fromLines)", "from_database": "\(tailer.lastRollups.fromDatabase)",
                                                     "raw_skipped": "\(tailer.lastRollups.rawSkipped)"])
        }
        return counts
    }

    /// Compresses and deletes the metrics files that are due (FileRetention) and logs what it did.
    @discardableResult
    public func applyFileRetention(_ tailer: Tailer? = nil, now: Date = Date()) throws -> RetentionCounts {
        let tailer = tailer ?? makeTailer()
        let counts = try tailer.applyRetention(config.fileRetention, now: now)
        if counts.compressed + counts.deleted > 0 {
            logger.notice("metrics files compressed and deleted", metadata: ["compressed": "\(counts.compressed)", "deleted": "\(counts.deleted)"])
        }
        return counts
    }

    /// The rules this agent evaluates: the file's, plus the fleet's AgentUnreachable when there are peers.
    public var alertConfig: AlertConfig? {
        guard var alerts = config.alerts else { return nil }
        guard !config.fleet.peers.isEmpty else { return alerts }
        if !alerts.rules.contains(where: { if case .agentUnreachable = $0.kind { true } else { false } }) {
            // Routed like any alert; with no routing at all, to every receiver.
            let routed = !alerts.route.receivers.isEmpty || !alerts.route.routes.isEmpty
            alerts.rules.append(.agentUnreachable(after: 0, receivers: routed ? [] : alerts.receivers.map(\.name)))
        }
        for i in alerts.rules.indices {
            if case .agentUnreachable(let after) = alerts.rules[i].kind, after == 0 {
                alerts.rules[i].kind = .agentUnreachable(after: config.fleet.peerTimeout)
            }
        }
        return alerts
    }

    /// The alert engine, when rules are configured. In a fleet it sends only the notifications that are this agent's.
    public var alertEngine: AlertEngine? {
        alertConfig.map { alerts in
            AlertEngine(config: alerts, pool: store.pool,
                        source: StoreMetricSource(store: store, fleet: fleet, live: config.scrape.isEmpty ? nil : live,
                                                  startedAt: Int64(stats.snapshot.startedAt.timeIntervalSince1970 * 1000)),
                        logger: logger,
                        ownership: config.fleet.peers.isEmpty ? nil : FleetOwnership(fleet: fleet), watchingSince: stats.snapshot.startedAt)
        }
    }

    public func run() async throws {
        // The review, run from the CLI on this database, names this agent's own instances by it.
        try await store.pool.write { [config, store] db in try store.setState("agent_id", config.fleet.agentID, in: db) }
        let tailer = makeTailer()
        let newData = Wakeup()
        let ingest = IngestService(app: self, tailer: tailer, newData: newData)
        let http = AgentHTTP(app: self).application()
        let maintenance = MaintenanceService(app: self)
        var services: [any Service] = [http, ingest, maintenance]
        if !config.fleet.peers.isEmpty {
            services.append(ReplicationService(app: self, fleet: fleet, newData: newData))
            logger.notice("fleet on", metadata: ["agent_id": "\(config.fleet.agentID)", "peers": "\(config.fleet.peers.joined(separator: ","))"])
        }
        if !config.scrape.isEmpty {
            services.append(ScrapeService(app: self, live: live, newData: newData))
        }
        var delivery: Delivery?
        if let engine = alertEngine, let alerts = alertConfig {
            delivery = Delivery(config: alerts, pool: store.pool, logger: logger, wakeup: deliveryWakeup)
            services.append(AlertService(app: self, engine: engine, delivery: delivery!, newData: newData))
            logger.notice("alerting on", metadata: ["rules": "\(alerts.rules.count)", "receivers": "\(alerts.receivers.map(\.name).joined(separator: ","))"])
            if !alerts.heartbeats.isEmpty { services.append(HeartbeatService(app: self, heartbeats: alerts.heartbeats)) }
        }
        if config.reviewSchedule != nil { services.append(ReviewService(app: self)) }
        var groupConfig = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = .seconds(10)
        logger.notice("metrics agent starting", metadata: [
            "log_dirs": "\(config.tailer.directories.joined(separator: ","))", "db": "\(config.databasePath)",
            "listen": "\(config.listenHost):\(config.listenPort)",
        ])
        do {
            try await ServiceGroup(configuration: groupConfig).run()
        } catch {
            // Even when the graceful shutdown ran out of time: a notification a receiver is answering is recorded.
            await delivery?.finishAttempts()
            throw error
        }
        await delivery?.finishAttempts()
        logger.notice("metrics agent stopped")
    }

    /// Reads off the async threads (the pool allows reads beside the ingest writes).
    private let readers = DispatchQueue(label: "metrics-agent.reads", attributes: .concurrent)

    func onWorkerRead<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            readers.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Runs blocking work on the ingest thread.
    func onWorker<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            worker.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// Rolls up dirty days shortly after they are ingested, and prunes each tier
/// to its retention every `pruneInterval` (the first time after one interval).
/// Once the backfill is rolled up, it gives back the start-up's memory (StartupMemory).
struct MaintenanceService: Service {
    let app: MetricsAgentApp

    func run() async throws {
        let app = app
        try await cancelWhenGracefulShutdown {
            var nextPrune = ContinuousClock.now + app.config.pruneInterval
            var more = false
            var startupDone = false
            while !Task.isCancelled {
                // Rollups follow new lines (a moment later, so a burst is rolled up once); otherwise only prunes are due.
                if !more { await app.linesStored.wait(timeout: max(.zero, nextPrune - .now)) }
                do { try await Task.sleep(for: .milliseconds(300)) } catch { return }
                do {
                    more = try await app.onWorker { try app.rollups.processDirty(limit: 32) } == 32
                    if !more && !startupDone && app.stats.snapshot.backfillDone {
                        startupDone = true
                        let released = StartupMemory.release()
                        app.logger.info("start-up memory given back", metadata: [
                            "rss_kb_before": "\(released.before.residentKB)", "rss_kb_after": "\(released.after.residentKB)",
                            "anonymous_kb": "\(released.after.anonymousKB)", "code_advised_kb": "\(released.advisedBytes / 1024)",
                        ])
                    }
                    if ContinuousClock.now >= nextPrune {
                        nextPrune = ContinuousClock.now + app.config.pruneInterval
                        let deleted = try await app.onWorker { try app.rollups.prune() }
                        if deleted > 0 { app.logger.info("pruned rows past retention", metadata: ["rows": "\(deleted)"]) }
                    }
                } catch {
                    app.stats.error()
                    app.logger.error("rollup or prune failed; retrying", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

